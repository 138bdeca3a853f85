/*
 * quant_legacy.c - the legacy block types of 32 elements: Q4_0, Q5_0 and
 * Q8_0 (an fp16 scale each), Q4_1 and Q5_1 (a scale and a min).
 *
 * llama.cpp falls back to Q5_0 and Q5_1 for Q4_K and Q5_K tensors whose
 * rows are not a multiple of 256 long (DeepSeek's attn_k_b); Q4_1 is their
 * older sibling.
 *
 * The quantizers reproduce ggml's reference ones (quantize_row_q4_0_ref and
 * so on): Q8_0 is also the activation type that Q4_0 and Q8_0 weights are
 * multiplied with, where matching llama.cpp's rounding keeps ktx's
 * quantized path comparable with its figures.
 */
#include "kernels/ref/nofma.h"

#include "kernels/ref/quant_ref.h"

#include <math.h>
#include <stdint.h>

#include "kernels/quant_blocks.h"
#include "kernels/ref/fp16.h"

/* 1/d for quantizing with scale d; 0 when d is 0, or so tiny (a float32
 * subnormal) that 1/d overflows and would make the quants undefined. Such
 * a scale is 0 in fp16, so the block reads back as zeros either way. */
static float
inverse_scale(float d)
{
	float id = d != 0.0f ? 1.0f / d : 0.0f;

	return isinf(id) ? 0.0f : id;
}

/* x = d * (q - 8); element j is the low nibble of qs[j], j + 16 the high. */
void
ref_dequantize_row_q4_0(const void *src, float *dst, int64_t n)
{
	const struct block_q4_0 *x = src;

	for (int64_t i = 0; i < n / QK4_0; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int j = 0; j < QK4_0 / 2; j++) {
			dst[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
			dst[j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
		}
		dst += QK4_0;
	}
}

/*
 * The element of largest magnitude maps to -8 exactly (d = max / -8), so
 * the sign of the extreme decides which end of the asymmetric range 0..15
 * the block uses fully.
 */
void
ref_quantize_row_q4_0(const float *src, void *dst, int64_t n)
{
	struct block_q4_0 *y = dst;

	for (int64_t i = 0; i < n / QK4_0; i++) {
		const float *x = src + i * QK4_0;
		float amax = 0.0f, max = 0.0f;

		for (int j = 0; j < QK4_0; j++) {
			if (fabsf(x[j]) > amax) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		float d = max / -8;
		y[i].d = ktx_fp32_to_fp16(d);
		float id = inverse_scale(d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			/* x * id lies in [-8, 8]: + 8.5 then truncation rounds */
			int q0 = (int)(x[j] * id + 8.5f);
			int q1 = (int)(x[j + QK4_0 / 2] * id + 8.5f);

			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
		}
	}
}

/* x = d * q + m; nibbles as Q4_0. */
void
ref_dequantize_row_q4_1(const void *src, float *dst, int64_t n)
{
	const struct block_q4_1 *x = src;

	for (int64_t i = 0; i < n / QK4_1; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);
		float m = ktx_fp16_to_fp32(x[i].m);

		for (int j = 0; j < QK4_1 / 2; j++) {
			dst[j] = (x[i].qs[j] & 0x0f) * d + m;
			dst[j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
		}
		dst += QK4_1;
	}
}

/* The range of x[0..31]: min and max. */
static void
block_range(const float *x, float *min, float *max)
{
	*min = x[0];
	*max = x[0];
	for (int j = 1; j < 32; j++) {
		if (x[j] < *min)
			*min = x[j];
		if (x[j] > *max)
			*max = x[j];
	}
}

/* Asymmetric: the block's min maps to 0 and its max to 15. */
void
ref_quantize_row_q4_1(const float *src, void *dst, int64_t n)
{
	struct block_q4_1 *y = dst;

	for (int64_t i = 0; i < n / QK4_1; i++) {
		const float *x = src + i * QK4_1;
		float min, max;

		block_range(x, &min, &max);
		float d = (max - min) / 15;
		float id = inverse_scale(d);
		y[i].d = ktx_fp32_to_fp16(d);
		y[i].m = ktx_fp32_to_fp16(min);
		for (int j = 0; j < QK4_1 / 2; j++) {
			/* (x - min) * id lies in [0, 15]: + 0.5 then truncation rounds */
			int q0 = (int)((x[j] - min) * id + 0.5f);
			int q1 = (int)((x[j + QK4_1 / 2] - min) * id + 0.5f);

			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
		}
	}
}

/* Packs 32 5-bit quants as Q5_0 / Q5_1 do: nibbles as Q4_0, the fifth bit
 * of element j as bit j of the little-endian word qh. */
static void
q5_pack(const int *q, uint8_t *qs, uint8_t *qh)
{
	uint32_t high = 0;

	for (int j = 0; j < 16; j++)
		qs[j] = (uint8_t)((q[j] & 0x0f) | (q[j + 16] & 0x0f) << 4);
	for (int j = 0; j < 32; j++)
		high |= (uint32_t)(q[j] >> 4) << j;
	for (int k = 0; k < 4; k++)
		qh[k] = (uint8_t)(high >> (8 * k));
}

/* The 5-bit quant of element j of a Q5_0 / Q5_1 block: its nibble, and
 * bit j of the little-endian qh word on top. */
static int
q5_quant(const uint8_t *qs, const uint8_t *qh, int j)
{
	uint32_t high = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 |
	    (uint32_t)qh[3] << 24;
	int nib = j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;

	return nib | (int)((high >> j) & 1) << 4;
}

/* x = d * (q - 16). */
void
ref_dequantize_row_q5_0(const void *src, float *dst, int64_t n)
{
	const struct block_q5_0 *x = src;

	for (int64_t i = 0; i < n / QK5_0; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int j = 0; j < QK5_0; j++)
			dst[j] = (q5_quant(x[i].qs, x[i].qh, j) - 16) * d;
		dst += QK5_0;
	}
}

/* Symmetric as Q4_0: the extreme maps to -16. */
void
ref_quantize_row_q5_0(const float *src, void *dst, int64_t n)
{
	struct block_q5_0 *y = dst;
	int q[QK5_0];

	for (int64_t i = 0; i < n / QK5_0; i++) {
		const float *x = src + i * QK5_0;
		float amax = 0.0f, max = 0.0f;

		for (int j = 0; j < QK5_0; j++) {
			if (fabsf(x[j]) > amax) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		float d = max / -16;
		float id = inverse_scale(d);
		y[i].d = ktx_fp32_to_fp16(d);
		for (int j = 0; j < QK5_0; j++) {
			q[j] = (int)(x[j] * id + 16.5f);
			q[j] = q[j] > 31 ? 31 : q[j];
		}
		q5_pack(q, y[i].qs, y[i].qh);
	}
}

/* x = d * q + m. */
void
ref_dequantize_row_q5_1(const void *src, float *dst, int64_t n)
{
	const struct block_q5_1 *x = src;

	for (int64_t i = 0; i < n / QK5_1; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);
		float m = ktx_fp16_to_fp32(x[i].m);

		for (int j = 0; j < QK5_1; j++)
			dst[j] = q5_quant(x[i].qs, x[i].qh, j) * d + m;
		dst += QK5_1;
	}
}

/* Asymmetric as Q4_1, to 0..31. */
void
ref_quantize_row_q5_1(const float *src, void *dst, int64_t n)
{
	struct block_q5_1 *y = dst;
	int q[QK5_1];

	for (int64_t i = 0; i < n / QK5_1; i++) {
		const float *x = src + i * QK5_1;
		float min, max;

		block_range(x, &min, &max);
		float d = (max - min) / 31;
		float id = inverse_scale(d);
		y[i].d = ktx_fp32_to_fp16(d);
		y[i].m = ktx_fp32_to_fp16(min);
		for (int j = 0; j < QK5_1; j++) {
			q[j] = (int)((x[j] - min) * id + 0.5f);
			q[j] = q[j] > 31 ? 31 : q[j];
		}
		q5_pack(q, y[i].qs, y[i].qh);
	}
}

/* x = d * q. */
void
ref_dequantize_row_q8_0(const void *src, float *dst, int64_t n)
{
	const struct block_q8_0 *x = src;

	for (int64_t i = 0; i < n / QK8_0; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int j = 0; j < QK8_0; j++)
			dst[j] = x[i].qs[j] * d;
		dst += QK8_0;
	}
}

/* Symmetric: the largest magnitude maps to +-127, others round to nearest
 * (half away from zero). */
void
ref_quantize_row_q8_0(const float *src, void *dst, int64_t n)
{
	struct block_q8_0 *y = dst;

	for (int64_t i = 0; i < n / QK8_0; i++) {
		const float *x = src + i * QK8_0;
		float amax = 0.0f;

		for (int j = 0; j < QK8_0; j++)
			amax = fmaxf(amax, fabsf(x[j]));
		float d = amax / 127;
		y[i].d = ktx_fp32_to_fp16(d);
		float id = inverse_scale(d);
		for (int j = 0; j < QK8_0; j++)
			y[i].qs[j] = (int8_t)roundf(x[j] * id);
	}
}
