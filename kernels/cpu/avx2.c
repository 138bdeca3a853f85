/*
 * avx2.c - the AVX2 + FMA + F16C kernels (the x86-64 baseline of the fast
 * path): dot products of every hot weight type with Q8_K / Q8_0 / float32
 * activations, and the two activation quantizers.
 *
 * Only this file is compiled for AVX2 (the pragma below), so the program
 * still runs on any x86-64; cpu.c calls in here only when CPUID says so.
 *
 * The integer parts are exact: weight levels times activation quants go
 * through vpmaddubsw (unsigned x signed bytes into int16 pairs, which
 * cannot saturate for the level ranges used here: at most 2 x 63 x 127)
 * and vpmaddwd with the integer sub-block scales into int32. A signed
 * level vector goes in as |a| with the activation's sign flipped where a is
 * negative (vpsignb), still exact since |a| <= 128 and |x| <= 127. Only the
 * block's float scales and the final sum differ in order from the
 * reference twins in kernels/ref/dot_ref.c. fp16 scales are widened with
 * F16C's vcvtph2ps, exact like the reference's bit-level conversion.
 */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c")
#endif

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_impl.h"
#include "kernels/cpu/kscales.h"
#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/iq_tables.h"

/* ---- helpers ---- */

/* The sum of the 8 floats of v. */
static inline float
hsum_ps(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* The sum of the 8 int32 of v. */
static inline int32_t
hsum_epi32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));

	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

/* Unsigned bytes u times signed bytes s, summed in pairs then scaled by the
 * int16 scales sc (per pair): 8 int32. */
static inline __m256i
dot_us(__m256i u, __m256i s, __m256i sc)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc);
}

/* Signed bytes a times signed bytes s, as dot_us. */
static inline __m256i
dot_ss(__m256i a, __m256i s, __m256i sc)
{
	return dot_us(_mm256_sign_epi8(a, a), _mm256_sign_epi8(s, a), sc);
}

/* The 32 nibbles of 16 bytes in element order: low nibbles, then high. */
static inline __m256i
nibbles16(const uint8_t *p)
{
	__m128i t = _mm_loadu_si128((const __m128i *)p);

	return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

/* Scale vector for 32 elements: sc0 for the first 16, sc1 for the rest. */
static inline __m256i
scales2(int sc0, int sc1)
{
	return _mm256_set_m128i(_mm_set1_epi16((int16_t)sc1), _mm_set1_epi16((int16_t)sc0));
}

/* The activation bytes x with their signs flipped where bit j % 8 of byte
 * j / 8 of the 32-bit word signs is set. */
static inline __m256i
apply_signs(__m256i x, uint32_t signs)
{
	const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
	    0x0101010101010101, 0x0000000000000000);
	const __m256i bits = _mm256_set1_epi64x((int64_t)0x8040201008040201);
	__m256i s = _mm256_shuffle_epi8(_mm256_set1_epi32((int)signs), spread);
	__m256i m = _mm256_cmpeq_epi8(_mm256_and_si256(s, bits), bits);

	return _mm256_sub_epi8(_mm256_xor_si256(x, m), m);
}

/* 32 bytes from anywhere (file rows are only 2-byte aligned). */
static inline __m256i
loadu(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/* ---- legacy types x Q8_0 ---- */

/* Each kernel below: one weight row times one activation row (cpu_dot_fn). */
static float
dot_q8_0(int64_t n, const void *w, const void *x)
{
	const struct block_q8_0 *a = w, *b = x;
	const __m256i one = _mm256_set1_epi16(1);
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK8_0; i++) {
		__m256 d = _mm256_set1_ps(_cvtsh_ss(a[i].d) * _cvtsh_ss(b[i].d));
		__m256i s = dot_ss(loadu(a[i].qs), loadu(b[i].qs), one);

		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
	}
	return hsum_ps(acc);
}

static float
dot_q4_0(int64_t n, const void *w, const void *x)
{
	const struct block_q4_0 *a = w;
	const struct block_q8_0 *b = x;
	const __m256i one = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK4_0; i++) {
		__m256 d = _mm256_set1_ps(_cvtsh_ss(a[i].d) * _cvtsh_ss(b[i].d));
		__m256i q = _mm256_sub_epi8(nibbles16(a[i].qs), eight);
		__m256i s = dot_ss(q, loadu(b[i].qs), one);

		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
	}
	return hsum_ps(acc);
}

/* kvalues_iq4nl as a byte-shuffle table. */
static inline __m256i
iq4nl_table(void)
{
	__m128i t = _mm_loadu_si128((const __m128i *)kvalues_iq4nl);

	return _mm256_set_m128i(t, t);
}

static float
dot_iq4_nl(int64_t n, const void *w, const void *x)
{
	const struct block_iq4_nl *a = w;
	const struct block_q8_0 *b = x;
	const __m256i one = _mm256_set1_epi16(1), tab = iq4nl_table();
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK4_NL; i++) {
		__m256 d = _mm256_set1_ps(_cvtsh_ss(a[i].d) * _cvtsh_ss(b[i].d));
		__m256i q = _mm256_shuffle_epi8(tab, nibbles16(a[i].qs));
		__m256i s = dot_ss(q, loadu(b[i].qs), one);

		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
	}
	return hsum_ps(acc);
}

/* ---- K-quants x Q8_K ---- */

/* sum_j m[j] * bsums[j] over the 16 groups of a Q8_K block. */
static inline int32_t
mins_dot(const int16_t *m, const int16_t *bsums)
{
	__m256i p = _mm256_madd_epi16(loadu(m), loadu(bsums));

	return hsum_epi32(p);
}

static float
dot_q2_K(int64_t n, const void *w, const void *x)
{
	const struct block_q2_K *a = w;
	const struct block_q8_K *b = x;
	const __m256i m3 = _mm256_set1_epi8(3);
	__m256 acc = _mm256_setzero_ps();
	float accm = 0.0f;

	for (int64_t i = 0; i < n / QK_K; i++) {
		int16_t sc[16], mn[16];
		__m256i isum = _mm256_setzero_si256();

		for (int j = 0; j < 16; j++) {
			sc[j] = a[i].scales[j] & 0x0f;
			mn[j] = a[i].scales[j] >> 4;
		}
		for (int h = 0; h < 2; h++) {
			__m256i qb = loadu(a[i].qs + 32 * h);

			for (int s = 0; s < 4; s++) {
				__m256i q = _mm256_and_si256(_mm256_srli_epi16(qb, 2 * s), m3);
				int g = 8 * h + 2 * s;

				isum = _mm256_add_epi32(isum, dot_us(q, loadu(b[i].qs + 16 * g),
				    scales2(sc[g], sc[g + 1])));
			}
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
		accm += (_cvtsh_ss(a[i].dmin) * b[i].d) * (float)mins_dot(mn, b[i].bsums);
	}
	return hsum_ps(acc) - accm;
}

/* Q3_K's 16 scales, unbiased, as int16. */
static inline void
q3_scales(const uint8_t *sp, int16_t *sc)
{
	uint64_t lo, hi;

	q3_scale_bytes(sp, &lo, &hi);
	_mm256_storeu_si256((__m256i *)sc, _mm256_cvtepi8_epi16(_mm_sub_epi8(
	    _mm_set_epi64x((int64_t)hi, (int64_t)lo), _mm_set1_epi8(32))));
}

/* level = (low 2 bits | high bit << 2) - 4, so sum sc (q - 4) y =
 * sum sc q y - 4 sum sc bsums with q in 0..7 unsigned. */
static float
dot_q3_K(int64_t n, const void *w, const void *x)
{
	const struct block_q3_K *a = w;
	const struct block_q8_K *b = x;
	const __m256i m3 = _mm256_set1_epi8(3);
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		int16_t sc[16];
		__m256i isum = _mm256_setzero_si256();
		__m256i hm = loadu(a[i].hmask);

		q3_scales(a[i].scales, sc);
		for (int h = 0; h < 2; h++) {
			__m256i qb = loadu(a[i].qs + 32 * h);

			for (int s = 0; s < 4; s++) {
				__m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + s)));
				__m256i hb = _mm256_and_si256(
				    _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit),
				    _mm256_set1_epi8(4));
				__m256i q = _mm256_or_si256(
				    _mm256_and_si256(_mm256_srli_epi16(qb, 2 * s), m3), hb);
				int g = 8 * h + 2 * s;

				isum = _mm256_add_epi32(isum, dot_us(q, loadu(b[i].qs + 16 * g),
				    scales2(sc[g], sc[g + 1])));
			}
		}
		int32_t corr = 4 * mins_dot(sc, b[i].bsums);
		isum = _mm256_sub_epi32(isum, _mm256_setr_epi32(corr, 0, 0, 0, 0, 0, 0, 0));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc);
}

/* Q4_K / Q5_K scales and mins, each repeated for the two groups of 16 of
 * its sub-block of 32. */
static inline void
k4_scales(const uint8_t *q, int16_t *sc, int16_t *mn)
{
	for (int j = 0; j < 8; j++) {
		int s, m;

		if (j < 4) {
			s = q[j] & 63;
			m = q[j + 4] & 63;
		} else {
			s = (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
			m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
		}
		sc[2 * j] = sc[2 * j + 1] = (int16_t)s;
		mn[2 * j] = mn[2 * j + 1] = (int16_t)m;
	}
}

static float
dot_q4_K(int64_t n, const void *w, const void *x)
{
	const struct block_q4_K *a = w;
	const struct block_q8_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 acc = _mm256_setzero_ps();
	float accm = 0.0f;

	for (int64_t i = 0; i < n / QK_K; i++) {
		int16_t sc[16], mn[16];
		__m256i isum = _mm256_setzero_si256();

		k4_scales(a[i].scales, sc, mn);
		for (int j = 0; j < 4; j++) {
			__m256i qb = loadu(a[i].qs + 32 * j);
			__m256i lo = _mm256_and_si256(qb, m4);
			__m256i hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4);

			isum = _mm256_add_epi32(isum, dot_us(lo, loadu(b[i].qs + 64 * j),
			    _mm256_set1_epi16(sc[4 * j])));
			isum = _mm256_add_epi32(isum, dot_us(hi, loadu(b[i].qs + 64 * j + 32),
			    _mm256_set1_epi16(sc[4 * j + 2])));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
		accm += (_cvtsh_ss(a[i].dmin) * b[i].d) * (float)mins_dot(mn, b[i].bsums);
	}
	return hsum_ps(acc) - accm;
}

static float
dot_q5_K(int64_t n, const void *w, const void *x)
{
	const struct block_q5_K *a = w;
	const struct block_q8_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0f), b5 = _mm256_set1_epi8(0x10);
	__m256 acc = _mm256_setzero_ps();
	float accm = 0.0f;

	for (int64_t i = 0; i < n / QK_K; i++) {
		int16_t sc[16], mn[16];
		__m256i isum = _mm256_setzero_si256();
		__m256i qh = loadu(a[i].qh);

		k4_scales(a[i].scales, sc, mn);
		for (int j = 0; j < 4; j++) {
			__m256i qb = loadu(a[i].qs + 32 * j);
			__m256i bl = _mm256_set1_epi8((char)(1 << (2 * j)));
			__m256i bh = _mm256_set1_epi8((char)(2 << (2 * j)));
			__m256i lo = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_and_si256(
			    _mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), b5));
			__m256i hi = _mm256_or_si256(
			    _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4), _mm256_and_si256(
			    _mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), b5));

			isum = _mm256_add_epi32(isum, dot_us(lo, loadu(b[i].qs + 64 * j),
			    _mm256_set1_epi16(sc[4 * j])));
			isum = _mm256_add_epi32(isum, dot_us(hi, loadu(b[i].qs + 64 * j + 32),
			    _mm256_set1_epi16(sc[4 * j + 2])));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
		accm += (_cvtsh_ss(a[i].dmin) * b[i].d) * (float)mins_dot(mn, b[i].bsums);
	}
	return hsum_ps(acc) - accm;
}

/* level = 6-bit q - 32: sum sc q y - 32 sum sc bsums, q in 0..63. */
static float
dot_q6_K(int64_t n, const void *w, const void *x)
{
	const struct block_q6_K *a = w;
	const struct block_q8_K *b = x;
	const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		int16_t sc[16];
		__m256i isum = _mm256_setzero_si256();

		for (int j = 0; j < 16; j++)
			sc[j] = a[i].scales[j];
		for (int h = 0; h < 2; h++) {
			__m256i l0 = loadu(a[i].ql + 64 * h);
			__m256i l1 = loadu(a[i].ql + 64 * h + 32);
			__m256i qh = loadu(a[i].qh + 32 * h);

			for (int p = 0; p < 4; p++) {
				__m256i lb = (p % 2) ? l1 : l0;
				__m256i lo = _mm256_and_si256(_mm256_srli_epi16(lb, 4 * (p / 2)), m4);
				__m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), m2);
				__m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
				int g = 8 * h + 2 * p;

				isum = _mm256_add_epi32(isum, dot_us(q, loadu(b[i].qs + 16 * g),
				    scales2(sc[g], sc[g + 1])));
			}
		}
		int32_t corr = 32 * mins_dot(sc, b[i].bsums);
		isum = _mm256_sub_epi32(isum, _mm256_setr_epi32(corr, 0, 0, 0, 0, 0, 0, 0));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc);
}

/* ---- i-quants x Q8_K ---- */

static float
dot_iq4_xs(int64_t n, const void *w, const void *x)
{
	const struct block_iq4_xs *a = w;
	const struct block_q8_K *b = x;
	const __m256i tab = iq4nl_table();
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		__m256i isum = _mm256_setzero_si256();

		for (int ib = 0; ib < QK_K / 32; ib++) {
			int ls = ((a[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) |
			    ((a[i].scales_h >> (2 * ib)) & 3) << 4;
			__m256i q = _mm256_shuffle_epi8(tab, nibbles16(a[i].qs + 16 * ib));

			isum = _mm256_add_epi32(isum, dot_ss(q, loadu(b[i].qs + 32 * ib),
			    _mm256_set1_epi16((int16_t)(ls - 32))));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc);
}

/* Four 8-bit sign masks from four 7-bit codes (bits 7l.. of code). */
static inline uint32_t
signs4(uint32_t codes)
{
	return (uint32_t)ksigns_iq2xs[codes & 127] | (uint32_t)ksigns_iq2xs[(codes >> 7) & 127] << 8 |
	    (uint32_t)ksigns_iq2xs[(codes >> 14) & 127] << 16 |
	    (uint32_t)ksigns_iq2xs[(codes >> 21) & 127] << 24;
}

static float
dot_iq2_xxs(int64_t n, const void *w, const void *x)
{
	const struct block_iq2_xxs *a = w;
	const struct block_q8_K *b = x;
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		__m256i isum = _mm256_setzero_si256();

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint16_t *q = a[i].qs + 4 * ib;
			uint32_t idx = (uint32_t)q[0] | (uint32_t)q[1] << 16;
			uint32_t sgn = (uint32_t)q[2] | (uint32_t)q[3] << 16;
			__m256i g = _mm256_set_epi64x((int64_t)iq2xxs_grid[idx >> 24],
			    (int64_t)iq2xxs_grid[(idx >> 16) & 0xff],
			    (int64_t)iq2xxs_grid[(idx >> 8) & 0xff], (int64_t)iq2xxs_grid[idx & 0xff]);
			__m256i y = apply_signs(loadu(b[i].qs + 32 * ib), signs4(sgn));

			isum = _mm256_add_epi32(isum, dot_us(g, y,
			    _mm256_set1_epi16((int16_t)(2 * (sgn >> 28) + 1))));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc) * 0.125f;
}

static float
dot_iq2_xs(int64_t n, const void *w, const void *x)
{
	const struct block_iq2_xs *a = w;
	const struct block_q8_K *b = x;
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		__m256i isum = _mm256_setzero_si256();

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint16_t *q = a[i].qs + 4 * ib;
			__m256i g = _mm256_set_epi64x((int64_t)iq2xs_grid[q[3] & 511],
			    (int64_t)iq2xs_grid[q[2] & 511], (int64_t)iq2xs_grid[q[1] & 511],
			    (int64_t)iq2xs_grid[q[0] & 511]);
			uint32_t codes = (uint32_t)(q[0] >> 9) | (uint32_t)(q[1] >> 9) << 7 |
			    (uint32_t)(q[2] >> 9) << 14 | (uint32_t)(q[3] >> 9) << 21;
			__m256i y = apply_signs(loadu(b[i].qs + 32 * ib), signs4(codes));
			int s = a[i].scales[ib];

			isum = _mm256_add_epi32(isum, dot_us(g, y,
			    scales2(2 * (s & 0x0f) + 1, 2 * (s >> 4) + 1)));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc) * 0.125f;
}

static float
dot_iq3_xxs(int64_t n, const void *w, const void *x)
{
	const struct block_iq3_xxs *a = w;
	const struct block_q8_K *b = x;
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		__m256i isum = _mm256_setzero_si256();

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint8_t *idx = a[i].qs + 8 * ib;
			uint32_t aux;
			__m256i g = _mm256_set_epi32((int)iq3xxs_grid[idx[7]], (int)iq3xxs_grid[idx[6]],
			    (int)iq3xxs_grid[idx[5]], (int)iq3xxs_grid[idx[4]],
			    (int)iq3xxs_grid[idx[3]], (int)iq3xxs_grid[idx[2]],
			    (int)iq3xxs_grid[idx[1]], (int)iq3xxs_grid[idx[0]]);

			memcpy(&aux, a[i].qs + QK_K / 4 + 4 * ib, sizeof(aux));
			__m256i y = apply_signs(loadu(b[i].qs + 32 * ib), signs4(aux));
			isum = _mm256_add_epi32(isum, dot_us(g, y,
			    _mm256_set1_epi16((int16_t)(2 * (aux >> 28) + 1))));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc) * 0.25f;
}

/* Eight bytes of +1, or of -1. */
static const uint64_t iq1_delta[2] = { 0x0101010101010101ull, ~0ull };

/* 8 x grid + delta for four IQ1 grid entries, delta (+-1) per 8 values
 * from bit l of the 4-bit word dneg (set: -1); a table, not a branch, as
 * the bits are data. */
static inline __m256i
iq1_levels(uint64_t g0, uint64_t g1, uint64_t g2, uint64_t g3, int dneg)
{
	__m256i g = _mm256_set_epi64x((int64_t)g3, (int64_t)g2, (int64_t)g1, (int64_t)g0);
	__m256i d = _mm256_set_epi64x((int64_t)iq1_delta[(dneg >> 3) & 1],
	    (int64_t)iq1_delta[(dneg >> 2) & 1], (int64_t)iq1_delta[(dneg >> 1) & 1],
	    (int64_t)iq1_delta[dneg & 1]);

	g = _mm256_add_epi8(g, g);
	g = _mm256_add_epi8(g, g);
	g = _mm256_add_epi8(g, g);
	return _mm256_add_epi8(g, d);
}

static float
dot_iq1_s(int64_t n, const void *w, const void *x)
{
	const struct block_iq1_s *a = w;
	const struct block_q8_K *b = x;
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		__m256i isum = _mm256_setzero_si256();

		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint8_t *qs = a[i].qs + 4 * ib;
			int qh = a[i].qh[ib];
			__m256i q = iq1_levels(iq1s_grid[qs[0] | (qh & 7) << 8],
			    iq1s_grid[qs[1] | ((qh >> 3) & 7) << 8],
			    iq1s_grid[qs[2] | ((qh >> 6) & 7) << 8],
			    iq1s_grid[qs[3] | ((qh >> 9) & 7) << 8], (qh >> 15) * 15);

			isum = _mm256_add_epi32(isum, dot_ss(q, loadu(b[i].qs + 32 * ib),
			    _mm256_set1_epi16((int16_t)(2 * ((qh >> 12) & 7) + 1))));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(a[i].d) * b[i].d),
		    _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc) * 0.125f;
}

static float
dot_iq1_m(int64_t n, const void *w, const void *x)
{
	const struct block_iq1_m *a = w;
	const struct block_q8_K *b = x;
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / QK_K; i++) {
		__m256i isum = _mm256_setzero_si256();
		uint16_t sc[4];

		for (int k = 0; k < 4; k++)
			sc[k] = (uint16_t)(a[i].scales[2 * k] | a[i].scales[2 * k + 1] << 8);
		float d = _cvtsh_ss((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
		    ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
		for (int ib = 0; ib < QK_K / 32; ib++) {
			const uint8_t *qs = a[i].qs + 4 * ib;
			int h0 = a[i].qh[2 * ib], h1 = a[i].qh[2 * ib + 1];
			int dneg = ((h0 >> 3) & 1) | ((h0 >> 6) & 2) | ((h1 >> 1) & 4) | ((h1 >> 4) & 8);
			__m256i q = iq1_levels(iq1s_grid[qs[0] | (h0 & 7) << 8],
			    iq1s_grid[qs[1] | ((h0 >> 4) & 7) << 8],
			    iq1s_grid[qs[2] | (h1 & 7) << 8],
			    iq1s_grid[qs[3] | ((h1 >> 4) & 7) << 8], dneg);
			int s = sc[ib / 2] >> (6 * (ib % 2));

			isum = _mm256_add_epi32(isum, dot_ss(q, loadu(b[i].qs + 32 * ib),
			    scales2(2 * (s & 7) + 1, 2 * ((s >> 3) & 7) + 1)));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d * b[i].d), _mm256_cvtepi32_ps(isum), acc);
	}
	return hsum_ps(acc) * 0.125f;
}

/* ---- float types x float32 ---- */

/* Four independent accumulators hide the FMA latency; the tail (n not a
 * multiple of 8) is summed in scalar. */
#define FLOAT_DOT(NAME, LOAD8, SCALAR)                                         \
	static float                                                           \
	NAME(int64_t n, const void *w, const void *x)                          \
	{                                                                      \
		const uint16_t *a16 = w;                                       \
		const float *a32 = w, *b = x;                                  \
		__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;    \
		int64_t i = 0;                                                 \
		float tail = 0.0f;                                             \
                                                                               \
		(void)a16;                                                     \
		(void)a32;                                                     \
		for (; i + 32 <= n; i += 32) {                                 \
			s0 = _mm256_fmadd_ps(LOAD8(i), _mm256_loadu_ps(b + i), s0); \
			s1 = _mm256_fmadd_ps(LOAD8(i + 8), _mm256_loadu_ps(b + i + 8), s1); \
			s2 = _mm256_fmadd_ps(LOAD8(i + 16), _mm256_loadu_ps(b + i + 16), s2); \
			s3 = _mm256_fmadd_ps(LOAD8(i + 24), _mm256_loadu_ps(b + i + 24), s3); \
		}                                                              \
		for (; i + 8 <= n; i += 8)                                     \
			s0 = _mm256_fmadd_ps(LOAD8(i), _mm256_loadu_ps(b + i), s0); \
		for (; i < n; i++)                                             \
			tail += SCALAR(i) * b[i];                              \
		return hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail; \
	}

#define LOAD_F32(i) _mm256_loadu_ps(a32 + (i))
#define LOAD_F16(i) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a16 + (i))))
#define LOAD_BF16(i) _mm256_castsi256_ps(_mm256_slli_epi32(                     \
    _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(a16 + (i)))), 16))
#define SCALAR_F32(i) a32[i]
#define SCALAR_F16(i) _cvtsh_ss(a16[i])
#define SCALAR_BF16(i) ktx_bf16_to_fp32(a16[i])

FLOAT_DOT(dot_f32, LOAD_F32, SCALAR_F32)
FLOAT_DOT(dot_f16, LOAD_F16, SCALAR_F16)
FLOAT_DOT(dot_bf16, LOAD_BF16, SCALAR_BF16)

/* ---- activation quantizers, bit-identical to kernels/ref ---- */

/* Q8_K: the element of largest magnitude (the first, on ties) maps to -127
 * via iscale = -127 / max; levels round to nearest even, as rintf does. */
static void
quant_q8_K(const float *src, void *dst, int64_t n)
{
	struct block_q8_K *y = dst;
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));

	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		__m256 vmax = _mm256_setzero_ps();
		float amax, max = 0.0f;

		for (int j = 0; j < QK_K; j += 8)
			vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
		__m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
		m = _mm_max_ps(m, _mm_movehl_ps(m, m));
		m = _mm_max_ss(m, _mm_movehdup_ps(m));
		amax = _mm_cvtss_f32(m);
		if (amax == 0.0f) {
			memset(&y[i], 0, sizeof(y[i]));
			continue;
		}
		for (int j = 0; j < QK_K; j++) {
			if (fabsf(x[j]) == amax) {
				max = x[j];
				break;
			}
		}
		float iscale = -127.0f / max;
		__m256 vs = _mm256_set1_ps(iscale);
		for (int j = 0; j < QK_K; j += 32) {
			__m256i q[4];

			for (int k = 0; k < 4; k++) {
				__m256 v = _mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * k));

				v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-128.0f)),
				    _mm256_set1_ps(127.0f));
				q[k] = _mm256_cvtps_epi32(_mm256_round_ps(v,
				    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
			}
			__m256i p01 = _mm256_packs_epi32(q[0], q[1]);
			__m256i p23 = _mm256_packs_epi32(q[2], q[3]);
			__m256i p = _mm256_packs_epi16(p01, p23);
			/* the packs interleave 128-bit lanes: restore element order */
			p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
			_mm256_storeu_si256((__m256i *)(y[i].qs + j), p);
		}
		for (int j = 0; j < QK_K / 16; j++) {
			__m128i v = _mm_loadu_si128((const __m128i *)(y[i].qs + 16 * j));
			__m256i w16 = _mm256_cvtepi8_epi16(v);
			__m256i s = _mm256_madd_epi16(w16, _mm256_set1_epi16(1));

			y[i].bsums[j] = (int16_t)hsum_epi32(s);
		}
		y[i].d = 1 / iscale;
	}
}

/* Q8_0: d = amax / 127 stored in fp16, levels x * (1 / d) rounded half
 * away from zero (roundf): truncate, then step out where |x - t| >= 0.5. */
static void
quant_q8_0(const float *src, void *dst, int64_t n)
{
	struct block_q8_0 *y = dst;
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const __m256 signmask = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));

	for (int64_t i = 0; i < n / QK8_0; i++) {
		const float *x = src + i * QK8_0;
		__m256 v[4], vmax = _mm256_setzero_ps();
		__m256i q[4];

		for (int k = 0; k < 4; k++) {
			v[k] = _mm256_loadu_ps(x + 8 * k);
			vmax = _mm256_max_ps(vmax, _mm256_and_ps(v[k], absmask));
		}
		__m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
		m = _mm_max_ps(m, _mm_movehl_ps(m, m));
		m = _mm_max_ss(m, _mm_movehdup_ps(m));
		float d = _mm_cvtss_f32(m) / 127;
		float id = d != 0.0f ? 1.0f / d : 0.0f;

		if (isinf(id))
			id = 0.0f;
		y[i].d = ktx_fp32_to_fp16(d);
		for (int k = 0; k < 4; k++) {
			__m256 p = _mm256_mul_ps(v[k], _mm256_set1_ps(id));
			__m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
			__m256 frac = _mm256_and_ps(_mm256_sub_ps(p, t), absmask);
			__m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
			    _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(p, signmask)));

			q[k] = _mm256_cvttps_epi32(_mm256_add_ps(t, step));
		}
		__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
		    _mm256_packs_epi32(q[2], q[3]));
		p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)y[i].qs, p);
	}
}

/* ---- the table ---- */

void
cpu_fill_avx2(struct cpu_kernels *k)
{
	static const struct {
		uint32_t type;
		cpu_dot_fn fn;
	} dots[] = {
		{ KTX_TYPE_Q4_0, dot_q4_0 }, { KTX_TYPE_Q8_0, dot_q8_0 },
		{ KTX_TYPE_IQ4_NL, dot_iq4_nl }, { KTX_TYPE_Q2_K, dot_q2_K },
		{ KTX_TYPE_Q3_K, dot_q3_K }, { KTX_TYPE_Q4_K, dot_q4_K },
		{ KTX_TYPE_Q5_K, dot_q5_K }, { KTX_TYPE_Q6_K, dot_q6_K },
		{ KTX_TYPE_IQ4_XS, dot_iq4_xs }, { KTX_TYPE_IQ2_XXS, dot_iq2_xxs },
		{ KTX_TYPE_IQ2_XS, dot_iq2_xs }, { KTX_TYPE_IQ3_XXS, dot_iq3_xxs },
		{ KTX_TYPE_IQ1_S, dot_iq1_s }, { KTX_TYPE_IQ1_M, dot_iq1_m },
		{ KTX_TYPE_F32, dot_f32 }, { KTX_TYPE_F16, dot_f16 }, { KTX_TYPE_BF16, dot_bf16 },
	};

	for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
		k->dot[dots[i].type] = dots[i].fn;
		k->dot_level[dots[i].type] = KTX_CPU_AVX2;
	}
	k->quant_q8_K = quant_q8_K;
	k->quant_q8_0 = quant_q8_0;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
