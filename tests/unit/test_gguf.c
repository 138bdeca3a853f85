/*
 * test_gguf.c - the GGUF reader against valid files and files broken on
 * purpose: every broken file must give KTX_EFORMAT with a message that names
 * the problem (run under ASan, a crash, overread or leak fails the suite).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "tests/tap.h"

/* A GGUF image built byte by byte, so tests can write what no writer would. */
struct img {
	uint8_t *p;
	size_t len, cap;
};

static void
put(struct img *m, const void *data, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2 + 64;
		m->p = realloc(m->p, m->cap);
		if (m->p == NULL)
			abort();
	}
	memcpy(m->p + m->len, data, n);
	m->len += n;
}

static void
p_u32(struct img *m, uint32_t v)
{
	put(m, &v, 4);
}

static void
p_u64(struct img *m, uint64_t v)
{
	put(m, &v, 8);
}

static void
p_str(struct img *m, const char *s)
{
	p_u64(m, strlen(s));
	put(m, s, strlen(s));
}

static void
p_hdr(struct img *m, uint32_t version, uint64_t n_t, uint64_t n_kv)
{
	m->len = 0;
	put(m, "GGUF", 4);
	p_u32(m, version);
	p_u64(m, n_t);
	p_u64(m, n_kv);
}

static void
p_kv_u32(struct img *m, const char *key, uint32_t v)
{
	p_str(m, key);
	p_u32(m, GGUF_VT_UINT32);
	p_u32(m, v);
}

static void
p_tensor(struct img *m, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type,
    uint64_t off)
{
	p_str(m, name);
	p_u32(m, nd);
	for (uint32_t d = 0; d < nd; d++)
		p_u64(m, ne[d]);
	p_u32(m, type);
	p_u64(m, off);
}

static void
p_pad(struct img *m, size_t align)
{
	static const uint8_t zero[256];

	put(m, zero, (align - m->len % align) % align);
}

static void
p_zeros(struct img *m, size_t n)
{
	static const uint8_t zero[256];

	while (n > 0) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);

		put(m, zero, k);
		n -= k;
	}
}

/* Opens an exact-size copy (so ASan sees any overread); returns the code. */
static int
open_copy(const uint8_t *data, size_t len, struct gguf_file **f, struct ktx_err *err)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, data, len);
	rc = gguf_open_memory(copy, len, f, err);
	if (rc == 0)
		gguf_close(*f);
	free(copy);
	return rc;
}

/* Expects img to be refused as malformed with a message containing want. */
static void
bad(const struct img *m, const char *name, const char *want)
{
	struct gguf_file *f = NULL;
	struct ktx_err err;
	int rc;

	ktx_err_clear(&err);
	rc = open_copy(m->p, m->len, &f, &err);
	if (!tap_ok(rc == KTX_EFORMAT && strstr(err.msg, want) != NULL, "refused: %s", name))
		tap_diag("rc %d, message \"%s\", want \"%s\"", rc, err.msg, want);
}

/* Expects img to open. */
static void
good(const struct img *m, const char *name)
{
	struct gguf_file *f = NULL;
	struct ktx_err err;
	int rc;

	ktx_err_clear(&err);
	rc = open_copy(m->p, m->len, &f, &err);
	if (!tap_ok(rc == 0, "accepted: %s", name))
		tap_diag("rc %d, message \"%s\"", rc, err.msg);
}

/* One F32 tensor "t" of 8 elements at offset 0, with its data. */
static void
one_tensor(struct img *m, uint32_t version)
{
	uint64_t ne[1] = { 8 };

	p_hdr(m, version, 1, 1);
	p_kv_u32(m, "a.b", 7);
	p_tensor(m, "t", 1, ne, 0, 0);
	p_pad(m, 32);
	p_zeros(m, 32);
}

static void
test_header(void)
{
	struct img m = { 0 };

	one_tensor(&m, 3);
	good(&m, "a minimal v3 file");
	one_tensor(&m, 2);
	good(&m, "a minimal v2 file");
	one_tensor(&m, 3);
	m.p[0] = 'X';
	bad(&m, "wrong magic", "not a GGUF file");
	one_tensor(&m, 1);
	bad(&m, "version 1", "version 1 is obsolete");
	one_tensor(&m, 4);
	bad(&m, "version 4", "version 4");
	one_tensor(&m, 0x03000000);
	bad(&m, "big-endian file", "big-endian");
	p_hdr(&m, 3, 0, (uint64_t)1 << 60);
	bad(&m, "2^60 metadata entries", "metadata entries");
	p_hdr(&m, 3, (uint64_t)1 << 60, 0);
	bad(&m, "2^60 tensors", "tensors, more than");
	p_hdr(&m, 3, 0, 1);
	p_u64(&m, (uint64_t)1 << 62);
	bad(&m, "a key of 2^62 bytes", "claims");
	p_hdr(&m, 3, 0, 0);
	good(&m, "an empty file with only a header");
	free(m.p);
}

static void
test_metadata(void)
{
	struct img m = { 0 };

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "k");
	p_u32(&m, GGUF_VT_ARRAY);
	p_u32(&m, GGUF_VT_STRING);
	p_u64(&m, (uint64_t)1 << 62);
	bad(&m, "an array of 2^62 strings", "claims 4611686018427387904 strings");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "k");
	p_u32(&m, GGUF_VT_ARRAY);
	p_u32(&m, GGUF_VT_STRING);
	p_u64(&m, 3);
	p_str(&m, "x");
	p_str(&m, "y");
	p_u64(&m, 1000);
	p_zeros(&m, 8);
	bad(&m, "a string array whose last string runs past the end", "claims 1000 bytes");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "k");
	p_u32(&m, GGUF_VT_ARRAY);
	p_u32(&m, GGUF_VT_UINT64);
	p_u64(&m, (uint64_t)1 << 61);
	bad(&m, "an array of 2^61 u64 (byte count overflows)", "elements of u64");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "k");
	p_u32(&m, 13);
	p_u32(&m, 0);
	bad(&m, "unknown value type 13", "unknown value type 13");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "k");
	p_u32(&m, GGUF_VT_ARRAY);
	p_u32(&m, GGUF_VT_ARRAY);
	p_u64(&m, 1);
	p_u32(&m, GGUF_VT_UINT8);
	p_u64(&m, 0);
	bad(&m, "an array of arrays", "array of arrays");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "k");
	p_u32(&m, GGUF_VT_ARRAY);
	p_u32(&m, 77);
	p_u64(&m, 0);
	bad(&m, "an array of unknown type", "unknown value type 77");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "k");
	p_u32(&m, GGUF_VT_BOOL);
	put(&m, "\x02", 1);
	bad(&m, "a bool of value 2", "has value 2");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "");
	p_u32(&m, GGUF_VT_UINT32);
	p_u32(&m, 1);
	bad(&m, "an empty key", "is empty");

	p_hdr(&m, 3, 0, 2);
	p_kv_u32(&m, "dup", 1);
	p_kv_u32(&m, "dup", 2);
	bad(&m, "a duplicate key", "'dup' appears twice");

	p_hdr(&m, 3, 0, 1);
	p_str(&m, "general.alignment");
	p_u32(&m, GGUF_VT_STRING);
	p_str(&m, "32");
	bad(&m, "general.alignment as a string", "want u32");

	p_hdr(&m, 3, 0, 1);
	p_kv_u32(&m, "general.alignment", 48);
	bad(&m, "alignment 48", "not a power of two");

	p_hdr(&m, 3, 0, 1);
	p_kv_u32(&m, "general.alignment", 0);
	bad(&m, "alignment 0", "not a power of two");
	free(m.p);
}

static void
test_tensors(void)
{
	struct img m = { 0 };
	uint64_t ne[5] = { 8, 1, 1, 1, 1 };
	uint64_t big[2] = { (uint64_t)1 << 40, (uint64_t)1 << 40 };
	uint64_t neg[2] = { 8, (uint64_t)-3 };
	uint64_t zero[2] = { 8, 0 };
	uint64_t odd[1] = { 33 };
	uint64_t huge[1] = { (uint64_t)1 << 62 };

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 1, ne, 99, 0);
	p_pad(&m, 32);
	p_zeros(&m, 32);
	bad(&m, "unknown tensor type 99", "unknown type 99");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 5, ne, 0, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "5 dimensions", "has 5 dimensions");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 0, ne, 0, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "0 dimensions", "has 0 dimensions");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 2, neg, 0, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "a negative dimension", "dimension 1 is -3");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 2, zero, 0, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "an empty dimension", "dimension 1 is 0");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 2, big, 0, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "2^80 elements", "overflow");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 1, huge, 0, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "2^62 f32 elements (bytes overflow)", "overflow");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 1, odd, 2, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "a q4_0 row of 33 elements", "not a whole number");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 1, ne, 0, 4);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "a misaligned data offset", "not a multiple of the alignment");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 1, ne, 0, 32);
	p_pad(&m, 32);
	p_zeros(&m, 48);
	bad(&m, "a tensor past the end of the file", "past the end");

	p_hdr(&m, 3, 1, 0);
	p_tensor(&m, "t", 1, ne, 0, (uint64_t)-32);
	p_pad(&m, 32);
	p_zeros(&m, 48);
	bad(&m, "an offset near 2^64", "past the end");

	p_hdr(&m, 3, 2, 0);
	p_tensor(&m, "a", 1, (uint64_t[]){ 16 }, 0, 0);
	p_tensor(&m, "b", 1, ne, 0, 32);
	p_pad(&m, 32);
	p_zeros(&m, 96);
	bad(&m, "overlapping tensors", "overlap");

	p_hdr(&m, 3, 2, 0);
	p_tensor(&m, "a", 1, ne, 0, 0);
	p_tensor(&m, "b", 1, ne, 0, 32);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	good(&m, "two adjacent tensors");

	p_hdr(&m, 3, 2, 0);
	p_tensor(&m, "a", 1, ne, 0, 32);
	p_tensor(&m, "b", 1, ne, 0, 0);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	good(&m, "two tensors stored in the opposite order");

	p_hdr(&m, 3, 2, 0);
	p_tensor(&m, "a", 1, ne, 0, 0);
	p_tensor(&m, "a", 1, ne, 0, 32);
	p_pad(&m, 32);
	p_zeros(&m, 64);
	bad(&m, "a duplicate tensor name", "'a' appears twice");

	p_hdr(&m, 3, 1, 0);
	p_str(&m, "");
	p_u32(&m, 1);
	p_u64(&m, 8);
	p_u32(&m, 0);
	p_u64(&m, 0);
	p_pad(&m, 32);
	p_zeros(&m, 32);
	bad(&m, "an empty tensor name", "empty");

	p_hdr(&m, 3, 1, 1);
	p_kv_u32(&m, "general.alignment", 64);
	p_tensor(&m, "t", 1, ne, 0, 32);
	p_pad(&m, 64);
	p_zeros(&m, 64);
	bad(&m, "an offset aligned to 32 in a file aligned to 64", "alignment 64");

	p_hdr(&m, 3, 1, 1);
	p_kv_u32(&m, "general.alignment", 64);
	p_tensor(&m, "t", 1, ne, 0, 64);
	p_pad(&m, 64);
	p_zeros(&m, 96);
	good(&m, "an offset aligned to 64 in a file aligned to 64");
	free(m.p);
}

/* Every scalar and array type, built by hand, read back through the API. */
static void
test_values(void)
{
	struct img m = { 0 };
	struct gguf_file *f = NULL;
	struct ktx_err err;
	uint32_t u32;
	int32_t i32;
	uint64_t u64, n;
	float f32;
	bool b;
	struct gguf_str s;
	enum gguf_vtype et;
	char buf[256];
	int64_t k;
	int rc;

	p_hdr(&m, 3, 0, 13);
	p_str(&m, "u8"); p_u32(&m, GGUF_VT_UINT8); put(&m, "\xfe", 1);
	p_str(&m, "i8"); p_u32(&m, GGUF_VT_INT8); put(&m, "\xfe", 1);
	p_str(&m, "u16"); p_u32(&m, GGUF_VT_UINT16); put(&m, "\x34\x12", 2);
	p_str(&m, "i16"); p_u32(&m, GGUF_VT_INT16); put(&m, "\xff\xff", 2);
	p_str(&m, "u32"); p_u32(&m, GGUF_VT_UINT32); p_u32(&m, 4000000000u);
	p_str(&m, "i32"); p_u32(&m, GGUF_VT_INT32); p_u32(&m, (uint32_t)-5);
	p_str(&m, "f32"); p_u32(&m, GGUF_VT_FLOAT32); f32 = 2.5f; put(&m, &f32, 4);
	p_str(&m, "bool"); p_u32(&m, GGUF_VT_BOOL); put(&m, "\x01", 1);
	p_str(&m, "str"); p_u32(&m, GGUF_VT_STRING); p_str(&m, "hello");
	p_str(&m, "u64"); p_u32(&m, GGUF_VT_UINT64); p_u64(&m, (uint64_t)1 << 40);
	p_str(&m, "i64"); p_u32(&m, GGUF_VT_INT64); p_u64(&m, (uint64_t)-7);
	p_str(&m, "f64"); p_u32(&m, GGUF_VT_FLOAT64); { double d = 0.125; put(&m, &d, 8); }
	p_str(&m, "strs"); p_u32(&m, GGUF_VT_ARRAY); p_u32(&m, GGUF_VT_STRING); p_u64(&m, 3);
	p_str(&m, "a"); p_str(&m, ""); p_str(&m, "ccc");

	rc = gguf_open_memory(m.p, m.len, &f, &err);
	tap_is_int(rc, 0, "hand-built file with every value type opens");
	if (rc != 0) {
		tap_diag("%s", err.msg);
		free(m.p);
		return;
	}
	tap_is_int(gguf_kv_count(f), 13, "13 keys");
	tap_is_int(gguf_kv_type(f, gguf_kv_find(f, "i16")), GGUF_VT_INT16, "i16 type");
	tap_ok(gguf_get_u32(f, "u8", &u32, &err) == 0 && u32 == 254, "u8 read as u32");
	tap_ok(gguf_get_i32(f, "i8", &i32, &err) == 0 && i32 == -2, "i8 read as i32");
	tap_ok(gguf_get_u32(f, "u16", &u32, &err) == 0 && u32 == 0x1234, "u16 read as u32");
	tap_ok(gguf_get_i32(f, "i16", &i32, &err) == 0 && i32 == -1, "i16 read as i32");
	tap_ok(gguf_get_u32(f, "u32", &u32, &err) == 0 && u32 == 4000000000u, "u32");
	tap_is_int(gguf_get_i32(f, "u32", &i32, &err), KTX_EFORMAT, "u32 4e9 does not fit i32");
	tap_ok(strstr(err.msg, "'u32'") != NULL, "the message names the key");
	tap_is_int(gguf_get_u32(f, "i32", &u32, &err), KTX_EFORMAT, "negative i32 does not fit u32");
	tap_ok(gguf_get_i32(f, "i32", &i32, &err) == 0 && i32 == -5, "i32");
	tap_ok(gguf_get_f32(f, "f32", &f32, &err) == 0 && f32 == 2.5f, "f32");
	tap_ok(gguf_get_f32(f, "f64", &f32, &err) == 0 && f32 == 0.125f, "f64 read as f32");
	tap_ok(gguf_get_bool(f, "bool", &b, &err) == 0 && b, "bool");
	tap_ok(gguf_get_str(f, "str", &s, &err) == 0 && s.len == 5 && memcmp(s.ptr, "hello", 5) == 0,
	    "string");
	tap_ok(gguf_get_u64(f, "u64", &u64, &err) == 0 && u64 == (uint64_t)1 << 40, "u64");
	tap_is_int(gguf_get_u32(f, "u64", &u32, &err), KTX_EFORMAT, "2^40 does not fit u32");
	tap_is_int(gguf_get_u64(f, "i64", &u64, &err), KTX_EFORMAT, "negative i64 does not fit u64");
	tap_is_int(gguf_get_u32(f, "str", &u32, &err), KTX_EFORMAT, "a string is not an integer");
	tap_ok(strstr(err.msg, "string") != NULL && strstr(err.msg, "u32") != NULL,
	    "the message names wanted and found types");
	tap_is_int(gguf_get_str(f, "u32", &s, &err), KTX_EFORMAT, "a u32 is not a string");
	tap_is_int(gguf_get_f32(f, "u32", &f32, &err), KTX_EFORMAT, "a u32 is not a float");
	tap_is_int(gguf_get_bool(f, "u8", &b, &err), KTX_EFORMAT, "a u8 is not a bool");
	tap_is_int(gguf_get_u32(f, "nope", &u32, &err), KTX_ENOTFOUND, "absent key");
	tap_ok(gguf_get_arr(f, "strs", &et, &n, &err) == 0 && et == GGUF_VT_STRING && n == 3,
	    "string array type and count");
	k = gguf_kv_find(f, "strs");
	s = gguf_arr_str(f, k, 2);
	tap_ok(s.len == 3 && memcmp(s.ptr, "ccc", 3) == 0, "string array element 2");
	s = gguf_arr_str(f, k, 1);
	tap_ok(s.len == 0 && s.ptr != NULL, "string array empty element");
	tap_ok(gguf_arr_str(f, k, 3).ptr == NULL, "string array index past the end");
	tap_ok(gguf_arr_data(f, k) == NULL, "no numeric data for a string array");
	tap_is_int(gguf_get_arr(f, "u8", &et, &n, &err), KTX_EFORMAT, "a scalar is not an array");
	gguf_kv_format(f, k, buf, sizeof(buf));
	tap_is_str(buf, "[string; 3] \"a\", \"\", \"ccc\"", "format a string array");
	gguf_kv_format(f, gguf_kv_find(f, "i64"), buf, sizeof(buf));
	tap_is_str(buf, "-7", "format an i64");
	gguf_kv_format(f, gguf_kv_find(f, "bool"), buf, sizeof(buf));
	tap_is_str(buf, "true", "format a bool");
	gguf_kv_format(f, gguf_kv_find(f, "str"), buf, 4);
	tap_is_str(buf, "\"he", "format truncates to the buffer");
	tap_is_int(gguf_tensor_count(f), 0, "no tensors");
	tap_ok(gguf_tensor_find(f, "x") == NULL && gguf_tensor_at(f, 0) == NULL, "no tensor found");
	gguf_close(f);
	free(m.p);
}

int
main(void)
{
	test_header();
	test_metadata();
	test_tensors();
	test_values();
	return tap_done();
}
