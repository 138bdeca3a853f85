/*
 * dot_ref.c - the reference dot products (see dot_ref.h): each weight block
 * is unpacked into the integers its format defines - one signed level per
 * element and integer scales (and mins) per sub-block - and multiplied with
 * the activation quants as integers; only the block's float scales are
 * floating point.
 *
 * Written from the block definitions in kernels/quant_blocks.h and the
 * dequantizers in quant_k.c / quant_iq.c / quant_legacy.c: an element's
 * dequantized value is always (float scales) x (integer scale) x (level),
 * and the level and integer scale are what the unpackers below produce.
 */
#include "kernels/ref/nofma.h"

#include "kernels/ref/dot_ref.h"

#include <stdint.h>
#include <string.h>

#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/iq_tables.h"

/*
 * One unpacked 256-element super-block: value k is
 * d * sc[k / 16] * q[k] * post - dmin * m[k / 16]
 * where post is a power of two fixed by the type (the i-quants store odd
 * scales and fractional levels in units of 1/8 or 1/4).
 */
struct kblock {
	int8_t q[QK_K];
	int16_t sc[QK_K / 16];
	int16_t m[QK_K / 16];
	float d, dmin;
};

/* Sums one super-block against a Q8_K block: (d * dy) * sum sc q y -
 * (dmin * dy) * sum m bsums; the minima only need Q8_K's group sums. */
static float
kblock_dot(const struct kblock *b, const struct block_q8_K *y)
{
	int32_t isum = 0, msum = 0;

	for (int j = 0; j < QK_K / 16; j++) {
		int32_t s = 0;

		for (int l = 0; l < 16; l++)
			s += b->q[16 * j + l] * y->qs[16 * j + l];
		isum += b->sc[j] * s;
		msum += b->m[j] * y->bsums[j];
	}
	return (b->d * y->d) * (float)isum - (b->dmin * y->d) * (float)msum;
}

/* Little-endian uint32 at p. */
static uint32_t
load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Byte j of a grid entry, unsigned (IQ2/IQ3 magnitudes) or signed (IQ1). */
static int
grid_u8(uint64_t entry, int j)
{
	return (int)((entry >> (8 * j)) & 0xff);
}

static int
grid_s8(uint64_t entry, int j)
{
	return (int8_t)((entry >> (8 * j)) & 0xff);
}

/* ---- K-quant unpackers ---- */

/* Q2_K: element 128h + 32s + l sits at bits 2s of qs[32h + l]; the 16
 * sub-blocks have 4-bit scales (low nibble) and mins (high nibble). */
static void
unpack_q2_K(const struct block_q2_K *x, struct kblock *b)
{
	for (int k = 0; k < QK_K; k++) {
		int h = k / 128, s = (k % 128) / 32, l = k % 32;

		b->q[k] = (int8_t)((x->qs[32 * h + l] >> (2 * s)) & 3);
	}
	for (int j = 0; j < QK_K / 16; j++) {
		b->sc[j] = x->scales[j] & 0x0f;
		b->m[j] = x->scales[j] >> 4;
	}
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = ktx_fp16_to_fp32(x->dmin);
}

/* Q3_K: level = low 2 bits (as Q2_K) - 4 unless the element's hmask bit
 * (byte l, bit 4h + s) is set; 6-bit scales biased by 32. */
static void
unpack_q3_K(const struct block_q3_K *x, struct kblock *b)
{
	const uint8_t *sp = x->scales;

	for (int k = 0; k < QK_K; k++) {
		int h = k / 128, s = (k % 128) / 32, l = k % 32;
		int lo = (x->qs[32 * h + l] >> (2 * s)) & 3;
		int hi = (x->hmask[l] >> (4 * h + s)) & 1;

		b->q[k] = (int8_t)(lo - (hi ? 0 : 4));
	}
	for (int j = 0; j < QK_K / 16; j++) {
		int lo = j < 8 ? sp[j] & 0x0f : sp[j - 8] >> 4;
		int hi = (sp[8 + j % 4] >> (2 * (j / 4))) & 3;

		b->sc[j] = (int16_t)((lo | hi << 4) - 32);
		b->m[j] = 0;
	}
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = 0.0f;
}

/* The 6-bit scale and min of Q4_K / Q5_K sub-block j of 32. */
static void
k4_scale_min(int j, const uint8_t *q, int *sc, int *m)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
		*m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
	}
}

/* Q4_K / Q5_K scales: sub-block j of 32 is our groups 2j and 2j + 1. */
static void
unpack_k4_scales(const uint8_t *scales, struct kblock *b)
{
	for (int j = 0; j < QK_K / 32; j++) {
		int sc, m;

		k4_scale_min(j, scales, &sc, &m);
		b->sc[2 * j] = b->sc[2 * j + 1] = (int16_t)sc;
		b->m[2 * j] = b->m[2 * j + 1] = (int16_t)m;
	}
}

/* Q4_K: element 64j + l (l < 32) is the low nibble of qs[32j + l], element
 * 64j + 32 + l its high nibble. */
static void
unpack_q4_K(const struct block_q4_K *x, struct kblock *b)
{
	for (int k = 0; k < QK_K; k++) {
		int j = k / 64, hi = (k % 64) / 32, l = k % 32;

		b->q[k] = (int8_t)((x->qs[32 * j + l] >> (4 * hi)) & 0x0f);
	}
	unpack_k4_scales(x->scales, b);
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = ktx_fp16_to_fp32(x->dmin);
}

/* Q5_K: Q4_K's nibbles plus a fifth bit, bit 2j + hi of qh[l]. */
static void
unpack_q5_K(const struct block_q5_K *x, struct kblock *b)
{
	for (int k = 0; k < QK_K; k++) {
		int j = k / 64, hi = (k % 64) / 32, l = k % 32;
		int lo4 = (x->qs[32 * j + l] >> (4 * hi)) & 0x0f;
		int b5 = (x->qh[l] >> (2 * j + hi)) & 1;

		b->q[k] = (int8_t)(lo4 | b5 << 4);
	}
	unpack_k4_scales(x->scales, b);
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = ktx_fp16_to_fp32(x->dmin);
}

/* Q6_K: per half h of 128, element 128h + 32p + l (p < 4, l < 32) takes
 * the nibble p / 2 of ql[64h + 32(p % 2) + l] and bits 2p of qh[32h + l];
 * level = that 6-bit value - 32; signed 8-bit scales. */
static void
unpack_q6_K(const struct block_q6_K *x, struct kblock *b)
{
	for (int k = 0; k < QK_K; k++) {
		int h = k / 128, p = (k % 128) / 32, l = k % 32;
		int lo = (x->ql[64 * h + 32 * (p % 2) + l] >> (4 * (p / 2))) & 0x0f;
		int hi = (x->qh[32 * h + l] >> (2 * p)) & 3;

		b->q[k] = (int8_t)((lo | hi << 4) - 32);
	}
	for (int j = 0; j < QK_K / 16; j++) {
		b->sc[j] = x->scales[j];
		b->m[j] = 0;
	}
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = 0.0f;
}

/* ---- i-quant unpackers (levels in units of the type's post factor) ---- */

/* Sets the 8 levels of a grid entry under a 7-bit sign code. */
static void
signed_grid8(int8_t *q, uint64_t grid, int code)
{
	uint8_t signs = ksigns_iq2xs[code & 127];

	for (int j = 0; j < 8; j++)
		q[j] = (int8_t)((signs & kmask_iq2xs[j]) ? -grid_u8(grid, j) : grid_u8(grid, j));
}

/* IQ2_XXS: per 32, four 8-bit grid indices, four sign codes and a 4-bit
 * scale s; value = d * (2s + 1) * level / 8. */
static void
unpack_iq2_xxs(const struct block_iq2_xxs *x, struct kblock *b)
{
	for (int ib = 0; ib < QK_K / 32; ib++) {
		const uint16_t *q = x->qs + 4 * ib;
		uint32_t idx = (uint32_t)q[0] | (uint32_t)q[1] << 16;
		uint32_t sgn = (uint32_t)q[2] | (uint32_t)q[3] << 16;

		for (int l = 0; l < 4; l++)
			signed_grid8(b->q + 32 * ib + 8 * l, iq2xxs_grid[(idx >> (8 * l)) & 0xff],
			    (int)(sgn >> (7 * l)));
		b->sc[2 * ib] = b->sc[2 * ib + 1] = (int16_t)(2 * (sgn >> 28) + 1);
	}
	memset(b->m, 0, sizeof(b->m));
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = 0.0f;
}

/* IQ2_XS: a 9-bit index and 7-bit sign code per 8, a 4-bit scale per 16;
 * value = d * (2s + 1) * level / 8. */
static void
unpack_iq2_xs(const struct block_iq2_xs *x, struct kblock *b)
{
	for (int g = 0; g < QK_K / 8; g++)
		signed_grid8(b->q + 8 * g, iq2xs_grid[x->qs[g] & 511], x->qs[g] >> 9);
	for (int j = 0; j < QK_K / 16; j++)
		b->sc[j] = (int16_t)(2 * ((x->scales[j / 2] >> (4 * (j % 2))) & 0x0f) + 1);
	memset(b->m, 0, sizeof(b->m));
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = 0.0f;
}

/* IQ3_XXS: 64 grid indices (4 values each), then per 32 a uint32 of four
 * sign codes and a 4-bit scale; value = d * (2s + 1) * level / 4. */
static void
unpack_iq3_xxs(const struct block_iq3_xxs *x, struct kblock *b)
{
	for (int ib = 0; ib < QK_K / 32; ib++) {
		const uint8_t *idx = x->qs + 8 * ib;
		uint32_t aux = load_u32(x->qs + QK_K / 4 + 4 * ib);

		for (int l = 0; l < 4; l++) {
			uint64_t grid = (uint64_t)iq3xxs_grid[idx[2 * l]] |
			    (uint64_t)iq3xxs_grid[idx[2 * l + 1]] << 32;

			signed_grid8(b->q + 32 * ib + 8 * l, grid, (int)(aux >> (7 * l)));
		}
		b->sc[2 * ib] = b->sc[2 * ib + 1] = (int16_t)(2 * (aux >> 28) + 1);
	}
	memset(b->m, 0, sizeof(b->m));
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = 0.0f;
}

/* IQ1_S: 11-bit indices into the ternary grid, per 32 a 3-bit scale s and
 * a delta sign; value = d * (2s + 1) * (grid +- 1/8): level = 8 grid +- 1,
 * post factor 1/8. */
static void
unpack_iq1_s(const struct block_iq1_s *x, struct kblock *b)
{
	for (int ib = 0; ib < QK_K / 32; ib++) {
		int qh = x->qh[ib];
		int delta = (qh & 0x8000) ? -1 : 1;

		for (int l = 0; l < 4; l++) {
			uint64_t grid = iq1s_grid[x->qs[4 * ib + l] | ((qh >> (3 * l)) & 7) << 8];

			for (int j = 0; j < 8; j++)
				b->q[32 * ib + 8 * l + j] = (int8_t)(8 * grid_s8(grid, j) + delta);
		}
		b->sc[2 * ib] = b->sc[2 * ib + 1] = (int16_t)(2 * ((qh >> 12) & 7) + 1);
	}
	memset(b->m, 0, sizeof(b->m));
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = 0.0f;
}

/* IQ1_M: as IQ1_S with a delta sign per 8 (bit 3 of each qh nibble) and a
 * 3-bit scale per 16; the fp16 super-scale is the top nibbles of the four
 * little-endian scale words. */
static void
unpack_iq1_m(const struct block_iq1_m *x, struct kblock *b)
{
	uint16_t sc[4];

	for (int k = 0; k < 4; k++)
		sc[k] = (uint16_t)(x->scales[2 * k] | x->scales[2 * k + 1] << 8);
	for (int g = 0; g < QK_K / 8; g++) {
		int bits = (x->qh[g / 2] >> (4 * (g % 2))) & 0x0f;
		uint64_t grid = iq1s_grid[x->qs[g] | (bits & 7) << 8];
		int delta = (bits & 8) ? -1 : 1;

		for (int j = 0; j < 8; j++)
			b->q[8 * g + j] = (int8_t)(8 * grid_s8(grid, j) + delta);
	}
	for (int j = 0; j < QK_K / 16; j++)
		b->sc[j] = (int16_t)(2 * ((sc[j / 4] >> (3 * (j % 4))) & 7) + 1);
	memset(b->m, 0, sizeof(b->m));
	b->d = ktx_fp16_to_fp32((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
	    ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
	b->dmin = 0.0f;
}

/* IQ4_XS: per 32, a 6-bit scale (stored + 32) and nibble indices into
 * kvalues_iq4nl, element j low nibble of qs[16 ib + j], j + 16 high. */
static void
unpack_iq4_xs(const struct block_iq4_xs *x, struct kblock *b)
{
	for (int ib = 0; ib < QK_K / 32; ib++) {
		const uint8_t *qs = x->qs + 16 * ib;
		int ls = ((x->scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) |
		    ((x->scales_h >> (2 * ib)) & 3) << 4;

		for (int j = 0; j < 16; j++) {
			b->q[32 * ib + j] = kvalues_iq4nl[qs[j] & 0x0f];
			b->q[32 * ib + j + 16] = kvalues_iq4nl[qs[j] >> 4];
		}
		b->sc[2 * ib] = b->sc[2 * ib + 1] = (int16_t)(ls - 32);
	}
	memset(b->m, 0, sizeof(b->m));
	b->d = ktx_fp16_to_fp32(x->d);
	b->dmin = 0.0f;
}

/* ---- super-block dot products ---- */

/* Defines ref_dot_NAME over super-blocks: unpack, integer dot, float sum in
 * block order, then the type's power-of-two post factor (exact). */
#define KBLOCK_DOT(NAME, BLOCK, POST)                                          \
	float                                                                  \
	ref_dot_##NAME(int64_t n, const void *w, const void *x)                \
	{                                                                      \
		const struct BLOCK *wb = w;                                    \
		const struct block_q8_K *xb = x;                               \
		struct kblock b;                                               \
		float sum = 0.0f;                                              \
                                                                               \
		for (int64_t i = 0; i < n / QK_K; i++) {                       \
			unpack_##NAME(&wb[i], &b);                             \
			sum += kblock_dot(&b, &xb[i]);                         \
		}                                                              \
		return sum * (POST);                                           \
	}

KBLOCK_DOT(q2_K, block_q2_K, 1.0f)
KBLOCK_DOT(q3_K, block_q3_K, 1.0f)
KBLOCK_DOT(q4_K, block_q4_K, 1.0f)
KBLOCK_DOT(q5_K, block_q5_K, 1.0f)
KBLOCK_DOT(q6_K, block_q6_K, 1.0f)
KBLOCK_DOT(iq2_xxs, block_iq2_xxs, 0.125f)
KBLOCK_DOT(iq2_xs, block_iq2_xs, 0.125f)
KBLOCK_DOT(iq3_xxs, block_iq3_xxs, 0.25f)
KBLOCK_DOT(iq1_s, block_iq1_s, 0.125f)
KBLOCK_DOT(iq1_m, block_iq1_m, 0.125f)
KBLOCK_DOT(iq4_xs, block_iq4_xs, 1.0f)

/* ---- legacy blocks of 32 against Q8_0 ---- */

/* sum over blocks of (dw * dx) * sum q y, q the 32 unpacked levels. */
static float
legacy_dot(int64_t n, const void *w, size_t wbytes, const struct block_q8_0 *xb,
    void (*unpack)(const void *blk, int8_t *q, float *d))
{
	const uint8_t *wp = w;
	float sum = 0.0f;

	for (int64_t i = 0; i < n / QK8_0; i++) {
		int8_t q[QK8_0];
		float d;
		int32_t s = 0;

		unpack(wp + (size_t)i * wbytes, q, &d);
		for (int j = 0; j < QK8_0; j++)
			s += q[j] * xb[i].qs[j];
		sum += (d * ktx_fp16_to_fp32(xb[i].d)) * (float)s;
	}
	return sum;
}

/* Q4_0: level = nibble - 8, element j low nibble of qs[j], j + 16 high. */
static void
unpack_q4_0(const void *blk, int8_t *q, float *d)
{
	const struct block_q4_0 *x = blk;

	for (int j = 0; j < QK4_0 / 2; j++) {
		q[j] = (int8_t)((x->qs[j] & 0x0f) - 8);
		q[j + 16] = (int8_t)((x->qs[j] >> 4) - 8);
	}
	*d = ktx_fp16_to_fp32(x->d);
}

/* Q5_0: nibbles as Q4_0 plus bit j of qh as the fifth bit; level - 16. */
static void
unpack_q5_0(const void *blk, int8_t *q, float *d)
{
	const struct block_q5_0 *x = blk;
	uint32_t qh = load_u32(x->qh);

	for (int j = 0; j < QK5_0 / 2; j++) {
		q[j] = (int8_t)(((x->qs[j] & 0x0f) | ((qh >> j) & 1) << 4) - 16);
		q[j + 16] = (int8_t)(((x->qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
	}
	*d = ktx_fp16_to_fp32(x->d);
}

/* Q8_0: the levels are the bytes. */
static void
unpack_q8_0(const void *blk, int8_t *q, float *d)
{
	const struct block_q8_0 *x = blk;

	memcpy(q, x->qs, QK8_0);
	*d = ktx_fp16_to_fp32(x->d);
}

/* IQ4_NL: nibbles as Q4_0, levels from kvalues_iq4nl. */
static void
unpack_iq4_nl(const void *blk, int8_t *q, float *d)
{
	const struct block_iq4_nl *x = blk;

	for (int j = 0; j < QK4_NL / 2; j++) {
		q[j] = kvalues_iq4nl[x->qs[j] & 0x0f];
		q[j + 16] = kvalues_iq4nl[x->qs[j] >> 4];
	}
	*d = ktx_fp16_to_fp32(x->d);
}

float
ref_dot_q4_0(int64_t n, const void *w, const void *x)
{
	return legacy_dot(n, w, sizeof(struct block_q4_0), x, unpack_q4_0);
}

float
ref_dot_q5_0(int64_t n, const void *w, const void *x)
{
	return legacy_dot(n, w, sizeof(struct block_q5_0), x, unpack_q5_0);
}

float
ref_dot_q8_0(int64_t n, const void *w, const void *x)
{
	return legacy_dot(n, w, sizeof(struct block_q8_0), x, unpack_q8_0);
}

float
ref_dot_iq4_nl(int64_t n, const void *w, const void *x)
{
	return legacy_dot(n, w, sizeof(struct block_iq4_nl), x, unpack_iq4_nl);
}

/* ---- float types against float32, summed in double ---- */

float
ref_dot_f32(int64_t n, const void *w, const void *x)
{
	const float *a = w, *b = x;
	double sum = 0.0;

	for (int64_t i = 0; i < n; i++)
		sum += (double)a[i] * (double)b[i];
	return (float)sum;
}

float
ref_dot_f16(int64_t n, const void *w, const void *x)
{
	const uint16_t *a = w;
	const float *b = x;
	double sum = 0.0;

	for (int64_t i = 0; i < n; i++)
		sum += (double)ktx_fp16_to_fp32(a[i]) * (double)b[i];
	return (float)sum;
}

float
ref_dot_bf16(int64_t n, const void *w, const void *x)
{
	const uint16_t *a = w;
	const float *b = x;
	double sum = 0.0;

	for (int64_t i = 0; i < n; i++)
		sum += (double)ktx_bf16_to_fp32(a[i]) * (double)b[i];
	return (float)sum;
}

/* ---- the table ---- */

int
ref_dot_type(uint32_t wtype)
{
	switch (wtype) {
	case KTX_TYPE_Q4_0:
	case KTX_TYPE_Q5_0:
	case KTX_TYPE_Q8_0:
	case KTX_TYPE_IQ4_NL:
		return KTX_TYPE_Q8_0;
	case KTX_TYPE_Q2_K:
	case KTX_TYPE_Q3_K:
	case KTX_TYPE_Q4_K:
	case KTX_TYPE_Q5_K:
	case KTX_TYPE_Q6_K:
	case KTX_TYPE_IQ1_S:
	case KTX_TYPE_IQ1_M:
	case KTX_TYPE_IQ2_XXS:
	case KTX_TYPE_IQ2_XS:
	case KTX_TYPE_IQ3_XXS:
	case KTX_TYPE_IQ4_XS:
		return KTX_TYPE_Q8_K;
	case KTX_TYPE_F32:
	case KTX_TYPE_F16:
	case KTX_TYPE_BF16:
		return KTX_TYPE_F32;
	default:
		return -1;
	}
}

ref_dot_fn
ref_dot_fn_for(uint32_t wtype)
{
	switch (wtype) {
	case KTX_TYPE_Q4_0: return ref_dot_q4_0;
	case KTX_TYPE_Q5_0: return ref_dot_q5_0;
	case KTX_TYPE_Q8_0: return ref_dot_q8_0;
	case KTX_TYPE_IQ4_NL: return ref_dot_iq4_nl;
	case KTX_TYPE_Q2_K: return ref_dot_q2_K;
	case KTX_TYPE_Q3_K: return ref_dot_q3_K;
	case KTX_TYPE_Q4_K: return ref_dot_q4_K;
	case KTX_TYPE_Q5_K: return ref_dot_q5_K;
	case KTX_TYPE_Q6_K: return ref_dot_q6_K;
	case KTX_TYPE_IQ1_S: return ref_dot_iq1_s;
	case KTX_TYPE_IQ1_M: return ref_dot_iq1_m;
	case KTX_TYPE_IQ2_XXS: return ref_dot_iq2_xxs;
	case KTX_TYPE_IQ2_XS: return ref_dot_iq2_xs;
	case KTX_TYPE_IQ3_XXS: return ref_dot_iq3_xxs;
	case KTX_TYPE_IQ4_XS: return ref_dot_iq4_xs;
	case KTX_TYPE_F32: return ref_dot_f32;
	case KTX_TYPE_F16: return ref_dot_f16;
	case KTX_TYPE_BF16: return ref_dot_bf16;
	default: return NULL;
	}
}
