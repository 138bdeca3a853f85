/*
 * gguf.h - reading GGUF files through mmap, and writing them.
 *
 * A GGUF file is a header, metadata key/values, tensor infos, then aligned
 * tensor data (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
 * The reader validates everything before handing it out: every count, string
 * length, array length, tensor shape, type and data range is checked against
 * the file's size, so a truncated or hostile file yields KTX_EFORMAT with a
 * message naming the problem, never a crash or a huge allocation.
 *
 * All strings handed out point into the mapping (GGUF strings are not NUL
 * terminated: use the length) except tensor names, which the reader copies
 * NUL-terminated because every caller wants them as C strings.
 */
#ifndef KTX_ENGINE_GGUF_H
#define KTX_ENGINE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"
#include "kernels/qtypes.h"

/* Metadata value types, numbered as in the format. */
enum gguf_vtype {
	GGUF_VT_UINT8 = 0,
	GGUF_VT_INT8 = 1,
	GGUF_VT_UINT16 = 2,
	GGUF_VT_INT16 = 3,
	GGUF_VT_UINT32 = 4,
	GGUF_VT_INT32 = 5,
	GGUF_VT_FLOAT32 = 6,
	GGUF_VT_BOOL = 7,
	GGUF_VT_STRING = 8,
	GGUF_VT_ARRAY = 9,
	GGUF_VT_UINT64 = 10,
	GGUF_VT_INT64 = 11,
	GGUF_VT_FLOAT64 = 12,
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

struct gguf_str {
	const char *ptr; /* not NUL-terminated */
	uint64_t len;
};

struct gguf_tensor {
	const char *name;   /* NUL-terminated copy */
	enum ktx_type type;
	uint32_t n_dims;
	int64_t ne[GGUF_MAX_DIMS]; /* elements per dim, ggml order (ne[0] fastest); unused dims are 1 */
	uint64_t offset;    /* from the start of the data section */
	uint64_t nbytes;    /* size of the data, checked to lie inside the file */
	const void *data;   /* into the mapping */
};

struct gguf_file; /* opaque */

/* Maps and validates path. On success *out owns the mapping. */
int gguf_open(const char *path, struct gguf_file **out, struct ktx_err *err);
/* Reads path whole into anonymous memory (huge pages advised) and
 * validates it; the handle works like gguf_open's. Faster to compute from
 * than a mapping, but the bytes must fit in memory. The image is the
 * process's own and writable: the engine repacks weights in it. */
int gguf_load(const char *path, struct gguf_file **out, struct ktx_err *err);
/* Validates an in-memory image (not copied; must outlive the handle). */
int gguf_open_memory(const void *data, size_t size, struct gguf_file **out, struct ktx_err *err);
void gguf_close(struct gguf_file *f);

uint32_t gguf_version(const struct gguf_file *f);
uint64_t gguf_alignment(const struct gguf_file *f);
uint64_t gguf_data_offset(const struct gguf_file *f);
uint64_t gguf_file_size(const struct gguf_file *f);

/* Metadata. Keys are found by exact name; index is 0..gguf_kv_count()-1. */
int64_t gguf_kv_count(const struct gguf_file *f);
int64_t gguf_kv_find(const struct gguf_file *f, const char *key); /* -1: absent */
struct gguf_str gguf_kv_key(const struct gguf_file *f, int64_t i);
enum gguf_vtype gguf_kv_type(const struct gguf_file *f, int64_t i);

/*
 * Typed getters by key: return 0 and store the value, KTX_ENOTFOUND when the
 * key is absent, KTX_EFORMAT (message names key, wanted and found type) when
 * its type does not fit. Integer getters accept any integer type whose value
 * fits the result; gguf_get_f32 accepts float32 or float64.
 */
int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *v, struct ktx_err *err);
int gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *v, struct ktx_err *err);
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *v, struct ktx_err *err);
int gguf_get_f32(const struct gguf_file *f, const char *key, float *v, struct ktx_err *err);
int gguf_get_bool(const struct gguf_file *f, const char *key, bool *v, struct ktx_err *err);
int gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *v, struct ktx_err *err);

/* Arrays: element type and count, then element access (index checked). */
int gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_vtype *elem_type,
    uint64_t *count, struct ktx_err *err);
/* Pointer to the packed elements of a numeric array (little-endian, unaligned). */
const void *gguf_arr_data(const struct gguf_file *f, int64_t kv_index);
/* The i-th string of a string array (O(1): the reader indexes them). */
struct gguf_str gguf_arr_str(const struct gguf_file *f, int64_t kv_index, uint64_t i);

/* Scalar value access by index, for dumping: renders any value as text into
 * buf (arrays as "[type; count]" with their first few elements). */
void gguf_kv_format(const struct gguf_file *f, int64_t i, char *buf, size_t buflen);

/* Tensors. */
int64_t gguf_tensor_count(const struct gguf_file *f);
const struct gguf_tensor *gguf_tensor_at(const struct gguf_file *f, int64_t i);
const struct gguf_tensor *gguf_tensor_find(const struct gguf_file *f, const char *name); /* NULL: absent */
int64_t gguf_tensor_nelements(const struct gguf_tensor *t);

const char *gguf_vtype_name(enum gguf_vtype t);

/*
 * Writer: collect metadata and tensors, then write the file in one pass.
 * Tensor data is copied at gguf_writer_add_tensor time (or produced later by
 * a callback for multi-GB synthetic files). Values and keys are copied.
 */
struct gguf_writer; /* opaque */

struct gguf_writer *gguf_writer_new(void); /* NULL on out of memory */
void gguf_writer_free(struct gguf_writer *w);
int gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment, struct ktx_err *err);
int gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v, struct ktx_err *err);
int gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v, struct ktx_err *err);
int gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v, struct ktx_err *err);
int gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v, struct ktx_err *err);
int gguf_writer_add_bool(struct gguf_writer *w, const char *key, bool v, struct ktx_err *err);
int gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v, size_t len, struct ktx_err *err);
/* Numeric array: count elements of elem_type, packed little-endian at data. */
int gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype elem_type,
    const void *data, uint64_t count, struct ktx_err *err);
int gguf_writer_add_arr_str(struct gguf_writer *w, const char *key, const struct gguf_str *strs,
    uint64_t count, struct ktx_err *err);
/* Copies every metadata key/value of src whose key starts with prefix ("" for all). */
int gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_file *src, const char *prefix,
    struct ktx_err *err);

/* Fills dst (nbytes of tensor data) when the file is written. */
typedef int (*gguf_tensor_fill_fn)(void *ctx, void *dst, uint64_t nbytes, struct ktx_err *err);

/* Adds a tensor; data (nbytes, which must equal the size its type and shape
 * imply) is copied, unless data is NULL and fill is given. */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum ktx_type type,
    uint32_t n_dims, const int64_t *ne, const void *data, gguf_tensor_fill_fn fill, void *fill_ctx,
    struct ktx_err *err);

/* Writes version-3 GGUF to path (via a temporary file renamed into place). */
int gguf_writer_write(struct gguf_writer *w, const char *path, struct ktx_err *err);

#endif
