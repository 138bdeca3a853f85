/*
 * test_gguf_write.c - the GGUF writer: a round trip of every value type and
 * of tensors (copied and produced by a fill callback), the writer's own
 * refusals, every truncation of a written file, and copying a vocabulary from
 * an oracle GGUF (with the time a full-vocabulary file takes to open).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/gguf_int.h"
#include "tests/tap.h"

static char dir[] = "/tmp/ktx-test-gguf-XXXXXX";

static char *
path_in_dir(const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

/* Reads a whole file into memory. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	p = malloc((size_t)n + 1);
	if (p != NULL && fread(p, 1, (size_t)n, fp) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return p;
}

struct fill_ctx {
	int calls;
	int fail;
};

/* Writes bytes i & 0xff, or fails when asked to. */
static int
fill_bytes(void *ctx, void *dst, uint64_t nbytes, struct ktx_err *err)
{
	struct fill_ctx *c = ctx;

	c->calls++;
	if (c->fail)
		return ktx_err_set(err, KTX_ECANCELED, "fill asked to fail");
	for (uint64_t i = 0; i < nbytes; i++)
		((uint8_t *)dst)[i] = (uint8_t)(i * 7);
	return 0;
}

static void
test_round_trip(void)
{
	struct gguf_writer *w = gguf_writer_new();
	struct fill_ctx fc = { 0, 0 };
	struct ktx_err err;
	struct gguf_file *f;
	float a[4 * 3];
	int16_t i16[3] = { -1, 2, -3 };
	double f64[2] = { 0.5, -1e300 };
	uint8_t bools[3] = { 1, 0, 1 };
	struct gguf_str strs[3] = { { "x", 1 }, { "", 0 }, { "\xe4\xb8\xad", 3 } };
	int64_t ne2[2] = { 4, 3 }, ne3[3] = { 32, 2, 2 }, k;
	const struct gguf_tensor *t;
	uint32_t u32;
	int32_t i32;
	uint64_t u64, n;
	float f32;
	bool b;
	struct gguf_str s;
	enum gguf_vtype et;
	int ok;

	for (int i = 0; i < 12; i++)
		a[i] = (float)i - 5.5f;
	ok = gguf_writer_add_u32(w, "t.u32", 123456, &err) == 0 &&
	    gguf_writer_add_i32(w, "t.i32", -42, &err) == 0 &&
	    gguf_writer_add_u64(w, "t.u64", UINT64_MAX, &err) == 0 &&
	    gguf_writer_add_f32(w, "t.f32", 1e-6f, &err) == 0 &&
	    gguf_writer_add_bool(w, "t.bool", false, &err) == 0 &&
	    gguf_writer_add_str(w, "t.str", "deep\0seek", 9, &err) == 0 &&
	    gguf_writer_add_arr(w, "t.i16s", GGUF_VT_INT16, i16, 3, &err) == 0 &&
	    gguf_writer_add_arr(w, "t.f64s", GGUF_VT_FLOAT64, f64, 2, &err) == 0 &&
	    gguf_writer_add_arr(w, "t.bools", GGUF_VT_BOOL, bools, 3, &err) == 0 &&
	    gguf_writer_add_arr(w, "t.empty", GGUF_VT_UINT32, NULL, 0, &err) == 0 &&
	    gguf_writer_add_arr_str(w, "t.strs", strs, 3, &err) == 0 &&
	    gguf_writer_set_alignment(w, 64, &err) == 0 &&
	    gguf_writer_add_tensor(w, "a", KTX_TYPE_F32, 2, ne2, a, NULL, NULL, &err) == 0 &&
	    gguf_writer_add_tensor(w, "q", KTX_TYPE_Q8_0, 3, ne3, NULL, fill_bytes, &fc, &err) == 0 &&
	    gguf_writer_write(w, path_in_dir("rt.gguf"), &err) == 0;
	if (!tap_ok(ok, "write a file with every value type and two tensors"))
		tap_diag("%s", err.msg);
	tap_is_int(fc.calls, 1, "the fill callback ran once");
	gguf_writer_free(w);
	if (gguf_open(path_in_dir("rt.gguf"), &f, &err) != 0) {
		tap_ok(0, "read it back: %s", err.msg);
		return;
	}
	tap_is_int(gguf_version(f), 3, "version 3");
	tap_is_int(gguf_alignment(f), 64, "alignment 64 stored as general.alignment");
	tap_is_int(gguf_data_offset(f) % 64, 0, "data section aligned");
	tap_is_int(gguf_kv_count(f), 12, "11 keys and general.alignment");
	tap_ok(gguf_get_u32(f, "t.u32", &u32, &err) == 0 && u32 == 123456, "u32");
	tap_ok(gguf_get_i32(f, "t.i32", &i32, &err) == 0 && i32 == -42, "i32");
	tap_ok(gguf_get_u64(f, "t.u64", &u64, &err) == 0 && u64 == UINT64_MAX, "u64");
	tap_ok(gguf_get_f32(f, "t.f32", &f32, &err) == 0 && f32 == 1e-6f, "f32");
	tap_ok(gguf_get_bool(f, "t.bool", &b, &err) == 0 && !b, "bool");
	tap_ok(gguf_get_str(f, "t.str", &s, &err) == 0 && s.len == 9 &&
	    memcmp(s.ptr, "deep\0seek", 9) == 0, "string with an inner NUL");
	k = gguf_kv_find(f, "t.i16s");
	tap_ok(gguf_get_arr(f, "t.i16s", &et, &n, &err) == 0 && et == GGUF_VT_INT16 && n == 3 &&
	    memcmp(gguf_arr_data(f, k), i16, sizeof(i16)) == 0, "i16 array");
	k = gguf_kv_find(f, "t.f64s");
	tap_ok(gguf_get_arr(f, "t.f64s", &et, &n, &err) == 0 && et == GGUF_VT_FLOAT64 && n == 2 &&
	    memcmp(gguf_arr_data(f, k), f64, sizeof(f64)) == 0, "f64 array");
	k = gguf_kv_find(f, "t.bools");
	tap_ok(gguf_get_arr(f, "t.bools", &et, &n, &err) == 0 && et == GGUF_VT_BOOL && n == 3 &&
	    memcmp(gguf_arr_data(f, k), bools, 3) == 0, "bool array");
	tap_ok(gguf_get_arr(f, "t.empty", &et, &n, &err) == 0 && n == 0, "empty array");
	k = gguf_kv_find(f, "t.strs");
	s = gguf_arr_str(f, k, 2);
	tap_ok(s.len == 3 && memcmp(s.ptr, "\xe4\xb8\xad", 3) == 0, "string array");
	t = gguf_tensor_find(f, "a");
	tap_ok(t && t->type == KTX_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 4 && t->ne[1] == 3 &&
	    t->ne[2] == 1 && t->nbytes == sizeof(a) && memcmp(t->data, a, sizeof(a)) == 0,
	    "f32 tensor round trip");
	t = gguf_tensor_find(f, "q");
	ok = t && t->type == KTX_TYPE_Q8_0 && t->n_dims == 3 && gguf_tensor_nelements(t) == 128 &&
	    t->nbytes == 4 * 34 && t->offset % 64 == 0;
	for (uint64_t i = 0; ok && i < t->nbytes; i++)
		ok = ((const uint8_t *)t->data)[i] == (uint8_t)(i * 7);
	tap_ok(ok, "q8_0 tensor written by the fill callback");
	gguf_close(f);
}

static void
test_writer_refusals(void)
{
	struct gguf_writer *w = gguf_writer_new();
	struct fill_ctx fc = { 0, 1 };
	struct ktx_err err;
	int64_t ne[2] = { 33, 2 }, ok2[1] = { 32 }, negd[2] = { 32, -1 };
	float x[64] = { 0 };
	char longname[80];

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	gguf_writer_add_u32(w, "k", 1, &err);
	tap_is_int(gguf_writer_add_u32(w, "k", 2, &err), KTX_EINVAL, "a key added twice");
	tap_is_int(gguf_writer_add_u32(w, "general.alignment", 8, &err), KTX_EINVAL,
	    "general.alignment is not an ordinary key");
	tap_is_int(gguf_writer_set_alignment(w, 24, &err), KTX_EINVAL, "alignment 24");
	tap_is_int(gguf_writer_add_arr(w, "s", GGUF_VT_STRING, x, 1, &err), KTX_EINVAL,
	    "add_arr refuses strings");
	tap_is_int(gguf_writer_add_tensor(w, "t", KTX_TYPE_Q4_0, 2, ne, x, NULL, NULL, &err),
	    KTX_EINVAL, "a q4_0 row of 33");
	tap_is_int(gguf_writer_add_tensor(w, "t", (enum ktx_type)99, 1, ok2, x, NULL, NULL, &err),
	    KTX_EINVAL, "an unknown type");
	tap_is_int(gguf_writer_add_tensor(w, "t", KTX_TYPE_F32, 2, negd, x, NULL, NULL, &err),
	    KTX_EINVAL, "a negative dimension");
	tap_is_int(gguf_writer_add_tensor(w, longname, KTX_TYPE_F32, 1, ok2, x, NULL, NULL, &err),
	    KTX_EINVAL, "a name of 79 bytes");
	tap_is_int(gguf_writer_add_tensor(w, "t", KTX_TYPE_F32, 1, ok2, NULL, NULL, NULL, &err),
	    KTX_EINVAL, "neither data nor fill");
	tap_is_int(gguf_writer_add_tensor(w, "t", KTX_TYPE_F32, 1, ok2, x, NULL, NULL, &err), 0,
	    "a good tensor");
	tap_is_int(gguf_writer_add_tensor(w, "t", KTX_TYPE_F32, 1, ok2, x, NULL, NULL, &err),
	    KTX_EINVAL, "a tensor added twice");
	tap_is_int(gguf_writer_add_tensor(w, "f", KTX_TYPE_F32, 1, ok2, NULL, fill_bytes, &fc, &err),
	    0, "a tensor with a failing fill");
	tap_is_int(gguf_writer_write(w, path_in_dir("fail.gguf"), &err), KTX_ECANCELED,
	    "the fill's error comes back from write");
	tap_ok(access(path_in_dir("fail.gguf"), F_OK) != 0, "a failed write leaves no file");
	tap_is_int(gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), KTX_EIO,
	    "an unwritable path");
	gguf_writer_free(w);
}

/* Every prefix of a valid file shorter than its data must be refused. */
static void
test_truncation(void)
{
	struct gguf_file *f;
	struct ktx_err err;
	size_t len, end, failures = 0, tried = 0;
	uint8_t *img = slurp(path_in_dir("rt.gguf"), &len);
	const struct gguf_tensor *t;

	if (img == NULL || gguf_open_memory(img, len, &f, &err) != 0) {
		tap_ok(0, "read the round-trip file");
		free(img);
		return;
	}
	t = gguf_tensor_at(f, gguf_tensor_count(f) - 1);
	end = (size_t)(gguf_data_offset(f) + t->offset + t->nbytes);
	gguf_close(f);
	for (size_t cut = 0; cut < end; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		int rc;

		memcpy(copy, img, cut);
		ktx_err_clear(&err);
		rc = gguf_open_memory(copy, cut, &f, &err);
		tried++;
		if (rc != KTX_EFORMAT || err.msg[0] == '\0') {
			if (failures++ < 5)
				tap_diag("cut at %zu: rc %d \"%s\"", cut, rc, err.msg);
			if (rc == 0)
				gguf_close(f);
		}
		free(copy);
	}
	tap_ok(failures == 0 && tried > 300, "all %zu truncations refused with a message", tried);

	/* Flipping any byte either leaves a valid file or is refused cleanly. */
	failures = 0;
	for (size_t i = 0; i < end; i++) {
		uint8_t *copy = malloc(len);
		int rc;

		memcpy(copy, img, len);
		copy[i] ^= 0xff;
		ktx_err_clear(&err);
		rc = gguf_open_memory(copy, len, &f, &err);
		if (rc == 0)
			gguf_close(f);
		else if (rc != KTX_EFORMAT || err.msg[0] == '\0')
			failures++;
		free(copy);
	}
	tap_ok(failures == 0, "every flipped byte gives a valid file or a format error");
	free(img);
}

typedef int (*open_fn)(const char *path, struct gguf_file **out, struct ktx_err *err);

/* The openers' own refusals: a missing path, a directory, a short file. */
static void
test_open_errors(open_fn opener, const char *name)
{
	struct gguf_file *f;
	struct ktx_err err;
	FILE *fp;

	tap_ok(opener(path_in_dir("absent.gguf"), &f, &err) == KTX_EIO, "%s: a missing file", name);
	tap_ok(strstr(err.msg, "absent.gguf") != NULL, "%s: the message names the path", name);
	tap_ok(opener(dir, &f, &err) == KTX_EIO, "%s: a directory", name);
	fp = fopen(path_in_dir("short.gguf"), "wb");
	fputs("GGUF\3\0\0\0", fp);
	fclose(fp);
	tap_ok(opener(path_in_dir("short.gguf"), &f, &err) == KTX_EFORMAT, "%s: an 8-byte file",
	    name);
	tap_ok(strstr(err.msg, "too short") != NULL, "%s: the message says it is too short", name);
	fp = fopen(path_in_dir("short.gguf"), "wb");
	fputs("GGUX\3\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", fp);
	fclose(fp);
	tap_ok(opener(path_in_dir("short.gguf"), &f, &err) == KTX_EFORMAT, "%s: a bad magic", name);
	unlink(path_in_dir("short.gguf"));
}

/* gguf_load reads what gguf_open maps: the same keys, tensors and bytes. */
static void
test_load_matches_open(void)
{
	struct gguf_file *a, *b;
	struct ktx_err err;
	int same = 1;

	if (gguf_open(path_in_dir("rt.gguf"), &a, &err) != 0 ||
	    gguf_load(path_in_dir("rt.gguf"), &b, &err) != 0) {
		tap_ok(0, "open and load rt.gguf: %s", err.msg);
		return;
	}
	tap_ok(gguf_image(a) != gguf_image(b), "load has its own copy");
	tap_is_int(gguf_file_size(b), gguf_file_size(a), "load: the whole file");
	tap_ok(memcmp(gguf_image(a), gguf_image(b), gguf_file_size(a)) == 0,
	    "load: the same bytes as the mapping");
	tap_is_int(gguf_kv_count(b), gguf_kv_count(a), "load: the same keys");
	tap_is_int(gguf_tensor_count(b), gguf_tensor_count(a), "load: the same tensors");
	for (int64_t i = 0; i < gguf_tensor_count(a); i++) {
		const struct gguf_tensor *ta = gguf_tensor_at(a, i), *tb = gguf_tensor_at(b, i);

		same &= strcmp(ta->name, tb->name) == 0 && ta->nbytes == tb->nbytes &&
		    (const uint8_t *)tb->data - (const uint8_t *)gguf_image(b) ==
		    (const uint8_t *)ta->data - (const uint8_t *)gguf_image(a);
	}
	tap_ok(same, "load: each tensor at the same offset");
	gguf_close(a);
	gguf_close(b);
}

/* Copies the tokenizer keys of an oracle vocabulary into a new file. */
static void
test_copy_vocab(void)
{
	const char *oracle = getenv("KTX_ORACLE");
	char src[1024];
	struct gguf_file *f, *g;
	struct gguf_writer *w;
	struct ktx_err err;
	struct timespec t0, t1;
	int64_t ks, kd;
	uint64_t n = 0;
	enum gguf_vtype et;
	int same = 1;
	double best = 1e9;

	if (oracle == NULL) {
		tap_ok(0, "KTX_ORACLE is set");
		return;
	}
	snprintf(src, sizeof(src), "%s/tokenizer/deepseek-v3.gguf", oracle);
	for (int rep = 0; rep < 3; rep++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (gguf_open(src, &f, &err) != 0) {
			tap_ok(0, "open %s: %s", src, err.msg);
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6 < best)
			best = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (rep < 2)
			gguf_close(f);
	}
	tap_diag("opening the full DeepSeek-V3 vocabulary GGUF took %.1f ms", best);
	tap_ok(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n, &err) == 0 && n == 129280,
	    "129280 tokens");
	w = gguf_writer_new();
	tap_ok(gguf_writer_copy_kv(w, f, "tokenizer.", &err) == 0 &&
	    gguf_writer_write(w, path_in_dir("vocab.gguf"), &err) == 0, "copy tokenizer.* keys");
	gguf_writer_free(w);
	if (gguf_open(path_in_dir("vocab.gguf"), &g, &err) != 0) {
		tap_ok(0, "open the copy: %s", err.msg);
		gguf_close(f);
		return;
	}
	tap_ok(gguf_kv_find(g, "general.architecture") < 0, "keys outside the prefix are not copied");
	ks = gguf_kv_find(f, "tokenizer.ggml.merges");
	kd = gguf_kv_find(g, "tokenizer.ggml.merges");
	gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n, &err);
	tap_is_int(n, 127741, "127741 merges copied");
	for (uint64_t i = 0; i < n && same; i++) {
		struct gguf_str a = gguf_arr_str(f, ks, i), b = gguf_arr_str(g, kd, i);

		same = a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
	}
	tap_ok(same, "every merge is the same");
	gguf_close(g);
	gguf_close(f);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_round_trip();
	test_writer_refusals();
	test_truncation();
	test_open_errors(gguf_open, "open");
	test_open_errors(gguf_load, "load");
	test_load_matches_open();
	test_copy_vocab();
	unlink(path_in_dir("rt.gguf"));
	unlink(path_in_dir("vocab.gguf"));
	rmdir(dir);
	return tap_done();
}
