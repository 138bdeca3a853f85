/*
 * fp16.h - conversions between float32 and the two 16-bit float formats of
 * GGUF files: IEEE binary16 ("f16") and bfloat16 ("bf16").
 *
 * Bit-exact with ggml's scalar conversions (ggml/src/ggml-impl.h at
 * llama.cpp 84f71294), which every quantized block depends on:
 *   - f16 -> f32 is exact (subnormals included); a NaN keeps its payload and
 *     comes out quiet, as an x86 float operation on it does in ggml.
 *   - f32 -> f16 rounds to nearest, ties to even; 65520 and above become
 *     infinity; values under half the smallest subnormal become zero; every
 *     NaN becomes the quiet NaN 0x7e00 with the input's sign.
 *   - bf16 -> f32 is exact; f32 -> bf16 rounds to nearest even (carrying into
 *     infinity), and a NaN is truncated and forced quiet.
 * Header-only so the fast kernels can inline the same definitions.
 */
#ifndef KTX_KERNELS_REF_FP16_H
#define KTX_KERNELS_REF_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t
ktx_f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline float
ktx_f32_from_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Converts binary16 bits to float32 (exact). */
static inline float
ktx_fp16_to_fp32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f;
	uint32_t man = h & 0x3ff;

	if (exp == 0x1f) /* infinity, or a NaN made quiet */
		return ktx_f32_from_bits(sign | 0x7f800000 | man << 13 | (man ? 0x400000 : 0));
	if (exp != 0) /* normal: rebias the exponent from 15 to 127 */
		return ktx_f32_from_bits(sign | (exp + 112) << 23 | man << 13);
	/* zero or subnormal: man * 2^-24, exact in float32 */
	return ktx_f32_from_bits(sign | ktx_f32_bits((float)man * 0x1p-24f));
}

/* Converts float32 to binary16 bits, rounding to nearest even. */
static inline uint16_t
ktx_fp32_to_fp16(float f)
{
	uint32_t w = ktx_f32_bits(f);
	uint16_t sign = (uint16_t)((w >> 16) & 0x8000);
	uint32_t a = w & 0x7fffffff;
	uint32_t e, m, shift, q, rem, half;

	if (a > 0x7f800000) /* NaN */
		return sign | 0x7e00;
	if (a >= 0x477ff000) /* >= 65520: rounds to infinity */
		return sign | 0x7c00;
	if (a >= 0x38800000) {
		/* Normal in binary16 (>= 2^-14): rebias, then round the 23-bit
		 * mantissa to 10 bits; a carry correctly bumps the exponent. */
		a -= (uint32_t)(127 - 15) << 23;
		a += 0xfff + ((a >> 13) & 1);
		return sign | (uint16_t)(a >> 13);
	}
	/* Subnormal in binary16: count units of 2^-24, round to even. */
	e = a >> 23;
	if (e < 126 - 24) /* below 2^-25, or a float32 subnormal: zero */
		return sign;
	m = (a & 0x7fffff) | 0x800000; /* the value is m * 2^(e - 150) */
	shift = 126 - e;               /* units of 2^-24: m >> shift */
	q = m >> shift;
	rem = m & ((1u << shift) - 1);
	half = 1u << (shift - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++; /* may reach 0x400, the smallest normal: still right */
	return sign | (uint16_t)q;
}

/* Converts bfloat16 bits to float32 (exact). */
static inline float
ktx_bf16_to_fp32(uint16_t h)
{
	return ktx_f32_from_bits((uint32_t)h << 16);
}

/* Converts float32 to bfloat16 bits, rounding to nearest even. */
static inline uint16_t
ktx_fp32_to_bf16(float f)
{
	uint32_t u = ktx_f32_bits(f);

	if ((u & 0x7fffffff) > 0x7f800000) /* NaN: keep the top payload bits, quiet */
		return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

#endif
