/*
 * avx512.c - the AVX-512 (F, BW, VL, VNNI) kernels, where they pay over
 * AVX2: the float dot products at 16 lanes, Q4_0 and Q8_0 through VNNI's
 * vpdpbusd (four unsigned x signed byte products straight into int32), and
 * the K-quants Q2_K..Q6_K 64 elements per register with vpdpwssd folding
 * in their sub-block scales. The other types keep their AVX2 kernels (the
 * i-quants have theirs in avx512_iq.c).
 *
 * BF16 weights are widened by a shift and multiplied in float32 rather than
 * with AVX512_BF16's vdpbf16ps: that instruction flushes denormal inputs
 * and would differ from the reference on denormal-prone data.
 *
 * The K-quant and Q8_0 kernels also come in a batched form (dotn) for a few
 * activation rows, which unpacks each weight block once for all of them,
 * and a tiled gemm for many (batched decode, prefill), which keeps a group
 * of activation rows in L1 while a block of weight rows passes over it.
 * All three run the same float steps per output, so results do not depend
 * on how many activation rows a call takes.
 *
 * Only this file is compiled for AVX-512 (the pragma below); cpu.c calls in
 * here only when CPUID reports every feature.
 */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_impl.h"
#include "kernels/cpu/kscales.h"
#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/fp16.h"

/* 32 bytes from anywhere (file rows are only 2-byte aligned). */
static inline __m256i
loadu(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* The sum of the 8 floats of v. */
static inline float
hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* ---- legacy types x Q8_0 ---- */

/* Each dot_ kernel: one weight row times one activation row (cpu_dot_fn).
 * Q8_0 is further down, with the K-quants' batched machinery. */
/* Q4_0 levels are nibble - 8: sum (q - 8) y = sum q y - 8 sum y, with q
 * unsigned, so no sign trick is needed. */
static float
dot_q4_0(int64_t n, const void *w, const void *x)
{
	const struct block_q4_0 *a = w;
	const struct block_q8_0 *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK4_0; i++) {
		__m256 d = _mm256_set1_ps(_cvtsh_ss(a[i].d) * _cvtsh_ss(b[i].d));
		__m128i t = _mm_loadu_si128((const __m128i *)a[i].qs);
		__m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
		__m256i y = loadu(b[i].qs);
		__m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y);

		s = _mm256_sub_epi32(s, _mm256_dpbusd_epi32(_mm256_setzero_si256(), eight, y));
		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
	}
	return hsum8(acc);
}

/* ---- K-quants x Q8_K, 64 elements per register ---- */

/*
 * A K-quant weight block is unpacked once into four registers of 64
 * unsigned levels, each ordered to meet 64 consecutive activation bytes,
 * and four int16 scale vectors (int16 lane k: the scale of elements 2k,
 * 2k + 1). Per activation row, vpmaddubsw multiplies levels and activation
 * bytes into int16 pair sums (at most 2 x 63 x 127: no saturation) and
 * vpdpwssd folds in the scales as int32 lane sums. Integer sums are exact,
 * so their order is free; the float steps - the block's scale product into
 * a 16-lane accumulator, the min terms (Q2_K, Q4_K, Q5_K) into an 8-lane
 * one, the two horizontal sums at the end - are the same code whichever
 * entry point (dot, dotn, gemm) runs them, so an output has the same bits
 * computed alone or with other activation rows.
 */


/* Unrolls a short loop over registers (unpacked levels, accumulators), so
 * that they stay in registers: GCC keeps an array it indexes in a loop in
 * memory, and a 512-bit value stored and reloaded at once stalls. */
#if defined(__clang__)
#define KQ_UNROLL _Pragma("clang loop unroll(full)")
#else
#define KQ_UNROLL _Pragma("GCC unroll 8")
#endif

/* Activation rows one K-quant call keeps in registers. */
#define KQ_ROWS 8

/* One unpacked weight block. m16 pairs with the activation block's 16
 * bsums: the mins (Q2_K, Q4_K, Q5_K) or the scales of the level offset
 * (Q3_K, Q6_K). */
struct kblock {
	__m512i q[4], sc[4];
	__m256i m16;
	float d, dmin;
};

/* One output's float state between the gemm's passes over a row. */
struct kacc {
	__m512 acc;
	__m256 accm;
};

/* The sum of the 16 floats of v. */
static inline float
hsum16(__m512 v)
{
	return _mm512_reduce_add_ps(v);
}

/* 64 bytes from anywhere. */
static inline __m512i
load512(const void *p)
{
	return _mm512_loadu_si512(p);
}

/* The same 32 bytes in both halves. */
static inline __m512i
bcast256(const void *p)
{
	return _mm512_broadcast_i64x4(loadu(p));
}

/* a in the low half, b in the high half. */
static inline __m512i
halves(__m256i a, __m256i b)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* Scale permutes: int16 lane k of register v takes scale 4v + k / 8 (16
 * elements per scale) or 2v + k / 16 (32 elements per scale). */
#define SIDX8(g) g, g, g, g, g, g, g, g
#define SIDX16(v) { SIDX8(4 * (v)), SIDX8(4 * (v) + 1), SIDX8(4 * (v) + 2), SIDX8(4 * (v) + 3) }
#define SIDX32(v) { SIDX8(2 * (v)), SIDX8(2 * (v)), SIDX8(2 * (v) + 1), SIDX8(2 * (v) + 1) }
static const int16_t sidx16[4][32] = { SIDX16(0), SIDX16(1), SIDX16(2), SIDX16(3) };
static const int16_t sidx32[4][32] = { SIDX32(0), SIDX32(1), SIDX32(2), SIDX32(3) };

/* Two fp16 values (d, then dmin) from p as floats. */
static inline void
fp16x2(const uint16_t *p, float *d, float *dmin)
{
	uint32_t v;
	__m128 f;

	memcpy(&v, p, sizeof(v));
	f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)v));
	*d = _mm_cvtss_f32(f);
	*dmin = _mm_cvtss_f32(_mm_movehdup_ps(f));
}

/* Q2_K and Q3_K: 32 bytes of qs hold 128 elements, 2 bits each: element
 * 32 s + l in bits 2 s of byte l. Register 2 h + k gets elements
 * 128 h + 64 k .. + 63 (shifts 4 k and 4 k + 2 in its two halves). */
static ALWAYS_INLINE void
crumbs(const uint8_t *qs, __m512i *q)
{
	const __m512i m3 = _mm512_set1_epi8(3);
	const __m512i sh0 = halves(_mm256_setzero_si256(), _mm256_set1_epi16(2));
	const __m512i sh1 = halves(_mm256_set1_epi16(4), _mm256_set1_epi16(6));

	KQ_UNROLL
	for (int h = 0; h < 2; h++) {
		__m512i b = bcast256(qs + 32 * h);

		q[2 * h] = _mm512_and_si512(_mm512_srlv_epi16(b, sh0), m3);
		q[2 * h + 1] = _mm512_and_si512(_mm512_srlv_epi16(b, sh1), m3);
	}
}

/* The four scale vectors of 16 int16 scales (16 elements each). */
static ALWAYS_INLINE void
scales_by16(__m256i s16, __m512i *sc)
{
	__m512i s = _mm512_castsi256_si512(s16);

	KQ_UNROLL
	for (int v = 0; v < 4; v++)
		sc[v] = _mm512_permutexvar_epi16(load512(sidx16[v]), s);
}

static ALWAYS_INLINE void
unpack_q2_K(const struct block_q2_K *a, struct kblock *u)
{
	__m128i raw = _mm_loadu_si128((const __m128i *)a->scales);
	const __m128i m4 = _mm_set1_epi8(0x0f);

	crumbs(a->qs, u->q);
	scales_by16(_mm256_cvtepu8_epi16(_mm_and_si128(raw, m4)), u->sc);
	u->m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
	fp16x2(&a->d, &u->d, &u->dmin);
}

/* Q3_K: level = crumb | high bit << 2 in 0..7; the -4 goes in through
 * the bsums. Element 128 h + 32 s + l has bit 4 h + s of hmask[l]. */
static ALWAYS_INLINE void
unpack_q3_K(const struct block_q3_K *a, struct kblock *u)
{
	const __m512i four = _mm512_set1_epi8(4), hm = bcast256(a->hmask);
	uint64_t slo, shi;

	crumbs(a->qs, u->q);
	KQ_UNROLL
	for (int v = 0; v < 4; v++) { /* bits 2 v, 2 v + 1: s and h folded */
		__m512i bit = halves(_mm256_set1_epi8((char)(1 << 2 * v)),
		    _mm256_set1_epi8((char)(1 << (2 * v + 1))));

		u->q[v] = _mm512_mask_add_epi8(u->q[v], _mm512_test_epi8_mask(hm, bit), u->q[v],
		    four);
	}
	q3_scale_bytes(a->scales, &slo, &shi);
	u->m16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_set_epi64x((int64_t)shi, (int64_t)slo),
	    _mm_set1_epi8(32)));
	scales_by16(u->m16, u->sc);
	u->d = _cvtsh_ss(a->d);
	u->dmin = 0;
}

/* Q4_K / Q5_K's 8 scales and 8 mins (6 bits each, packed in 12 bytes) as
 * one byte per sub-block. */
static inline void
k4_scales(const uint8_t *p, uint64_t *sc, uint64_t *mn)
{
	const uint32_t m6 = 0x3f3f3f3fu, m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
	uint32_t w0, w1, w2;

	memcpy(&w0, p, 4);
	memcpy(&w1, p + 4, 4);
	memcpy(&w2, p + 8, 4);
	/* sub-blocks 0-3: low 6 bits of bytes 0-3 (scales), 4-7 (mins);
	 * 4-7: a nibble of bytes 8-11 and the top 2 bits of bytes 0-3 / 4-7 */
	*sc = (w0 & m6) | (uint64_t)((w2 & m4) | ((w0 >> 6) & m2) << 4) << 32;
	*mn = (w1 & m6) | (uint64_t)(((w2 >> 4) & m4) | ((w1 >> 6) & m2) << 4) << 32;
}

/* Q4_K and Q5_K: 32 bytes of qs hold sub-blocks 2 c (low nibbles) and
 * 2 c + 1 (high nibbles), register c gets both; Q5_K's fifth bit of
 * element 64 j + 32 hi + l is bit 2 j + hi of qh[l] (qh NULL for Q4_K). */
static ALWAYS_INLINE void
unpack_k4(const uint16_t *dd, const uint8_t *scales, const uint8_t *qs, const uint8_t *qh,
    struct kblock *u)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const __m512i sh = halves(_mm256_setzero_si256(), _mm256_set1_epi16(4));
	uint64_t sc, mn;
	__m512i s16;
	__m128i m;

	k4_scales(scales, &sc, &mn);
	s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((int64_t)sc)));
	KQ_UNROLL
	for (int c = 0; c < 4; c++) {
		u->q[c] = _mm512_and_si512(_mm512_srlv_epi16(bcast256(qs + 32 * c), sh), m4);
		u->sc[c] = _mm512_permutexvar_epi16(load512(sidx32[c]), s16);
	}
	if (qh != NULL) {
		const __m512i hb = bcast256(qh), sixteen = _mm512_set1_epi8(16);

		KQ_UNROLL
		for (int c = 0; c < 4; c++) {
			__m512i bit = halves(_mm256_set1_epi8((char)(1 << 2 * c)),
			    _mm256_set1_epi8((char)(1 << (2 * c + 1))));

			u->q[c] = _mm512_mask_add_epi8(u->q[c], _mm512_test_epi8_mask(hb, bit),
			    u->q[c], sixteen);
		}
	}
	m = _mm_cvtsi64_si128((int64_t)mn);
	u->m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));
	fp16x2(dd, &u->d, &u->dmin);
}

static ALWAYS_INLINE void
unpack_q4_K(const struct block_q4_K *a, struct kblock *u)
{
	unpack_k4(&a->d, a->scales, a->qs, NULL, u);
}

static ALWAYS_INLINE void
unpack_q5_K(const struct block_q5_K *a, struct kblock *u)
{
	unpack_k4(&a->d, a->scales, a->qs, a->qh, u);
}

/* Q6_K: per half h, ql's 64 bytes hold elements 128 h + 0..63 (low
 * nibbles) and + 64..127 (high nibbles); the top two bits of element
 * 128 h + 32 s + l are bits 2 s of qh[32 h + l]. Level = q - 32, the -32
 * through the bsums. */
static ALWAYS_INLINE void
unpack_q6_K(const struct block_q6_K *a, struct kblock *u)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
	const __m512i shl = halves(_mm256_set1_epi16(4), _mm256_set1_epi16(2));
	const __m512i shr = halves(_mm256_setzero_si256(), _mm256_set1_epi16(2));

	KQ_UNROLL
	for (int h = 0; h < 2; h++) {
		__m512i ql = load512(a->ql + 64 * h), qh = bcast256(a->qh + 32 * h);

		/* (A & C) | B with B already masked: 0xf0 & 0xaa | 0xcc */
		u->q[2 * h] = _mm512_ternarylogic_epi32(ql,
		    _mm512_and_si512(_mm512_sllv_epi16(qh, shl), m30), m4, 0xec);
		u->q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4),
		    _mm512_and_si512(_mm512_srlv_epi16(qh, shr), m30), m4, 0xec);
	}
	u->m16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a->scales));
	scales_by16(u->m16, u->sc);
	u->d = _cvtsh_ss(a->d);
	u->dmin = 0;
}

/* The integer sum of block u times activation block b, 16 lanes. */
static ALWAYS_INLINE __m512i
kq_isum(const struct kblock *u, const struct block_q8_K *b)
{
	__m512i s0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
	    _mm512_maddubs_epi16(u->q[0], load512(b->qs)), u->sc[0]);
	__m512i s1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
	    _mm512_maddubs_epi16(u->q[1], load512(b->qs + 64)), u->sc[1]);

	s0 = _mm512_dpwssd_epi32(s0, _mm512_maddubs_epi16(u->q[2], load512(b->qs + 128)),
	    u->sc[2]);
	s1 = _mm512_dpwssd_epi32(s1, _mm512_maddubs_epi16(u->q[3], load512(b->qs + 192)),
	    u->sc[3]);
	return _mm512_add_epi32(s0, s1);
}

/* One block of one activation row for Q2_K, Q4_K, Q5_K: the scaled sum
 * into acc, d_min * sum m bsums into accm. */
static ALWAYS_INLINE void
row_min(const struct kblock *u, const struct block_q8_K *b, __m512 *acc, __m256 *accm)
{
	*acc = _mm512_fmadd_ps(_mm512_set1_ps(u->d * b->d), _mm512_cvtepi32_ps(kq_isum(u, b)),
	    *acc);
	*accm = _mm256_fmadd_ps(_mm256_set1_ps(u->dmin * b->d),
	    _mm256_cvtepi32_ps(_mm256_madd_epi16(u->m16, loadu(b->bsums))), *accm);
}

/* One block of one activation row for Q3_K (shift 2: -4) and Q6_K (shift
 * 5: -32): the offset subtracted lane-wise, no horizontal sum; accm is
 * left at 0. */
static ALWAYS_INLINE void
row_off(const struct kblock *u, const struct block_q8_K *b, int shift, __m512 *acc,
    __m256 *accm)
{
	(void)accm;
	__m256i off = _mm256_slli_epi32(_mm256_madd_epi16(u->m16, loadu(b->bsums)), shift);
	__m512i isum = _mm512_sub_epi32(kq_isum(u, b), _mm512_zextsi256_si512(off));

	*acc = _mm512_fmadd_ps(_mm512_set1_ps(u->d * b->d), _mm512_cvtepi32_ps(isum), *acc);
}

#define ROW_q2_K(u, b, acc, accm) row_min(u, b, acc, accm)
#define ROW_q3_K(u, b, acc, accm) row_off(u, b, 2, acc, accm)
#define ROW_q4_K(u, b, acc, accm) row_min(u, b, acc, accm)
#define ROW_q5_K(u, b, acc, accm) row_min(u, b, acc, accm)
#define ROW_q6_K(u, b, acc, accm) row_off(u, b, 5, acc, accm)

/* One output from its accumulators (accm is never touched without mins). */
static inline float
kq_final(__m512 acc, __m256 accm, int has_min)
{
	return has_min ? hsum16(acc) - hsum8(accm) : hsum16(acc);
}

/* The Q8_K block i of activation row t. */
static inline const struct block_q8_K *
xblock(const void *x, size_t xs, int t, int64_t i)
{
	return (const struct block_q8_K *)((const uint8_t *)x + (size_t)t * xs) + i;
}

/* The gemm's step: units i0..i1-1 of one weight row of n elements for nx
 * activation rows, whose accumulators come from and go back to st. */
typedef void (*kq_pass_fn)(const void *w, int64_t n, int64_t i0, int64_t i1, const void *x,
    size_t xs, int nx, struct kacc *st);

/*
 * The gemm of the K-quants and Q8_0, for many activation rows: weight rows
 * in blocks of GEMM_ROWS, activation rows in tiles of GEMM_TILE, the nb
 * units of a row (blocks of 256, Q8_0 block pairs) in chunks of chunk
 * units (GEMM_CHUNK K-quant blocks, Q8_CHUNK pairs). For each chunk,
 * each group of KQ_ROWS activation rows (18 KiB of it for the K-quants, so
 * it stays in L1) meets every weight row of the block, each weight block
 * unpacked once per group; the accumulators wait in st between chunks.
 * Each output still takes its blocks in order through the same float
 * steps as dot.
 */
#define GEMM_ROWS 16
#define GEMM_TILE 32
#define GEMM_CHUNK 8

static void
kq_gemm(int64_t n, int64_t nb, int64_t chunk, int64_t rows, const uint8_t *w, size_t ws,
    const uint8_t *x, size_t xs, int64_t nx, float *y, size_t ys, kq_pass_fn pass, int has_min)
{
	static const struct kacc zero;
	struct kacc st[GEMM_ROWS][GEMM_TILE];

	for (int64_t r0 = 0; r0 < rows; r0 += GEMM_ROWS) {
		int64_t nr = rows - r0 < GEMM_ROWS ? rows - r0 : GEMM_ROWS;

		for (int64_t t0 = 0; t0 < nx; t0 += GEMM_TILE) {
			int64_t nt = nx - t0 < GEMM_TILE ? nx - t0 : GEMM_TILE;

			for (int64_t r = 0; r < nr; r++)
				for (int64_t t = 0; t < nt; t++)
					st[r][t] = zero;
			for (int64_t i0 = 0; i0 < nb; i0 += chunk) {
				int64_t i1 = nb - i0 < chunk ? nb : i0 + chunk;

				for (int64_t g = 0; g < nt; g += KQ_ROWS)
					for (int64_t r = 0; r < nr; r++)
						pass(w + (size_t)(r0 + r) * ws, n, i0, i1,
						    x + (size_t)(t0 + g) * xs, xs,
						    nt - g < KQ_ROWS ? (int)(nt - g) : KQ_ROWS,
						    &st[r][g]);
			}
			for (int64_t r = 0; r < nr; r++)
				for (int64_t t = 0; t < nt; t++)
					y[(size_t)(t0 + t) * ys + (size_t)(r0 + r)] =
					    kq_final(st[r][t].acc, st[r][t].accm, has_min);
		}
	}
}


/*
 * Per K-quant type: span (blocks i0..i1-1 of one weight row for nx
 * activation rows; nx is a constant after inlining, so the accumulators
 * live in registers), rows (a whole row, for dot and dotn), step (the
 * gemm's pass) and the entry points, which switch to a constant nx.
 */
#define KQ_KERNELS(T, BLOCK, HAS_MIN)                                          \
	static ALWAYS_INLINE void                                              \
	span_##T(const int nx, const struct BLOCK *a, int64_t i0, int64_t i1,  \
	    const void *x, size_t xs, __m512 *acc, __m256 *accm)               \
	{                                                                      \
		for (int64_t i = i0; i < i1; i++) {                            \
			struct kblock u;                                       \
                                                                               \
			unpack_##T(a + i, &u);                                 \
			KQ_UNROLL                                              \
			for (int t = 0; t < nx; t++)                           \
				ROW_##T(&u, xblock(x, xs, t, i), &acc[t], &accm[t]); \
		}                                                              \
	}                                                                      \
                                                                               \
	static ALWAYS_INLINE void                                              \
	rows_##T(const int nx, int64_t n, const void *w, const void *x, size_t xs, \
	    float *out)                                                        \
	{                                                                      \
		__m512 acc[KQ_ROWS];                                           \
		__m256 accm[KQ_ROWS];                                          \
                                                                               \
		KQ_UNROLL                                                                    \
		for (int t = 0; t < nx; t++) {                                 \
			acc[t] = _mm512_setzero_ps();                          \
			accm[t] = _mm256_setzero_ps();                         \
		}                                                              \
		span_##T(nx, w, 0, n / QK_K, x, xs, acc, accm);                \
		KQ_UNROLL                                                                    \
		for (int t = 0; t < nx; t++)                                   \
			out[t] = kq_final(acc[t], accm[t], HAS_MIN);           \
	}                                                                      \
                                                                               \
	static ALWAYS_INLINE void                                              \
	step_##T(const int nx, const void *w, int64_t i0, int64_t i1, const void *x, \
	    size_t xs, struct kacc *st)                                        \
	{                                                                      \
		__m512 acc[KQ_ROWS];                                           \
		__m256 accm[KQ_ROWS];                                          \
                                                                               \
		KQ_UNROLL                                                                    \
		for (int t = 0; t < nx; t++) {                                 \
			acc[t] = st[t].acc;                                    \
			accm[t] = st[t].accm;                                  \
		}                                                              \
		span_##T(nx, w, i0, i1, x, xs, acc, accm);                     \
		KQ_UNROLL                                                                    \
		for (int t = 0; t < nx; t++) {                                 \
			st[t].acc = acc[t];                                    \
			st[t].accm = accm[t];                                  \
		}                                                              \
	}                                                                      \
                                                                               \
	static float                                                           \
	dot_##T(int64_t n, const void *w, const void *x)                       \
	{                                                                      \
		float out;                                                     \
                                                                               \
		rows_##T(1, n, w, x, 0, &out);                                 \
		return out;                                                    \
	}                                                                      \
                                                                               \
	static void                                                            \
	dotn_##T(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) \
	{                                                                      \
		CPU_NX_SWITCH(nx, rows_##T, n, w, x, xs, out)                      \
	}                                                                      \
                                                                               \
	static void                                                            \
	pass_##T(const void *w, int64_t n, int64_t i0, int64_t i1, const void *x, \
	    size_t xs, int nx, struct kacc *st)                                \
	{                                                                      \
		(void)n;                                                       \
		CPU_NX_SWITCH(nx, step_##T, w, i0, i1, x, xs, st)                  \
	}                                                                      \
                                                                               \
	static void                                                            \
	gemm_##T(int64_t n, int64_t rows, const void *w, size_t ws, const void *x, \
	    size_t xs, int64_t nx, float *y, size_t ys)                        \
	{                                                                      \
		kq_gemm(n, n / QK_K, GEMM_CHUNK, rows, w, ws, x, xs, nx, y, ys,  \
		    pass_##T, HAS_MIN);                                        \
	}

KQ_KERNELS(q2_K, block_q2_K, 1)
KQ_KERNELS(q3_K, block_q3_K, 0)
KQ_KERNELS(q4_K, block_q4_K, 1)
KQ_KERNELS(q5_K, block_q5_K, 1)
KQ_KERNELS(q6_K, block_q6_K, 0)

/*
 * Q8_0 x Q8_0 in units of two blocks, one per half of a register (the
 * second half empty at the end of a row with an odd block count).
 * vpdpbusd takes |w| and the activations negated where w < 0 (AVX-512 has
 * no vpsignb), exact: |w| <= 128, |x| <= 127. The two blocks' scale
 * products go into one 16-lane accumulator.
 */
#define Q8_CHUNK 16 /* units of the gemm's chunk: 1024 elements */

static ALWAYS_INLINE void
span_q8_0(const int nx, const struct block_q8_0 *a, int64_t nblk, int64_t i0, int64_t i1,
    const void *x, size_t xs, __m512 *acc)
{
	for (int64_t i = i0; i < i1; i++) {
		const struct block_q8_0 *p = a + 2 * i;
		int two = 2 * i + 1 < nblk;
		__m512i w = two ? halves(loadu(p[0].qs), loadu(p[1].qs)) :
		    _mm512_zextsi256_si512(loadu(p[0].qs));
		__m512i aw = _mm512_abs_epi8(w);
		__mmask64 neg = _mm512_movepi8_mask(w);
		float d0 = _cvtsh_ss(p[0].d), d1 = two ? _cvtsh_ss(p[1].d) : 0.0f;

		KQ_UNROLL
		for (int t = 0; t < nx; t++) {
			const struct block_q8_0 *b =
			    (const struct block_q8_0 *)((const uint8_t *)x + (size_t)t * xs) + 2 * i;
			__m512i y = two ? halves(loadu(b[0].qs), loadu(b[1].qs)) :
			    _mm512_zextsi256_si512(loadu(b[0].qs));
			__m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw,
			    _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y));
			__m512 d = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(d0 * _cvtsh_ss(b[0].d)),
			    _mm512_set1_ps(two ? d1 * _cvtsh_ss(b[1].d) : 0.0f));

			acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[t]);
		}
	}
}

static ALWAYS_INLINE void
rows_q8_0(const int nx, int64_t n, const void *w, const void *x, size_t xs, float *out)
{
	__m512 acc[KQ_ROWS];

	KQ_UNROLL
	for (int t = 0; t < nx; t++)
		acc[t] = _mm512_setzero_ps();
	span_q8_0(nx, w, n / QK8_0, 0, (n / QK8_0 + 1) / 2, x, xs, acc);
	KQ_UNROLL
	for (int t = 0; t < nx; t++)
		out[t] = hsum16(acc[t]);
}

static ALWAYS_INLINE void
step_q8_0(const int nx, const void *w, int64_t nblk, int64_t i0, int64_t i1, const void *x,
    size_t xs, struct kacc *st)
{
	__m512 acc[KQ_ROWS];

	KQ_UNROLL
	for (int t = 0; t < nx; t++)
		acc[t] = st[t].acc;
	span_q8_0(nx, w, nblk, i0, i1, x, xs, acc);
	KQ_UNROLL
	for (int t = 0; t < nx; t++)
		st[t].acc = acc[t];
}

static float
dot_q8_0(int64_t n, const void *w, const void *x)
{
	float out;

	rows_q8_0(1, n, w, x, 0, &out);
	return out;
}

static void
dotn_q8_0(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out)
{
	CPU_NX_SWITCH(nx, rows_q8_0, n, w, x, xs, out)
}

static void
pass_q8_0(const void *w, int64_t n, int64_t i0, int64_t i1, const void *x, size_t xs, int nx,
    struct kacc *st)
{
	CPU_NX_SWITCH(nx, step_q8_0, w, n / QK8_0, i0, i1, x, xs, st)
}

static void
gemm_q8_0(int64_t n, int64_t rows, const void *w, size_t ws, const void *x, size_t xs,
    int64_t nx, float *y, size_t ys)
{
	kq_gemm(n, (n / QK8_0 + 1) / 2, Q8_CHUNK, rows, w, ws, x, xs, nx, y, ys, pass_q8_0, 0);
}

/* ---- float types x float32, 16 lanes ---- */

#define FLOAT_DOT16(NAME, LOAD16, SCALAR)                                      \
	static float                                                           \
	NAME(int64_t n, const void *w, const void *x)                          \
	{                                                                      \
		const uint16_t *a16 = w;                                       \
		const float *a32 = w, *b = x;                                  \
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;    \
		int64_t i = 0;                                                 \
		float tail = 0.0f;                                             \
                                                                               \
		(void)a16;                                                     \
		(void)a32;                                                     \
		for (; i + 64 <= n; i += 64) {                                 \
			s0 = _mm512_fmadd_ps(LOAD16(i), _mm512_loadu_ps(b + i), s0); \
			s1 = _mm512_fmadd_ps(LOAD16(i + 16), _mm512_loadu_ps(b + i + 16), s1); \
			s2 = _mm512_fmadd_ps(LOAD16(i + 32), _mm512_loadu_ps(b + i + 32), s2); \
			s3 = _mm512_fmadd_ps(LOAD16(i + 48), _mm512_loadu_ps(b + i + 48), s3); \
		}                                                              \
		for (; i + 16 <= n; i += 16)                                   \
			s0 = _mm512_fmadd_ps(LOAD16(i), _mm512_loadu_ps(b + i), s0); \
		for (; i < n; i++)                                             \
			tail += SCALAR(i) * b[i];                              \
		return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), \
		    _mm512_add_ps(s2, s3))) + tail;                            \
	}

#define LOAD_F32(i) _mm512_loadu_ps(a32 + (i))
#define LOAD_F16(i) _mm512_cvtph_ps(loadu(a16 + (i)))
#define LOAD_BF16(i) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(loadu(a16 + (i))), 16))
#define SCALAR_F32(i) a32[i]
#define SCALAR_F16(i) _cvtsh_ss(a16[i])
#define SCALAR_BF16(i) ktx_bf16_to_fp32(a16[i])

FLOAT_DOT16(dot_f32, LOAD_F32, SCALAR_F32)
FLOAT_DOT16(dot_f16, LOAD_F16, SCALAR_F16)
FLOAT_DOT16(dot_bf16, LOAD_BF16, SCALAR_BF16)

void
cpu_fill_avx512(struct cpu_kernels *k)
{
	static const struct {
		uint32_t type;
		cpu_dot_fn fn;
		cpu_dotn_fn fnn;
		cpu_gemm_fn gemm;
	} dots[] = {
		{ KTX_TYPE_Q4_0, dot_q4_0, NULL, NULL }, { KTX_TYPE_Q8_0, dot_q8_0, dotn_q8_0, gemm_q8_0 },
		{ KTX_TYPE_Q2_K, dot_q2_K, dotn_q2_K, gemm_q2_K },
		{ KTX_TYPE_Q3_K, dot_q3_K, dotn_q3_K, gemm_q3_K },
		{ KTX_TYPE_Q4_K, dot_q4_K, dotn_q4_K, gemm_q4_K },
		{ KTX_TYPE_Q5_K, dot_q5_K, dotn_q5_K, gemm_q5_K },
		{ KTX_TYPE_Q6_K, dot_q6_K, dotn_q6_K, gemm_q6_K }, { KTX_TYPE_F32, dot_f32, NULL, NULL },
		{ KTX_TYPE_F16, dot_f16, NULL, NULL }, { KTX_TYPE_BF16, dot_bf16, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
		k->dot[dots[i].type] = dots[i].fn;
		k->dotn[dots[i].type] = dots[i].fnn;
		k->gemm[dots[i].type] = dots[i].gemm;
		k->dot_level[dots[i].type] = KTX_CPU_AVX512;
	}
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
