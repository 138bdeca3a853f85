/*
 * gguf_write.c - writing GGUF v3 files.
 *
 * Metadata records are serialised when they are added (so copying a whole
 * vocabulary from another file is one memcpy); tensors are laid out in the
 * order they were added, each at an aligned offset. At write time the output
 * file is sized and reserved up front, the header is written, and each
 * tensor's bytes are produced straight into a mapping of the file, so a
 * multi-GB synthetic model never needs a multi-GB buffer. Reserving the space
 * first (posix_fallocate) turns a full disk into an error instead of SIGBUS.
 */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf_int.h"
#include "engine/quant.h"

/* ggml refuses tensor names of 64 bytes or more: stay loadable everywhere. */
#define WRITER_MAX_TENSOR_NAME 63

struct wkv {
	char *key;
	uint8_t *rec; /* key string, type, value: exactly as in the file */
	uint64_t len;
};

struct wtensor {
	char *name;
	enum ktx_type type;
	uint32_t n_dims;
	int64_t ne[GGUF_MAX_DIMS];
	uint64_t nbytes, offset;
	void *data; /* owned copy, or NULL when fill is used */
	gguf_tensor_fill_fn fill;
	void *fill_ctx;
};

struct gguf_writer {
	struct wkv *kv;
	int64_t n_kv, cap_kv;
	struct wtensor *t;
	int64_t n_t, cap_t;
	uint32_t alignment;
};

/* A growable byte buffer for building records and the header. */
struct buf {
	uint8_t *p;
	uint64_t len, cap;
	int oom;
};

/* Appends n bytes; on failure marks the buffer out of memory. */
static void
buf_put(struct buf *b, const void *data, uint64_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->len + n > b->cap) {
		uint64_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

/* Appends a little-endian u32. */
static void
buf_u32(struct buf *b, uint32_t v)
{
	buf_put(b, &v, 4);
}

/* Appends a little-endian u64. */
static void
buf_u64(struct buf *b, uint64_t v)
{
	buf_put(b, &v, 8);
}

/* Appends a GGUF string: u64 length, then the bytes. */
static void
buf_str(struct buf *b, const char *s, uint64_t len)
{
	buf_u64(b, len);
	buf_put(b, s, len);
}

struct gguf_writer *
gguf_writer_new(void)
{
	struct gguf_writer *w = calloc(1, sizeof(*w));

	if (w != NULL)
		w->alignment = GGUF_DEFAULT_ALIGNMENT;
	return w;
}

void
gguf_writer_free(struct gguf_writer *w)
{
	if (w == NULL)
		return;
	for (int64_t i = 0; i < w->n_kv; i++) {
		free(w->kv[i].key);
		free(w->kv[i].rec);
	}
	for (int64_t i = 0; i < w->n_t; i++) {
		free(w->t[i].name);
		free(w->t[i].data);
	}
	free(w->kv);
	free(w->t);
	free(w);
}

int
gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment, struct ktx_err *err)
{
	if (alignment == 0 || (alignment & (alignment - 1)) != 0)
		return ktx_err_set(err, KTX_EINVAL, "GGUF alignment %" PRIu32 " is not a power of two",
		    alignment);
	w->alignment = alignment;
	return 0;
}

/* Whether key (len bytes) was added already. */
static int
has_key(const struct gguf_writer *w, const char *key, size_t len)
{
	for (int64_t i = 0; i < w->n_kv; i++)
		if (strlen(w->kv[i].key) == len && memcmp(w->kv[i].key, key, len) == 0)
			return 1;
	return 0;
}

/* Takes ownership of a finished record b for key (len bytes). */
static int
add_record(struct gguf_writer *w, const char *key, size_t klen, struct buf *b, struct ktx_err *err)
{
	struct wkv *e;

	if (b->oom)
		goto oom;
	if (klen == 0 || klen > 65535 || memchr(key, '\0', klen) != NULL) {
		free(b->p);
		return ktx_err_set(err, KTX_EINVAL, "metadata key '%.*s' is empty, too long or has a NUL",
		    (int)(klen > 200 ? 200 : klen), key);
	}
	if ((klen == 17 && memcmp(key, "general.alignment", 17) == 0)) {
		free(b->p);
		return ktx_err_set(err, KTX_EINVAL,
		    "general.alignment is set with gguf_writer_set_alignment, not as a key");
	}
	if (has_key(w, key, klen)) {
		free(b->p);
		return ktx_err_set(err, KTX_EINVAL, "metadata key '%.*s' is added twice", (int)klen, key);
	}
	if (w->n_kv == w->cap_kv) {
		int64_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
		struct wkv *p = realloc(w->kv, (size_t)cap * sizeof(*p));

		if (p == NULL)
			goto oom;
		w->kv = p;
		w->cap_kv = cap;
	}
	e = &w->kv[w->n_kv];
	if ((e->key = malloc(klen + 1)) == NULL)
		goto oom;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	e->rec = b->p;
	e->len = b->len;
	w->n_kv++;
	return 0;
oom:
	free(b->p);
	return ktx_err_set(err, KTX_ENOMEM, "out of memory adding metadata key '%.*s'",
	    (int)(klen > 200 ? 200 : klen), key);
}

/* Adds a scalar of type t whose n value bytes are at v. */
static int
add_scalar(struct gguf_writer *w, const char *key, enum gguf_vtype t, const void *v, uint64_t n,
    struct ktx_err *err)
{
	struct buf b = { 0 };

	buf_str(&b, key, strlen(key));
	buf_u32(&b, t);
	buf_put(&b, v, n);
	return add_record(w, key, strlen(key), &b, err);
}

int
gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v, struct ktx_err *err)
{
	return add_scalar(w, key, GGUF_VT_UINT32, &v, 4, err);
}

int
gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v, struct ktx_err *err)
{
	return add_scalar(w, key, GGUF_VT_INT32, &v, 4, err);
}

int
gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v, struct ktx_err *err)
{
	return add_scalar(w, key, GGUF_VT_UINT64, &v, 8, err);
}

int
gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v, struct ktx_err *err)
{
	return add_scalar(w, key, GGUF_VT_FLOAT32, &v, 4, err);
}

int
gguf_writer_add_bool(struct gguf_writer *w, const char *key, bool v, struct ktx_err *err)
{
	uint8_t b = v ? 1 : 0;

	return add_scalar(w, key, GGUF_VT_BOOL, &b, 1, err);
}

int
gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v, size_t len,
    struct ktx_err *err)
{
	struct buf b = { 0 };

	buf_str(&b, key, strlen(key));
	buf_u32(&b, GGUF_VT_STRING);
	buf_str(&b, v, len);
	return add_record(w, key, strlen(key), &b, err);
}

int
gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_vtype elem_type,
    const void *data, uint64_t count, struct ktx_err *err)
{
	uint64_t esz = gguf_vtype_size(elem_type);
	struct buf b = { 0 };

	if (esz == 0)
		return ktx_err_set(err, KTX_EINVAL,
		    "metadata key '%s': gguf_writer_add_arr takes numeric elements, not %s",
		    key, gguf_vtype_name(elem_type));
	if (count > (UINT64_MAX >> 4) / esz)
		return ktx_err_set(err, KTX_ERANGE, "metadata key '%s': %" PRIu64 " elements is too many",
		    key, count);
	if (elem_type == GGUF_VT_BOOL)
		for (uint64_t i = 0; i < count; i++)
			if (((const uint8_t *)data)[i] > 1)
				return ktx_err_set(err, KTX_EINVAL,
				    "metadata key '%s': bool element %" PRIu64 " is not 0 or 1", key, i);
	buf_str(&b, key, strlen(key));
	buf_u32(&b, GGUF_VT_ARRAY);
	buf_u32(&b, elem_type);
	buf_u64(&b, count);
	buf_put(&b, data, count * esz);
	return add_record(w, key, strlen(key), &b, err);
}

int
gguf_writer_add_arr_str(struct gguf_writer *w, const char *key, const struct gguf_str *strs,
    uint64_t count, struct ktx_err *err)
{
	struct buf b = { 0 };

	buf_str(&b, key, strlen(key));
	buf_u32(&b, GGUF_VT_ARRAY);
	buf_u32(&b, GGUF_VT_STRING);
	buf_u64(&b, count);
	for (uint64_t i = 0; i < count && !b.oom; i++)
		buf_str(&b, strs[i].ptr, strs[i].len);
	return add_record(w, key, strlen(key), &b, err);
}

int
gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_file *src, const char *prefix,
    struct ktx_err *err)
{
	size_t plen = strlen(prefix);
	int rc;

	for (int64_t i = 0; i < gguf_kv_count(src); i++) {
		struct gguf_str k = gguf_kv_key(src, i);
		struct buf b = { 0 };
		uint64_t off, len;

		if (k.len < plen || memcmp(k.ptr, prefix, plen) != 0)
			continue;
		/* The source's alignment describes its own layout, not ours. */
		if (k.len == 17 && memcmp(k.ptr, "general.alignment", 17) == 0)
			continue;
		gguf_kv_record(src, i, &off, &len);
		buf_put(&b, (const uint8_t *)gguf_image(src) + off, len);
		if ((rc = add_record(w, k.ptr, k.len, &b, err)) != 0)
			return rc;
	}
	return 0;
}

int
gguf_writer_add_tensor(struct gguf_writer *w, const char *name, enum ktx_type type,
    uint32_t n_dims, const int64_t *ne, const void *data, gguf_tensor_fill_fn fill, void *fill_ctx,
    struct ktx_err *err)
{
	const struct ktx_type_traits *tr = ktx_type_traits(type);
	size_t nlen = strlen(name);
	struct wtensor *t;
	uint64_t rows = 1, rb;

	if (nlen == 0 || nlen > WRITER_MAX_TENSOR_NAME)
		return ktx_err_set(err, KTX_EINVAL, "tensor name '%s' is empty or longer than %d bytes",
		    name, WRITER_MAX_TENSOR_NAME);
	if (tr == NULL)
		return ktx_err_set(err, KTX_EINVAL, "tensor '%s': unknown type %u", name, (unsigned)type);
	if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
		return ktx_err_set(err, KTX_EINVAL, "tensor '%s': %" PRIu32 " dimensions (want 1 to %d)",
		    name, n_dims, GGUF_MAX_DIMS);
	if ((data == NULL) == (fill == NULL))
		return ktx_err_set(err, KTX_EINVAL, "tensor '%s': give either data or a fill callback",
		    name);
	for (uint32_t d = 0; d < n_dims; d++)
		if (ne[d] <= 0)
			return ktx_err_set(err, KTX_EINVAL, "tensor '%s': dimension %" PRIu32 " is %" PRId64,
			    name, d, ne[d]);
	if (ne[0] % tr->block_elems != 0)
		return ktx_err_set(err, KTX_EINVAL,
		    "tensor '%s': a row of %" PRId64 " is not a whole number of %s blocks of %" PRId64,
		    name, ne[0], tr->name, tr->block_elems);
	for (uint32_t d = 1; d < n_dims; d++) {
		if ((uint64_t)ne[d] > INT64_MAX / rows)
			return ktx_err_set(err, KTX_ERANGE, "tensor '%s' is too large", name);
		rows *= (uint64_t)ne[d];
	}
	rb = ktx_type_row_bytes(type, ne[0]);
	if (rb == 0 || rb > (UINT64_MAX >> 4) / rows || (uint64_t)ne[0] > INT64_MAX / rows)
		return ktx_err_set(err, KTX_ERANGE, "tensor '%s' is too large", name);
	for (int64_t i = 0; i < w->n_t; i++)
		if (strcmp(w->t[i].name, name) == 0)
			return ktx_err_set(err, KTX_EINVAL, "tensor '%s' is added twice", name);
	if (w->n_t == w->cap_t) {
		int64_t cap = w->cap_t ? w->cap_t * 2 : 64;
		struct wtensor *p = realloc(w->t, (size_t)cap * sizeof(*p));

		if (p == NULL)
			return ktx_err_set(err, KTX_ENOMEM, "out of memory adding tensor '%s'", name);
		w->t = p;
		w->cap_t = cap;
	}
	t = &w->t[w->n_t];
	memset(t, 0, sizeof(*t));
	t->type = type;
	t->n_dims = n_dims;
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
		t->ne[d] = d < n_dims ? ne[d] : 1;
	t->nbytes = rb * rows;
	t->fill = fill;
	t->fill_ctx = fill_ctx;
	t->name = strdup(name);
	if (t->name == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory adding tensor '%s'", name);
	if (data != NULL) {
		if ((t->data = malloc(t->nbytes ? t->nbytes : 1)) == NULL) {
			free(t->name);
			return ktx_err_set(err, KTX_ENOMEM, "out of memory copying tensor '%s'", name);
		}
		memcpy(t->data, data, t->nbytes);
	}
	w->n_t++;
	return 0;
}

/* x rounded up to a multiple of a. */
static uint64_t
pad_to(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* Serialises the header (metadata and tensor infos) and lays out the data. */
static int
build_header(struct gguf_writer *w, struct buf *h, uint64_t *data_off, uint64_t *total,
    struct ktx_err *err)
{
	uint64_t off = 0;
	uint8_t zero[64] = { 0 };
	int extra = w->alignment != GGUF_DEFAULT_ALIGNMENT;

	buf_put(h, "GGUF", 4);
	buf_u32(h, 3);
	buf_u64(h, (uint64_t)w->n_t);
	buf_u64(h, (uint64_t)w->n_kv + (uint64_t)extra);
	for (int64_t i = 0; i < w->n_kv; i++)
		buf_put(h, w->kv[i].rec, w->kv[i].len);
	if (extra) {
		buf_str(h, "general.alignment", 17);
		buf_u32(h, GGUF_VT_UINT32);
		buf_u32(h, w->alignment);
	}
	for (int64_t i = 0; i < w->n_t; i++) {
		struct wtensor *t = &w->t[i];

		t->offset = off;
		buf_str(h, t->name, strlen(t->name));
		buf_u32(h, t->n_dims);
		for (uint32_t d = 0; d < t->n_dims; d++)
			buf_u64(h, (uint64_t)t->ne[d]);
		buf_u32(h, t->type);
		buf_u64(h, t->offset);
		off = pad_to(off + t->nbytes, w->alignment);
	}
	for (uint64_t padn = pad_to(h->len, w->alignment) - h->len; padn > 0 && !h->oom; ) {
		uint64_t k = padn < sizeof(zero) ? padn : sizeof(zero);

		buf_put(h, zero, k);
		padn -= k;
	}
	if (h->oom)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory building the GGUF header");
	*data_off = h->len;
	*total = h->len + off;
	return 0;
}

/* Writes all n bytes at off. */
static int
pwrite_all(int fd, const uint8_t *p, uint64_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t k = pwrite(fd, p, n > (1u << 30) ? (1u << 30) : n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (uint64_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Produces tensor t's bytes into the file at file offset off. */
static int
write_tensor(int fd, struct wtensor *t, uint64_t off, const char *path, struct ktx_err *err)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = off / page * page, maplen = off - start + t->nbytes;
	uint8_t *map;
	int rc = 0;

	if (t->nbytes == 0)
		return 0;
	if (t->data != NULL) {
		if (pwrite_all(fd, t->data, t->nbytes, off) != 0)
			return ktx_err_set(err, KTX_EIO, "%s: cannot write tensor '%s': %s", path,
			    t->name, strerror(errno));
		return 0;
	}
	map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	if (map == MAP_FAILED)
		return ktx_err_set(err, KTX_EIO, "%s: cannot map tensor '%s' for writing: %s", path,
		    t->name, strerror(errno));
	rc = t->fill(t->fill_ctx, map + (off - start), t->nbytes, err);
	munmap(map, maplen);
	return rc;
}

int
gguf_writer_write(struct gguf_writer *w, const char *path, struct ktx_err *err)
{
	struct buf h = { 0 };
	uint64_t data_off = 0, total = 0;
	size_t plen = strlen(path);
	char *tmp;
	int fd, rc;

	if ((rc = build_header(w, &h, &data_off, &total, err)) != 0) {
		free(h.p);
		return rc;
	}
	if ((tmp = malloc(plen + 16)) == NULL) {
		free(h.p);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory");
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp.XXXXXX", 12);
	if ((fd = mkstemp(tmp)) < 0) {
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot create a temporary file: %s", path,
		    strerror(errno));
		free(tmp);
		free(h.p);
		return rc;
	}
	if ((rc = posix_fallocate(fd, 0, (off_t)total)) != 0)
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot reserve %" PRIu64 " bytes: %s", path, total,
		    strerror(rc));
	else if (pwrite_all(fd, h.p, h.len, 0) != 0)
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot write: %s", path, strerror(errno));
	for (int64_t i = 0; rc == 0 && i < w->n_t; i++)
		rc = write_tensor(fd, &w->t[i], data_off + w->t[i].offset, path, err);
	if (rc == 0 && fchmod(fd, 0644) != 0)
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot set permissions: %s", path, strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot write: %s", path, strerror(errno));
	if (rc == 0 && rename(tmp, path) != 0)
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	free(h.p);
	return rc;
}
