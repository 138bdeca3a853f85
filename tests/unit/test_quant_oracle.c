/*
 * test_quant_oracle.c - ktx's quantizers on the oracle's real tensors.
 *
 * Three checks of plausibility, each against what llama.cpp wrote:
 *   - v3mla-q8q4 is v3mla-f16 quantized by llama.cpp as Q8_0 and Q4_0:
 *     quantizing the f16 source with ktx must give the very same bytes.
 *   - v3mla-iqmix's IQ4_XS tensors come from the same source (llama.cpp
 *     may have used an importance matrix): ktx's IQ4_XS error against the
 *     source must be within 5% of the file's.
 *   - every K-quant and IQ4_XS tensor, dequantized and quantized again,
 *     must come back close to itself (quantized data is nearly a fixed
 *     point of a sound quantizer): NMSE at most a fifth of what the format
 *     costs on Gaussian data.
 * Reads $KTX_ORACLE/models; dequantizes through ktx_dequantize, whose
 * exactness test_dequant.py checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "tests/tap.h"

static struct gguf_file *
open_model(const char *name)
{
	const char *oracle = getenv("KTX_ORACLE");
	char path[4096];
	struct gguf_file *f = NULL;
	struct ktx_err err;

	if (oracle == NULL)
		oracle = "../shared/oracle";
	snprintf(path, sizeof(path), "%s/models/%s.gguf", oracle, name);
	if (!tap_ok(gguf_open(path, &f, &err) == 0, "open %s", path))
		tap_diag("%s", err.msg);
	return f;
}

/* The tensor as float32 (malloc'd), or NULL. */
static float *
to_f32(const struct gguf_tensor *t)
{
	int64_t n = gguf_tensor_nelements(t);
	float *x = malloc((size_t)n * sizeof(float));
	struct ktx_err err;

	if (x != NULL && ktx_dequantize(t->type, t->data, x, n, &err) != KTX_OK) {
		tap_diag("%s: %s", t->name, err.msg);
		free(x);
		return NULL;
	}
	return x;
}

static double
nmse(const float *ref, const float *y, int64_t n)
{
	double e = 0, s = 0;

	for (int64_t i = 0; i < n; i++) {
		e += ((double)ref[i] - y[i]) * ((double)ref[i] - y[i]);
		s += (double)ref[i] * ref[i];
	}
	return s > 0 ? e / s : e;
}

/* Quantizes x (n elements) as type and dequantizes it again into y; the
 * blocks are left in *q (malloc'd). */
static int
requantize(uint32_t type, const float *x, float *y, int64_t n, void **q)
{
	struct ktx_err err;

	*q = malloc(ktx_type_row_bytes(type, n));
	if (*q == NULL || ktx_quantize(type, x, *q, n, &err) != KTX_OK ||
	    ktx_dequantize(type, *q, y, n, &err) != KTX_OK) {
		tap_diag("%s: %s", ktx_type_name(type), *q ? err.msg : "out of memory");
		return -1;
	}
	return 0;
}

/* Each tensor of qname whose type is wanted, quantized by ktx from the
 * same tensor of sname, compared with the file. */
static void
test_against_llama_cpp(const char *sname, const char *qname, uint32_t type, int exact)
{
	struct gguf_file *sf = open_model(sname), *qf = open_model(qname);
	int tensors = 0, good = 0;

	if (sf == NULL || qf == NULL)
		goto out;
	for (int64_t i = 0; i < gguf_tensor_count(qf); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(qf, i);
		const struct gguf_tensor *s = gguf_tensor_find(sf, t->name);
		int64_t n = gguf_tensor_nelements(t);
		float *x, *y, *file;
		void *q = NULL;
		int ok;

		if (t->type != type || s == NULL || gguf_tensor_nelements(s) != n)
			continue;
		tensors++;
		x = to_f32(s);
		file = to_f32(t);
		y = malloc((size_t)n * sizeof(float));
		if (x == NULL || file == NULL || y == NULL || requantize(type, x, y, n, &q) != 0) {
			ok = 0;
		} else if (exact) {
			ok = memcmp(q, t->data, t->nbytes) == 0;
		} else {
			double ours = nmse(x, y, n), theirs = nmse(x, file, n);

			ok = ours <= 1.05 * theirs;
			if (!ok)
				tap_diag("%s: ktx nmse %.4g, llama.cpp %.4g", t->name, ours,
				    theirs);
		}
		if (!ok)
			tap_diag("%s differs", t->name);
		good += ok;
		free(x);
		free(y);
		free(file);
		free(q);
	}
	tap_ok(tensors > 0 && good == tensors, "%s %s from %s: %d/%d tensors %s", qname,
	    ktx_type_name(type), sname, good, tensors,
	    exact ? "identical to llama.cpp's bytes" : "as good as llama.cpp's (within 5%)");
out:
	gguf_close(qf);
	gguf_close(sf);
}

/* NMSE bounds for quantizing already-quantized data: a fifth of the
 * Gaussian bounds of test_quant_roundtrip.c. */
static double
fixed_point_bound(uint32_t type)
{
	switch (type) {
	case KTX_TYPE_Q2_K: return 0.11 / 5;
	case KTX_TYPE_Q3_K: return 3e-2 / 5;
	case KTX_TYPE_Q4_K: return 6.5e-3 / 5;
	case KTX_TYPE_Q5_K: return 1.7e-3 / 5;
	case KTX_TYPE_Q6_K: return 4e-4 / 5;
	case KTX_TYPE_IQ4_XS: return 7.5e-3 / 5;
	}
	return 0;
}

static void
test_fixed_point(const char *name)
{
	struct gguf_file *f = open_model(name);
	double worst[KTX_TYPE_COUNT_] = {0};
	int count[KTX_TYPE_COUNT_] = {0};

	if (f == NULL)
		return;
	for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(f, i);
		int64_t n = gguf_tensor_nelements(t);
		float *x, *y;
		void *q = NULL;

		if (fixed_point_bound(t->type) == 0)
			continue;
		x = to_f32(t);
		y = malloc((size_t)n * sizeof(float));
		if (x != NULL && y != NULL && requantize(t->type, x, y, n, &q) == 0) {
			double e = nmse(x, y, n);

			if (e > worst[t->type])
				worst[t->type] = e;
		} else {
			worst[t->type] = 1;
		}
		count[t->type]++;
		free(x);
		free(y);
		free(q);
	}
	for (uint32_t type = 0; type < KTX_TYPE_COUNT_; type++)
		if (count[type] > 0)
			tap_ok(worst[type] <= fixed_point_bound(type),
			    "%s: %d %s tensors requantize to themselves (worst nmse %.3g, "
			    "bound %.3g)", name, count[type], ktx_type_name(type), worst[type],
			    fixed_point_bound(type));
	gguf_close(f);
}

int
main(void)
{
	test_against_llama_cpp("v3mla-f16", "v3mla-q8q4", KTX_TYPE_Q8_0, 1);
	test_against_llama_cpp("v3mla-f16", "v3mla-q8q4", KTX_TYPE_Q4_0, 1);
	test_against_llama_cpp("v3mla-f16", "v3mla-iqmix", KTX_TYPE_IQ4_XS, 0);
	test_fixed_point("v3ud-q2kxl");
	test_fixed_point("v3mla-iqmix");
	return tap_done();
}
