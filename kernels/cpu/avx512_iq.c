/*
 * avx512_iq.c - the AVX-512 (F, BW, VL, VNNI) kernels of the i-quants that
 * published DeepSeek R1/V3 files use: IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
 * IQ3_XXS and IQ4_XS against Q8_K, and IQ4_NL against Q8_0, each one-row
 * (dot), batched (dotn: up to CPU_DOTN_MAX activation rows per weight row)
 * and as a small GEMM (gemm: every weight block unpacked once for up to
 * GEMM_ROWS activation rows, for prefill).
 *
 * A weight block is unpacked once into four 64-element registers of
 * unsigned byte levels, a 64-bit mask per register of the elements whose
 * level is negative, and int16 scale vectors (one scale per int16 lane, as
 * in avx512.c). Each activation row then costs per register: negate its
 * bytes under the mask (vpsubb with a mask register; AVX-512 has no
 * 512-bit vpsignb), multiply with the levels into int16 pair sums
 * (vpmaddubsw: at most 2 x 127 x 127, no saturation) and add those times
 * the scales into int32 (vpdpwssd). The integer sum per block is exact, as
 * in the reference twins; only the float scales and the final sum differ
 * in order. A batched row gets the very bits of the one-row call: the same
 * operations in the same order, with its own accumulator.
 *
 * The grid types' sign codes carry 7 bits per 8 elements and an implied
 * eighth that makes the parity even (the rule ksigns_iq2xs tabulates):
 * it is computed here for 32 codes at once, so the 256 sign bits of a
 * block come straight out as the four masks. IQ1's levels 8 g +- 1 (g in
 * -1..1) are kept as 8 g +- 1 + 9 in 0..18, unsigned, and the 9 comes off
 * through Q8_K's group sums. The IQ2 / IQ3 grids are looked up in
 * registers (see the code tables below); IQ1's 2048-entry grid by scalar
 * loads.
 *
 * On this project's machine (AMD EPYC, 1 thread) these ran 1.3x (IQ4_NL)
 * to 3x (IQ2_XS) the AVX2 kernels' speed for one row, and 3x to 8x per
 * activation row batched: every type here beat its AVX2 kernel, or it
 * would not be here.
 *
 * Only this file (and avx512.c) is compiled for AVX-512 (the pragma below);
 * cpu.c calls in here only when CPUID reports every feature.
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
#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/iq_tables.h"

/* ---- helpers ---- */

/* The loops over a block's four registers are unrolled so that their
 * permute indices are constants and the unpacked block stays in registers. */
#define UNROLL4 _Pragma("GCC unroll 4")
#define UNROLL8 _Pragma("GCC unroll 8")

/* 64 / 32 / 16 bytes from anywhere (file rows are only 2-byte aligned). */
static inline __m512i
load512(const void *p)
{
	return _mm512_loadu_si512(p);
}

static inline __m256i
load256(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

static inline __m128i
load128(const void *p)
{
	return _mm_loadu_si128((const __m128i *)p);
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

/* The Q8_K block i of activation row t. */
static inline const struct block_q8_K *
xblock(const void *x, size_t xs, int t, int64_t i)
{
	return (const struct block_q8_K *)((const uint8_t *)x + (size_t)t * xs) + i;
}

/* The sign bytes of 32 7-bit sign codes (one per byte, bit 7 clear): bit 7
 * is set where the code has odd parity, so every byte's parity is even. */
static inline __m256i
sign_bytes(__m256i c)
{
	/* bit 0 of each byte ends up as the parity of its bits 0-6; the
	 * 16-bit shifts only pull bits into positions that are not used */
	__m256i p = _mm256_xor_si256(c, _mm256_srli_epi16(c, 4));

	p = _mm256_xor_si256(p, _mm256_srli_epi16(p, 2));
	p = _mm256_xor_si256(p, _mm256_srli_epi16(p, 1));
	return _mm256_or_si256(c, _mm256_and_si256(_mm256_slli_epi16(p, 7),
	    _mm256_set1_epi8((char)0x80)));
}

/* The four 7-bit codes (bits 7l .. 7l + 6) of each of 8 IQ2_XXS / IQ3_XXS
 * sign words, as bytes 4w + l. */
static inline __m256i
word_codes(__m256i v)
{
	__m256i c = _mm256_and_si256(v, _mm256_set1_epi32(0x7f));

	c = _mm256_or_si256(c, _mm256_and_si256(_mm256_slli_epi32(v, 1), _mm256_set1_epi32(0x7f00)));
	c = _mm256_or_si256(c, _mm256_and_si256(_mm256_slli_epi32(v, 2),
	    _mm256_set1_epi32(0x7f0000)));
	return _mm256_or_si256(c, _mm256_and_si256(_mm256_slli_epi32(v, 3),
	    _mm256_set1_epi32(0x7f000000)));
}

/* The four 64-bit masks of a block's 256 sign bits (bit j: element j). */
static inline void
sign_masks(__m256i s, __mmask64 *m)
{
	uint64_t b[4];

	_mm256_storeu_si256((__m256i *)b, s);
	UNROLL4
	for (int c = 0; c < 4; c++)
		m[c] = _cvtu64_mask64(b[c]);
}

/* Eight 8-byte grid entries tab[p[0]] .. tab[p[7]] (scalar loads and
 * inserts: vpgatherqq measured slower here). */
static inline __m512i
grid8(const uint64_t *tab, const uint16_t *p)
{
	return _mm512_set_epi64((long long)tab[p[7]], (long long)tab[p[6]], (long long)tab[p[5]],
	    (long long)tab[p[4]], (long long)tab[p[3]], (long long)tab[p[2]], (long long)tab[p[1]],
	    (long long)tab[p[0]]);
}

/*
 * The IQ2_XXS / IQ2_XS / IQ3_XXS grids hold only 3 (IQ2) or 8 (IQ3)
 * distinct magnitudes, so each entry packs into a 16-bit code of value
 * indices, built from the grids by cpu_fill_avx512_iq: value j of an entry
 * sits at bit b (j / 2) + 8 (j % 2) (b = 2 or 3 bits per value). The codes
 * tables (512 or 1024 bytes) are looked up 32 at a time with vpermi2w, and
 * an entry expands to its bytes with a word broadcast, a shift by b (j / 2)
 * and a vpshufb of the value indices, instead of 32 scalar loads and
 * inserts per block.
 */
static const uint8_t iq2_values[16] = { 8, 25, 43 };
static const uint8_t iq3_values[16] = { 4, 12, 20, 28, 36, 44, 52, 62 };
static _Alignas(64) uint16_t iq2xxs_codes[256];
static _Alignas(64) uint16_t iq2xs_codes[512];
static _Alignas(64) uint16_t iq3xxs_codes[256];

/* The codes of 32 entries (idx: uint16 lanes below 64 nt) of a table of
 * nt x 64 codes: vpermi2w picks among 64, index bits 6.. pick the table. */
static inline __m512i
codes32(const uint16_t *tab, int nt, __m512i idx)
{
	__m512i r[8];

	UNROLL8
	for (int k = 0; k < nt; k++)
		r[k] = _mm512_permutex2var_epi16(load512(tab + 64 * k), idx,
		    load512(tab + 64 * k + 32));
	UNROLL4
	for (int bit = 64; nt > 1; bit *= 2, nt /= 2) {
		__mmask32 hi = _mm512_test_epi16_mask(idx, _mm512_set1_epi16((short)bit));

		UNROLL4
		for (int k = 0; k < nt / 2; k++)
			r[k] = _mm512_mask_blend_epi16(hi, r[2 * k], r[2 * k + 1]);
	}
	return r[0];
}

/* The 64 bytes of the 8 IQ2 entries whose codes are lanes 8q .. 8q + 7 of
 * codes: int16 lane 4k + m takes code 8q + k shifted by 2m. */
static inline __m512i
iq2_expand(__m512i codes, int q)
{
	const __m512i lane = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19,
	    18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	__m512i w = _mm512_permutexvar_epi16(_mm512_add_epi16(_mm512_srli_epi16(lane, 2),
	    _mm512_set1_epi16((short)(8 * q))), codes);

	w = _mm512_srlv_epi16(w, _mm512_set1_epi64(0x0006000400020000));
	return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(load128(iq2_values)),
	    _mm512_and_si512(w, _mm512_set1_epi16(0x0303)));
}

/* The 64 bytes of the 16 IQ3 entries whose codes are lanes 16q .. 16q + 15
 * of codes: int16 lane 2k + h takes code 16q + k shifted by 3h. */
static inline __m512i
iq3_expand(__m512i codes, int q)
{
	const __m512i lane = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19,
	    18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	__m512i w = _mm512_permutexvar_epi16(_mm512_add_epi16(_mm512_srli_epi16(lane, 1),
	    _mm512_set1_epi16((short)(16 * q))), codes);

	w = _mm512_srlv_epi16(w, _mm512_set1_epi32(0x00030000));
	return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(load128(iq3_values)),
	    _mm512_and_si512(w, _mm512_set1_epi16(0x0707)));
}

/* ---- one unpacked weight block, times every activation row ---- */

struct ublock {
	__m512i u[4];     /* unsigned levels of elements 64c .. 64c + 63 */
	__m512i sc[4];    /* the int16 scale of each int16 lane of u[c] */
	__mmask64 neg[4]; /* elements whose level is -u (signed types) */
	__m256i corr;     /* IQ1: 9 x scale per group of 16 (the level offset) */
	float d;          /* the block's float scale */
};

/*
 * Adds block i's contribution of every activation row t < nx to acc[t]:
 * d * dy * (exact integer sum). With sign, the levels are -u under neg;
 * with offset, they are u - 9 (corr . bsums comes off). Both flags are
 * constants where this inlines.
 */
static inline void
ublock_rows(const struct ublock *ub, const void *x, size_t xs, int nx, int64_t i, __m512 *acc,
    int sign, int offset)
{
	for (int t = 0; t < nx; t++) {
		const struct block_q8_K *b = xblock(x, xs, t, i);
		__m512i is[2] = { _mm512_setzero_si512(), _mm512_setzero_si512() }, isum;

		UNROLL4
		for (int c = 0; c < 4; c++) {
			__m512i y = load512(b->qs + 64 * c);

			if (sign)
				y = _mm512_mask_sub_epi8(y, ub->neg[c], _mm512_setzero_si512(), y);
			is[c % 2] = _mm512_dpwssd_epi32(is[c % 2], _mm512_maddubs_epi16(ub->u[c], y),
			    ub->sc[c]);
		}
		isum = _mm512_add_epi32(is[0], is[1]);
		if (offset)
			isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(
			    _mm256_madd_epi16(ub->corr, load256(b->bsums))));
		acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(ub->d * b->d), _mm512_cvtepi32_ps(isum),
		    acc[t]);
	}
}

/* Activation rows per unpacked weight block in gemm: enough to make the
 * unpacking cheap per row, few enough that their accumulators (2 KiB) and
 * their blocks of one super-block column (9 KiB) stay in L1. */
#define GEMM_ROWS 32

/*
 * dot_NAME, dotn_NAME and gemm_NAME from one inlined loop rows_NAME(n, w,
 * x, xs, nx, out, acc) over nx activation rows with the caller's nx
 * accumulators (one in a register, for dot). A row's arithmetic does not
 * depend on nx, so all three give the same bits.
 */
#define ENTRY_POINTS(NAME)                                                     \
	static float                                                           \
	dot_##NAME(int64_t n, const void *w, const void *x)                    \
	{                                                                      \
		__m512 acc[1];                                                 \
		float out;                                                     \
                                                                               \
		rows_##NAME(n, w, x, 0, 1, &out, acc);                         \
		return out;                                                    \
	}                                                                      \
                                                                               \
	static void                                                            \
	dotn_##NAME(int64_t n, const void *w, const void *x, size_t xs, int nx, \
	    float *out)                                                        \
	{                                                                      \
		__m512 acc[CPU_DOTN_MAX];                                      \
                                                                               \
		rows_##NAME(n, w, x, xs, nx, out, acc);                        \
	}                                                                      \
                                                                               \
	static void                                                            \
	gemm_##NAME(int64_t n, int64_t rows, const void *w, size_t ws, const void *x, \
	    size_t xs, int64_t nx, float *y, size_t ys)                        \
	{                                                                      \
		__m512 acc[GEMM_ROWS];                                         \
		float out[GEMM_ROWS];                                          \
                                                                               \
		for (int64_t t0 = 0; t0 < nx; t0 += GEMM_ROWS) {               \
			int m = nx - t0 < GEMM_ROWS ? (int)(nx - t0) : GEMM_ROWS; \
                                                                               \
			for (int64_t r = 0; r < rows; r++) {                   \
				rows_##NAME(n, (const uint8_t *)w + (size_t)r * ws, \
				    (const uint8_t *)x + (size_t)t0 * xs, xs, m, out, acc); \
				for (int t = 0; t < m; t++)                    \
					y[(size_t)(t0 + t) * ys + (size_t)r] = out[t]; \
			}                                                      \
		}                                                              \
	}

/* The loop of a Q8_K type over super-blocks: unpack, every row, then the
 * type's power-of-two post factor (exact), as the twin does. */
#define IQ_KERNELS(NAME, BLOCK, SIGNED, OFFSET, POST)                          \
	static inline __attribute__((always_inline)) void                      \
	rows_##NAME(int64_t n, const void *w, const void *x, size_t xs, int nx, \
	    float *out, __m512 *acc)                                           \
	{                                                                      \
		const struct BLOCK *a = w;                                     \
                                                                               \
		for (int t = 0; t < nx; t++)                                   \
			acc[t] = _mm512_setzero_ps();                          \
		for (int64_t i = 0; i < n / QK_K; i++) {                       \
			struct ublock ub;                                      \
                                                                               \
			unpack_##NAME(&a[i], &ub);                             \
			ublock_rows(&ub, x, xs, nx, i, acc, SIGNED, OFFSET);   \
		}                                                              \
		for (int t = 0; t < nx; t++)                                   \
			out[t] = _mm512_reduce_add_ps(acc[t]) * (POST);        \
	}                                                                      \
	ENTRY_POINTS(NAME)

/* ---- the unpackers ---- */

/* Scales 2 s + 1 of the 4-bit s in the top bits of 8 sign words, as the
 * int16 lane vectors of sub-blocks of 32. */
static inline void
word_scales(__m256i sw, __m512i *sc)
{
	__m256i s = _mm256_add_epi32(_mm256_slli_epi32(_mm256_srli_epi32(sw, 28), 1),
	    _mm256_set1_epi32(1));
	__m512i s16 = _mm512_castsi128_si512(_mm256_cvtepi32_epi16(s));

	UNROLL4
	for (int c = 0; c < 4; c++)
		sc[c] = _mm512_permutexvar_epi16(scale_idx(2 * c, 2 * c, 2 * c + 1, 2 * c + 1), s16);
}

/* IQ2_XXS: per 32, a uint32 of four grid index bytes, then one of four
 * sign codes and a scale; one load holds all 16, the index words in the
 * low halves of its 64-bit lanes, the sign words in the high ones. */
static inline void
unpack_iq2_xxs(const struct block_iq2_xxs *a, struct ublock *ub)
{
	__m512i qs = load512(a->qs);
	__m256i sw = _mm512_cvtepi64_epi32(_mm512_srli_epi64(qs, 32));
	__m512i codes = codes32(iq2xxs_codes, 4, _mm512_cvtepu8_epi16(_mm512_cvtepi64_epi32(qs)));

	sign_masks(sign_bytes(word_codes(sw)), ub->neg);
	word_scales(sw, ub->sc);
	UNROLL4
	for (int c = 0; c < 4; c++)
		ub->u[c] = iq2_expand(codes, c);
	ub->d = _cvtsh_ss(a->d);
}

IQ_KERNELS(iq2_xxs, block_iq2_xxs, 1, 0, 0.125f)

/* IQ2_XS: per 8, a 9-bit grid index and a 7-bit sign code in one uint16;
 * a 4-bit scale per 16. */
static inline void
unpack_iq2_xs(const struct block_iq2_xs *a, struct ublock *ub)
{
	__m512i q = load512(a->qs);
	__m128i s8 = _mm_loadl_epi64((const __m128i *)a->scales), m4 = _mm_set1_epi8(0x0f);
	/* scale byte j / 2 holds group j's scale in nibble j % 2 */
	__m256i s16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(s8, m4),
	    _mm_and_si128(_mm_srli_epi16(s8, 4), m4)));
	__m512i sc = _mm512_castsi256_si512(_mm256_add_epi16(_mm256_add_epi16(s16, s16),
	    _mm256_set1_epi16(1)));
	__m512i codes = codes32(iq2xs_codes, 8, _mm512_and_si512(q, _mm512_set1_epi16(511)));

	sign_masks(sign_bytes(_mm512_cvtepi16_epi8(_mm512_srli_epi16(q, 9))), ub->neg);
	UNROLL4
	for (int c = 0; c < 4; c++) {
		ub->u[c] = iq2_expand(codes, c);
		ub->sc[c] = _mm512_permutexvar_epi16(scale_idx(4 * c, 4 * c + 1, 4 * c + 2,
		    4 * c + 3), sc);
	}
	ub->d = _cvtsh_ss(a->d);
}

IQ_KERNELS(iq2_xs, block_iq2_xs, 1, 0, 0.125f)

/* IQ3_XXS: 64 indices into a grid of 4-byte entries, then 8 sign words as
 * IQ2_XXS's. */
static inline void
unpack_iq3_xxs(const struct block_iq3_xxs *a, struct ublock *ub)
{
	__m256i sw = load256(a->qs + QK_K / 4);
	__m512i codes[2];

	sign_masks(sign_bytes(word_codes(sw)), ub->neg);
	word_scales(sw, ub->sc);
	for (int h = 0; h < 2; h++)
		codes[h] = codes32(iq3xxs_codes, 4, _mm512_cvtepu8_epi16(load256(a->qs + 32 * h)));
	UNROLL4
	for (int c = 0; c < 4; c++)
		ub->u[c] = iq3_expand(codes[c / 2], c % 2);
	ub->d = _cvtsh_ss(a->d);
}

IQ_KERNELS(iq3_xxs, block_iq3_xxs, 1, 0, 0.25f)

/*
 * IQ1's levels + 9 from the 32 grid indices idx (11 bits each), the groups
 * of 8 whose delta is -1 (bit g of dneg) and the 16 scales of the groups
 * of 16 (int16): u = 8 (grid + 1) + (delta + 1), and the +9 comes off as
 * 9 sum_j sc_j bsums_j.
 */
static inline void
iq1_finish(const uint16_t *idx, uint32_t dneg, __m256i sc16, struct ublock *ub)
{
	const __m512i one = _mm512_set1_epi8(1), two = _mm512_set1_epi8(2);
	__m512i sc = _mm512_castsi256_si512(sc16);

	UNROLL4
	for (int c = 0; c < 4; c++) {
		__m512i g = grid8(iq1s_grid, idx + 8 * c);
		/* bytes are 0..2 after the +1, so the 16-bit shift stays in its byte */
		__m512i u = _mm512_slli_epi16(_mm512_add_epi8(g, one), 3);

		ub->u[c] = _mm512_add_epi8(u, _mm512_maskz_mov_epi64((__mmask8)~(dneg >> (8 * c)),
		    two));
		ub->sc[c] = _mm512_permutexvar_epi16(scale_idx(4 * c, 4 * c + 1, 4 * c + 2,
		    4 * c + 3), sc);
	}
	ub->corr = _mm256_add_epi16(_mm256_slli_epi16(sc16, 3), sc16);
}

/* IQ1_S: per 32, four index bytes and a uint16 with the four 3-bit high
 * index parts, a 3-bit scale (bits 12-14) and the delta sign (bit 15). */
static inline void
unpack_iq1_s(const struct block_iq1_s *a, struct ublock *ub)
{
	/* lane 4 ib + l of qh4 holds qh[ib] shifted by 3 l */
	const __m512i bcast = _mm512_set_epi16(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4,
	    3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
	const __m512i shift = _mm512_set_epi16(9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0,
	    9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0);
	__m128i qh = load128(a->qh);
	__m512i qh4 = _mm512_permutexvar_epi16(bcast, _mm512_castsi128_si512(qh));
	__m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qh4, shift), _mm512_set1_epi16(7));
	/* 2 s + 1 per 32, each repeated for its two groups of 16 */
	__m128i s = _mm_or_si128(_mm_srli_epi16(qh, 11), _mm_set1_epi16(1));
	__m256i sc16 = _mm256_cvtepu16_epi32(_mm_and_si128(s, _mm_set1_epi16(15)));
	uint16_t idx[32];

	sc16 = _mm256_or_si256(sc16, _mm256_slli_epi32(sc16, 16));
	_mm512_storeu_si512(idx, _mm512_or_si512(_mm512_cvtepu8_epi16(load256(a->qs)),
	    _mm512_slli_epi16(hi, 8)));
	iq1_finish(idx, _mm512_movepi16_mask(qh4), sc16, ub);
	ub->d = _cvtsh_ss(a->d);
}

IQ_KERNELS(iq1_s, block_iq1_s, 0, 1, 0.125f)

/* IQ1_M: per 8, an index byte and a qh nibble (3 high index bits, delta
 * sign); 3-bit scales per 16, four to a little-endian uint16 whose top
 * nibbles make up the fp16 super-scale. */
static inline void
unpack_iq1_m(const struct block_iq1_m *a, struct ublock *ub)
{
	const __m256i bcast = _mm256_set_epi16(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
	const __m256i shift = _mm256_set_epi16(9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0);
	__m128i qh = load128(a->qh), m4 = _mm_set1_epi8(0x0f);
	__m128i lo = _mm_and_si128(qh, m4), hi = _mm_and_si128(_mm_srli_epi16(qh, 4), m4);
	/* byte g: the nibble of group g */
	__m256i nib = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
	__m128i sw = _mm_loadl_epi64((const __m128i *)a->scales);
	__m256i s = _mm256_srlv_epi16(_mm256_permutexvar_epi16(bcast, _mm256_castsi128_si256(sw)),
	    shift);
	__m256i sc16 = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(s,
	    _mm256_set1_epi16(7)), 1), _mm256_set1_epi16(1));
	uint16_t w[4], idx[32];

	_mm512_storeu_si512(idx, _mm512_or_si512(_mm512_cvtepu8_epi16(load256(a->qs)),
	    _mm512_slli_epi16(_mm512_cvtepu8_epi16(_mm256_and_si256(nib,
	    _mm256_set1_epi8(7))), 8)));
	iq1_finish(idx, _mm256_test_epi8_mask(nib, _mm256_set1_epi8(8)), sc16, ub);
	_mm_storel_epi64((__m128i *)w, sw);
	ub->d = _cvtsh_ss((uint16_t)((w[0] >> 12) | ((w[1] >> 8) & 0x00f0) |
	    ((w[2] >> 4) & 0x0f00) | (w[3] & 0xf000)));
}

IQ_KERNELS(iq1_m, block_iq1_m, 0, 1, 0.125f)

/* IQ4_XS: per 32, a 6-bit scale (4 low bits in scales_l, 2 high in
 * scales_h, stored + 32) and 16 bytes of nibble indices into kvalues_iq4nl:
 * element j low nibble of byte j, element j + 16 high. */
static inline void
unpack_iq4_xs(const struct block_iq4_xs *a, struct ublock *ub)
{
	const __m512i tab = _mm512_broadcast_i32x4(load128(kvalues_iq4nl));
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const __m128i sh = _mm_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14);
	uint32_t sl32;
	__m128i sl, hi, ls;
	__m512i sc;

	memcpy(&sl32, a->scales_l, sizeof(sl32));
	sl = _mm_cvtsi32_si128((int)sl32);
	sl = _mm_unpacklo_epi8(_mm_and_si128(sl, _mm_set1_epi8(0x0f)),
	    _mm_and_si128(_mm_srli_epi16(sl, 4), _mm_set1_epi8(0x0f)));
	hi = _mm_and_si128(_mm_srlv_epi16(_mm_set1_epi16((short)a->scales_h), sh),
	    _mm_set1_epi16(3));
	ls = _mm_or_si128(_mm_cvtepu8_epi16(sl), _mm_slli_epi16(hi, 4));
	sc = _mm512_castsi128_si512(_mm_sub_epi16(ls, _mm_set1_epi16(32)));
	UNROLL4
	for (int c = 0; c < 4; c++) {
		__m256i t = load256(a->qs + 32 * c);
		/* [low nibbles 0-15 | 16-31 | high 0-15 | 16-31] to element order */
		__m512i v = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(t),
		    _mm256_srli_epi16(t, 4), 1), m4);
		__m512i q = _mm512_shuffle_epi8(tab, _mm512_shuffle_i64x2(v, v, 0xd8));

		ub->u[c] = _mm512_abs_epi8(q);
		ub->neg[c] = _mm512_movepi8_mask(q);
		ub->sc[c] = _mm512_permutexvar_epi16(scale_idx(2 * c, 2 * c, 2 * c + 1,
		    2 * c + 1), sc);
	}
	ub->d = _cvtsh_ss(a->d);
}

IQ_KERNELS(iq4_xs, block_iq4_xs, 1, 0, 1.0f)

/* ---- IQ4_NL x Q8_0 ---- */

/* The Q8_0 block i of activation row t. */
static inline const struct block_q8_0 *
xblock0(const void *x, size_t xs, int t, int64_t i)
{
	return (const struct block_q8_0 *)((const uint8_t *)x + (size_t)t * xs) + i;
}

/* The levels of IQ4_NL's 32-element blocks a[0] and a[1] (nibbles as
 * IQ4_XS's per 32), in element order, one block per 256-bit half. */
static inline __m512i
iq4nl_pair(const struct block_iq4_nl *a)
{
	const __m512i tab = _mm512_broadcast_i32x4(load128(kvalues_iq4nl));
	__m256i t = _mm256_set_m128i(load128(a[1].qs), load128(a[0].qs));
	__m512i v = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(t),
	    _mm256_srli_epi16(t, 4), 1), _mm512_set1_epi8(0x0f));

	return _mm512_shuffle_epi8(tab, _mm512_shuffle_i64x2(v, v, 0xd8));
}

/* Block pair (i, i + 1) of every activation row against the levels q,
 * scales d0, d1 of the weight pair; the exact int32 sums of four products
 * come straight from vpdpbusd (|level| and |y| <= 127), then each block's
 * d * dy lane-wise. */
static inline void
iq4nl_rows2(__m512i q, float d0, float d1, const void *x, size_t xs, int nx, int64_t i,
    __m512 *acc)
{
	__m512i u = _mm512_abs_epi8(q);
	__mmask64 neg = _mm512_movepi8_mask(q);

	for (int t = 0; t < nx; t++) {
		const struct block_q8_0 *b = xblock0(x, xs, t, i);
		__m512i y = _mm512_inserti64x4(_mm512_castsi256_si512(load256(b[0].qs)),
		    load256(b[1].qs), 1);
		__m512 d = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(d0 * _cvtsh_ss(b[0].d)),
		    _mm512_set1_ps(d1 * _cvtsh_ss(b[1].d)));

		y = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
		acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(
		    _mm512_setzero_si512(), u, y)), acc[t]);
	}
}

/* Two blocks per register; an odd last block goes through the low 256
 * bits (a masked FMA leaves the other lanes as they are). */
static inline __attribute__((always_inline)) void
rows_iq4_nl(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out, __m512 *acc)
{
	const struct block_iq4_nl *a = w;
	int64_t nb = n / QK4_NL, i;

	for (int t = 0; t < nx; t++)
		acc[t] = _mm512_setzero_ps();
	for (i = 0; i + 1 < nb; i += 2)
		iq4nl_rows2(iq4nl_pair(a + i), _cvtsh_ss(a[i].d), _cvtsh_ss(a[i + 1].d), x, xs, nx,
		    i, acc);
	if (i < nb) {
		__m128i qb = load128(a[i].qs), m4 = _mm_set1_epi8(0x0f);
		__m256i q = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(load128(kvalues_iq4nl)),
		    _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qb, 4), m4), _mm_and_si128(qb, m4)));
		__m256i u = _mm256_abs_epi8(q);
		float d = _cvtsh_ss(a[i].d);

		for (int t = 0; t < nx; t++) {
			const struct block_q8_0 *b = xblock0(x, xs, t, i);
			__m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u,
			    _mm256_sign_epi8(load256(b->qs), q));

			acc[t] = _mm512_mask3_fmadd_ps(_mm512_set1_ps(d * _cvtsh_ss(b->d)),
			    _mm512_zextps256_ps512(_mm256_cvtepi32_ps(s)), acc[t], 0x00ff);
		}
	}
	for (int t = 0; t < nx; t++)
		out[t] = _mm512_reduce_add_ps(acc[t]);
}

ENTRY_POINTS(iq4_nl)

/* codes[e]: grid entry e (per bytes of it) as value indices into vals
 * (nv of them), b bits each at bit b (j / 2) + 8 (j % 2); -1 if a byte is
 * not among vals. */
static int
make_codes(const void *grid, int entries, int per, const uint8_t *vals, int nv, int b,
    uint16_t *codes)
{
	for (int e = 0; e < entries; e++) {
		uint64_t g = per == 8 ? ((const uint64_t *)grid)[e] : ((const uint32_t *)grid)[e];

		codes[e] = 0;
		for (int j = 0; j < per; j++) {
			int v = 0;

			while (v < nv && vals[v] != ((g >> (8 * j)) & 0xff))
				v++;
			if (v == nv)
				return -1;
			codes[e] |= (uint16_t)(v << (b * (j / 2) + 8 * (j % 2)));
		}
	}
	return 0;
}

/* Builds the code tables, then enters every kernel of this file. */
void
cpu_fill_avx512_iq(struct cpu_kernels *k)
{
	/* a grid with a value outside its list keeps its AVX2 kernel */
	int bad2xxs = make_codes(iq2xxs_grid, 256, 8, iq2_values, 3, 2, iq2xxs_codes);
	int bad2xs = make_codes(iq2xs_grid, 512, 8, iq2_values, 3, 2, iq2xs_codes);
	int bad3xxs = make_codes(iq3xxs_grid, 256, 4, iq3_values, 8, 3, iq3xxs_codes);
	const struct {
		uint32_t type;
		cpu_dot_fn fn;
		cpu_dotn_fn fnn;
		cpu_gemm_fn gemm;
		int bad;
	} dots[] = {
		{ KTX_TYPE_IQ1_S, dot_iq1_s, dotn_iq1_s, gemm_iq1_s, 0 },
		{ KTX_TYPE_IQ1_M, dot_iq1_m, dotn_iq1_m, gemm_iq1_m, 0 },
		{ KTX_TYPE_IQ2_XXS, dot_iq2_xxs, dotn_iq2_xxs, gemm_iq2_xxs, bad2xxs },
		{ KTX_TYPE_IQ2_XS, dot_iq2_xs, dotn_iq2_xs, gemm_iq2_xs, bad2xs },
		{ KTX_TYPE_IQ3_XXS, dot_iq3_xxs, dotn_iq3_xxs, gemm_iq3_xxs, bad3xxs },
		{ KTX_TYPE_IQ4_XS, dot_iq4_xs, dotn_iq4_xs, gemm_iq4_xs, 0 },
		{ KTX_TYPE_IQ4_NL, dot_iq4_nl, dotn_iq4_nl, gemm_iq4_nl, 0 },
	};

	for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
		if (dots[i].bad)
			continue;
		k->dot[dots[i].type] = dots[i].fn;
		k->dotn[dots[i].type] = dots[i].fnn;
		k->gemm[dots[i].type] = dots[i].gemm;
		k->dot_level[dots[i].type] = KTX_CPU_AVX512;
	}
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
