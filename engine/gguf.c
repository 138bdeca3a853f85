/*
 * gguf.c - reading and validating GGUF v2/v3 files, mapped or read whole into memory.
 *
 * The whole header (metadata, tensor infos) is parsed once at open time with
 * a bounds-checked cursor; afterwards every accessor only reads what was
 * validated. Nothing is allocated in proportion to a count the file merely
 * claims: arrays grow as records are actually parsed, and string arrays are
 * walked once before their index is allocated, so a hostile count fails on
 * the bytes that are missing instead of on a giant malloc.
 *
 * Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x (string key, u32 type, value),
 *   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset),
 *   padding to general.alignment, tensor data.
 * Strings are u64 length + bytes. Values are little-endian; this reader
 * assumes a little-endian host.
 */
#include "engine/gguf.h"

#include <assert.h>
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

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the GGUF reader assumes a little-endian host");

/* Longest tensor name accepted (ggml itself stops at 63 bytes). */
#define GGUF_MAX_TENSOR_NAME 255

/* A bounds-checked reading position in the image. */
struct cursor {
	const uint8_t *base;
	uint64_t size, pos;
	const char *what; /* file name for messages */
};

/* Bytes between the cursor and the end of the image. */
static uint64_t
cur_left(const struct cursor *c)
{
	return c->size - c->pos;
}

/* Fails, naming item, unless n more bytes are there. */
static int
cur_need(struct cursor *c, uint64_t n, const char *item, struct ktx_err *err)
{
	if (n > cur_left(c))
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: truncated: %s needs %" PRIu64 " bytes at offset %" PRIu64
		    " but the file has %" PRIu64 " left", c->what, item, n, c->pos, cur_left(c));
	return 0;
}

/* Reads a little-endian u32 (item names it in the message). */
static int
cur_u32(struct cursor *c, uint32_t *v, const char *item, struct ktx_err *err)
{
	int rc;

	if ((rc = cur_need(c, 4, item, err)) != 0)
		return rc;
	memcpy(v, c->base + c->pos, 4);
	c->pos += 4;
	return 0;
}

/* Reads a little-endian u64 (item names it in the message). */
static int
cur_u64(struct cursor *c, uint64_t *v, const char *item, struct ktx_err *err)
{
	int rc;

	if ((rc = cur_need(c, 8, item, err)) != 0)
		return rc;
	memcpy(v, c->base + c->pos, 8);
	c->pos += 8;
	return 0;
}

/* Reads a length-prefixed string; its bytes stay in the image. */
static int
cur_str(struct cursor *c, struct gguf_str *s, const char *item, struct ktx_err *err)
{
	uint64_t len;
	int rc;

	if ((rc = cur_u64(c, &len, item, err)) != 0)
		return rc;
	if (len > cur_left(c))
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: %s at offset %" PRIu64 " claims %" PRIu64
		    " bytes but only %" PRIu64 " are left in the file",
		    c->what, item, c->pos - 8, len, cur_left(c));
	s->ptr = (const char *)c->base + c->pos;
	s->len = len;
	c->pos += len;
	return 0;
}

uint64_t
gguf_vtype_size(uint32_t t)
{
	switch (t) {
	case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
	case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
	case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
	case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
	}
	return 0;
}

const char *
gguf_vtype_name(enum gguf_vtype t)
{
	switch (t) {
	case GGUF_VT_UINT8: return "u8";
	case GGUF_VT_INT8: return "i8";
	case GGUF_VT_UINT16: return "u16";
	case GGUF_VT_INT16: return "i16";
	case GGUF_VT_UINT32: return "u32";
	case GGUF_VT_INT32: return "i32";
	case GGUF_VT_FLOAT32: return "f32";
	case GGUF_VT_BOOL: return "bool";
	case GGUF_VT_STRING: return "string";
	case GGUF_VT_ARRAY: return "array";
	case GGUF_VT_UINT64: return "u64";
	case GGUF_VT_INT64: return "i64";
	case GGUF_VT_FLOAT64: return "f64";
	}
	return "unknown";
}

uint64_t
gguf_hash(const char *s, uint64_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint64_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Grows *arr (of *cap elements of size sz) so that it holds n + 1. */
static int
grow(void **arr, int64_t *cap, int64_t n, size_t sz)
{
	int64_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, (size_t)ncap * sz);
	if (p == NULL)
		return KTX_ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Checks the elements of an array value and, for strings, indexes them. */
static int
parse_array(struct cursor *c, struct gguf_kv_ent *e, struct ktx_err *err)
{
	uint32_t et;
	uint64_t n, esz, start;
	int rc;

	if ((rc = cur_u32(c, &et, "array element type", err)) != 0 ||
	    (rc = cur_u64(c, &n, "array length", err)) != 0)
		return rc;
	e->elem_type = (enum gguf_vtype)et;
	e->count = n;
	e->val = c->base + c->pos;
	if (et == GGUF_VT_ARRAY)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: key '%.*s' is an array of arrays, which ktx does not read",
		    c->what, (int)e->key.len, e->key.ptr);
	if (et == GGUF_VT_STRING) {
		/* Walk once without allocating: every string costs 8 bytes at least. */
		if (n > cur_left(c) / 8)
			return ktx_err_set(err, KTX_EFORMAT,
			    "%s: key '%.*s' claims %" PRIu64 " strings but only %" PRIu64
			    " bytes are left in the file", c->what, (int)e->key.len, e->key.ptr,
			    n, cur_left(c));
		start = c->pos;
		for (uint64_t i = 0; i < n; i++) {
			struct gguf_str s;

			if ((rc = cur_str(c, &s, "string array element", err)) != 0)
				return rc;
		}
		e->str_off = malloc(n ? n * sizeof(uint64_t) : 1);
		if (e->str_off == NULL)
			return ktx_err_set(err, KTX_ENOMEM, "%s: out of memory indexing key '%.*s'",
			    c->what, (int)e->key.len, e->key.ptr);
		c->pos = start;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t len;

			e->str_off[i] = c->pos;
			memcpy(&len, c->base + c->pos, 8);
			c->pos += 8 + len;
		}
		return 0;
	}
	esz = gguf_vtype_size(et);
	if (esz == 0)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: key '%.*s' is an array of unknown value type %" PRIu32,
		    c->what, (int)e->key.len, e->key.ptr, et);
	if (n > cur_left(c) / esz)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: key '%.*s' claims %" PRIu64 " elements of %s but only %" PRIu64
		    " bytes are left in the file", c->what, (int)e->key.len, e->key.ptr,
		    n, gguf_vtype_name((enum gguf_vtype)et), cur_left(c));
	if (et == GGUF_VT_BOOL)
		for (uint64_t i = 0; i < n; i++)
			if (e->val[i] > 1)
				return ktx_err_set(err, KTX_EFORMAT,
				    "%s: key '%.*s': bool element %" PRIu64 " has value %u",
				    c->what, (int)e->key.len, e->key.ptr, i, e->val[i]);
	c->pos += n * esz;
	return 0;
}

/* Parses one key/value record at the cursor into e. */
static int
parse_kv(struct cursor *c, int64_t idx, struct gguf_kv_ent *e, struct ktx_err *err)
{
	uint32_t t;
	uint64_t sz;
	struct gguf_str s;
	int rc;

	memset(e, 0, sizeof(*e));
	e->rec_off = c->pos;
	if ((rc = cur_str(c, &e->key, "metadata key", err)) != 0)
		return rc;
	if (e->key.len == 0 || e->key.len > 65535 || memchr(e->key.ptr, '\0', e->key.len))
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: metadata key %" PRId64 " at offset %" PRIu64
		    " is empty, longer than 65535 bytes or contains a NUL byte",
		    c->what, idx, e->rec_off);
	if ((rc = cur_u32(c, &t, "metadata value type", err)) != 0)
		return rc;
	e->type = (enum gguf_vtype)t;
	if (t == GGUF_VT_STRING) {
		if ((rc = cur_str(c, &s, "string value", err)) != 0)
			return rc;
		e->val = (const uint8_t *)s.ptr;
		e->count = s.len;
	} else if (t == GGUF_VT_ARRAY) {
		if ((rc = parse_array(c, e, err)) != 0)
			return rc;
	} else {
		sz = gguf_vtype_size(t);
		if (sz == 0)
			return ktx_err_set(err, KTX_EFORMAT,
			    "%s: key '%.*s' has unknown value type %" PRIu32,
			    c->what, (int)e->key.len, e->key.ptr, t);
		if ((rc = cur_need(c, sz, "metadata value", err)) != 0)
			return rc;
		e->val = c->base + c->pos;
		if (t == GGUF_VT_BOOL && e->val[0] > 1)
			return ktx_err_set(err, KTX_EFORMAT, "%s: bool key '%.*s' has value %u",
			    c->what, (int)e->key.len, e->key.ptr, e->val[0]);
		c->pos += sz;
	}
	e->rec_len = c->pos - e->rec_off;
	return 0;
}

/* Builds an open-addressing table of n names; fails on a duplicate. */
static int
build_hash(uint32_t **tab, uint64_t *mask, int64_t n, const struct gguf_file *f, int tensors,
    int64_t *dup)
{
	uint64_t cap = 16;

	while (cap < (uint64_t)n * 2)
		cap *= 2;
	*tab = calloc(cap, sizeof(uint32_t));
	if (*tab == NULL)
		return KTX_ENOMEM;
	*mask = cap - 1;
	for (int64_t i = 0; i < n; i++) {
		const char *s = tensors ? f->t[i].name : f->kv[i].key.ptr;
		uint64_t len = tensors ? strlen(s) : f->kv[i].key.len;
		uint64_t h = gguf_hash(s, len) & *mask;

		while ((*tab)[h] != 0) {
			int64_t j = (int64_t)(*tab)[h] - 1;
			const char *o = tensors ? f->t[j].name : f->kv[j].key.ptr;
			uint64_t olen = tensors ? strlen(o) : f->kv[j].key.len;

			if (olen == len && memcmp(o, s, len) == 0) {
				*dup = i;
				return KTX_EFORMAT;
			}
			h = (h + 1) & *mask;
		}
		(*tab)[h] = (uint32_t)(i + 1);
	}
	return 0;
}

/* Parses one tensor info and checks its shape and type. */
static int
parse_tensor(struct cursor *c, int64_t idx, struct gguf_tensor *t, struct ktx_err *err)
{
	const struct ktx_type_traits *tr;
	struct gguf_str name;
	uint32_t nd, type;
	uint64_t rows = 1, rb;
	char *copy;
	int rc;

	if ((rc = cur_str(c, &name, "tensor name", err)) != 0)
		return rc;
	if (name.len == 0 || name.len > GGUF_MAX_TENSOR_NAME || memchr(name.ptr, '\0', name.len))
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: tensor %" PRId64 " has a name that is empty, longer than %d bytes"
		    " or contains a NUL byte", c->what, idx, GGUF_MAX_TENSOR_NAME);
	copy = malloc(name.len + 1);
	if (copy == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "%s: out of memory", c->what);
	memcpy(copy, name.ptr, name.len);
	copy[name.len] = '\0';
	t->name = copy;
	if ((rc = cur_u32(c, &nd, "tensor dimension count", err)) != 0)
		return rc;
	if (nd == 0 || nd > GGUF_MAX_DIMS)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: tensor '%s' has %" PRIu32 " dimensions (want 1 to %d)",
		    c->what, t->name, nd, GGUF_MAX_DIMS);
	t->n_dims = nd;
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
		uint64_t v = 1;

		if (d < nd && (rc = cur_u64(c, &v, "tensor dimension", err)) != 0)
			return rc;
		if (v == 0 || v > INT64_MAX)
			return ktx_err_set(err, KTX_EFORMAT,
			    "%s: tensor '%s' dimension %" PRIu32 " is %" PRId64 " (want at least 1)",
			    c->what, t->name, d, (int64_t)v);
		t->ne[d] = (int64_t)v;
	}
	if ((rc = cur_u32(c, &type, "tensor type", err)) != 0 ||
	    (rc = cur_u64(c, &t->offset, "tensor offset", err)) != 0)
		return rc;
	tr = ktx_type_traits(type);
	if (tr == NULL)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: tensor '%s' has unknown type %" PRIu32, c->what, t->name, type);
	t->type = (enum ktx_type)type;
	if (t->ne[0] % tr->block_elems != 0)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: tensor '%s': a row of %" PRId64 " elements is not a whole number of"
		    " %s blocks of %" PRId64, c->what, t->name, t->ne[0], tr->name, tr->block_elems);
	for (int d = 1; d < GGUF_MAX_DIMS; d++) {
		if ((uint64_t)t->ne[d] > INT64_MAX / rows)
			goto overflow;
		rows *= (uint64_t)t->ne[d];
	}
	if ((uint64_t)t->ne[0] > INT64_MAX / rows)
		goto overflow;
	rb = ktx_type_row_bytes(type, t->ne[0]);
	if (rb == 0 || rb > UINT64_MAX / rows)
		goto overflow;
	t->nbytes = rb * rows;
	return 0;
overflow:
	return ktx_err_set(err, KTX_EFORMAT,
	    "%s: tensor '%s' has %" PRIu32 " dimensions whose sizes overflow 64 bits",
	    c->what, t->name, t->n_dims);
}

struct span {
	uint64_t off, end;
	int64_t idx;
};

/* Orders spans by their start, for qsort. */
static int
span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Checks that every tensor's data is aligned, inside the file, and alone. */
static int
check_layout(struct gguf_file *f, const char *what, struct ktx_err *err)
{
	uint64_t room = f->size - f->data_offset;
	struct span *sp;
	int rc = 0;

	for (int64_t i = 0; i < f->n_t; i++) {
		struct gguf_tensor *t = &f->t[i];

		if (t->offset % f->alignment != 0)
			return ktx_err_set(err, KTX_EFORMAT,
			    "%s: tensor '%s' data offset %" PRIu64 " is not a multiple of the"
			    " alignment %" PRIu64, what, t->name, t->offset, f->alignment);
		if (t->offset > room || t->nbytes > room - t->offset)
			return ktx_err_set(err, KTX_EFORMAT,
			    "%s: tensor '%s' (%" PRIu64 " bytes at data offset %" PRIu64
			    ") ends past the end of the file (%" PRIu64 " bytes of data):"
			    " the file is truncated or corrupt",
			    what, t->name, t->nbytes, t->offset, room);
		t->data = f->base + f->data_offset + t->offset;
	}
	if (f->n_t < 2)
		return 0;
	sp = malloc((size_t)f->n_t * sizeof(*sp));
	if (sp == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "%s: out of memory", what);
	for (int64_t i = 0; i < f->n_t; i++) {
		sp[i].off = f->t[i].offset;
		sp[i].end = f->t[i].offset + f->t[i].nbytes;
		sp[i].idx = i;
	}
	qsort(sp, (size_t)f->n_t, sizeof(*sp), span_cmp);
	for (int64_t i = 1; i < f->n_t; i++)
		if (sp[i].off < sp[i - 1].end) {
			rc = ktx_err_set(err, KTX_EFORMAT,
			    "%s: tensors '%s' and '%s' overlap in the file",
			    what, f->t[sp[i - 1].idx].name, f->t[sp[i].idx].name);
			break;
		}
	free(sp);
	return rc;
}

/* Reads general.alignment, if present, and checks it. */
static int
read_alignment(struct gguf_file *f, const char *what, struct ktx_err *err)
{
	int64_t i = gguf_kv_find(f, "general.alignment");
	uint32_t a;

	f->alignment = GGUF_DEFAULT_ALIGNMENT;
	if (i < 0)
		return 0;
	if (f->kv[i].type != GGUF_VT_UINT32)
		return ktx_err_set(err, KTX_EFORMAT, "%s: general.alignment is a %s, want u32",
		    what, gguf_vtype_name(f->kv[i].type));
	memcpy(&a, f->kv[i].val, 4);
	if (a == 0 || (a & (a - 1)) != 0)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: general.alignment %" PRIu32 " is not a power of two", what, a);
	f->alignment = a;
	return 0;
}

/* Parses and validates the whole image. */
static int
parse(struct gguf_file *f, const char *what, struct ktx_err *err)
{
	struct cursor c = { f->base, f->size, 0, what };
	uint64_t n_t, n_kv, pad;
	int64_t cap = 0, dup = -1;
	int rc;

	if (f->size < 4 || memcmp(f->base, "GGUF", 4) != 0)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: not a GGUF file (the first 4 bytes are not \"GGUF\")", what);
	c.pos = 4;
	if ((rc = cur_u32(&c, &f->version, "the version", err)) != 0)
		return rc;
	if (f->version == 1)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: GGUF version 1 is obsolete and not supported; convert the model again", what);
	if (f->version != 2 && f->version != 3) {
		if (__builtin_bswap32(f->version) == 2 || __builtin_bswap32(f->version) == 3)
			return ktx_err_set(err, KTX_EFORMAT,
			    "%s: big-endian GGUF is not supported", what);
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: GGUF version %" PRIu32 " is not supported (want 2 or 3)", what, f->version);
	}
	if ((rc = cur_u64(&c, &n_t, "the tensor count", err)) != 0 ||
	    (rc = cur_u64(&c, &n_kv, "the metadata count", err)) != 0)
		return rc;
	/* A key/value takes at least 13 bytes and a tensor info at least 29. */
	if (n_kv > cur_left(&c) / 13 || n_kv > UINT32_MAX - 1)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: the file claims %" PRIu64 " metadata entries, more than its %" PRIu64
		    " bytes can hold", what, n_kv, f->size);
	if (n_t > cur_left(&c) / 29 || n_t > UINT32_MAX - 1)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: the file claims %" PRIu64 " tensors, more than its %" PRIu64
		    " bytes can hold", what, n_t, f->size);
	for (uint64_t i = 0; i < n_kv; i++) {
		if (grow((void **)&f->kv, &cap, f->n_kv, sizeof(*f->kv)) != 0)
			return ktx_err_set(err, KTX_ENOMEM, "%s: out of memory", what);
		rc = parse_kv(&c, (int64_t)i, &f->kv[f->n_kv], err);
		f->n_kv++; /* so gguf_close frees a partial string index */
		if (rc != 0)
			return rc;
	}
	rc = build_hash(&f->kv_hash, &f->kv_hmask, f->n_kv, f, 0, &dup);
	if (rc == KTX_ENOMEM)
		return ktx_err_set(err, rc, "%s: out of memory", what);
	if (rc != 0)
		return ktx_err_set(err, rc, "%s: metadata key '%.*s' appears twice", what,
		    (int)f->kv[dup].key.len, f->kv[dup].key.ptr);
	if ((rc = read_alignment(f, what, err)) != 0)
		return rc;
	cap = 0;
	for (uint64_t i = 0; i < n_t; i++) {
		if (grow((void **)&f->t, &cap, f->n_t, sizeof(*f->t)) != 0)
			return ktx_err_set(err, KTX_ENOMEM, "%s: out of memory", what);
		memset(&f->t[f->n_t], 0, sizeof(*f->t));
		rc = parse_tensor(&c, (int64_t)i, &f->t[f->n_t], err);
		f->n_t++;
		if (rc != 0)
			return rc;
	}
	rc = build_hash(&f->t_hash, &f->t_hmask, f->n_t, f, 1, &dup);
	if (rc == KTX_ENOMEM)
		return ktx_err_set(err, rc, "%s: out of memory", what);
	if (rc != 0)
		return ktx_err_set(err, rc, "%s: tensor name '%s' appears twice", what, f->t[dup].name);
	pad = (f->alignment - c.pos % f->alignment) % f->alignment;
	f->data_offset = c.pos + pad;
	if (f->n_t == 0)
		return 0;
	if (pad > cur_left(&c))
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s: truncated: the file ends before its tensor data starts (offset %" PRIu64 ")",
		    what, f->data_offset);
	return check_layout(f, what, err);
}

int
gguf_open_memory(const void *data, size_t size, struct gguf_file **out, struct ktx_err *err)
{
	struct gguf_file *f;
	int rc;

	*out = NULL;
	if (data == NULL && size != 0)
		return ktx_err_set(err, KTX_EINVAL, "gguf_open_memory: NULL data");
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "GGUF image: out of memory");
	f->base = data;
	f->size = size;
	if ((rc = parse(f, "GGUF image", err)) != 0) {
		gguf_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* Opens path as a regular file of at least a header's size: *fd and *size
 * on success. */
static int
open_regular(const char *path, int *fd, uint64_t *size, struct ktx_err *err)
{
	struct stat st;
	int rc;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return ktx_err_set(err, KTX_EIO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(*fd, &st) != 0)
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot stat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = ktx_err_set(err, KTX_EIO, "%s: not a regular file", path);
	else if (st.st_size < 24)
		rc = ktx_err_set(err, KTX_EFORMAT,
		    "%s: %lld bytes is too short for a GGUF header (24 bytes)", path,
		    (long long)st.st_size);
	else if ((uint64_t)st.st_size > SIZE_MAX)
		rc = ktx_err_set(err, KTX_ERANGE, "%s: too large to address", path);
	else {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	close(*fd);
	*fd = -1;
	return rc;
}

/* Bytes one read() call asks for (it returns at most about 2 GiB), and
 * the piece each thread takes at a time. */
#define READ_PIECE ((uint64_t)1 << 28)

/* Reads bytes [off, end) of fd into dst + off. */
static int
read_range(int fd, uint8_t *dst, uint64_t off, uint64_t end, const char *path,
    struct ktx_err *err)
{
	while (off < end) {
		ssize_t got = pread(fd, dst + off, (size_t)(end - off), (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return ktx_err_set(err, KTX_EIO, "%s: read failed at byte %" PRIu64 ": %s",
			    path, off, strerror(errno));
		if (got == 0)
			return ktx_err_set(err, KTX_EIO,
			    "%s: shrank while being read (%" PRIu64 " of %" PRIu64 " bytes)", path,
			    off, end);
		off += (uint64_t)got;
	}
	return 0;
}

/*
 * Reads size bytes of fd into dst, pieces spread over OpenMP's threads:
 * filling fresh anonymous memory is mostly the kernel zeroing its pages
 * and copying into them, work of the reading thread, so more threads load
 * a large model faster. The first error is kept.
 */
static int
read_whole(int fd, uint8_t *dst, uint64_t size, const char *path, struct ktx_err *err)
{
	int64_t npieces = (int64_t)((size + READ_PIECE - 1) / READ_PIECE);
	int rc = 0;

#pragma omp parallel for schedule(dynamic, 1) if (npieces > 1)
	for (int64_t k = 0; k < npieces; k++) {
		uint64_t off = (uint64_t)k * READ_PIECE;
		uint64_t end = size - off < READ_PIECE ? size : off + READ_PIECE;
		struct ktx_err e;
		int rc2;

		if ((rc2 = read_range(fd, dst, off, end, path, &e)) != 0) {
#pragma omp critical(ktx_read_err)
			{
				if (rc == 0) {
					rc = rc2;
					if (err != NULL)
						*err = e;
				}
			}
		}
	}
	return rc;
}

/* Wraps a validated image of size bytes at base (unmapped at close). */
static int
adopt_image(const uint8_t *base, uint64_t size, const char *path, struct gguf_file **out,
    struct ktx_err *err)
{
	struct gguf_file *f = calloc(1, sizeof(*f));
	int rc;

	if (f == NULL) {
		munmap((void *)base, (size_t)size);
		return ktx_err_set(err, KTX_ENOMEM, "%s: out of memory", path);
	}
	f->base = base;
	f->size = size;
	f->mapped = 1;
	if ((rc = parse(f, path, err)) != 0) {
		gguf_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

int
gguf_open(const char *path, struct gguf_file **out, struct ktx_err *err)
{
	uint64_t size;
	void *map;
	int fd, rc;

	*out = NULL;
	if ((rc = open_regular(path, &fd, &size, err)) != 0)
		return rc;
	map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return ktx_err_set(err, KTX_EIO, "%s: cannot map: %s", path, strerror(errno));
	return adopt_image(map, size, path, out, err);
}

int
gguf_load(const char *path, struct gguf_file **out, struct ktx_err *err)
{
	uint64_t size;
	void *mem;
	int fd, rc;

	*out = NULL;
	if ((rc = open_regular(path, &fd, &size, err)) != 0)
		return rc;
	mem = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	    0);
	if (mem == MAP_FAILED) {
		close(fd);
		return ktx_err_set(err, KTX_ENOMEM, "%s: no memory for its %" PRIu64 " bytes: %s",
		    path, size, strerror(errno));
	}
	/* Huge pages: the kernels stream weights in runs far longer than 4 KiB,
	 * and 4 KiB pages cost a TLB miss and a restart of the hardware
	 * prefetcher at every page (reads of a mapped file ran at about half
	 * the speed of the same bytes in huge pages here). Only advice: the
	 * weights work without it. */
	(void)madvise(mem, (size_t)size, MADV_HUGEPAGE);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = read_whole(fd, mem, size, path, err);
	close(fd);
	if (rc != 0) {
		munmap(mem, (size_t)size);
		return rc;
	}
	return adopt_image(mem, size, path, out, err);
}

void
gguf_close(struct gguf_file *f)
{
	if (f == NULL)
		return;
	for (int64_t i = 0; i < f->n_kv; i++)
		free(f->kv[i].str_off);
	for (int64_t i = 0; i < f->n_t; i++)
		free((char *)f->t[i].name);
	free(f->kv);
	free(f->t);
	free(f->kv_hash);
	free(f->t_hash);
	if (f->mapped)
		munmap((void *)f->base, f->size);
	free(f);
}

uint32_t
gguf_version(const struct gguf_file *f)
{
	return f->version;
}

uint64_t
gguf_alignment(const struct gguf_file *f)
{
	return f->alignment;
}

uint64_t
gguf_data_offset(const struct gguf_file *f)
{
	return f->data_offset;
}

uint64_t
gguf_file_size(const struct gguf_file *f)
{
	return f->size;
}

const void *
gguf_image(const struct gguf_file *f)
{
	return f->base;
}

int64_t
gguf_kv_count(const struct gguf_file *f)
{
	return f->n_kv;
}

int64_t
gguf_kv_find(const struct gguf_file *f, const char *key)
{
	uint64_t len, h;

	if (f->kv_hash == NULL)
		return -1;
	len = strlen(key);
	for (h = gguf_hash(key, len) & f->kv_hmask; f->kv_hash[h] != 0; h = (h + 1) & f->kv_hmask) {
		const struct gguf_kv_ent *e = &f->kv[f->kv_hash[h] - 1];

		if (e->key.len == len && memcmp(e->key.ptr, key, len) == 0)
			return f->kv_hash[h] - 1;
	}
	return -1;
}

struct gguf_str
gguf_kv_key(const struct gguf_file *f, int64_t i)
{
	struct gguf_str none = { NULL, 0 };

	return i >= 0 && i < f->n_kv ? f->kv[i].key : none;
}

enum gguf_vtype
gguf_kv_type(const struct gguf_file *f, int64_t i)
{
	return i >= 0 && i < f->n_kv ? f->kv[i].type : (enum gguf_vtype)-1;
}

void
gguf_kv_record(const struct gguf_file *f, int64_t i, uint64_t *off, uint64_t *len)
{
	assert(i >= 0 && i < f->n_kv);
	*off = f->kv[i].rec_off;
	*len = f->kv[i].rec_len;
}

int64_t
gguf_tensor_count(const struct gguf_file *f)
{
	return f->n_t;
}

const struct gguf_tensor *
gguf_tensor_at(const struct gguf_file *f, int64_t i)
{
	return i >= 0 && i < f->n_t ? &f->t[i] : NULL;
}

const struct gguf_tensor *
gguf_tensor_find(const struct gguf_file *f, const char *name)
{
	uint64_t len, h;

	if (f->t_hash == NULL)
		return NULL;
	len = strlen(name);
	for (h = gguf_hash(name, len) & f->t_hmask; f->t_hash[h] != 0; h = (h + 1) & f->t_hmask) {
		const struct gguf_tensor *t = &f->t[f->t_hash[h] - 1];

		if (strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

int64_t
gguf_tensor_nelements(const struct gguf_tensor *t)
{
	return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}
