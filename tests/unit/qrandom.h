/*
 * qrandom.h - random quantized rows and activations for the kernel tests
 * (every byte random, scales of four regimes: normal, the largest finite,
 * the smallest normals, subnormals), and the error bound of a blocked dot
 * product (test_cpu_dot.c's top comment derives it).
 */
#ifndef KTX_TESTS_UNIT_QRANDOM_H
#define KTX_TESTS_UNIT_QRANDOM_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/quant.h"
#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/fp16.h"

/* Scale regimes for weights and activations. */
enum regime { R_NORMAL, R_HUGE, R_TINY, R_DENORMAL, R_COUNT };
static const char *const regime_names[R_COUNT] = { "normal", "huge", "tiny", "denormal" };

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static inline uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static inline float
uniform(void)
{
	return (float)(rnd() & 0xffffff) / 16777216.0f;
}

static inline float
gauss(void)
{
	float u = uniform() + 1e-7f, v = uniform();

	return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* An fp16 super-scale for a regime: ~1e-2, the largest finite values, the
 * smallest normals, or subnormals. */
static inline uint16_t
scale16(enum regime r)
{
	switch (r) {
	case R_HUGE:
		return (uint16_t)(0x7800 | (rnd() & 0x3ff));
	case R_TINY:
		return (uint16_t)(0x0400 | (rnd() & 0x3ff));
	case R_DENORMAL:
		return (uint16_t)(1 + (rnd() & 0x3fe));
	default:
		return ktx_fp32_to_fp16(0.01f * (0.5f + uniform()));
	}
}

static inline void
put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Random bytes for a row of wtype, then valid scales: every other byte
 * pattern is a valid block (indices are in range by their bit width). The
 * float types get finite values of the regime's magnitude. */
static inline void
random_row(uint32_t t, uint8_t *row, int64_t n, enum regime r)
{
	size_t bytes = (size_t)ktx_type_row_bytes(t, n);
	const struct ktx_type_traits *tr = ktx_type_traits(t);
	size_t bb = tr->block_bytes;

	for (size_t i = 0; i < bytes; i++)
		row[i] = (uint8_t)rnd();
	for (int64_t i = 0; i < n / tr->block_elems; i++) {
		uint8_t *b = row + (size_t)i * bb;
		float f = (r == R_HUGE ? 1e4f : r == R_TINY ? 1e-30f : r == R_DENORMAL ? 1e-41f : 1.0f) *
		    gauss();

		switch (t) {
		case KTX_TYPE_F32:
			memcpy(b, &f, sizeof(f));
			break;
		case KTX_TYPE_F16:
			put16(b, r == R_DENORMAL ? (uint16_t)(rnd() & 0x83ff) :
			    ktx_fp32_to_fp16(r == R_HUGE ? f : r == R_TINY ? 1e-3f * f : f));
			break;
		case KTX_TYPE_BF16:
			put16(b, ktx_fp32_to_bf16(f));
			break;
		case KTX_TYPE_Q2_K:
			put16(b + offsetof(struct block_q2_K, d), scale16(r));
			put16(b + offsetof(struct block_q2_K, dmin), scale16(r));
			break;
		case KTX_TYPE_Q3_K:
			put16(b + offsetof(struct block_q3_K, d), scale16(r));
			break;
		case KTX_TYPE_Q6_K:
			put16(b + offsetof(struct block_q6_K, d), scale16(r));
			break;
		case KTX_TYPE_Q4_K:
		case KTX_TYPE_Q5_K:
			put16(b, scale16(r));
			put16(b + 2, scale16(r));
			break;
		case KTX_TYPE_IQ1_M: {
			uint16_t d = scale16(r);

			for (int k = 0; k < 4; k++)
				b[offsetof(struct block_iq1_m, scales) + 2 * k + 1] =
				    (uint8_t)((b[offsetof(struct block_iq1_m, scales) + 2 * k + 1] & 0x0f) |
				    ((d >> (4 * k)) & 0x0f) << 4);
			break;
		}
		default: /* every other type starts with its fp16 scale */
			put16(b, scale16(r));
			break;
		}
	}
}

/* Random activations of a regime, with ties and zeros mixed in. "Huge"
 * is 1e20, but 1e4 for Q8_0, whose fp16 scale holds at most 65504 * 127. */
static inline void
random_act(float *x, int64_t n, enum regime r, int dt)
{
	float huge = dt == KTX_TYPE_Q8_0 ? 1e4f : 1e20f;
	float s = r == R_HUGE ? huge : r == R_TINY ? 1e-30f : r == R_DENORMAL ? 1e-39f : 1.0f;

	for (int64_t i = 0; i < n; i++) {
		uint32_t k = rnd() % 16;

		x[i] = k == 0 ? 0.0f : k == 1 ? s * (float)((int)(rnd() % 255) - 127) * 0.5f :
		    s * gauss();
	}
}

/* The bound described at the top: (2 nb + 16) u S + ops 2^-149. */
static inline double
sum_bound(int64_t nb, double S)
{
	return (2.0 * (double)nb + 16.0) * 0x1p-24 * S + (4.0 * (double)nb + 64.0) * 0x1p-149;
}

/* S: the sum of |term| over elements; the asymmetric K-quants are split
 * into their scale part (mins zeroed) and min part (scales zeroed). */
static inline double
magnitude(uint32_t t, const uint8_t *row, int64_t n, const float *xdq, float *tmp,
    uint8_t *copy)
{
	size_t bytes = (size_t)ktx_type_row_bytes(t, n);
	size_t dofs = 0, mofs = 0, bb = ktx_type_traits(t)->block_bytes;
	double S = 0;

	if (t == KTX_TYPE_Q2_K) {
		dofs = offsetof(struct block_q2_K, d);
		mofs = offsetof(struct block_q2_K, dmin);
	} else if (t == KTX_TYPE_Q4_K || t == KTX_TYPE_Q5_K) {
		dofs = 0;
		mofs = 2;
	} else {
		ktx_dequantize(t, row, tmp, n, NULL);
		for (int64_t i = 0; i < n; i++)
			S += fabs((double)tmp[i] * xdq[i]);
		return S;
	}
	for (int part = 0; part < 2; part++) {
		memcpy(copy, row, bytes);
		for (size_t b = 0; b < bytes / bb; b++)
			put16(copy + b * bb + (part ? dofs : mofs), 0);
		ktx_dequantize(t, copy, tmp, n, NULL);
		for (int64_t i = 0; i < n; i++)
			S += fabs((double)tmp[i] * xdq[i]);
	}
	return S;
}

#endif
