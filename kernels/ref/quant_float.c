/*
 * quant_float.c - the plain float types F32, F16 and BF16 as rows of
 * elements, through the conversions of fp16.h.
 */
#include "kernels/ref/quant_ref.h"

#include <stdint.h>
#include <string.h>

#include "kernels/ref/fp16.h"

/* F32 is stored as is: copies n floats. */
void
ref_dequantize_row_f32(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

/* Copies n floats. */
void
ref_quantize_row_f32(const float *src, void *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

/* Widens n binary16 values (exact). */
void
ref_dequantize_row_f16(const void *src, float *dst, int64_t n)
{
	const uint16_t *x = src;

	for (int64_t i = 0; i < n; i++)
		dst[i] = ktx_fp16_to_fp32(x[i]);
}

/* Rounds n floats to binary16, nearest even. */
void
ref_quantize_row_f16(const float *src, void *dst, int64_t n)
{
	uint16_t *y = dst;

	for (int64_t i = 0; i < n; i++)
		y[i] = ktx_fp32_to_fp16(src[i]);
}

/* Widens n bfloat16 values (exact). */
void
ref_dequantize_row_bf16(const void *src, float *dst, int64_t n)
{
	const uint16_t *x = src;

	for (int64_t i = 0; i < n; i++)
		dst[i] = ktx_bf16_to_fp32(x[i]);
}

/* Rounds n floats to bfloat16, nearest even. */
void
ref_quantize_row_bf16(const float *src, void *dst, int64_t n)
{
	uint16_t *y = dst;

	for (int64_t i = 0; i < n; i++)
		y[i] = ktx_fp32_to_bf16(src[i]);
}
