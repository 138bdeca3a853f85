/*
 * gguf_int.h - the GGUF reader's internals, shared by gguf.c (parsing),
 * gguf_get.c (typed access) and gguf_write.c (copying records). Not public.
 */
#ifndef KTX_ENGINE_GGUF_INT_H
#define KTX_ENGINE_GGUF_INT_H

#include <stdint.h>

#include "engine/gguf.h"

/* One metadata key/value, pointing into the image. */
struct gguf_kv_ent {
	struct gguf_str key;
	enum gguf_vtype type;
	enum gguf_vtype elem_type; /* arrays only */
	uint64_t count;            /* arrays: elements; strings: length */
	const uint8_t *val;        /* scalar bytes, string bytes or array elements */
	uint64_t rec_off, rec_len; /* the whole record, for gguf_writer_copy_kv */
	uint64_t *str_off;         /* string arrays: offset of each element's length */
};

/* A validated GGUF image: every pointer in it stays inside base[0, size). */
struct gguf_file {
	const uint8_t *base;
	uint64_t size;
	int mapped;
	uint32_t version;
	uint64_t alignment, data_offset;
	struct gguf_kv_ent *kv;
	int64_t n_kv;
	struct gguf_tensor *t;
	int64_t n_t;
	uint32_t *kv_hash, *t_hash; /* open addressing: index + 1, 0 = empty */
	uint64_t kv_hmask, t_hmask;
};

/* FNV-1a over len bytes: the name hash of both tables. */
uint64_t gguf_hash(const char *s, uint64_t len);
/* Bytes of one element of a fixed-size value type; 0 for string, array
 * and unknown types. */
uint64_t gguf_vtype_size(uint32_t t);
/* Start of the validated image. */
const void *gguf_image(const struct gguf_file *f);
/* Where key/value i (a valid index) lies in the image: key, type and value,
 * for copying. */
void gguf_kv_record(const struct gguf_file *f, int64_t i, uint64_t *off, uint64_t *len);

#endif
