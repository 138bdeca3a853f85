/*
 * avx512.c - the AVX-512 (F, BW, VL, VNNI) kernels, where they pay over
 * AVX2: the float dot products at 16 lanes, and the byte dot products of
 * Q8_0, Q4_0, Q4_K and Q6_K through VNNI's vpdpbusd, which sums four
 * unsigned x signed byte products straight into int32 (exact, no int16
 * saturation step). The other types keep their AVX2 kernels.
 *
 * BF16 weights are widened by a shift and multiplied in float32 rather than
 * with AVX512_BF16's vdpbf16ps: that instruction flushes denormal inputs
 * and would differ from the reference on denormal-prone data.
 *
 * The K-quant kernels also come in a batched form (dotn) for several
 * activation rows, which unpacks each weight block once for all of them.
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

/* Signed bytes a times signed bytes b, summed in fours into int32: |a| is
 * unsigned (up to 128), b takes a's sign. */
static inline __m256i
dot_ss(__m256i acc, __m256i a, __m256i b)
{
	return _mm256_dpbusd_epi32(acc, _mm256_abs_epi8(a), _mm256_sign_epi8(b, a));
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

/* Each dot_ kernel: one weight row times one activation row (cpu_dot_fn). */
static float
dot_q8_0(int64_t n, const void *w, const void *x)
{
	const struct block_q8_0 *a = w, *b = x;
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK8_0; i++) {
		__m256 d = _mm256_set1_ps(ktx_fp16_to_fp32(a[i].d) * ktx_fp16_to_fp32(b[i].d));
		__m256i s = dot_ss(_mm256_setzero_si256(), loadu(a[i].qs), loadu(b[i].qs));

		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
	}
	return hsum8(acc);
}

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
		__m256 d = _mm256_set1_ps(ktx_fp16_to_fp32(a[i].d) * ktx_fp16_to_fp32(b[i].d));
		__m128i t = _mm_loadu_si128((const __m128i *)a[i].qs);
		__m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
		__m256i y = loadu(b[i].qs);
		__m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y);

		s = _mm256_sub_epi32(s, _mm256_dpbusd_epi32(_mm256_setzero_si256(), eight, y));
		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
	}
	return hsum8(acc);
}

/* ---- K-quants x Q8_K, 64 bytes at a time ---- */

/*
 * The K-quant kernels below lay 64 elements across a 512-bit register,
 * multiply unsigned levels by activation bytes into 32 int16 pair sums
 * (vpmaddubsw: at most 2 x 63 x 127, no saturation) and fold in the
 * integer sub-block scales with vpdpwssd, whose int16 scale vector is
 * permuted from the block's 16 (or 8) scales so that int16 lane k gets the
 * scale of the elements 2k, 2k + 1 it holds.
 */

/* 64 bytes from anywhere. */
static inline __m512i
load512(const void *p)
{
	return _mm512_loadu_si512(p);
}

/* Two 32-byte halves from different places. */
static inline __m512i
load2x256(const void *lo, const void *hi)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(loadu(lo)), loadu(hi), 1);
}

/* 16 unsigned byte scales widened to int16 lanes 0..15. */
static inline __m512i
scales16_u(const uint8_t *s)
{
	return _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)s)));
}

/* 16 signed byte scales widened to int16 lanes 0..15. */
static inline __m512i
scales16_s(const int8_t *s)
{
	return _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)s)));
}

/* Permute indices: int16 lane k (elements 2k, 2k + 1) takes the scale of
 * group g[k / 8], for the four 16-element quarters of a register. */
static inline __m512i
scale_idx(int g0, int g1, int g2, int g3)
{
	__m256i b = _mm256_setr_epi8((char)g0, (char)g0, (char)g0, (char)g0, (char)g0, (char)g0,
	    (char)g0, (char)g0, (char)g1, (char)g1, (char)g1, (char)g1, (char)g1, (char)g1, (char)g1,
	    (char)g1, (char)g2, (char)g2, (char)g2, (char)g2, (char)g2, (char)g2, (char)g2, (char)g2,
	    (char)g3, (char)g3, (char)g3, (char)g3, (char)g3, (char)g3, (char)g3, (char)g3);

	return _mm512_cvtepu8_epi16(b);
}

/* The sum of the 16 floats of v. */
static inline float
hsum16(__m512 v)
{
	return _mm512_reduce_add_ps(v);
}

/* sum_j m[j] * bsums[j] as 8 int32 (lanes to be summed). */
static inline __m256i
mins8(__m256i m16, const int16_t *bsums)
{
	return _mm256_madd_epi16(m16, loadu(bsums));
}

/*
 * Each K-quant kernel is written for up to CPU_DOTN_MAX activation rows
 * (batched decode): a weight block is unpacked once, then multiplied with
 * every row, each row keeping its own accumulators in the order the
 * one-row call uses, so a session gets the same bits batched or alone.
 */

/* The Q8_K block i of activation row t. */
static inline const struct block_q8_K *
xblock(const void *x, size_t xs, int t, int64_t i)
{
	return (const struct block_q8_K *)((const uint8_t *)x + (size_t)t * xs) + i;
}

static void
dotn_q2_K(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out)
{
	const struct block_q2_K *a = w;
	const __m512i m3 = _mm512_set1_epi8(3);
	__m512 acc[CPU_DOTN_MAX];
	__m256 accm[CPU_DOTN_MAX];
	__m512i idx[4];

	for (int s = 0; s < 4; s++) /* shift s: groups 2s, 2s + 1, 8 + 2s, 9 + 2s */
		idx[s] = scale_idx(2 * s, 2 * s + 1, 8 + 2 * s, 9 + 2 * s);
	for (int t = 0; t < nx; t++) {
		acc[t] = _mm512_setzero_ps();
		accm[t] = _mm256_setzero_ps();
	}
	for (int64_t i = 0; i < n / QK_K; i++) {
		__m128i raw = _mm_loadu_si128((const __m128i *)a[i].scales);
		__m512i sc = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(
		    _mm_and_si128(raw, _mm_set1_epi8(0x0f))));
		__m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4),
		    _mm_set1_epi8(0x0f)));
		__m512i qb = load512(a[i].qs), q[4], scp[4];
		float d = ktx_fp16_to_fp32(a[i].d), dmin = ktx_fp16_to_fp32(a[i].dmin);

		for (int s = 0; s < 4; s++) {
			q[s] = _mm512_and_si512(_mm512_srli_epi16(qb, 2 * s), m3);
			scp[s] = _mm512_permutexvar_epi16(idx[s], sc);
		}
		for (int t = 0; t < nx; t++) {
			const struct block_q8_K *b = xblock(x, xs, t, i);
			__m512i isum = _mm512_setzero_si512();

			for (int s = 0; s < 4; s++)
				isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q[s],
				    load2x256(b->qs + 32 * s, b->qs + 128 + 32 * s)), scp[s]);
			acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * b->d), _mm512_cvtepi32_ps(isum),
			    acc[t]);
			accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * b->d),
			    _mm256_cvtepi32_ps(mins8(mn, b->bsums)), accm[t]);
		}
	}
	for (int t = 0; t < nx; t++)
		out[t] = hsum16(acc[t]) - hsum8(accm[t]);
}

/* Q3_K: q = low 2 bits | high bit << 2 in 0..7; the -4 goes in through
 * the group sums: - 4 sum sc bsums. */
static void
dotn_q3_K(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out)
{
	const struct block_q3_K *a = w;
	const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
	__m512 acc[CPU_DOTN_MAX];
	__m512i idx[4];

	for (int s = 0; s < 4; s++)
		idx[s] = scale_idx(2 * s, 2 * s + 1, 8 + 2 * s, 9 + 2 * s);
	for (int t = 0; t < nx; t++)
		acc[t] = _mm512_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint64_t slo, shi;

		q3_scale_bytes(a[i].scales, &slo, &shi);
		__m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_sub_epi8(
		    _mm_set_epi64x((int64_t)shi, (int64_t)slo), _mm_set1_epi8(32))));
		__m256i hm = loadu(a[i].hmask);
		/* element 128h + 32s + l has hmask bit 4h + s of byte l */
		__m512i hm2 = _mm512_inserti64x4(_mm512_castsi256_si512(hm),
		    _mm256_srli_epi16(hm, 4), 1);
		__m512i qb = load512(a[i].qs), q[4], scp[4];
		float d = ktx_fp16_to_fp32(a[i].d);

		for (int s = 0; s < 4; s++) {
			__mmask64 hb = _mm512_test_epi8_mask(hm2, _mm512_set1_epi8((char)(1 << s)));

			q[s] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qb, 2 * s), m3),
			    _mm512_maskz_mov_epi8(hb, four));
			scp[s] = _mm512_permutexvar_epi16(idx[s], sc);
		}
		for (int t = 0; t < nx; t++) {
			const struct block_q8_K *b = xblock(x, xs, t, i);
			__m512i isum = _mm512_setzero_si512();

			for (int s = 0; s < 4; s++)
				isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q[s],
				    load2x256(b->qs + 32 * s, b->qs + 128 + 32 * s)), scp[s]);
			/* the -4 offset, lane-wise: no horizontal sum needed */
			isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(_mm256_slli_epi32(
			    mins8(_mm512_castsi512_si256(sc), b->bsums), 2)));
			acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * b->d), _mm512_cvtepi32_ps(isum),
			    acc[t]);
		}
	}
	for (int t = 0; t < nx; t++)
		out[t] = hsum16(acc[t]);
}

/* Q4_K / Q5_K's 8 scales and 8 mins, unpacked to bytes. */
static inline void
k4_scales(const uint8_t *q, uint8_t *sc, uint8_t *mn)
{
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			sc[j] = q[j] & 63;
			mn[j] = q[j + 4] & 63;
		} else {
			sc[j] = (uint8_t)((q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4);
			mn[j] = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
		}
	}
}

/* The min part of Q4_K / Q5_K: sub-block j's min against bsums 2j, 2j+1. */
static inline __m256i
k4_mins(const uint8_t *mn8, const int16_t *bsums)
{
	__m128i m = _mm_loadl_epi64((const __m128i *)mn8);
	__m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));

	return mins8(m16, bsums);
}

/* Q4_K and Q5_K: a 512-bit load of qs covers sub-blocks 4c..4c+3 as
 * [low nibbles: 4c, 4c + 2 | high nibbles: 4c + 1, 4c + 3]. */
#define K4_DOTN(NAME, BLOCK, FIFTH)                                            \
	static void                                                            \
	NAME(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) \
	{                                                                      \
		const struct BLOCK *a = w;                                     \
		const __m512i m4 = _mm512_set1_epi8(0x0f);                     \
		__m512 acc[CPU_DOTN_MAX];                                      \
		__m256 accm[CPU_DOTN_MAX];                                     \
		__m512i ilo[2], ihi[2];                                        \
                                                                               \
		for (int c = 0; c < 2; c++) {                                  \
			ilo[c] = scale_idx(4 * c, 4 * c, 4 * c + 2, 4 * c + 2);    \
			ihi[c] = scale_idx(4 * c + 1, 4 * c + 1, 4 * c + 3, 4 * c + 3); \
		}                                                              \
		for (int t = 0; t < nx; t++) {                                 \
			acc[t] = _mm512_setzero_ps();                          \
			accm[t] = _mm256_setzero_ps();                         \
		}                                                              \
		for (int64_t i = 0; i < n / QK_K; i++) {                       \
			uint8_t sc8[16] = { 0 }, mn8[8];                       \
			__m512i q[4], scp[4];                                  \
			float d = ktx_fp16_to_fp32(a[i].d);                    \
			float dmin = ktx_fp16_to_fp32(a[i].dmin);              \
                                                                               \
			k4_scales(a[i].scales, sc8, mn8);                      \
			__m512i sc = scales16_u(sc8);                          \
			for (int c = 0; c < 2; c++) {                          \
				__m512i qb = load512(a[i].qs + 64 * c);        \
				__m512i lo = _mm512_and_si512(qb, m4);         \
				__m512i hi = _mm512_and_si512(_mm512_srli_epi16(qb, 4), m4); \
				FIFTH                                          \
				q[2 * c] = lo;                                 \
				q[2 * c + 1] = hi;                             \
				scp[2 * c] = _mm512_permutexvar_epi16(ilo[c], sc); \
				scp[2 * c + 1] = _mm512_permutexvar_epi16(ihi[c], sc); \
			}                                                      \
			for (int t = 0; t < nx; t++) {                         \
				const struct block_q8_K *b = xblock(x, xs, t, i); \
				__m512i isum = _mm512_setzero_si512();         \
                                                                               \
				for (int c = 0; c < 2; c++) {                  \
					const int8_t *y = b->qs + 128 * c;     \
                                                                               \
					isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16( \
					    q[2 * c], load2x256(y, y + 64)), scp[2 * c]); \
					isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16( \
					    q[2 * c + 1], load2x256(y + 32, y + 96)), scp[2 * c + 1]); \
				}                                              \
				acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * b->d), \
				    _mm512_cvtepi32_ps(isum), acc[t]);         \
				accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * b->d), \
				    _mm256_cvtepi32_ps(k4_mins(mn8, b->bsums)), accm[t]); \
			}                                                      \
		}                                                              \
		for (int t = 0; t < nx; t++)                                   \
			out[t] = hsum16(acc[t]) - hsum8(accm[t]);              \
	}

K4_DOTN(dotn_q4_K, block_q4_K, )

/* Q5_K's fifth bits: element 64j + 32hi + l has bit 2j + hi of qh[l]; for
 * chunk c the low half of the register holds j = 2c, the high j = 2c + 1. */
#define Q5_FIFTH                                                               \
	__m256i qh = loadu(a[i].qh);                                           \
	__m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(               \
	    _mm256_srli_epi16(qh, 4 * c)), _mm256_srli_epi16(qh, 4 * c + 2), 1);   \
	lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(                        \
	    _mm512_test_epi8_mask(qh2, _mm512_set1_epi8(1)), _mm512_set1_epi8(16))); \
	hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(                        \
	    _mm512_test_epi8_mask(qh2, _mm512_set1_epi8(2)), _mm512_set1_epi8(16)));

K4_DOTN(dotn_q5_K, block_q5_K, Q5_FIFTH)

/* Q6_K: per half h, [ql 64 bytes] low nibbles with [qh, qh >> 2] bits are
 * elements 128h + 0..63, high nibbles with [qh >> 4, qh >> 6] the next 64;
 * level = q - 32 folded in through bsums. */
static void
dotn_q6_K(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out)
{
	const struct block_q6_K *a = w;
	const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(3);
	__m512 acc[CPU_DOTN_MAX];
	__m512i idx[4];

	for (int k = 0; k < 4; k++) /* 64 elements = groups 4k .. 4k + 3 */
		idx[k] = scale_idx(4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3);
	for (int t = 0; t < nx; t++)
		acc[t] = _mm512_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		__m512i sc = scales16_s(a[i].scales), q[4], scp[4];
		float d = ktx_fp16_to_fp32(a[i].d);

		for (int h = 0; h < 2; h++) {
			__m512i ql = load512(a[i].ql + 64 * h);
			__m256i qh = loadu(a[i].qh + 32 * h);
			__m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh),
			    _mm256_srli_epi16(qh, 2), 1);

			q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4),
			    _mm512_slli_epi16(_mm512_and_si512(qh2, m2), 4));
			q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
			    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh2, 4), m2), 4));
			scp[2 * h] = _mm512_permutexvar_epi16(idx[2 * h], sc);
			scp[2 * h + 1] = _mm512_permutexvar_epi16(idx[2 * h + 1], sc);
		}
		for (int t = 0; t < nx; t++) {
			const struct block_q8_K *b = xblock(x, xs, t, i);
			__m512i isum = _mm512_setzero_si512();

			for (int k = 0; k < 4; k++)
				isum = _mm512_dpwssd_epi32(isum,
				    _mm512_maddubs_epi16(q[k], load512(b->qs + 64 * k)), scp[k]);
			/* the -32 offset, lane-wise */
			isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(_mm256_slli_epi32(
			    mins8(_mm512_castsi512_si256(sc), b->bsums), 5)));
			acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * b->d), _mm512_cvtepi32_ps(isum),
			    acc[t]);
		}
	}
	for (int t = 0; t < nx; t++)
		out[t] = hsum16(acc[t]);
}

/* The one-row entry points: the batched kernels with one row. */
#define ONE_ROW(TYPE)                                                          \
	static float                                                           \
	dot_##TYPE(int64_t n, const void *w, const void *x)                    \
	{                                                                      \
		float out;                                                     \
                                                                               \
		dotn_##TYPE(n, w, x, 0, 1, &out);                              \
		return out;                                                    \
	}

ONE_ROW(q2_K)
ONE_ROW(q3_K)
ONE_ROW(q4_K)
ONE_ROW(q5_K)
ONE_ROW(q6_K)

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
#define SCALAR_F16(i) ktx_fp16_to_fp32(a16[i])
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
	} dots[] = {
		{ KTX_TYPE_Q4_0, dot_q4_0, NULL }, { KTX_TYPE_Q8_0, dot_q8_0, NULL },
		{ KTX_TYPE_Q2_K, dot_q2_K, dotn_q2_K }, { KTX_TYPE_Q3_K, dot_q3_K, dotn_q3_K },
		{ KTX_TYPE_Q4_K, dot_q4_K, dotn_q4_K }, { KTX_TYPE_Q5_K, dot_q5_K, dotn_q5_K },
		{ KTX_TYPE_Q6_K, dot_q6_K, dotn_q6_K }, { KTX_TYPE_F32, dot_f32, NULL },
		{ KTX_TYPE_F16, dot_f16, NULL }, { KTX_TYPE_BF16, dot_bf16, NULL },
	};

	for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
		k->dot[dots[i].type] = dots[i].fn;
		k->dotn[dots[i].type] = dots[i].fnn;
		k->dot_level[dots[i].type] = KTX_CPU_AVX512;
	}
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
