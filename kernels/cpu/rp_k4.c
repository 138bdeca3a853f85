/*
 * rp_k4.c - repacked Q4_K and Q5_K (repack.h): sixteen weight rows per
 * group, one row per 32-bit lane, so that one vpdpbusd takes four
 * k-elements of all sixteen rows against four broadcast activation bytes.
 *
 * A group is laid out block by block; block i of its 16 rows (a
 * block-group, 16 * sizeof(block) bytes) holds, at these offsets:
 *   0     d of rows 0..15 (fp16)
 *   32    dmin of rows 0..15 (fp16)
 *   64    the 12 packed scale bytes, transposed: byte b of row r at 16 b + r
 *   256   Q5_K only: qh as 8 vectors of 64 bytes, word v (qh bytes
 *         4 v .. 4 v + 3) of row r at 64 v + 4 r
 *   then  qs as 32 vectors of 64 bytes, word w (qs bytes 4 w .. 4 w + 3) of
 *         row r at 64 w + 4 r
 * Every field is a permutation of the rows' bytes, so unpack gives them
 * back bit for bit. qs word w = 8 p + v holds, in its four bytes' low
 * nibbles, elements 64 p + 4 v .. + 3 (sub-block 2 p) and in the high
 * nibbles those 32 further on (sub-block 2 p + 1); qh word v holds their
 * fifth bits at bits 2 p and 2 p + 1 of each byte. A vector of qs, masked,
 * is thus four consecutive levels of each of the sixteen rows.
 *
 * Arithmetic per block and row (lane): S_j = sum of q * x over sub-block j
 * by 8 vpdpbusd, isum = sum_j sc_j * S_j by vpmulld, imin = sum_j m_j *
 * (bsums[2 j] + bsums[2 j + 1]) by vpdpwssd, all exact in int32 (bounds at
 * k4_pair); then in float, blocks in order, one accumulator per output:
 *   acc = fma(cvt(isum), d * x.d, acc); acc = fnmadd(cvt(imin), dmin * x.d, acc)
 * The same instructions run per lane whatever nx is and wherever the
 * activation row sits among them, so an output's bits depend on neither.
 *
 * cpu.c's level check guards every call: repack.c hands these ops out
 * only at KTX_CPU_AVX512 (F, BW, VL, VNNI).
 */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/repack.h"
#include "kernels/cpu/rp_simd.h"
#include "kernels/quant_blocks.h"


/* Unrolls the short loops over registers (see avx512.c's KQ_UNROLL), or
 * keeps a loop rolled. */
#if defined(__clang__)
#define RP_UNROLL _Pragma("clang loop unroll(full)")
#define RP_ROLLED _Pragma("clang loop unroll(disable)")
#else
#define RP_UNROLL _Pragma("GCC unroll 8")
#define RP_ROLLED _Pragma("GCC unroll 1")
#endif

#define R KTX_CPU_RP_ROWS

/* Offsets inside a block-group (see the top of the file). */
#define BG_D 0
#define BG_DMIN (2 * R)
#define BG_SC (4 * R)
#define BG_QH (BG_SC + K_SCALE_SIZE * R)
#define BG_QS4 BG_QH
#define BG_QS5 (BG_QH + QK_K / 8 * R)

/* Bytes of a block-group. */
#define BG4 (R * sizeof(struct block_q4_K))
#define BG5 (R * sizeof(struct block_q5_K))

/* ---- layout ---- */

/* Offsets inside a file block: Q5_K's qh, and qs. */
#define FB_QH (4 + K_SCALE_SIZE)
#define FB_QS(q5) ((q5) ? FB_QH + QK_K / 8 : FB_QH)

/* The 16 rows (row_bytes apart) into a group, block by block (see the top
 * of the file); k4_unpack is its inverse for one row. */
static void
k4_pack(int64_t n, const uint8_t *rows, size_t row_bytes, uint8_t *group, int q5)
{
	const size_t bb = q5 ? sizeof(struct block_q5_K) : sizeof(struct block_q4_K);
	const size_t qs = q5 ? BG_QS5 : BG_QS4;

	for (int64_t i = 0; i < n / QK_K; i++) {
		uint8_t *bg = group + (size_t)i * R * bb;

		for (int r = 0; r < R; r++) {
			const uint8_t *b = rows + (size_t)r * row_bytes + (size_t)i * bb;

			memcpy(bg + BG_D + 2 * r, b, 2);
			memcpy(bg + BG_DMIN + 2 * r, b + 2, 2);
			for (int k = 0; k < K_SCALE_SIZE; k++)
				bg[BG_SC + R * k + r] = b[4 + k];
			for (int w = 0; q5 && w < QK_K / 32; w++)
				memcpy(bg + BG_QH + 64 * w + 4 * r, b + FB_QH + 4 * w, 4);
			for (int w = 0; w < QK_K / 8; w++)
				memcpy(bg + qs + 64 * w + 4 * r, b + FB_QS(q5) + 4 * w, 4);
		}
	}
}

static void
k4_unpack(int64_t n, const uint8_t *group, int r, uint8_t *row, int q5)
{
	const size_t bb = q5 ? sizeof(struct block_q5_K) : sizeof(struct block_q4_K);
	const size_t qs = q5 ? BG_QS5 : BG_QS4;

	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *bg = group + (size_t)i * R * bb;
		uint8_t *b = row + (size_t)i * bb;

		memcpy(b, bg + BG_D + 2 * r, 2);
		memcpy(b + 2, bg + BG_DMIN + 2 * r, 2);
		for (int k = 0; k < K_SCALE_SIZE; k++)
			b[4 + k] = bg[BG_SC + R * k + r];
		for (int w = 0; q5 && w < QK_K / 32; w++)
			memcpy(b + FB_QH + 4 * w, bg + BG_QH + 64 * w + 4 * r, 4);
		for (int w = 0; w < QK_K / 8; w++)
			memcpy(b + FB_QS(q5) + 4 * w, bg + qs + 64 * w + 4 * r, 4);
	}
}

static void
pack_q4_K(int64_t n, const uint8_t *rows, size_t row_bytes, uint8_t *group)
{
	k4_pack(n, rows, row_bytes, group, 0);
}

static void
pack_q5_K(int64_t n, const uint8_t *rows, size_t row_bytes, uint8_t *group)
{
	k4_pack(n, rows, row_bytes, group, 1);
}

static void
unpack_q4_K(int64_t n, const uint8_t *group, int r, uint8_t *row)
{
	k4_unpack(n, group, r, row, 0);
}

static void
unpack_q5_K(int64_t n, const uint8_t *group, int r, uint8_t *row)
{
	k4_unpack(n, group, r, row, 1);
}

/* ---- gemm ---- */

/* 64 bytes from anywhere. */
static inline __m512i
load512(const void *p)
{
	return _mm512_loadu_si512(p);
}

/* 4 bytes from anywhere in every 32-bit lane. */
static inline __m512i
bcast4(const void *p)
{
	int32_t v;

	memcpy(&v, p, sizeof(v));
	return _mm512_set1_epi32(v);
}

/* Byte k of each 16-byte lane of v widened to int32: one sub-block's value
 * for the 16 rows. */
#define XMM_U32(v, k) _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32((v), (k)))

/*
 * The 8 scales (sc) and 8 mins (mn) of a block-group's 16 rows, one int32
 * vector over the rows per sub-block; mins as the int16 pair (m, m) for
 * vpdpwssd against a pair of bsums. Q4_K's even sub-blocks get 16 sc (see
 * k4_pair). Scale j < 4 is the low 6 bits of byte j, min j of byte j + 4;
 * j >= 4 takes a nibble of byte j + 4 (low: scale, high: min) and the top
 * two bits of byte j - 4 (scale) or j (min).
 */
static ALWAYS_INLINE void
k4_scales(const uint8_t *p, int q5, __m512i *sc, __m512i *mn)
{
	const __m512i m6 = _mm512_set1_epi8(0x3f), m4 = _mm512_set1_epi8(0x0f);
	const __m512i m30 = _mm512_set1_epi8(0x30);
	__m512i z0 = load512(p), z1 = load512(p + 64), z2 = load512(p + 128);
	__m512i s[2], m[2];

	s[0] = _mm512_and_si512(z0, m6);
	m[0] = _mm512_and_si512(z1, m6);
	/* (a & m4) | (b & m30), b's bits 6-7 shifted to 4-5 */
	s[1] = _mm512_or_si512(_mm512_and_si512(z2, m4),
	    _mm512_and_si512(_mm512_srli_epi16(z0, 2), m30));
	m[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(z2, 4), m4),
	    _mm512_and_si512(_mm512_srli_epi16(z1, 2), m30));
#define K4_SC(j)                                                               \
	do {                                                                   \
		__m512i v = XMM_U32(s[(j) / 4], (j) % 4);                      \
		__m512i u = XMM_U32(m[(j) / 4], (j) % 4);                      \
                                                                               \
		sc[j] = !q5 && (j) % 2 == 0 ? _mm512_slli_epi32(v, 4) : v;     \
		mn[j] = _mm512_or_si512(u, _mm512_slli_epi32(u, 16));          \
	} while (0)
	K4_SC(0);
	K4_SC(1);
	K4_SC(2);
	K4_SC(3);
	K4_SC(4);
	K4_SC(5);
	K4_SC(6);
	K4_SC(7);
#undef K4_SC
}

/*
 * Sub-blocks 2 p and 2 p + 1 of one block-group for nx activation rows
 * (their blocks at xb[t]): each vector of qs is unpacked into the two
 * sub-blocks' levels once, and per row S = 8 vpdpbusd per sub-block, 2 nx
 * independent chains (at nx = 8 enough to hide vpdpbusd's latency), then
 * isum[t] += S_2p * sc[2 p] + S_2p+1 * sc[2 p + 1]. The loops over p and
 * the vectors stay loops: unrolled, the code outgrows the op cache.
 *
 * Q4_K's odd sub-blocks are the high nibbles left in place (16 q, up to
 * 240: still a byte), so their S is 16 times the sum and the even
 * sub-blocks' scales are 16 sc: isum ends 16 times the true sum, shifted
 * back at the end. Bounds (|x| <= 128): |16 S| <= 32 * 240 * 128 < 2^20,
 * times sc <= 63: < 2^26, 8 sub-blocks: < 2^29. Q5_K levels (0..31, fifth
 * bit from qh) are plain: 8 * 63 * 32 * 31 * 128 < 2^27. imin: 8 * 63 *
 * 2 * 16 * 128 < 2^21. All exact in int32, so their order is free.
 */
static ALWAYS_INLINE void
k4_pair(const int nx, const uint8_t *qs, const uint8_t *qh, int p, const __m512i *sc,
    const struct block_q8_K *const *xb, __m512i *isum)
{
	/* Q5_K: rotating each 32-bit lane left by these moves bits 2 p and
	 * 2 p + 1 of every byte to bit 4 of the same byte. */
	const __m512i rl = _mm512_set1_epi32((4 - 2 * p) & 31);
	const __m512i rh = _mm512_set1_epi32((3 - 2 * p) & 31);
	const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
	__m512i slo[CPU_RP_NX], shi[CPU_RP_NX];

	RP_UNROLL
	for (int t = 0; t < nx; t++) {
		slo[t] = _mm512_setzero_si512();
		shi[t] = _mm512_setzero_si512();
	}
	RP_ROLLED
	for (int v = 0; v < 8; v++) {
		__m512i raw = load512(qs + 64 * (8 * p + v)), lo, hi;

		if (qh == NULL) {
			lo = _mm512_and_si512(raw, m4);
			hi = _mm512_andnot_si512(m4, raw);
		} else {
			__m512i h = load512(qh + 64 * v);

			/* (nibble & 0x0f) | (fifth bit & 0x10) */
			lo = _mm512_ternarylogic_epi32(raw, m4,
			    _mm512_and_si512(_mm512_rolv_epi32(h, rl), b4), 0xea);
			hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(raw, 4), m4,
			    _mm512_and_si512(_mm512_rolv_epi32(h, rh), b4), 0xea);
		}
		RP_UNROLL
		for (int t = 0; t < nx; t++) {
			const int8_t *xq = xb[t]->qs + 64 * p + 4 * v;

			slo[t] = dpbusd_bcast(slo[t], lo, xq);
			shi[t] = dpbusd_bcast(shi[t], hi, xq + 32);
		}
	}
	RP_UNROLL
	for (int t = 0; t < nx; t++)
		isum[t] = _mm512_add_epi32(isum[t],
		    _mm512_add_epi32(_mm512_mullo_epi32(slo[t], sc[2 * p]),
		    _mm512_mullo_epi32(shi[t], sc[2 * p + 1])));
}

/* Block-groups ahead that each block prefetches (past the group's end:
 * the next group, which the driver usually takes next; a prefetch never
 * faults). With the hardware prefetchers alone, decode from DRAM (nx 1, 2)
 * read 14-18 GB/s on one Zen 5 core, the plain kernels 19-22; with this,
 * 27-30. */
#define K4_AHEAD 4

/*
 * The gemm of a group for a constant nx (see the top of the file). The
 * float accumulators wait in out between blocks (they are touched once a
 * block; the registers go to the integer chains).
 */
static ALWAYS_INLINE void
k4_gemm(const int nx, int q5, int64_t n, const uint8_t *group, const void *x, size_t xs,
    float *out)
{
	const size_t bgb = q5 ? BG5 : BG4;

	memset(out, 0, sizeof(float) * R * (size_t)nx);
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *bg = group + (size_t)i * bgb;
		const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(bg + BG_D)));
		const __m512 dmin =
		    _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(bg + BG_DMIN)));
		const struct block_q8_K *xb[CPU_RP_NX];
		__m512i sc[8], mn[8], isum[CPU_RP_NX];

		RP_UNROLL
		for (int t = 0; t < nx; t++) {
			xb[t] = (const struct block_q8_K *)((const uint8_t *)x + (size_t)t * xs) + i;
			isum[t] = _mm512_setzero_si512();
		}
		k4_scales(bg + BG_SC, q5, sc, mn);
		for (size_t l = 0; l < bgb; l += 64)
			_mm_prefetch((const char *)bg + K4_AHEAD * bgb + l, _MM_HINT_T0);
		RP_ROLLED
		for (int p = 0; p < 4; p++)
			k4_pair(nx, bg + (q5 ? BG_QS5 : BG_QS4), q5 ? bg + BG_QH : NULL, p, sc, xb,
			    isum);
		RP_UNROLL
		for (int t = 0; t < nx; t++) {
			__m512 xd = _mm512_set1_ps(xb[t]->d), a = _mm512_loadu_ps(out + t * R);
			__m512i imin = _mm512_setzero_si512();

			RP_UNROLL
			for (int j = 0; j < 8; j++)
				imin = _mm512_dpwssd_epi32(imin, mn[j], bcast4(xb[t]->bsums + 2 * j));
			if (!q5)
				isum[t] = _mm512_srai_epi32(isum[t], 4);
			a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, xd), a);
			a = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(dmin, xd), a);
			_mm512_storeu_ps(out + t * R, a);
		}
	}
}


static void
gemm_q4_K(int64_t n, const uint8_t *group, const void *x, size_t x_stride, int nx, float *out)
{
	CPU_NX_SWITCH(nx, k4_gemm, 0, n, group, x, x_stride, out)
}

static void
gemm_q5_K(int64_t n, const uint8_t *group, const void *x, size_t x_stride, int nx, float *out)
{
	CPU_NX_SWITCH(nx, k4_gemm, 1, n, group, x, x_stride, out)
}

const struct cpu_rp_ops cpu_rp_q4_K = {
	sizeof(struct block_q4_K), pack_q4_K, unpack_q4_K, gemm_q4_K
};

const struct cpu_rp_ops cpu_rp_q5_K = {
	sizeof(struct block_q5_K), pack_q5_K, unpack_q5_K, gemm_q5_K
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
