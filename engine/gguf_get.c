/*
 * gguf_get.c - typed access to validated GGUF metadata, and rendering it.
 *
 * Everything here reads what gguf.c checked at open time, so it only needs
 * to check types and index ranges.
 */
#include "engine/gguf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/gguf_int.h"

/* Finds key and returns its entry, or sets KTX_ENOTFOUND. */
static const struct gguf_kv_ent *
find(const struct gguf_file *f, const char *key, int *rc, struct ktx_err *err)
{
	int64_t i = gguf_kv_find(f, key);

	if (i < 0) {
		*rc = ktx_err_set(err, KTX_ENOTFOUND, "metadata key '%s' is absent", key);
		return NULL;
	}
	*rc = 0;
	return &f->kv[i];
}

/* The type-mismatch error: names the key, the found and the wanted type. */
static int
wrong_type(const struct gguf_kv_ent *e, const char *key, const char *want, struct ktx_err *err)
{
	return ktx_err_set(err, KTX_EFORMAT, "metadata key '%s' is a %s, want %s",
	    key, gguf_vtype_name(e->type), want);
}

/* Reads any integer value as a signed/unsigned pair; false for non-integers. */
static int
int_value(const struct gguf_kv_ent *e, int64_t *sv, uint64_t *uv, int *is_signed)
{
	union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
		uint64_t u64; int64_t i64; } x;

	switch (e->type) {
	case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
	case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
		break;
	default:
		return 0;
	}
	memcpy(&x, e->val, gguf_vtype_size(e->type));
	*is_signed = 0;
	switch (e->type) {
	case GGUF_VT_UINT8: *uv = x.u8; break;
	case GGUF_VT_UINT16: *uv = x.u16; break;
	case GGUF_VT_UINT32: *uv = x.u32; break;
	case GGUF_VT_UINT64: *uv = x.u64; break;
	case GGUF_VT_INT8: *is_signed = 1; *sv = x.i8; break;
	case GGUF_VT_INT16: *is_signed = 1; *sv = x.i16; break;
	case GGUF_VT_INT32: *is_signed = 1; *sv = x.i32; break;
	default: *is_signed = 1; *sv = x.i64; break;
	}
	return 1;
}

/* Fetches an integer key that must lie in [lo, hi]. */
static int
get_int(const struct gguf_file *f, const char *key, int64_t lo, uint64_t hi, int64_t *sout,
    uint64_t *uout, const char *want, struct ktx_err *err)
{
	const struct gguf_kv_ent *e;
	int64_t sv = 0;
	uint64_t uv = 0;
	int rc, sgn;

	if ((e = find(f, key, &rc, err)) == NULL)
		return rc;
	if (!int_value(e, &sv, &uv, &sgn))
		return wrong_type(e, key, want, err);
	if (sgn && sv >= 0) {
		uv = (uint64_t)sv;
		sgn = 0;
	}
	if (sgn ? sv < lo : uv > hi)
		return ktx_err_set(err, KTX_EFORMAT, "metadata key '%s' = %s%" PRIu64
		    " does not fit a %s", key, sgn ? "-" : "", sgn ? -(uint64_t)sv : uv, want);
	if (sout)
		*sout = sgn ? sv : (int64_t)uv;
	if (uout)
		*uout = uv;
	return 0;
}

int
gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *v, struct ktx_err *err)
{
	uint64_t u;
	int rc = get_int(f, key, 0, UINT32_MAX, NULL, &u, "u32", err);

	if (rc == 0)
		*v = (uint32_t)u;
	return rc;
}

int
gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *v, struct ktx_err *err)
{
	int64_t s;
	int rc = get_int(f, key, INT32_MIN, INT32_MAX, &s, NULL, "i32", err);

	if (rc == 0)
		*v = (int32_t)s;
	return rc;
}

int
gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *v, struct ktx_err *err)
{
	return get_int(f, key, 0, UINT64_MAX, NULL, v, "u64", err);
}

int
gguf_get_f32(const struct gguf_file *f, const char *key, float *v, struct ktx_err *err)
{
	const struct gguf_kv_ent *e;
	double d;
	int rc;

	if ((e = find(f, key, &rc, err)) == NULL)
		return rc;
	if (e->type == GGUF_VT_FLOAT32) {
		memcpy(v, e->val, 4);
		return 0;
	}
	if (e->type == GGUF_VT_FLOAT64) {
		memcpy(&d, e->val, 8);
		*v = (float)d;
		return 0;
	}
	return wrong_type(e, key, "f32", err);
}

int
gguf_get_bool(const struct gguf_file *f, const char *key, bool *v, struct ktx_err *err)
{
	const struct gguf_kv_ent *e;
	int rc;

	if ((e = find(f, key, &rc, err)) == NULL)
		return rc;
	if (e->type != GGUF_VT_BOOL)
		return wrong_type(e, key, "bool", err);
	*v = e->val[0] != 0;
	return 0;
}

int
gguf_get_str(const struct gguf_file *f, const char *key, struct gguf_str *v, struct ktx_err *err)
{
	const struct gguf_kv_ent *e;
	int rc;

	if ((e = find(f, key, &rc, err)) == NULL)
		return rc;
	if (e->type != GGUF_VT_STRING)
		return wrong_type(e, key, "string", err);
	v->ptr = (const char *)e->val;
	v->len = e->count;
	return 0;
}

int
gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_vtype *elem_type,
    uint64_t *count, struct ktx_err *err)
{
	const struct gguf_kv_ent *e;
	int rc;

	if ((e = find(f, key, &rc, err)) == NULL)
		return rc;
	if (e->type != GGUF_VT_ARRAY)
		return wrong_type(e, key, "array", err);
	*elem_type = e->elem_type;
	*count = e->count;
	return 0;
}

const void *
gguf_arr_data(const struct gguf_file *f, int64_t kv_index)
{
	const struct gguf_kv_ent *e;

	if (kv_index < 0 || kv_index >= f->n_kv)
		return NULL;
	e = &f->kv[kv_index];
	if (e->type != GGUF_VT_ARRAY || e->elem_type == GGUF_VT_STRING)
		return NULL;
	return e->val;
}

struct gguf_str
gguf_arr_str(const struct gguf_file *f, int64_t kv_index, uint64_t i)
{
	struct gguf_str s = { NULL, 0 };
	const struct gguf_kv_ent *e;

	if (kv_index < 0 || kv_index >= f->n_kv)
		return s;
	e = &f->kv[kv_index];
	if (e->type != GGUF_VT_ARRAY || e->elem_type != GGUF_VT_STRING || i >= e->count)
		return s;
	memcpy(&s.len, f->base + e->str_off[i], 8);
	s.ptr = (const char *)f->base + e->str_off[i] + 8;
	return s;
}

/* Appends text to buf at *at, truncating; keeps buf NUL-terminated. */
__attribute__((format(printf, 4, 5)))
static void
put(char *buf, size_t buflen, size_t *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*at >= buflen)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *at, buflen - *at, fmt, ap);
	va_end(ap);
	if (n > 0)
		*at += (size_t)n;
}

/* Renders a string with control and non-ASCII bytes escaped, cut at max. */
static void
put_str(char *buf, size_t buflen, size_t *at, const char *s, uint64_t len, uint64_t max)
{
	put(buf, buflen, at, "\"");
	for (uint64_t i = 0; i < len && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			put(buf, buflen, at, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			put(buf, buflen, at, "\\x%02x", ch);
		else
			put(buf, buflen, at, "%c", ch);
	}
	put(buf, buflen, at, len > max ? "\"..." : "\"");
}

/* Renders one scalar element of type t at p. */
static void
put_scalar(char *buf, size_t buflen, size_t *at, enum gguf_vtype t, const uint8_t *p)
{
	union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
		uint64_t u64; int64_t i64; float f32; double f64; } x;

	memcpy(&x, p, gguf_vtype_size(t));
	switch (t) {
	case GGUF_VT_UINT8: put(buf, buflen, at, "%u", x.u8); break;
	case GGUF_VT_INT8: put(buf, buflen, at, "%d", x.i8); break;
	case GGUF_VT_UINT16: put(buf, buflen, at, "%u", x.u16); break;
	case GGUF_VT_INT16: put(buf, buflen, at, "%d", x.i16); break;
	case GGUF_VT_UINT32: put(buf, buflen, at, "%" PRIu32, x.u32); break;
	case GGUF_VT_INT32: put(buf, buflen, at, "%" PRId32, x.i32); break;
	case GGUF_VT_UINT64: put(buf, buflen, at, "%" PRIu64, x.u64); break;
	case GGUF_VT_INT64: put(buf, buflen, at, "%" PRId64, x.i64); break;
	case GGUF_VT_FLOAT32: put(buf, buflen, at, "%.9g", (double)x.f32); break;
	case GGUF_VT_FLOAT64: put(buf, buflen, at, "%.17g", x.f64); break;
	case GGUF_VT_BOOL: put(buf, buflen, at, "%s", x.u8 ? "true" : "false"); break;
	default: break;
	}
}

void
gguf_kv_format(const struct gguf_file *f, int64_t i, char *buf, size_t buflen)
{
	const struct gguf_kv_ent *e;
	size_t at = 0;
	uint64_t n;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	if (i < 0 || i >= f->n_kv)
		return;
	e = &f->kv[i];
	if (e->type == GGUF_VT_STRING) {
		put_str(buf, buflen, &at, (const char *)e->val, e->count, 200);
		return;
	}
	if (e->type != GGUF_VT_ARRAY) {
		put_scalar(buf, buflen, &at, e->type, e->val);
		return;
	}
	put(buf, buflen, &at, "[%s; %" PRIu64 "]", gguf_vtype_name(e->elem_type), e->count);
	n = e->count < 4 ? e->count : 4;
	for (uint64_t k = 0; k < n; k++) {
		put(buf, buflen, &at, k ? ", " : " ");
		if (e->elem_type == GGUF_VT_STRING) {
			struct gguf_str s = gguf_arr_str(f, i, k);

			put_str(buf, buflen, &at, s.ptr, s.len, 40);
		} else {
			put_scalar(buf, buflen, &at, e->elem_type, e->val + k * gguf_vtype_size(e->elem_type));
		}
	}
	if (e->count > n)
		put(buf, buflen, &at, ", ...");
}
