/*
 * quant_k.c - the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and the activation
 * type Q8_K: super-blocks of 256 elements whose sub-block scales are
 * themselves quantized against one or two fp16 super-scales.
 *
 * The dequantizers define the formats (bit-exact with ggml's, including the
 * order in which products are rounded). The quantizers follow ggml's
 * non-imatrix reference quantizers: fit each sub-block (a scale and, for the
 * asymmetric types, a min) by a small search, quantize those fits against
 * the super-scale, then requantize every element with the scale it will
 * actually be read back with.
 */
#include "kernels/ref/nofma.h"

#include "kernels/ref/quant_ref.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/quant_util.h"

/* ---- scale packing ---- */

/* Sub-block j's 6-bit scale and min of Q4_K / Q5_K: j < 4 in the low 6 bits
 * of bytes j and j + 4; j >= 4 as nibbles of byte j + 4 with the top two
 * bits in the spare high bits of bytes j - 4 and j. */
static void
k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (uint8_t)((q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4);
		*m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
	}
}

/* The inverse of k4_scale_min for all 8 sub-blocks. */
static void
k4_pack_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *q)
{
	for (int j = 0; j < 4; j++) {
		q[j] = ls[j];
		q[j + 4] = lm[j];
	}
	for (int j = 4; j < 8; j++) {
		q[j + 4] = (uint8_t)((ls[j] & 0x0f) | (lm[j] & 0x0f) << 4);
		q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
		q[j] |= (uint8_t)((lm[j] >> 4) << 6);
	}
}

/* Sub-block j's 6-bit scale of Q3_K (still biased by 32): low nibble from
 * byte j (j < 8) or the high nibble of byte j - 8, top two bits from byte
 * 8 + j % 4 at bit 2 * (j / 4). */
static int
k3_scale(int j, const uint8_t *q)
{
	int lo = j < 8 ? q[j] & 0x0f : q[j - 8] >> 4;
	int hi = (q[8 + j % 4] >> (2 * (j / 4))) & 3;

	return lo | hi << 4;
}

/* 2-bit fields: element 128h + 32s + l (l < 32) sits in byte 32h + l of qs
 * at bits 2s, for Q2_K's and Q3_K's low bits alike. */
static void
pack_2bit(const uint8_t *L, uint8_t *qs)
{
	for (int h = 0; h < QK_K; h += 128)
		for (int l = 0; l < 32; l++)
			qs[h / 4 + l] = (uint8_t)(L[h + l] | L[h + l + 32] << 2 |
			    L[h + l + 64] << 4 | L[h + l + 96] << 6);
}

/* ---- sub-block fits ---- */

/*
 * Fits x[i] ~ scale * L[i] + min, L in 0..nmax, min <= 0, minimising the
 * w-weighted squared (or, with use_mad, absolute) error: starting from the
 * plain range fit, it tries nstep + 1 stretched scales, solves the weighted
 * least-squares scale and min for each rounding and keeps the best.
 * Returns the scale; *neg_min gets -min (>= 0).
 */
static float
fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
    float rmin, float rdelta, int nstep, bool use_mad)
{
	uint8_t Laux[32];
	float min = x[0], max = x[0];
	float sum_w = w[0], sum_x = w[0] * x[0];

	for (int i = 1; i < n; i++) {
		if (x[i] < min)
			min = x[i];
		if (x[i] > max)
			max = x[i];
		sum_w += w[i];
		sum_x += w[i] * x[i];
	}
	if (min > 0)
		min = 0;
	if (max == min) {
		memset(L, 0, (size_t)n);
		*neg_min = -min;
		return 0.0f;
	}
	float iscale = nmax / (max - min);
	float scale = 1 / iscale;
	float best = 0;
	for (int i = 0; i < n; i++) {
		L[i] = (uint8_t)round_clamp(iscale * (x[i] - min), 0, nmax);
		float diff = scale * L[i] + min - x[i];
		diff = use_mad ? fabsf(diff) : diff * diff;
		best += w[i] * diff;
	}
	for (int is = 0; is <= nstep; is++) {
		float sum_l = 0, sum_l2 = 0, sum_xl = 0;

		iscale = (rmin + rdelta * is + nmax) / (max - min);
		for (int i = 0; i < n; i++) {
			int l = round_clamp(iscale * (x[i] - min), 0, nmax);
			Laux[i] = (uint8_t)l;
			sum_l += w[i] * l;
			sum_l2 += w[i] * l * l;
			sum_xl += w[i] * l * x[i];
		}
		float D = sum_w * sum_l2 - sum_l * sum_l;
		if (!(D > 0))
			continue;
		float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
		float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
		if (this_min > 0) {
			this_min = 0;
			this_scale = sum_xl / sum_l2;
		}
		float err = 0;
		for (int i = 0; i < n; i++) {
			float diff = this_scale * Laux[i] + this_min - x[i];
			diff = use_mad ? fabsf(diff) : diff * diff;
			err += w[i] * diff;
		}
		if (err < best) {
			memcpy(L, Laux, (size_t)n);
			best = err;
			scale = this_scale;
			min = this_min;
		}
	}
	*neg_min = -min;
	return scale;
}

/*
 * Fits x[i] ~ scale * (L[i] - nmax), L in 0..2 nmax - 1, for Q3_K: start
 * from the scale that maps the extreme to -nmax, then move single elements
 * to the level that most improves the x^2-weighted least-squares fit, for
 * up to 5 rounds. Returns the scale (0 for an all-zero group, L all 0).
 */
static float
fit_scale_q3(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0;

	for (int i = 0; i < n; i++) {
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			max = x[i];
		}
	}
	if (amax < QUANT_GROUP_EPS) {
		memset(L, 0, (size_t)n);
		return 0.0f;
	}
	float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = round_clamp(iscale * x[i], -nmax, nmax - 1);
		float w = x[i] * x[i];
		L[i] = (int8_t)l;
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	for (int round = 0; round < 5; round++) {
		int changed = 0;

		for (int i = 0; i < n; i++) {
			float w = x[i] * x[i];
			float slx = sumlx - w * x[i] * L[i];
			if (!(slx > 0))
				continue;
			float sl2 = suml2 - w * L[i] * L[i];
			int l = round_clamp(x[i] * sl2 / slx, -nmax, nmax - 1);
			if (l == L[i])
				continue;
			slx += w * x[i] * l;
			sl2 += w * l * l;
			if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
				L[i] = (int8_t)l;
				sumlx = slx;
				suml2 = sl2;
				changed++;
			}
		}
		if (!changed)
			break;
	}
	for (int i = 0; i < n; i++)
		L[i] = (int8_t)(L[i] + nmax);
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* The x^2-weighted fit error terms of x at levels l = round(iscale x),
 * clamped to -nmax..nmax-1; optionally stores L = l + nmax. */
static void
sym_sums(int n, int nmax, const float *x, float iscale, int8_t *L, float *sumlx, float *suml2)
{
	*sumlx = *suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = round_clamp(iscale * x[i], -nmax, nmax - 1);
		float w = x[i] * x[i];
		if (L != NULL)
			L[i] = (int8_t)(l + nmax);
		*sumlx += w * x[i] * l;
		*suml2 += w * l * l;
	}
}

/*
 * Fits x[i] ~ scale * (L[i] - nmax), L in 0..2 nmax - 1, for Q6_K: the
 * extreme mapped to -nmax, then 18 stretched scales, keeping the one whose
 * least-squares scale explains the most x^2-weighted energy.
 */
static float
fit_scale_sym(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0, sumlx, suml2;

	for (int i = 0; i < n; i++) {
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			max = x[i];
		}
	}
	if (amax < QUANT_GROUP_EPS) {
		memset(L, 0, (size_t)n);
		return 0.0f;
	}
	sym_sums(n, nmax, x, -nmax / max, L, &sumlx, &suml2);
	float scale = suml2 ? sumlx / suml2 : 0.0f;
	float best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		float iscale = -(nmax + 0.1f * is) / max;
		sym_sums(n, nmax, x, iscale, NULL, &sumlx, &suml2);
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			sym_sums(n, nmax, x, iscale, L, &sumlx, &suml2);
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/* ---- Q2_K ---- */

/* x = d * sc * q - dmin * m over 16 sub-blocks of 16. */
void
ref_dequantize_row_q2_K(const void *src, float *dst, int64_t n)
{
	const struct block_q2_K *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);
		float dmin = ktx_fp16_to_fp32(x[i].dmin);

		for (int h = 0; h < 2; h++) {
			const uint8_t *q = x[i].qs + 32 * h;

			for (int s = 0; s < 4; s++) {
				for (int sub = 0; sub < 2; sub++) {
					uint8_t sc = x[i].scales[8 * h + 2 * s + sub];
					float dl = d * (sc & 0x0f);
					float ml = dmin * (sc >> 4);

					for (int l = 0; l < 16; l++)
						*dst++ = dl * ((q[16 * sub + l] >> (2 * s)) & 3) -
						    ml;
				}
			}
		}
	}
}

void
ref_quantize_row_q2_K(const float *src, void *dst, int64_t n)
{
	struct block_q2_K *y = dst;
	uint8_t L[QK_K];
	float weights[16], mins[QK_K / 16], scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float max_scale = 0, max_min = 0;

		for (int j = 0; j < QK_K / 16; j++) {
			for (int l = 0; l < 16; l++)
				weights[l] = fabsf(x[16 * j + l]);
			scales[j] = fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j],
			    -0.5f, 0.1f, 15, true);
			if (scales[j] > max_scale)
				max_scale = scales[j];
			if (mins[j] > max_min)
				max_min = mins[j];
		}
		/* 4-bit scales and mins against the two super-scales */
		float iscale = max_scale > 0 ? 15.0f / max_scale : 0.0f;
		float imin = max_min > 0 ? 15.0f / max_min : 0.0f;
		for (int j = 0; j < QK_K / 16; j++)
			y[i].scales[j] = (uint8_t)(round_clamp(iscale * scales[j], 0, 15) |
			    round_clamp(imin * mins[j], 0, 15) << 4);
		y[i].d = ktx_fp32_to_fp16(max_scale > 0 ? max_scale / 15.0f : 0.0f);
		y[i].dmin = ktx_fp32_to_fp16(max_min > 0 ? max_min / 15.0f : 0.0f);

		/* requantize with the scales as they will be read back */
		for (int j = 0; j < QK_K / 16; j++) {
			float d = ktx_fp16_to_fp32(y[i].d) * (y[i].scales[j] & 0x0f);
			if (d == 0.0f)
				continue;
			float dm = ktx_fp16_to_fp32(y[i].dmin) * (y[i].scales[j] >> 4);
			for (int l = 0; l < 16; l++)
				L[16 * j + l] =
				    (uint8_t)round_clamp((x[16 * j + l] + dm) / d, 0, 3);
		}
		pack_2bit(L, y[i].qs);
	}
}

/* ---- Q3_K ---- */

/* x = d * (sc - 32) * (q - 4), q = low 2 bits | high bit << 2. */
void
ref_dequantize_row_q3_K(const void *src, float *dst, int64_t n)
{
	const struct block_q3_K *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d_all = ktx_fp16_to_fp32(x[i].d);

		for (int h = 0; h < 2; h++) {
			const uint8_t *q = x[i].qs + 32 * h;

			for (int s = 0; s < 4; s++) {
				uint8_t m = (uint8_t)(1u << (4 * h + s));

				for (int sub = 0; sub < 2; sub++) {
					int sc = k3_scale(8 * h + 2 * s + sub, x[i].scales);
					float dl = d_all * (sc - 32);

					for (int l = 16 * sub; l < 16 * sub + 16; l++)
						*dst++ = dl * (((q[l] >> (2 * s)) & 3) -
						    ((x[i].hmask[l] & m) ? 0 : 4));
				}
			}
		}
	}
}

void
ref_quantize_row_q3_K(const float *src, void *dst, int64_t n)
{
	struct block_q3_K *y = dst;
	int8_t L[QK_K];
	float scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float max_scale = 0, amax = 0;

		for (int j = 0; j < QK_K / 16; j++) {
			scales[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
			if (fabsf(scales[j]) > amax) {
				amax = fabsf(scales[j]);
				max_scale = scales[j];
			}
		}
		/* 6-bit signed scales: the extreme maps to -32 */
		memset(y[i].scales, 0, sizeof(y[i].scales));
		if (max_scale != 0.0f) {
			float iscale = -32.0f / max_scale;

			for (int j = 0; j < QK_K / 16; j++) {
				int l = round_clamp(iscale * scales[j], -32, 31) + 32;

				if (j < 8)
					y[i].scales[j] = (uint8_t)(l & 0x0f);
				else
					y[i].scales[j - 8] |= (uint8_t)((l & 0x0f) << 4);
				y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
			}
			y[i].d = ktx_fp32_to_fp16(1 / iscale);
		} else {
			y[i].d = ktx_fp32_to_fp16(0.0f);
		}

		for (int j = 0; j < QK_K / 16; j++) {
			float d = ktx_fp16_to_fp32(y[i].d) * (k3_scale(j, y[i].scales) - 32);
			if (d == 0.0f)
				continue;
			for (int l = 0; l < 16; l++)
				L[16 * j + l] = (int8_t)(round_clamp(x[16 * j + l] / d, -4, 3) + 4);
		}

		/* high bit of element j: hmask[j % 32], bit j / 32 */
		uint8_t low[QK_K];
		memset(y[i].hmask, 0, sizeof(y[i].hmask));
		for (int j = 0; j < QK_K; j++) {
			if (L[j] > 3)
				y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
			low[j] = (uint8_t)(L[j] & 3);
		}
		pack_2bit(low, y[i].qs);
	}
}

/* ---- Q4_K ---- */

/* x = d * sc * q - dmin * m over 8 sub-blocks of 32; sub-blocks 2c and
 * 2c + 1 share bytes 32c..32c+31 of qs (low and high nibbles). */
void
ref_dequantize_row_q4_K(const void *src, float *dst, int64_t n)
{
	const struct block_q4_K *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);
		float dmin = ktx_fp16_to_fp32(x[i].dmin);

		for (int c = 0; c < 4; c++) {
			const uint8_t *q = x[i].qs + 32 * c;
			uint8_t sc, m;

			k4_scale_min(2 * c, x[i].scales, &sc, &m);
			float d1 = d * sc, m1 = dmin * m;
			k4_scale_min(2 * c + 1, x[i].scales, &sc, &m);
			float d2 = d * sc, m2 = dmin * m;
			for (int l = 0; l < 32; l++)
				*dst++ = d1 * (q[l] & 0x0f) - m1;
			for (int l = 0; l < 32; l++)
				*dst++ = d2 * (q[l] >> 4) - m2;
		}
	}
}

/*
 * Shared by Q4_K and Q5_K (nmax 15 or 31): fits the 8 sub-blocks with
 * weights |x| + rms, quantizes their scales and mins to 6 bits against
 * d and dmin, then requantizes the elements into L.
 */
static void
quantize_k4_block(const float *x, int nmax, float rmin, int nstep, uint16_t *d16, uint16_t *dmin16,
    uint8_t *packed_scales, uint8_t *L)
{
	float weights[32], mins[QK_K / 32], scales[QK_K / 32];
	uint8_t ls[QK_K / 32], lm[QK_K / 32];
	float max_scale = 0, max_min = 0;

	for (int j = 0; j < QK_K / 32; j++) {
		const float *xb = x + 32 * j;
		float sum_x2 = 0;

		for (int l = 0; l < 32; l++)
			sum_x2 += xb[l] * xb[l];
		float av_x = sqrtf(sum_x2 / 32);
		for (int l = 0; l < 32; l++)
			weights[l] = av_x + fabsf(xb[l]);
		scales[j] = fit_scale_min(32, nmax, xb, weights, L + 32 * j, &mins[j],
		    rmin, 0.1f, nstep, false);
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}
	float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
	float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
	for (int j = 0; j < QK_K / 32; j++) {
		ls[j] = (uint8_t)round_clamp(inv_scale * scales[j], 0, 63);
		lm[j] = (uint8_t)round_clamp(inv_min * mins[j], 0, 63);
	}
	k4_pack_scales(ls, lm, packed_scales);
	*d16 = ktx_fp32_to_fp16(max_scale / 63.0f);
	*dmin16 = ktx_fp32_to_fp16(max_min / 63.0f);

	for (int j = 0; j < QK_K / 32; j++) {
		uint8_t sc, m;

		k4_scale_min(j, packed_scales, &sc, &m);
		float d = ktx_fp16_to_fp32(*d16) * sc;
		if (d == 0.0f)
			continue;
		float dm = ktx_fp16_to_fp32(*dmin16) * m;
		for (int l = 0; l < 32; l++)
			L[32 * j + l] = (uint8_t)round_clamp((x[32 * j + l] + dm) / d, 0, nmax);
	}
}

void
ref_quantize_row_q4_K(const float *src, void *dst, int64_t n)
{
	struct block_q4_K *y = dst;
	uint8_t L[QK_K];

	for (int64_t i = 0; i < n / QK_K; i++) {
		quantize_k4_block(src + i * QK_K, 15, -1.0f, 20, &y[i].d, &y[i].dmin,
		    y[i].scales, L);
		for (int c = 0; c < 4; c++)
			for (int l = 0; l < 32; l++)
				y[i].qs[32 * c + l] =
				    (uint8_t)(L[64 * c + l] | L[64 * c + l + 32] << 4);
	}
}

/* ---- Q5_K ---- */

/* As Q4_K, plus bit 2c (low nibbles) or 2c + 1 (high) of qh[l] as 16. */
void
ref_dequantize_row_q5_K(const void *src, float *dst, int64_t n)
{
	const struct block_q5_K *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);
		float dmin = ktx_fp16_to_fp32(x[i].dmin);

		for (int c = 0; c < 4; c++) {
			const uint8_t *ql = x[i].qs + 32 * c;
			const uint8_t *qh = x[i].qh;
			uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
			uint8_t sc, m;

			k4_scale_min(2 * c, x[i].scales, &sc, &m);
			float d1 = d * sc, m1 = dmin * m;
			k4_scale_min(2 * c + 1, x[i].scales, &sc, &m);
			float d2 = d * sc, m2 = dmin * m;
			for (int l = 0; l < 32; l++)
				*dst++ = d1 * ((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*dst++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
		}
	}
}

void
ref_quantize_row_q5_K(const float *src, void *dst, int64_t n)
{
	struct block_q5_K *y = dst;
	uint8_t L[QK_K];

	for (int64_t i = 0; i < n / QK_K; i++) {
		quantize_k4_block(src + i * QK_K, 31, -0.5f, 15, &y[i].d, &y[i].dmin,
		    y[i].scales, L);
		memset(y[i].qh, 0, sizeof(y[i].qh));
		for (int c = 0; c < 4; c++) {
			for (int l = 0; l < 32; l++) {
				int l1 = L[64 * c + l], l2 = L[64 * c + l + 32];

				if (l1 > 15) {
					l1 -= 16;
					y[i].qh[l] |= (uint8_t)(1u << (2 * c));
				}
				if (l2 > 15) {
					l2 -= 16;
					y[i].qh[l] |= (uint8_t)(2u << (2 * c));
				}
				y[i].qs[32 * c + l] = (uint8_t)(l1 | l2 << 4);
			}
		}
	}
}

/* ---- Q6_K ---- */

/* x = d * sc * (q - 32). Element 128h + 32k + l (k < 4, l < 32) takes its
 * low 4 bits from ql[64h + 32(k & 1) + l] (the low nibble for k < 2, the
 * high one for k >= 2), its top 2 bits from qh[32h + l] at bit 2k, and its
 * scale from scales[8h + 2k + l / 16]. */
void
ref_dequantize_row_q6_K(const void *src, float *dst, int64_t n)
{
	const struct block_q6_K *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = x[i].ql + 64 * h;
			const uint8_t *qh = x[i].qh + 32 * h;
			const int8_t *sc = x[i].scales + 8 * h;
			float *y = dst + 128 * h;

			for (int l = 0; l < 32; l++) {
				int is = l / 16;
				int q1 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
				int q2 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
				int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
				int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;

				y[l] = d * sc[is] * q1;
				y[l + 32] = d * sc[is + 2] * q2;
				y[l + 64] = d * sc[is + 4] * q3;
				y[l + 96] = d * sc[is + 6] * q4;
			}
		}
		dst += QK_K;
	}
}

void
ref_quantize_row_q6_K(const float *src, void *dst, int64_t n)
{
	struct block_q6_K *y = dst;
	int8_t L[QK_K];
	float scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float max_scale = 0, max_abs_scale = 0;

		for (int j = 0; j < QK_K / 16; j++) {
			scales[j] = fit_scale_sym(16, 32, x + 16 * j, L + 16 * j);
			if (fabsf(scales[j]) > max_abs_scale) {
				max_abs_scale = fabsf(scales[j]);
				max_scale = scales[j];
			}
		}
		if (max_abs_scale < QUANT_GROUP_EPS) {
			memset(&y[i], 0, sizeof(y[i]));
			continue;
		}
		/* 8-bit signed scales: the extreme maps to -128 */
		float iscale = -128.0f / max_scale;
		y[i].d = ktx_fp32_to_fp16(1 / iscale);
		for (int j = 0; j < QK_K / 16; j++)
			y[i].scales[j] = (int8_t)round_clamp(iscale * scales[j], -128, 127);

		for (int j = 0; j < QK_K / 16; j++) {
			float d = ktx_fp16_to_fp32(y[i].d) * y[i].scales[j];
			if (d == 0.0f)
				continue;
			for (int l = 0; l < 16; l++)
				L[16 * j + l] =
				    (int8_t)(round_clamp(x[16 * j + l] / d, -32, 31) + 32);
		}

		for (int h = 0; h < 2; h++) {
			const int8_t *Lh = L + 128 * h;
			uint8_t *ql = y[i].ql + 64 * h;
			uint8_t *qh = y[i].qh + 32 * h;

			for (int l = 0; l < 32; l++) {
				ql[l] = (uint8_t)((Lh[l] & 0x0f) | (Lh[l + 64] & 0x0f) << 4);
				ql[l + 32] =
			    (uint8_t)((Lh[l + 32] & 0x0f) | (Lh[l + 96] & 0x0f) << 4);
				qh[l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 |
				    (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
			}
		}
	}
}

/* ---- Q8_K ---- */

/* x = d * q with a float32 d. */
void
ref_dequantize_row_q8_K(const void *src, float *dst, int64_t n)
{
	const struct block_q8_K *x = src;

	for (int64_t i = 0; i < n / QK_K; i++)
		for (int j = 0; j < QK_K; j++)
			*dst++ = x[i].d * x[i].qs[j];
}

/*
 * Symmetric with the extreme mapped to -127 (not -128, as ggml does so its
 * IQ2 SIMD kernels can negate quants freely); also fills the group sums.
 */
void
ref_quantize_row_q8_K(const float *src, void *dst, int64_t n)
{
	struct block_q8_K *y = dst;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float max = 0, amax = 0;

		for (int j = 0; j < QK_K; j++) {
			if (fabsf(x[j]) > amax) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		if (amax == 0.0f) {
			memset(&y[i], 0, sizeof(y[i]));
			continue;
		}
		float iscale = -127.0f / max;
		for (int j = 0; j < QK_K; j++)
			y[i].qs[j] = (int8_t)round_clamp(iscale * x[j], -128, 127);
		for (int j = 0; j < QK_K / 16; j++) {
			int sum = 0;

			for (int l = 0; l < 16; l++)
				sum += y[i].qs[16 * j + l];
			y[i].bsums[j] = (int16_t)sum;
		}
		y[i].d = 1 / iscale;
	}
}
