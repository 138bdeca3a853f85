/*
 * rp_q6.c - repacked Q6_K (repack.h): sixteen weight rows per group, one
 * row per 32-bit lane, so that one vpdpbusd takes four k-elements of all
 * sixteen rows against four broadcast activation bytes. Q6_K is the output
 * head and the embeddings of most DeepSeek files.
 *
 * A group is laid out block by block; block i of its 16 rows (a
 * block-group, 16 * sizeof(block) = 3360 bytes) holds, at these offsets:
 *   0     d of rows 0..15 (fp16)
 *   32    the scales, transposed: scale j of row r at 16 j + r
 *   288   the 6-bit levels q (0..63) of sub-block j (elements 16 j ..
 *         16 j + 15) at 288 + 192 j, as three vectors of 64 bytes A, B, C:
 *         byte 4 r + i of vector v holds, in bits 0-5, q of element
 *         16 j + 4 v + i of row r, and in bits 6-7 bits 2 v, 2 v + 1 of
 *         q of element 16 j + 12 + i.
 * The levels are a permutation of the bits of ql and qh (each of their bits
 * is one bit of one level), d and the scales are copied, so unpack gives the
 * rows back bit for bit. Masked, A, B and C are the levels of elements
 * 0-3, 4-7, 8-11 of the sub-block in every lane; their top two bits, shifted
 * together, elements 12-15.
 *
 * Arithmetic per block and row (lane), with x the activations and B_j the
 * Q8_K bsums: S_j = -32 B_j + sum of q * x over sub-block j (4 vpdpbusd on
 * top of the broadcast -32 B_j), isum = sum_j sc_j * S_j by vpmulld, exact
 * in int32 (bounds at q6_sub); then in float, blocks in order, one
 * accumulator per output:
 *   acc = fma(cvt(isum), d * x.d, acc)
 * The same instructions run per lane whatever nx is and wherever the
 * activation row sits among them, so an output's bits depend on neither.
 */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi2,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,bmi2,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/repack.h"
#include "kernels/cpu/rp_simd.h"
#include "kernels/quant_blocks.h"


/* Unrolls the short loops over registers (see avx512.c's KQ_UNROLL);
 * RP_UNROLL2 a longer loop twice. */
#if defined(__clang__)
#define RP_UNROLL _Pragma("clang loop unroll(full)")
#define RP_UNROLL2 _Pragma("clang loop unroll_count(2)")
#else
#define RP_UNROLL _Pragma("GCC unroll 8")
#define RP_UNROLL2 _Pragma("GCC unroll 2")
#endif

#define R KTX_CPU_RP_ROWS
#define NSUB (QK_K / 16) /* sub-blocks per block */

/* Offsets inside a block-group (see the top of the file). */
#define BG_D 0
#define BG_SC (2 * R)
#define BG_Q (BG_SC + NSUB * R)
#define SUB_BYTES (3 * 4 * R) /* one sub-block's A, B, C */

/* Bytes of a block-group. */
#define BG (R * sizeof(struct block_q6_K))

/* How far ahead the gemm prefetches its weights: two block-groups (at
 * nx = 8 one takes a DRAM latency or so to compute). The hardware's
 * stream prefetch alone leaves the compute-bound gemm waiting on memory
 * (half the speed at nx = 8); past the group's end it fetches the next
 * group, which the driver takes next. */
#define RP_AHEAD (2 * BG)

_Static_assert(BG_Q + NSUB * SUB_BYTES == BG, "Q6_K block-group layout");

/* ---- layout ---- */

/* The 256 levels (0..63) of a file block: element 128 h + 32 p + l takes
 * nibble p / 2 of ql[64 h + 32 (p % 2) + l] and bits 2 p of qh[32 h + l]
 * (ggml's dequantize_row_q6_K). */
static void
levels_get(const struct block_q6_K *b, uint8_t *q)
{
	for (int k = 0; k < QK_K; k++) {
		int h = k / 128, p = (k % 128) / 32, l = k % 32;
		int lo = (b->ql[64 * h + 32 * (p % 2) + l] >> (4 * (p / 2))) & 0x0f;
		int hi = (b->qh[32 * h + l] >> (2 * p)) & 3;

		q[k] = (uint8_t)(lo | hi << 4);
	}
}

/* ql and qh of a file block from its 256 levels (the inverse of
 * levels_get: every bit of ql and qh is set from one level). */
static void
levels_put(const uint8_t *q, struct block_q6_K *b)
{
	memset(b->ql, 0, sizeof(b->ql));
	memset(b->qh, 0, sizeof(b->qh));
	for (int k = 0; k < QK_K; k++) {
		int h = k / 128, p = (k % 128) / 32, l = k % 32;

		b->ql[64 * h + 32 * (p % 2) + l] |= (uint8_t)((q[k] & 0x0f) << (4 * (p / 2)));
		b->qh[32 * h + l] |= (uint8_t)((q[k] >> 4) << (2 * p));
	}
}

/* Byte i of the 4 r-th bytes of vector v of sub-block j (see the top). */
static inline size_t
q_at(int j, int v, int r, int i)
{
	return BG_Q + (size_t)SUB_BYTES * j + 64 * (size_t)v + 4 * (size_t)r + (size_t)i;
}

static void
pack_q6_K(int64_t n, const uint8_t *rows, size_t row_bytes, uint8_t *group)
{
	for (int64_t ib = 0; ib < n / QK_K; ib++) {
		uint8_t *bg = group + (size_t)ib * BG;

		for (int r = 0; r < R; r++) {
			struct block_q6_K blk;
			uint8_t q[QK_K];

			memcpy(&blk, rows + (size_t)r * row_bytes + (size_t)ib * sizeof(blk),
			    sizeof(blk));
			levels_get(&blk, q);
			memcpy(bg + BG_D + 2 * r, &blk.d, 2);
			for (int j = 0; j < NSUB; j++) {
				bg[BG_SC + R * j + r] = (uint8_t)blk.scales[j];
				for (int v = 0; v < 3; v++)
					for (int i = 0; i < 4; i++)
						bg[q_at(j, v, r, i)] = (uint8_t)(q[16 * j + 4 * v + i] |
						    ((q[16 * j + 12 + i] >> (2 * v)) & 3) << 6);
			}
		}
	}
}

static void
unpack_q6_K(int64_t n, const uint8_t *group, int r, uint8_t *row)
{
	for (int64_t ib = 0; ib < n / QK_K; ib++) {
		const uint8_t *bg = group + (size_t)ib * BG;
		struct block_q6_K blk;
		uint8_t q[QK_K];

		memcpy(&blk.d, bg + BG_D + 2 * r, 2);
		for (int j = 0; j < NSUB; j++) {
			blk.scales[j] = (int8_t)bg[BG_SC + R * j + r];
			for (int i = 0; i < 4; i++) {
				uint8_t hi = 0;

				for (int v = 0; v < 3; v++) {
					uint8_t b = bg[q_at(j, v, r, i)];

					q[16 * j + 4 * v + i] = b & 0x3f;
					hi |= (uint8_t)((b >> 6) << (2 * v));
				}
				q[16 * j + 12 + i] = hi;
			}
		}
		levels_put(q, &blk);
		memcpy(row + (size_t)ib * sizeof(blk), &blk, sizeof(blk));
	}
}

/* ---- gemm ---- */

/* 64 bytes from anywhere. */
static inline __m512i
load512(const void *p)
{
	return _mm512_loadu_si512(p);
}

/* Bits of a where m is set, of b elsewhere (vpternlog). */
static inline __m512i
select_bits(__m512i m, __m512i a, __m512i b)
{
	return _mm512_ternarylogic_epi32(m, a, b, 0xca);
}

/*
 * Sub-block j of one block-group (its levels at qv, scales sc) for nx
 * activation rows (their blocks at xb[t], -32 B_j at bias[t][j]): the 4
 * vectors of levels unpacked once, then per row S = 4 vpdpbusd on top of
 * the bias, and isum[t] += S * sc.
 *
 * Bounds (|x| <= 128): |S| = |sum (q - 32) x| <= 16 * 32 * 128 = 2^16 (the
 * partial sums on the way, from -32 B_j up by products q x >= 0 or down,
 * stay within 16 * 63 * 128 + 2^16 < 2^18), |sc| <= 128: |sc S| <= 2^23,
 * 16 sub-blocks: |isum| <= 2^27. All exact in int32, so their order is free.
 */
static ALWAYS_INLINE void
q6_sub(const int nx, const uint8_t *qv, int j, __m512i sc,
    const struct block_q8_K *const *xb, const int32_t (*bias)[NSUB], __m512i *isum)
{
	const __m512i m6 = _mm512_set1_epi8(0x3f), m2 = _mm512_set1_epi8(0x03);
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	__m512i a = load512(qv), b = load512(qv + 64), c = load512(qv + 128), w[4], lo;

	RP_UNROLL
	for (int l = 0; l < SUB_BYTES; l += 64)
		_mm_prefetch((const char *)qv + RP_AHEAD + l, _MM_HINT_T0);

	w[0] = _mm512_and_si512(a, m6);
	w[1] = _mm512_and_si512(b, m6);
	w[2] = _mm512_and_si512(c, m6);
	/* bits 6-7 of a, b, c to bits 0-1, 2-3, 4-5; a word's shift brings the
	 * next byte's bits into 6-7, hence the final mask */
	lo = select_bits(m2, _mm512_srli_epi16(a, 6), _mm512_srli_epi16(b, 4));
	w[3] = _mm512_and_si512(select_bits(m4, lo, _mm512_srli_epi16(c, 2)), m6);
	RP_UNROLL
	for (int t = 0; t < nx; t++) {
		const int8_t *xq = xb[t]->qs + 16 * j;
		__m512i s = _mm512_set1_epi32(bias[t][j]);

		RP_UNROLL
		for (int v = 0; v < 4; v++)
			s = dpbusd_bcast(s, w[v], xq + 4 * v);
		isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s, sc));
	}
}

/* The gemm of a group for a constant nx (see the top of the file). */
static ALWAYS_INLINE void
q6_gemm(const int nx, int64_t n, const uint8_t *group, const void *x, size_t xs, float *out)
{
	__m512 acc[CPU_RP_NX];

	RP_UNROLL
	for (int t = 0; t < nx; t++)
		acc[t] = _mm512_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *bg = group + (size_t)i * BG;
		const struct block_q8_K *xb[CPU_RP_NX];
		int32_t bias[CPU_RP_NX][NSUB] __attribute__((aligned(64)));
		__m512i isum[CPU_RP_NX];
		__m512 d;

		for (int l = 0; l < BG_Q; l += 64)
			_mm_prefetch((const char *)bg + RP_AHEAD + l, _MM_HINT_T0);
		RP_UNROLL
		for (int t = 0; t < nx; t++) {
			xb[t] = (const struct block_q8_K *)((const uint8_t *)x + (size_t)t * xs) + i;
			isum[t] = _mm512_setzero_si512();
			_mm512_store_si512(bias[t], _mm512_sub_epi32(_mm512_setzero_si512(),
			    _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm256_loadu_si256(
			    (const __m256i *)xb[t]->bsums)), 5)));
		}
		/* two sub-blocks per iteration: one's loads and unpacking overlap the
		 * other's dependent vpdpbusd */
		RP_UNROLL2
		for (int j = 0; j < NSUB; j++)
			q6_sub(nx, bg + BG_Q + SUB_BYTES * j, j,
			    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(bg + BG_SC +
			    R * j))), xb, (const int32_t (*)[NSUB])bias, isum);
		d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(bg + BG_D)));
		RP_UNROLL
		for (int t = 0; t < nx; t++)
			acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]),
			    _mm512_mul_ps(d, _mm512_set1_ps(xb[t]->d)), acc[t]);
	}
	RP_UNROLL
	for (int t = 0; t < nx; t++)
		_mm512_storeu_ps(out + (size_t)t * R, acc[t]);
}


static void
gemm_q6_K(int64_t n, const uint8_t *group, const void *x, size_t x_stride, int nx, float *out)
{
	CPU_NX_SWITCH(nx, q6_gemm, n, group, x, x_stride, out)
}

const struct cpu_rp_ops cpu_rp_q6_K = {
	sizeof(struct block_q6_K), pack_q6_K, unpack_q6_K, gemm_q6_K
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
