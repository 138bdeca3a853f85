/*
 * attn_flash.c - flash-style absorbed MLA over the latent cache, and the
 * cache's element conversions (see attn_flash.h).
 *
 * Per key tile: scores of every active row against the tile's keys, the
 * online-softmax update (new running max m', alpha = exp(m - m'), the
 * tile's weights exp(s - m')), then o = o * alpha + sum_j p_j key_j. Two
 * kernels per SIMD level and cache type do the arithmetic: scores (a block
 * of rows times a block of keys, each dot product in one accumulator) and
 * accum (a block of rows times a strip of columns). Keys are converted
 * from F16/BF16 as they are loaded (F16C's vcvtph2ps, or a 16-bit shift
 * for bfloat16); nothing is copied out of the cache. Every output element
 * is computed by the same sequence of operations whichever block it falls
 * in, which is what makes results independent of the grouping of rows.
 *
 * The SIMD functions carry target attributes, so the file needs no
 * special flags; they run only at the level kernels/cpu selected.
 */
#include "engine/attn_flash.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/ref/fp16.h"

#define KT ATTN_KEY_TILE

#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))

/* One level's kernels for one cache type. */
struct flash_ops {
	/* S[r * ss + j] = scale * q[r] . key_j, r < nr, j < nkey; key_j at
	 * k + j * ks bytes, width elements. */
	void (*scores)(const float *const *q, size_t nr, const uint8_t *k, size_t ks,
	    size_t nkey, size_t width, float scale, float *S, size_t ss);
	/* o[r][c] = o[r][c] * alpha[r] + sum_j P[r * ps + j] key_j[c], c < kl,
	 * the sum in the order of j. */
	void (*accum)(float *const *o, size_t nr, const float *alpha, const float *P, size_t ps,
	    const uint8_t *k, size_t ks, size_t nkey, size_t kl);
};

size_t
attn_cache_elsize(enum ktx_cache_type t)
{
	return t == KTX_CACHE_F32 ? sizeof(float) : sizeof(uint16_t);
}

void
attn_cache_store(enum ktx_cache_type t, void *dst, const float *x, size_t n)
{
	uint16_t *h = dst;
	size_t i;

	if (t == KTX_CACHE_F32) {
		memcpy(dst, x, n * sizeof(float));
		return;
	}
	for (i = 0; i < n; i++)
		h[i] = t == KTX_CACHE_F16 ? ktx_fp32_to_fp16(x[i]) : ktx_fp32_to_bf16(x[i]);
}

/* Element i of a row of type t. */
static inline float
elem(enum ktx_cache_type t, const uint8_t *p, size_t i)
{
	uint16_t h;
	float f;

	if (t == KTX_CACHE_F32) {
		memcpy(&f, p + i * sizeof(float), sizeof(f));
		return f;
	}
	memcpy(&h, p + i * sizeof(h), sizeof(h));
	return t == KTX_CACHE_F16 ? ktx_fp16_to_fp32(h) : ktx_bf16_to_fp32(h);
}

void
attn_cache_load(enum ktx_cache_type t, float *dst, const void *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = elem(t, src, i);
}

/* ---- generic: plain C ------------------------------------------------------ */

INLINE void
scores_gen(enum ktx_cache_type t, const float *const *q, size_t nr, const uint8_t *k,
    size_t ks, size_t nkey, size_t width, float scale, float *S, size_t ss)
{
	size_t r, j, c;

	for (r = 0; r < nr; r++)
		for (j = 0; j < nkey; j++) {
			float s = 0;

			for (c = 0; c < width; c++)
				s += q[r][c] * elem(t, k + j * ks, c);
			S[r * ss + j] = s * scale;
		}
}

INLINE void
accum_gen(enum ktx_cache_type t, float *const *o, size_t nr, const float *alpha,
    const float *P, size_t ps, const uint8_t *k, size_t ks, size_t nkey, size_t kl)
{
	size_t r, j, c;

	for (r = 0; r < nr; r++) {
		for (c = 0; c < kl; c++)
			o[r][c] *= alpha[r];
		for (j = 0; j < nkey; j++)
			for (c = 0; c < kl; c++)
				o[r][c] += P[r * ps + j] * elem(t, k + j * ks, c);
	}
}

/* ---- AVX2 + FMA + F16C: 8 floats a vector, scalar tails ------------------- */

/* Elements i..i+7 of a row of type t as floats. */
INLINE TGT_AVX2 __m256
ld8(enum ktx_cache_type t, const uint8_t *p, size_t i)
{
	if (t == KTX_CACHE_F32)
		return _mm256_loadu_ps((const float *)(const void *)p + i);
	if (t == KTX_CACHE_F16)
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i)));
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(
	    _mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i))), 16));
}

INLINE TGT_AVX2 float
hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* R rows times J keys (R, J <= 3): one accumulator per dot product, the
 * tail past the last whole vector added after the horizontal sum. */
INLINE TGT_AVX2 void
sc_blk8(enum ktx_cache_type t, const float *const *q, int R, const uint8_t *k, size_t ks,
    int J, size_t width, float scale, float *S, size_t ss)
{
	__m256 acc[3][3], kv[3], qv;
	size_t c;
	int r, j;

#pragma GCC unroll 3
	for (r = 0; r < R; r++)
#pragma GCC unroll 3
		for (j = 0; j < J; j++)
			acc[r][j] = _mm256_setzero_ps();
	for (c = 0; c + 8 <= width; c += 8) {
#pragma GCC unroll 3
		for (j = 0; j < J; j++)
			kv[j] = ld8(t, k + j * ks, c);
#pragma GCC unroll 3
		for (r = 0; r < R; r++) {
			qv = _mm256_loadu_ps(q[r] + c);
#pragma GCC unroll 3
			for (j = 0; j < J; j++)
				acc[r][j] = _mm256_fmadd_ps(qv, kv[j], acc[r][j]);
		}
	}
#pragma GCC unroll 3
	for (r = 0; r < R; r++)
#pragma GCC unroll 3
		for (j = 0; j < J; j++) {
			float s = hsum8(acc[r][j]);
			size_t ct;

			for (ct = c; ct < width; ct++)
				s = fmaf(q[r][ct], elem(t, k + j * ks, ct), s);
			S[r * ss + j] = s * scale;
		}
}

INLINE TGT_AVX2 void
scores_avx2(enum ktx_cache_type t, const float *const *q, size_t nr, const uint8_t *k,
    size_t ks, size_t nkey, size_t width, float scale, float *S, size_t ss)
{
	size_t r, j;

	for (r = 0; r + 3 <= nr; r += 3) {
		for (j = 0; j + 3 <= nkey; j += 3)
			sc_blk8(t, q + r, 3, k + j * ks, ks, 3, width, scale, S + r * ss + j, ss);
		for (; j < nkey; j++)
			sc_blk8(t, q + r, 3, k + j * ks, ks, 1, width, scale, S + r * ss + j, ss);
	}
	for (; r < nr; r++) {
		for (j = 0; j + 3 <= nkey; j += 3)
			sc_blk8(t, q + r, 1, k + j * ks, ks, 3, width, scale, S + r * ss + j, ss);
		for (; j < nkey; j++)
			sc_blk8(t, q + r, 1, k + j * ks, ks, 1, width, scale, S + r * ss + j, ss);
	}
}

/* R rows (<= 4) times C vectors (<= 2) of columns from c. */
INLINE TGT_AVX2 void
ac_blk8(enum ktx_cache_type t, float *const *o, int R, const float *alpha, const float *P,
    size_t ps, const uint8_t *k, size_t ks, size_t nkey, size_t c, int C)
{
	__m256 a[4][2], kv[2], p;
	size_t j;
	int r, i;

#pragma GCC unroll 4
	for (r = 0; r < R; r++)
#pragma GCC unroll 2
		for (i = 0; i < C; i++)
			a[r][i] = _mm256_mul_ps(_mm256_loadu_ps(o[r] + c + 8 * i),
			    _mm256_set1_ps(alpha[r]));
	for (j = 0; j < nkey; j++) {
#pragma GCC unroll 2
		for (i = 0; i < C; i++)
			kv[i] = ld8(t, k + j * ks, c + 8 * (size_t)i);
#pragma GCC unroll 4
		for (r = 0; r < R; r++) {
			p = _mm256_set1_ps(P[r * ps + j]);
#pragma GCC unroll 2
			for (i = 0; i < C; i++)
				a[r][i] = _mm256_fmadd_ps(p, kv[i], a[r][i]);
		}
	}
#pragma GCC unroll 4
	for (r = 0; r < R; r++)
#pragma GCC unroll 2
		for (i = 0; i < C; i++)
			_mm256_storeu_ps(o[r] + c + 8 * i, a[r][i]);
}

/* The column strips of R rows (4 or 1), the columns past the last whole
 * vector one at a time. */
INLINE TGT_AVX2 void
ac_rows8(enum ktx_cache_type t, float *const *o, int R, const float *alpha, const float *P,
    size_t ps, const uint8_t *k, size_t ks, size_t nkey, size_t kl)
{
	size_t c, j;
	int r;

	for (c = 0; c + 16 <= kl; c += 16)
		ac_blk8(t, o, R, alpha, P, ps, k, ks, nkey, c, 2);
	for (; c + 8 <= kl; c += 8)
		ac_blk8(t, o, R, alpha, P, ps, k, ks, nkey, c, 1);
	for (; c < kl; c++)
		for (r = 0; r < R; r++) {
			float v = o[r][c] * alpha[r];

			for (j = 0; j < nkey; j++)
				v = fmaf(P[r * ps + j], elem(t, k + j * ks, c), v);
			o[r][c] = v;
		}
}

INLINE TGT_AVX2 void
accum_avx2(enum ktx_cache_type t, float *const *o, size_t nr, const float *alpha,
    const float *P, size_t ps, const uint8_t *k, size_t ks, size_t nkey, size_t kl)
{
	size_t r;

	for (r = 0; r + 4 <= nr; r += 4)
		ac_rows8(t, o + r, 4, alpha + r, P + r * ps, ps, k, ks, nkey, kl);
	for (; r < nr; r++)
		ac_rows8(t, o + r, 1, alpha + r, P + r * ps, ps, k, ks, nkey, kl);
}

/* ---- AVX-512: 16 floats a vector, masked tails ----------------------------- */

/* Elements i..i+15 of a row of type t where mask m is set, else 0. */
INLINE TGT_AVX512 __m512
ld16(enum ktx_cache_type t, const uint8_t *p, size_t i, __mmask16 m)
{
	if (t == KTX_CACHE_F32)
		return _mm512_maskz_loadu_ps(m, (const float *)(const void *)p + i);
	if (t == KTX_CACHE_F16)
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + 2 * i));
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(
	    _mm256_maskz_loadu_epi16(m, p + 2 * i)), 16));
}

/* R rows times J keys (R, J <= 4), one accumulator per dot product. */
INLINE TGT_AVX512 void
sc_blk16(enum ktx_cache_type t, const float *const *q, int R, const uint8_t *k, size_t ks,
    int J, size_t width, float scale, float *S, size_t ss)
{
	__m512 acc[4][4], kv[4], qv;
	__mmask16 m = 0xffff;
	size_t c;
	int r, j;

#pragma GCC unroll 4
	for (r = 0; r < R; r++)
#pragma GCC unroll 4
		for (j = 0; j < J; j++)
			acc[r][j] = _mm512_setzero_ps();
	for (c = 0; c < width; c += 16) {
		if (width - c < 16)
			m = (__mmask16)((1u << (width - c)) - 1);
#pragma GCC unroll 4
		for (j = 0; j < J; j++)
			kv[j] = ld16(t, k + j * ks, c, m);
#pragma GCC unroll 4
		for (r = 0; r < R; r++) {
			qv = _mm512_maskz_loadu_ps(m, q[r] + c);
#pragma GCC unroll 4
			for (j = 0; j < J; j++)
				acc[r][j] = _mm512_fmadd_ps(qv, kv[j], acc[r][j]);
		}
	}
#pragma GCC unroll 4
	for (r = 0; r < R; r++)
#pragma GCC unroll 4
		for (j = 0; j < J; j++)
			S[r * ss + j] = _mm512_reduce_add_ps(acc[r][j]) * scale;
}

INLINE TGT_AVX512 void
scores_avx512(enum ktx_cache_type t, const float *const *q, size_t nr, const uint8_t *k,
    size_t ks, size_t nkey, size_t width, float scale, float *S, size_t ss)
{
	size_t r, j;

	for (r = 0; r + 4 <= nr; r += 4) {
		for (j = 0; j + 4 <= nkey; j += 4)
			sc_blk16(t, q + r, 4, k + j * ks, ks, 4, width, scale, S + r * ss + j, ss);
		for (; j < nkey; j++)
			sc_blk16(t, q + r, 4, k + j * ks, ks, 1, width, scale, S + r * ss + j, ss);
	}
	for (; r < nr; r++) {
		for (j = 0; j + 4 <= nkey; j += 4)
			sc_blk16(t, q + r, 1, k + j * ks, ks, 4, width, scale, S + r * ss + j, ss);
		for (; j < nkey; j++)
			sc_blk16(t, q + r, 1, k + j * ks, ks, 1, width, scale, S + r * ss + j, ss);
	}
}

/* R rows (<= 8) times C vectors (<= 2) of columns from c, the last one
 * under mask ml. */
INLINE TGT_AVX512 void
ac_blk16(enum ktx_cache_type t, float *const *o, int R, const float *alpha, const float *P,
    size_t ps, const uint8_t *k, size_t ks, size_t nkey, size_t c, int C, __mmask16 ml)
{
	__m512 a[8][2], kv[2], p;
	__mmask16 mk[2] = {C == 1 ? ml : 0xffff, ml};
	size_t j;
	int r, i;

#pragma GCC unroll 8
	for (r = 0; r < R; r++)
#pragma GCC unroll 2
		for (i = 0; i < C; i++)
			a[r][i] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk[i], o[r] + c + 16 * i),
			    _mm512_set1_ps(alpha[r]));
	for (j = 0; j < nkey; j++) {
#pragma GCC unroll 2
		for (i = 0; i < C; i++)
			kv[i] = ld16(t, k + j * ks, c + 16 * (size_t)i, mk[i]);
#pragma GCC unroll 8
		for (r = 0; r < R; r++) {
			p = _mm512_set1_ps(P[r * ps + j]);
#pragma GCC unroll 2
			for (i = 0; i < C; i++)
				a[r][i] = _mm512_fmadd_ps(p, kv[i], a[r][i]);
		}
	}
#pragma GCC unroll 8
	for (r = 0; r < R; r++)
#pragma GCC unroll 2
		for (i = 0; i < C; i++)
			_mm512_mask_storeu_ps(o[r] + c + 16 * i, mk[i], a[r][i]);
}

/* The column strips of R rows from row r. */
INLINE TGT_AVX512 void
ac_rows16(enum ktx_cache_type t, float *const *o, int R, const float *alpha, const float *P,
    size_t ps, const uint8_t *k, size_t ks, size_t nkey, size_t kl)
{
	size_t c;

	for (c = 0; c + 32 <= kl; c += 32)
		ac_blk16(t, o, R, alpha, P, ps, k, ks, nkey, c, 2, 0xffff);
	for (; c < kl; c += 16)
		ac_blk16(t, o, R, alpha, P, ps, k, ks, nkey, c, 1,
		    kl - c >= 16 ? 0xffff : (__mmask16)((1u << (kl - c)) - 1));
}

INLINE TGT_AVX512 void
accum_avx512(enum ktx_cache_type t, float *const *o, size_t nr, const float *alpha,
    const float *P, size_t ps, const uint8_t *k, size_t ks, size_t nkey, size_t kl)
{
	size_t r;

	for (r = 0; r + 8 <= nr; r += 8)
		ac_rows16(t, o + r, 8, alpha + r, P + r * ps, ps, k, ks, nkey, kl);
	for (; r < nr; r++)
		ac_rows16(t, o + r, 1, alpha + r, P + r * ps, ps, k, ks, nkey, kl);
}

/* ---- the table --------------------------------------------------------------- */

/* The scores and accum entry points of level L, attributes A, type T. */
#define FLASH_OPS(L, A, T, tname)                                                     \
	static A void                                                                 \
	scores_##L##_##tname(const float *const *q, size_t nr, const uint8_t *k,     \
	    size_t ks, size_t nkey, size_t width, float scale, float *S, size_t ss)   \
	{                                                                             \
		scores_##L(T, q, nr, k, ks, nkey, width, scale, S, ss);               \
	}                                                                             \
	static A void                                                                 \
	accum_##L##_##tname(float *const *o, size_t nr, const float *alpha,          \
	    const float *P, size_t ps, const uint8_t *k, size_t ks, size_t nkey,      \
	    size_t kl)                                                                \
	{                                                                             \
		accum_##L(T, o, nr, alpha, P, ps, k, ks, nkey, kl);                   \
	}

#define NO_TGT
FLASH_OPS(gen, NO_TGT, KTX_CACHE_F16, f16)
FLASH_OPS(gen, NO_TGT, KTX_CACHE_BF16, bf16)
FLASH_OPS(gen, NO_TGT, KTX_CACHE_F32, f32)
FLASH_OPS(avx2, TGT_AVX2, KTX_CACHE_F16, f16)
FLASH_OPS(avx2, TGT_AVX2, KTX_CACHE_BF16, bf16)
FLASH_OPS(avx2, TGT_AVX2, KTX_CACHE_F32, f32)
FLASH_OPS(avx512, TGT_AVX512, KTX_CACHE_F16, f16)
FLASH_OPS(avx512, TGT_AVX512, KTX_CACHE_BF16, bf16)
FLASH_OPS(avx512, TGT_AVX512, KTX_CACHE_F32, f32)

#define OPS(L, tname) { scores_##L##_##tname, accum_##L##_##tname }

/* [level][cache type], in the orders of enum ktx_cpu_level and enum
 * ktx_cache_type. */
static const struct flash_ops ops_tab[KTX_CPU_LEVELS_][3] = {
	[KTX_CPU_GENERIC] = {[KTX_CACHE_F16] = OPS(gen, f16), [KTX_CACHE_BF16] = OPS(gen, bf16),
	    [KTX_CACHE_F32] = OPS(gen, f32)},
	[KTX_CPU_AVX2] = {[KTX_CACHE_F16] = OPS(avx2, f16), [KTX_CACHE_BF16] = OPS(avx2, bf16),
	    [KTX_CACHE_F32] = OPS(avx2, f32)},
	[KTX_CPU_AVX512] = {[KTX_CACHE_F16] = OPS(avx512, f16),
	    [KTX_CACHE_BF16] = OPS(avx512, bf16), [KTX_CACHE_F32] = OPS(avx512, f32)},
};

/* ---- the driver ----------------------------------------------------------------- */

size_t
attn_flash_scratch(size_t n)
{
	return n * (KT + 3);
}

void
attn_flash(enum ktx_cache_type t, const void *kv, size_t kv_stride, size_t width, size_t kl,
    float scale, const struct attn_rows *rows, float *scratch)
{
	const struct flash_ops *ops = &ops_tab[ktx_cpu_level()][t];
	const uint8_t *base = kv;
	size_t n = rows->n, r, r0 = 0, j, j0, kt, vis, c, maxnk;
	float *S = scratch, *mx = S + n * KT, *sum = mx + n, *alpha = sum + n;

	if (n == 0)
		return;
	maxnk = rows->nk[n - 1];
	for (r = 0; r < n; r++) {
		mx[r] = -INFINITY;
		sum[r] = 0;
		memset(rows->o[r], 0, kl * sizeof(float));
	}
	for (j0 = 0; j0 < maxnk; j0 += KT) {
		kt = maxnk - j0 < KT ? maxnk - j0 : KT;
		/* Rows whose keys end before the tile are done. */
		while (rows->nk[r0] <= j0)
			r0++;
		ops->scores(rows->q + r0, n - r0, base + j0 * kv_stride, kv_stride, kt, width,
		    scale, S + r0 * KT, KT);
		for (r = r0; r < n; r++) {
			float *s = S + r * KT, m = mx[r], l = 0;

			vis = rows->nk[r] - j0 < kt ? rows->nk[r] - j0 : kt;
			for (j = 0; j < vis; j++)
				if (s[j] > m)
					m = s[j];
			/* exp(-inf) = 0 on the first tile, where o and sum are 0. */
			alpha[r] = expf(mx[r] - m);
			for (j = 0; j < vis; j++) {
				s[j] = expf(s[j] - m);
				l += s[j];
			}
			for (; j < kt; j++)
				s[j] = 0;
			sum[r] = sum[r] * alpha[r] + l;
			mx[r] = m;
		}
		ops->accum(rows->o + r0, n - r0, alpha + r0, S + r0 * KT, KT,
		    base + j0 * kv_stride, kv_stride, kt, kl);
	}
	for (r = 0; r < n; r++) {
		float inv = 1 / sum[r];

		for (c = 0; c < kl; c++)
			rows->o[r][c] *= inv;
	}
}
