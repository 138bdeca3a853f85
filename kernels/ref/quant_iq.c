/*
 * quant_iq.c - the i-quants DeepSeek GGUF files use: IQ1_S, IQ1_M, IQ2_XXS,
 * IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S (indices into lattice grids, with signs),
 * IQ4_XS and IQ4_NL (4-bit indices into a non-linear value table; IQ4_NL
 * is llama.cpp's fallback for rows that are not a multiple of 256 long).
 *
 * The dequantizers are bit-exact with ggml's (the order of every rounding
 * kept). Only IQ4_XS and IQ4_NL have quantizers: the grid types need an
 * importance matrix and a nearest-neighbour search over the grid to be any
 * good, and ktx does not make such files.
 */
#include "kernels/ref/nofma.h"

#include "kernels/ref/quant_ref.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/iq_tables.h"
#include "kernels/ref/quant_util.h"

/* Byte j of a grid entry. */
static inline int
grid_byte(uint64_t entry, int j)
{
	return (int)((entry >> (8 * j)) & 0xff);
}

/* +-1 for value j under an 8-bit sign mask. */
static inline float
sign_of(uint8_t signs, int j)
{
	return (signs & kmask_iq2xs[j]) ? -1.0f : 1.0f;
}

/* Little-endian uint32 at p. */
static inline uint32_t
load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- IQ2_XXS ---- */

/*
 * Per group of 32, two uint32s: the first holds four 8-bit grid indices (8
 * values each), the second four 7-bit sign codes and, in its top 4 bits,
 * the scale: x = d * (0.5 + s) / 4 * grid * sign.
 */
void
ref_dequantize_row_iq2_xxs(const void *src, float *dst, int64_t n)
{
	const struct block_iq2_xxs *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint16_t *q = x[i].qs + 4 * ib;
			uint32_t idx = (uint32_t)q[0] | (uint32_t)q[1] << 16;
			uint32_t sgn = (uint32_t)q[2] | (uint32_t)q[3] << 16;
			float db = d * (0.5f + (sgn >> 28)) * 0.25f;

			for (int l = 0; l < 4; l++) {
				uint64_t grid = iq2xxs_grid[(idx >> (8 * l)) & 0xff];
				uint8_t signs = ksigns_iq2xs[(sgn >> (7 * l)) & 127];

				for (int j = 0; j < 8; j++)
					*dst++ = db * grid_byte(grid, j) * sign_of(signs, j);
			}
		}
	}
}

/* ---- IQ2_XS ---- */

/* Each uint16 is a 9-bit index into iq2xs_grid and a 7-bit sign code; each
 * group of 32 has two 4-bit scales (one per 16). */
void
ref_dequantize_row_iq2_xs(const void *src, float *dst, int64_t n)
{
	const struct block_iq2_xs *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int ib = 0; ib < QK_K / 32; ib++) {
			float db[2];

			db[0] = d * (0.5f + (x[i].scales[ib] & 0x0f)) * 0.25f;
			db[1] = d * (0.5f + (x[i].scales[ib] >> 4)) * 0.25f;
			for (int l = 0; l < 4; l++) {
				uint16_t q = x[i].qs[4 * ib + l];
				uint64_t grid = iq2xs_grid[q & 511];
				uint8_t signs = ksigns_iq2xs[q >> 9];

				for (int j = 0; j < 8; j++)
					*dst++ = db[l / 2] * grid_byte(grid, j) * sign_of(signs, j);
			}
		}
	}
}

/* ---- IQ2_S ---- */

/* Per group of 32: four index bytes (qs), two high bits each from qh, four
 * sign bytes (after the 32 index bytes) and two 4-bit scales. */
void
ref_dequantize_row_iq2_s(const void *src, float *dst, int64_t n)
{
	const struct block_iq2_s *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);
		const uint8_t *signs = x[i].qs + QK_K / 8;

		for (int ib = 0; ib < QK_K / 32; ib++) {
			float db[2];

			db[0] = d * (0.5f + (x[i].scales[ib] & 0x0f)) * 0.25f;
			db[1] = d * (0.5f + (x[i].scales[ib] >> 4)) * 0.25f;
			for (int l = 0; l < 4; l++) {
				int idx = x[i].qs[4 * ib + l] | ((x[i].qh[ib] >> (2 * l)) & 3) << 8;
				uint64_t grid = iq2s_grid[idx];
				uint8_t sg = signs[4 * ib + l];

				for (int j = 0; j < 8; j++)
					*dst++ = db[l / 2] * grid_byte(grid, j) * sign_of(sg, j);
			}
		}
	}
}

/* ---- IQ3_XXS ---- */

/* 64 8-bit indices into iq3xxs_grid (4 values each), then per group of 32
 * a uint32 of four 7-bit sign codes and a 4-bit scale on top:
 * x = d * (0.5 + s) / 2 * grid * sign. */
void
ref_dequantize_row_iq3_xxs(const void *src, float *dst, int64_t n)
{
	const struct block_iq3_xxs *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);
		const uint8_t *qs = x[i].qs;
		const uint8_t *scales_and_signs = x[i].qs + QK_K / 4;

		for (int ib = 0; ib < QK_K / 32; ib++) {
			uint32_t aux = load_u32(scales_and_signs + 4 * ib);
			float db = d * (0.5f + (aux >> 28)) * 0.5f;

			for (int l = 0; l < 4; l++) {
				uint8_t signs = ksigns_iq2xs[(aux >> (7 * l)) & 127];
				uint32_t g1 = iq3xxs_grid[qs[8 * ib + 2 * l]];
				uint32_t g2 = iq3xxs_grid[qs[8 * ib + 2 * l + 1]];

				for (int j = 0; j < 4; j++)
					dst[j] = db * grid_byte(g1, j) * sign_of(signs, j);
				for (int j = 0; j < 4; j++)
					dst[j + 4] = db * grid_byte(g2, j) * sign_of(signs, j + 4);
				dst += 8;
			}
		}
	}
}

/* ---- IQ3_S ---- */

/* Per group of 32: eight index bytes with their ninth bits in qh[ib], four
 * sign bytes; x = d * (1 + 2s) * grid * sign, s a 4-bit scale per 32
 * (two to a byte). */
void
ref_dequantize_row_iq3_s(const void *src, float *dst, int64_t n)
{
	const struct block_iq3_s *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint8_t *qs = x[i].qs + 8 * ib;
			int s = (x[i].scales[ib / 2] >> (4 * (ib % 2))) & 0x0f;
			float db = d * (1 + 2 * s);

			for (int l = 0; l < 4; l++) {
				uint8_t sg = x[i].signs[4 * ib + l];
				int hi = x[i].qh[ib] >> (2 * l);
				uint32_t g1 = iq3s_grid[qs[2 * l] | (hi & 1) << 8];
				uint32_t g2 = iq3s_grid[qs[2 * l + 1] | ((hi >> 1) & 1) << 8];

				for (int j = 0; j < 4; j++)
					dst[j] = db * grid_byte(g1, j) * sign_of(sg, j);
				for (int j = 0; j < 4; j++)
					dst[j + 4] = db * grid_byte(g2, j) * sign_of(sg, j + 4);
				dst += 8;
			}
		}
	}
}

/* ---- IQ1_S ---- */

/* Per group of 32: qh holds the top 3 bits of four 11-bit indices into
 * iq1s_grid, a 3-bit scale and the sign of the delta:
 * x = d * (2s + 1) * (grid + delta). */
void
ref_dequantize_row_iq1_s(const void *src, float *dst, int64_t n)
{
	const struct block_iq1_s *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int ib = 0; ib < QK_K / 32; ib++) {
			uint16_t qh = x[i].qh[ib];
			float dl = d * (2 * ((qh >> 12) & 7) + 1);
			float delta = (qh & 0x8000) ? -IQ1S_DELTA : IQ1S_DELTA;

			for (int l = 0; l < 4; l++) {
				int idx = x[i].qs[4 * ib + l] | ((qh >> (3 * l)) & 7) << 8;
				uint64_t grid = iq1s_grid[idx];

				for (int j = 0; j < 8; j++)
					*dst++ = dl * ((int8_t)grid_byte(grid, j) + delta);
			}
		}
	}
}

/* ---- IQ1_M ---- */

/*
 * As IQ1_S, but each qh byte serves two groups of 8 (3 index bits and a
 * delta sign each), the 3-bit scales are per 16, and the fp16 super-scale
 * is assembled from the top nibbles of the four little-endian scale words.
 */
void
ref_dequantize_row_iq1_m(const void *src, float *dst, int64_t n)
{
	const struct block_iq1_m *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *qs = x[i].qs;
		const uint8_t *qh = x[i].qh;
		uint16_t sc[4];

		for (int k = 0; k < 4; k++)
			sc[k] = (uint16_t)(x[i].scales[2 * k] | x[i].scales[2 * k + 1] << 8);
		float d = ktx_fp16_to_fp32((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
		    ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));

		for (int ib = 0; ib < QK_K / 32; ib++) {
			int shift = 6 * (ib % 2);
			float dl[2];

			dl[0] = d * (2 * ((sc[ib / 2] >> shift) & 7) + 1);
			dl[1] = d * (2 * ((sc[ib / 2] >> (shift + 3)) & 7) + 1);
			for (int l = 0; l < 4; l++) {
				/* group l: low nibble of qh[l / 2] for even l, high for odd */
				int bits = (qh[l / 2] >> (4 * (l % 2))) & 0x0f;
				int idx = qs[l] | (bits & 7) << 8;
				float delta = (bits & 8) ? -IQ1M_DELTA : IQ1M_DELTA;
				uint64_t grid = iq1s_grid[idx];

				for (int j = 0; j < 8; j++)
					*dst++ = dl[l / 2] * ((int8_t)grid_byte(grid, j) + delta);
			}
			qs += 4;
			qh += 2;
		}
	}
}

/* ---- IQ4_XS ---- */

/* x = d * (ls - 32) * kvalues_iq4nl[q], ls a 6-bit scale per 32. */
void
ref_dequantize_row_iq4_xs(const void *src, float *dst, int64_t n)
{
	const struct block_iq4_xs *x = src;

	for (int64_t i = 0; i < n / QK_K; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint8_t *qs = x[i].qs + 16 * ib;
			int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) |
			    ((x[i].scales_h >> (2 * ib)) & 3) << 4;
			float dl = d * (ls - 32);

			for (int j = 0; j < 16; j++) {
				dst[j] = dl * kvalues_iq4nl[qs[j] & 0x0f];
				dst[j + 16] = dl * kvalues_iq4nl[qs[j] >> 4];
			}
			dst += 32;
		}
	}
}

/* x = d * kvalues_iq4nl[q], blocks of 32. */
void
ref_dequantize_row_iq4_nl(const void *src, float *dst, int64_t n)
{
	const struct block_iq4_nl *x = src;

	for (int64_t i = 0; i < n / QK4_NL; i++) {
		float d = ktx_fp16_to_fp32(x[i].d);

		for (int j = 0; j < QK4_NL / 2; j++) {
			dst[j] = d * kvalues_iq4nl[x[i].qs[j] & 0x0f];
			dst[j + QK4_NL / 2] = d * kvalues_iq4nl[x[i].qs[j] >> 4];
		}
		dst += QK4_NL;
	}
}

/* Index of the table value nearest v (the lower one on a tie); the table
 * is ascending. */
static int
nearest_iq4nl(float v)
{
	const int8_t *val = kvalues_iq4nl;
	int lo = 0, hi = 15;

	if (v <= val[0])
		return 0;
	if (v >= val[15])
		return 15;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;

		if (v < val[mid])
			hi = mid;
		else
			lo = mid;
	}
	return v - val[hi - 1] < val[hi] - v ? hi - 1 : hi;
}

/* The x^2-weighted sums of q x and q^2 for xb quantized with inverse scale
 * id; the indices go to Lb when it is not NULL. */
static void
iq4_sums(const float *xb, float id, uint8_t *Lb, float *sumqx, float *sumq2)
{
	*sumqx = *sumq2 = 0;
	for (int j = 0; j < 32; j++) {
		int l = nearest_iq4nl(id * xb[j]);
		float q = kvalues_iq4nl[l];
		float w = xb[j] * xb[j];

		if (Lb != NULL)
			Lb[j] = (uint8_t)l;
		*sumqx += w * q * xb[j];
		*sumq2 += w * q * q;
	}
}

/*
 * Follows ggml's reference IQ4_NL quantizer: one pass with the scale that
 * maps the block's extreme to -127, then the x^2-weighted least-squares
 * scale for those indices.
 */
void
ref_quantize_row_iq4_nl(const float *src, void *dst, int64_t n)
{
	struct block_iq4_nl *y = dst;
	uint8_t L[QK4_NL];

	for (int64_t i = 0; i < n / QK4_NL; i++) {
		const float *x = src + i * QK4_NL;
		float amax = 0, max = 0, sumqx, sumq2, d = 0;

		for (int j = 0; j < QK4_NL; j++) {
			if (fabsf(x[j]) > amax) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		memset(L, 0, sizeof(L));
		if (amax >= QUANT_GROUP_EPS) {
			iq4_sums(x, 1 / (max / kvalues_iq4nl[0]), L, &sumqx, &sumq2);
			d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
		}
		y[i].d = ktx_fp32_to_fp16(d);
		for (int j = 0; j < QK4_NL / 2; j++)
			y[i].qs[j] = (uint8_t)(L[j] | L[j + QK4_NL / 2] << 4);
	}
}

/*
 * Follows ggml's reference IQ4_XS quantizer (no importance matrix): per
 * group of 32 it fits a scale by trying 15 scales around the one that maps
 * the extreme to the table's end, keeping the x^2-weighted least-squares
 * best; the group scales become 6-bit multiples of d = -max / 32 and every
 * element is then requantized with its group's final scale.
 */
void
ref_quantize_row_iq4_xs(const float *src, void *dst, int64_t n)
{
	struct block_iq4_xs *y = dst;
	uint8_t L[QK_K];
	float scales[QK_K / 32];

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float max_scale = 0, amax_scale = 0;

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const float *xb = x + 32 * ib;
			float amax = 0, max = 0, sumqx, sumq2;

			for (int j = 0; j < 32; j++) {
				if (fabsf(xb[j]) > amax) {
					amax = fabsf(xb[j]);
					max = xb[j];
				}
			}
			if (amax < QUANT_GROUP_EPS) {
				scales[ib] = 0;
				continue;
			}
			float d = -max / kvalues_iq4nl[0];
			iq4_sums(xb, 1 / d, NULL, &sumqx, &sumq2);
			d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
			float best = d * sumqx;
			for (int itry = -7; itry <= 7; itry++) {
				iq4_sums(xb, (itry + kvalues_iq4nl[0]) / max, NULL, &sumqx, &sumq2);
				if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
					d = sumqx / sumq2;
					best = d * sumqx;
				}
			}
			scales[ib] = d;
			if (fabsf(d) > amax_scale) {
				amax_scale = fabsf(d);
				max_scale = d;
			}
		}

		float d = -max_scale / 32;
		float id = d != 0.0f ? 1 / d : 0.0f;
		y[i].d = ktx_fp32_to_fp16(d);
		y[i].scales_h = 0;
		memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
		for (int ib = 0; ib < QK_K / 32; ib++) {
			int l = round_clamp(id * scales[ib], -32, 31);
			float dl = d * l;
			float idl = dl != 0.0f ? 1 / dl : 0.0f;

			for (int j = 0; j < 32; j++)
				L[32 * ib + j] = (uint8_t)nearest_iq4nl(idl * x[32 * ib + j]);
			l += 32;
			y[i].scales_l[ib / 2] |= (uint8_t)((l & 0x0f) << (4 * (ib % 2)));
			y[i].scales_h |= (uint16_t)((l >> 4) << (2 * ib));
		}
		for (int ib = 0; ib < QK_K / 32; ib++)
			for (int j = 0; j < 16; j++)
				y[i].qs[16 * ib + j] =
				    (uint8_t)(L[32 * ib + j] | L[32 * ib + 16 + j] << 4);
	}
}
