/*
 * test_quant_roundtrip.c - every quantizer against its own dequantizer, and
 * the checks of engine/quant.c.
 *
 * The error figure is the normalised mean squared error
 * NMSE = sum (x - y)^2 / sum x^2, on Gaussian data (the shape of weights
 * and activations, 64 super-blocks) and on the same with one large outlier
 * per 256. Measured (printed as diagnostics), Gaussian / outliers:
 *   f16 4.3e-8 / 4.7e-8, bf16 2.7e-6 / 2.6e-6, q8_0 3.0e-5 / 1.5e-4,
 *   q8_K 5.4e-5 / 1.3e-3, q6_K 3.2e-4 / 1.1e-3, q5_K 1.3e-3 / 2.3e-3,
 *   q4_K 5.2e-3 / 3.2e-3, q4_0 7.7e-3 / 3.2e-3, iq4_xs 6.0e-3 / 5.5e-3,
 *   q3_K 2.3e-2 / 3.9e-3, q2_K 8.9e-2 / 7.9e-2, q5_0 1.9e-3 / 3.0e-3,
 *   q5_1 1.5e-3 / 2.9e-3, q4_1 6.2e-3 / 1.4e-2, iq4_nl 6.3e-3 / 5.0e-3.
 * These are what each format allows: they sit where a b-bit quantizer of a
 * Gaussian with per-block scales lands (about 4^-b times a small factor),
 * match ggml's reference quantizers (ktx picks the very same Q4_0/Q8_0
 * blocks as llama.cpp on the oracle's models), and single-scale formats
 * (q8_K: one scale per 256) pay most for outliers. Each bound is about
 * 1.25x (Gaussian) or 1.5x (outliers) the measured figure, so a change
 * that costs a fraction of a bit fails; scaled or partly denormal data
 * gets 1.5x the Gaussian bound (fp16 scales lose precision near 1e-3).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"
#include "kernels/quant_blocks.h"
#include "tests/tap.h"

#define N (64 * QK_K)

struct bound {
	uint32_t type;
	double gauss;    /* NMSE bound on Gaussian data */
	double outliers; /* ... with one large value per 256 */
};

static const struct bound bounds[] = {
	{KTX_TYPE_F32, 0.0, 0.0},
	{KTX_TYPE_F16, 6e-8, 1e-7},
	{KTX_TYPE_BF16, 3.5e-6, 4e-6},
	{KTX_TYPE_Q8_0, 4e-5, 2.5e-4},
	{KTX_TYPE_Q8_K, 7e-5, 2e-3},
	{KTX_TYPE_Q6_K, 4e-4, 1.6e-3},
	{KTX_TYPE_Q5_K, 1.7e-3, 3.5e-3},
	{KTX_TYPE_Q4_K, 6.5e-3, 5e-3},
	{KTX_TYPE_Q5_0, 2.4e-3, 4.5e-3},
	{KTX_TYPE_Q5_1, 1.8e-3, 4.5e-3},
	{KTX_TYPE_Q4_1, 8e-3, 2.2e-2},
	{KTX_TYPE_Q4_0, 1e-2, 5e-3},
	{KTX_TYPE_IQ4_NL, 8e-3, 7.5e-3},
	{KTX_TYPE_IQ4_XS, 7.5e-3, 8e-3},
	{KTX_TYPE_Q3_K, 3e-2, 6e-3},
	{KTX_TYPE_Q2_K, 0.11, 0.12},
};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static float x[N], y[N];
static unsigned char q[N * sizeof(float)];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* xorshift64*: a uniform in (0, 1). */
static double
uniform(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return ((rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53 + 0x1p-54;
}

/* Box-Muller: a standard normal. */
static float
gauss(void)
{
	return (float)(sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform()));
}

/* Quantizes n elements of x as type and back into y; returns the NMSE,
 * or -1 when a call failed or the result is not finite. */
static double
roundtrip(uint32_t type, int64_t n)
{
	struct ktx_err err;
	double e = 0, s = 0;

	if (ktx_quantize(type, x, q, n, &err) != KTX_OK ||
	    ktx_dequantize(type, q, y, n, &err) != KTX_OK) {
		tap_diag("%s: %s", ktx_type_name(type), err.msg);
		return -1;
	}
	for (int64_t i = 0; i < n; i++) {
		if (!isfinite(y[i]))
			return -1;
		e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
		s += (double)x[i] * x[i];
	}
	return s > 0 ? e / s : e;
}

static void
test_gaussian(void)
{
	for (int i = 0; i < N; i++)
		x[i] = gauss();
	for (size_t k = 0; k < NBOUNDS; k++) {
		double e = roundtrip(bounds[k].type, N);

		tap_diag("%-7s nmse %.3g (bound %g)", ktx_type_name(bounds[k].type), e,
		    bounds[k].gauss);
		tap_ok(e >= 0 && e <= bounds[k].gauss, "%s: gaussian round trip within its bound",
		    ktx_type_name(bounds[k].type));
	}
}

/* Outliers: one large value per 256 must not ruin more than its format
 * allows (the K-quants keep per-sub-block scales for this). */
static void
test_outliers(void)
{
	for (int i = 0; i < N; i++)
		x[i] = gauss() * 0.01f + (i % 256 == 17 ? 1.0f : 0.0f);
	for (size_t k = 0; k < NBOUNDS; k++) {
		double e = roundtrip(bounds[k].type, N);

		tap_ok(e >= 0 && e <= bounds[k].outliers, "%s: outliers within %g (%.3g)",
		    ktx_type_name(bounds[k].type), bounds[k].outliers, e);
	}
}

/* Scaled data: the error is relative, from 1e-3 up to 1e4 (fp16
 * super-scales limit both ends). */
static void
test_scales(void)
{
	static const float scales[] = {1e-3f, 1e4f};

	for (size_t s = 0; s < sizeof(scales) / sizeof(scales[0]); s++) {
		for (int i = 0; i < N; i++)
			x[i] = gauss() * scales[s];
		for (size_t k = 0; k < NBOUNDS; k++) {
			double e = roundtrip(bounds[k].type, N);

			tap_ok(e >= 0 && e <= 1.5 * bounds[k].gauss,
			    "%s: data scaled by %g within bound (%.3g)",
			    ktx_type_name(bounds[k].type), (double)scales[s], e);
		}
	}
}

/* An all-zero block comes back as zeros, a constant one close to itself. */
static void
test_flat_blocks(void)
{
	for (size_t k = 0; k < NBOUNDS; k++) {
		const char *name = ktx_type_name(bounds[k].type);
		int zero = 1;

		memset(x, 0, QK_K * sizeof(float));
		memset(y, 0xff, QK_K * sizeof(float));
		double e = roundtrip(bounds[k].type, QK_K);
		for (int i = 0; i < QK_K; i++)
			zero &= y[i] == 0.0f;
		tap_ok(e == 0 && zero, "%s: all-zero block gives zeros", name);

		for (int i = 0; i < QK_K; i++)
			x[i] = -0.7f;
		e = roundtrip(bounds[k].type, QK_K);
		tap_ok(e >= 0 && e <= 1e-4, "%s: constant block within 1e-4 (%.3g)", name, e);
	}
}

/*
 * Values no format can scale (float32 subnormals, 1e-30) must still
 * quantize without undefined behaviour to finite values no larger than
 * the input's magnitude allows; a block mixing them with normal values
 * behaves like the normal part.
 */
static void
test_tiny_values(void)
{
	for (size_t k = 0; k < NBOUNDS; k++) {
		const char *name = ktx_type_name(bounds[k].type);
		int ok = 1;

		for (int i = 0; i < QK_K; i++)
			x[i] = (i % 3 - 1) * (i % 2 ? 1e-40f : 1e-30f);
		ok = roundtrip(bounds[k].type, QK_K) >= 0;
		for (int i = 0; i < QK_K && ok; i++)
			ok = fabsf(y[i]) <= 1e-29f;
		tap_ok(ok, "%s: subnormal-range values quantize to finite, tiny values", name);

		for (int i = 0; i < QK_K; i++)
			x[i] = i < QK_K / 2 ? gauss() : gauss() * 1e-38f;
		double e = roundtrip(bounds[k].type, QK_K);
		tap_ok(e >= 0 && e <= 1.5 * bounds[k].gauss + 1e-9,
		    "%s: half-denormal block within bound (%.3g)", name, e);
	}
}

/* Q8_K's group sums are the sums of its quants. */
static void
test_q8_K_bsums(void)
{
	struct block_q8_K b;
	int ok = 1;

	for (int i = 0; i < QK_K; i++)
		x[i] = gauss();
	ktx_quantize(KTX_TYPE_Q8_K, x, &b, QK_K, NULL);
	for (int j = 0; j < QK_K / 16; j++) {
		int sum = 0;

		for (int i = 0; i < 16; i++)
			sum += b.qs[16 * j + i];
		ok &= sum == b.bsums[j];
	}
	tap_ok(ok, "q8_K bsums are the group sums of its quants");
}

/* Data at an odd address (a GGUF file may align tensors to 1 byte)
 * converts exactly as aligned data does. */
static void
test_misaligned(void)
{
	static unsigned char odd[2 * QK_K * sizeof(float) + 1];
	static float y2[2 * QK_K];

	for (int i = 0; i < 2 * QK_K; i++)
		x[i] = gauss();
	for (size_t k = 0; k < NBOUNDS; k++) {
		uint32_t type = bounds[k].type;
		size_t bytes = ktx_type_row_bytes(type, 2 * QK_K);

		ktx_quantize(type, x, q, 2 * QK_K, NULL);
		ktx_quantize(type, x, odd + 1, 2 * QK_K, NULL);
		ktx_dequantize(type, q, y, 2 * QK_K, NULL);
		ktx_dequantize(type, odd + 1, y2, 2 * QK_K, NULL);
		tap_ok(memcmp(q, odd + 1, bytes) == 0 &&
		    memcmp(y, y2, 2 * QK_K * sizeof(float)) == 0,
		    "%s: converting at an odd address gives the same bits", ktx_type_name(type));
	}
}

static void
test_checks(void)
{
	struct ktx_err err;
	const struct ktx_type_traits *t;
	float f[64] = {0};
	int rc;

	rc = ktx_quantize(KTX_TYPE_Q8_0, f, q, 33, &err);
	tap_is_int(rc, KTX_EINVAL, "33 elements of q8_0 are refused");
	tap_ok(strstr(err.msg, "whole number") != NULL && strstr(err.msg, "q8_0") != NULL,
	    "the message names the type and the cause: %s", err.msg);
	rc = ktx_dequantize(KTX_TYPE_Q4_K, q, f, 64, &err);
	tap_is_int(rc, KTX_EINVAL, "64 elements of q4_K are refused");
	rc = ktx_dequantize(KTX_TYPE_Q4_0, q, f, -32, &err);
	tap_is_int(rc, KTX_EINVAL, "a negative count is refused");
	rc = ktx_dequantize(4, q, f, 32, &err);
	tap_is_int(rc, KTX_EFORMAT, "a retired type id is refused");
	rc = ktx_dequantize(1000, q, f, 32, &err);
	tap_is_int(rc, KTX_EFORMAT, "an out-of-range type id is refused");
	tap_ok(strstr(err.msg, "1000") != NULL, "the message names the id: %s", err.msg);
	rc = ktx_quantize(KTX_TYPE_IQ2_XXS, f, q, 256, &err);
	tap_is_int(rc, KTX_EUNSUPPORTED, "quantizing to iq2_xxs is unsupported");
	rc = ktx_quantize(KTX_TYPE_IQ3_S, f, q, 256, &err);
	tap_is_int(rc, KTX_EUNSUPPORTED, "iq3_s can be read but not made");
	rc = ktx_dequantize(KTX_TYPE_Q8_1, q, f, 32, &err);
	tap_is_int(rc, KTX_EUNSUPPORTED, "q8_1 is known but not convertible");
	tap_is_int(ktx_dequantize(KTX_TYPE_Q8_0, q, f, 0, NULL), KTX_OK, "zero elements is fine");

	tap_is_int(ktx_type_row_bytes(KTX_TYPE_Q4_K, 512), 288, "row bytes of q4_K");
	tap_is_int(ktx_type_row_bytes(KTX_TYPE_Q4_K, 500), 0, "row bytes of a partial block is 0");
	tap_is_int(ktx_type_row_bytes(KTX_TYPE_F32, INT64_MAX), 0,
	    "row bytes that overflow give 0");
	tap_is_int(ktx_type_row_bytes(KTX_TYPE_F16, -2), 0, "row bytes of a negative count is 0");
	tap_is_int(ktx_type_row_bytes(KTX_TYPE_Q8_1, 64), 72,
	    "row bytes of a known, unconvertible type");
	tap_is_int(ktx_type_row_bytes(31, 64), 0, "row bytes of an unknown type is 0");
	tap_is_str(ktx_type_name(KTX_TYPE_IQ2_XXS), "iq2_xxs", "type names as ggml spells them");
	tap_is_str(ktx_type_name(KTX_TYPE_Q6_K), "q6_K", "K-quant names keep the capital K");
	tap_is_str(ktx_type_name(33), "type-33", "unknown types get a placeholder name");
	tap_ok(ktx_type_traits(5) == NULL, "retired ids have no traits");

	/* every convertible type's traits agree with its block struct */
	t = ktx_type_traits(KTX_TYPE_Q8_K);
	tap_ok(t != NULL && t->block_elems == QK_K && t->block_bytes == sizeof(struct block_q8_K) &&
	    t->can_quantize && t->can_dequantize, "q8_K traits");
	t = ktx_type_traits(KTX_TYPE_IQ1_M);
	tap_ok(t != NULL && t->block_bytes == sizeof(struct block_iq1_m) && !t->can_quantize &&
	    t->can_dequantize, "iq1_m traits");
	t = ktx_type_traits(KTX_TYPE_BF16);
	tap_ok(t != NULL && t->block_elems == 1 && t->block_bytes == 2, "bf16 traits");
}

int
main(void)
{
	test_gaussian();
	test_outliers();
	test_scales();
	test_flat_blocks();
	test_tiny_values();
	test_q8_K_bsums();
	test_misaligned();
	test_checks();
	return tap_done();
}
