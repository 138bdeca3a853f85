/*
 * rp_k2.c - repacked Q2_K and Q3_K (repack.h): sixteen weight rows per
 * group, one row per 32-bit lane, so that one vpdpbusd takes four
 * k-elements of all sixteen rows against four broadcast activation bytes.
 *
 * A group is laid out block by block; block i of its 16 rows (a
 * block-group, 16 * sizeof(block) bytes) holds vectors of 64 bytes whose
 * 32-bit word r belongs to row r, and the rows' fp16 scales as arrays:
 *
 *   Q2_K (1344 bytes)              Q3_K (1760 bytes)
 *   0    d[16]                     0    d[16]
 *   32   dmin[16]                  32   scales: 3 vectors
 *   64   scales: 2 vectors         224  crumbs: 16 vectors
 *   192  mins: 2 vectors           1248 high bits: 8 vectors
 *   320  crumbs: 16 vectors
 *
 * Q3_K's crumb vector j holds sub-block j (elements 16 j .. 16 j + 15):
 * element 16 j + 4 s + b of a row in bits 2 s of byte b of its word, so a
 * shift by 2 s and a mask leave four consecutive levels per row. Its
 * high-bit vector u holds sub-blocks 2 u and 2 u + 1: element
 * 16 (2 u + e) + 4 s + b in bit 4 e + s of byte b, tested into a mask that
 * adds 4. Both are transposes of the file's bits (4 x 4 crumbs, 8 x 8
 * bits), which is why one function packs and unpacks each. Q2_K's crumb
 * vectors are regrouped by sub-block pair (q2_pair_words) so that one
 * shift serves four steps: masks 3 and 0xc take the pair's two sub-blocks,
 * the second at 4x its levels.
 *
 * Q2_K's scale vector w holds scale 8 w + k (low nibble of scales[]) in
 * bits 4 k; its min vector w holds the mins of sub-blocks 2 p and 2 p + 1,
 * p = 4 w + k, in bits 4 k and 16 + 4 k: one shift and mask make the int16
 * pair that meets the pair of bsums. Q3_K's sixteen 6-bit scales are kept
 * as v = sc ^ 32, the two's complement of sc - 32 in 6 bits, so that two
 * int16 shifts sign-extend a pair of them (layout at q3_words).
 *
 * Arithmetic per block and row (lane), exact in int32: S_j = sum of q * x
 * over sub-block j by 4 vpdpbusd (|S_j| <= 16 * 7 * 127 for Q3_K; Q2_K's
 * 4x sums <= 4 * 16 * 3 * 127: int16s), then isum = sum_j sc_j * S_j by
 * vpdpwssd against (sc_j, 0) int16 pairs (|isum| <= 16 * 32 * 14224 for
 * Q3_K; Q2_K's pairs are (4 sc, 0) for its 1x sub-blocks, so its isum
 * comes out 4x, <= 4 * 16 * 15 * 6096, and an arithmetic shift by 2
 * divides exactly); Q2_K's
 * msum = sum_j m_j * bsums[j] (<= 16 * 15 * 2032), Q3_K's level offset
 * -4 * sum_j sc_j * bsums[j] (<= 4 * 16 * 32 * 2032) added into isum, both
 * by vpdpwssd on pairs. Then in float, blocks in order, one accumulator
 * per output: acc = fma(cvt(isum), d * x.d, acc), and for Q2_K
 * acc = fnmadd(cvt(msum), dmin * x.d, acc). The same instructions run per
 * lane whatever nx is and wherever the activation row sits among them, so
 * an output's bits depend on neither.
 */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/repack.h"
#include "kernels/cpu/rp_simd.h"
#include "kernels/quant_blocks.h"


/* Unrolls the short loops over registers (see avx512.c's KQ_UNROLL). */
#if defined(__clang__)
#define RP_UNROLL _Pragma("clang loop unroll(full)")
#else
#define RP_UNROLL _Pragma("GCC unroll 16")
#endif

#define R KTX_CPU_RP_ROWS
#define VEC 64 /* bytes of one vector: a 32-bit word per row */

/* Offsets inside a block-group (see the top of the file). */
#define Q2_D 0
#define Q2_DMIN (2 * R)
#define Q2_SC (4 * R)
#define Q2_MIN (Q2_SC + 2 * VEC)
#define Q2_QS (Q2_MIN + 2 * VEC)
#define Q2_BG (Q2_QS + 16 * VEC)
#define Q3_D 0
#define Q3_SC (2 * R)
#define Q3_QS (Q3_SC + 3 * VEC)
#define Q3_HM (Q3_QS + 16 * VEC)
#define Q3_BG (Q3_HM + 8 * VEC)

_Static_assert(Q2_BG == R * sizeof(struct block_q2_K), "Q2_K block-group size");
_Static_assert(Q3_BG == R * sizeof(struct block_q3_K), "Q3_K block-group size");

/* ---- packing: the file's bits into words per row and back ---- */

static inline uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* The 4 x 4 crumb transpose: crumb t of byte b of out[s] = crumb s of byte
 * b of in[t]. Its own inverse. */
static void
crumbs_t4(const uint32_t in[4], uint32_t out[4])
{
	for (int s = 0; s < 4; s++) {
		uint32_t v = 0;

		for (int t = 0; t < 4; t++)
			v |= ((in[t] >> 2 * s) & 0x03030303u) << 2 * t;
		out[s] = v;
	}
}

/*
 * The 64 qs bytes of a Q2_K / Q3_K block (element 128 h + 32 s + l in bits
 * 2 s of byte 32 h + l) and the 16 crumb words of the repacked layout, one
 * per sub-block j: 16-byte chunk c = 2 h + e of qs holds, in crumb s of
 * byte 4 t + b, element 128 h + 32 s + 16 e + 4 t + b, which is element
 * 4 t + b of sub-block j = 8 h + 2 s + e; so the transpose of the chunk's
 * four words gives words j. to_words: qs to words; else words to qs.
 */
static void
crumb_words(uint8_t *qs, uint32_t *words, int to_words)
{
	for (int c = 0; c < 4; c++) {
		uint32_t a[4], b[4];

		for (int k = 0; k < 4; k++)
			a[k] = to_words ? get32(qs + 16 * c + 4 * k) :
			    words[8 * (c / 2) + 2 * k + (c & 1)];
		crumbs_t4(a, b);
		for (int k = 0; k < 4; k++) {
			if (to_words)
				words[8 * (c / 2) + 2 * k + (c & 1)] = b[k];
			else
				put32(qs + 16 * c + 4 * k, b[k]);
		}
	}
}

/* The 8 x 8 bit transpose of x, byte i bit j to byte j bit i (Hacker's
 * Delight, transpose8). Its own inverse. */
static uint64_t
bits_t8(uint64_t x)
{
	uint64_t t;

	t = (x ^ (x >> 7)) & 0x00aa00aa00aa00aaull;
	x ^= t ^ (t << 7);
	t = (x ^ (x >> 14)) & 0x0000cccc0000ccccull;
	x ^= t ^ (t << 14);
	t = (x ^ (x >> 28)) & 0x00000000f0f0f0f0ull;
	x ^= t ^ (t << 28);
	return x;
}

/*
 * Q3_K's 32 hmask bytes (element 128 h + 32 s + l: bit 4 h + s of byte l)
 * and the 8 high-bit words (element 32 u + 16 e + 4 t + b: bit 4 e + t of
 * byte b of word u). With l = 16 e + 4 t + b, bit u of hmask byte l is bit
 * 4 e + t of byte b of word u: for each b, an 8 x 8 transpose of the bytes
 * l (row 4 e + t) into the words' bytes b (row u). to_words as above.
 */
static void
hbit_words(uint8_t *hmask, uint32_t *words, int to_words)
{
	if (to_words)
		memset(words, 0, 8 * sizeof(*words));
	for (int b = 0; b < 4; b++) {
		uint64_t x = 0;

		for (int k = 0; k < 8; k++) {
			uint64_t byte = to_words ? hmask[16 * (k / 4) + 4 * (k % 4) + b] :
			    (words[k] >> 8 * b) & 0xff;

			x |= byte << 8 * k;
		}
		x = bits_t8(x);
		for (int k = 0; k < 8; k++) {
			uint8_t byte = (uint8_t)(x >> 8 * k);

			if (to_words)
				words[k] |= (uint32_t)byte << 8 * b;
			else
				hmask[16 * (k / 4) + 4 * (k % 4) + b] = byte;
		}
	}
}

/*
 * Q2_K regroups the crumb words by sub-block pair p (sub-blocks 2 p, 2 p + 1):
 * its word 2 p + h holds, in crumbs 0..3 of byte b, element 4 (2 h) + b of
 * sub-block 2 p, the same of 2 p + 1, then element 4 (2 h + 1) + b of each.
 * A mask (3 or 0xc) then leaves four levels per row, times 1 or 4, after
 * one shift by 4 for the second pair of crumbs. to_words: crumb words (as
 * crumb_words makes them) to pair words; else back.
 */
static void
q2_pair_words(uint32_t *words, int to_words)
{
	for (int p = 0; p < 8; p++) {
		/* sub-block 2 p + e, crumb s <-> word h, crumb c */
		uint32_t in[2], out[2] = { 0, 0 };

		memcpy(in, words + 2 * p, sizeof(in));
		for (int s = 0; s < 4; s++)
			for (int e = 0; e < 2; e++) {
				int h = s / 2, c = 2 * (s % 2) + e;

				if (to_words)
					out[h] |= ((in[e] >> 2 * s) & 0x03030303u) << 2 * c;
				else
					out[e] |= ((in[h] >> 2 * c) & 0x03030303u) << 2 * s;
			}
		memcpy(words + 2 * p, out, sizeof(out));
	}
}

/* Q2_K's 16 scale bytes (scale low, min high nibble) and its two scale
 * words and two min words (see the top of the file). */
static void
q2_words(uint8_t *scales, uint32_t sc[2], uint32_t mn[2], int to_words)
{
	if (to_words) {
		sc[0] = sc[1] = mn[0] = mn[1] = 0;
		for (int j = 0; j < 16; j++) {
			int p = j / 2;

			sc[j / 8] |= (uint32_t)(scales[j] & 0x0f) << 4 * (j % 8);
			mn[p / 4] |= (uint32_t)(scales[j] >> 4) << (4 * (p % 4) + 16 * (j & 1));
		}
		return;
	}
	for (int j = 0; j < 16; j++) {
		int p = j / 2;

		scales[j] = (uint8_t)(((sc[j / 8] >> 4 * (j % 8)) & 0x0f) |
		    ((mn[p / 4] >> (4 * (p % 4) + 16 * (j & 1))) & 0x0f) << 4);
	}
}

/*
 * Q3_K's 12 scale bytes (scale j: low nibble in byte j, j < 8, or the high
 * nibble of byte j - 8; top two bits at bit 2 (j / 4) of byte 8 + j % 4)
 * and three words holding v_j = sc_j ^ 32 in their int16 halves:
 *   word 0: v0, v2 at bits 0, 6 of the low half, v1, v3 of the high half;
 *           the low 4 bits of v12 (low) and v13 (high) at bits 12
 *   word 1: likewise v4, v6 / v5, v7, the low bits of v14 / v15
 *   word 2: v8, v10 / v9, v11; the top 2 bits of v12 / v13 at bits 12,
 *           of v14 / v15 at bits 14
 * so that pair p = (v_2p, v_2p+1) is a field of each half.
 */
static void
q3_words(uint8_t *scales, uint32_t w[3], int to_words)
{
	uint32_t v[16];

	if (to_words) {
		for (int j = 0; j < 16; j++) {
			uint32_t lo = j < 8 ? scales[j] & 0x0f : scales[j - 8] >> 4;
			uint32_t hi = (scales[8 + j % 4] >> 2 * (j / 4)) & 3;

			v[j] = (lo | hi << 4) ^ 32;
		}
		w[0] = w[1] = w[2] = 0;
		for (int j = 0; j < 12; j++) /* pair j / 2 in word j / 4 */
			w[j / 4] |= v[j] << (16 * (j & 1) + 6 * ((j / 2) & 1));
		for (int j = 12; j < 16; j++) {
			w[(j / 2) & 1] |= (v[j] & 0x0f) << (16 * (j & 1) + 12);
			w[2] |= (v[j] >> 4) << (16 * (j & 1) + 12 + 2 * ((j / 2) & 1));
		}
		return;
	}
	for (int j = 0; j < 12; j++)
		v[j] = (w[j / 4] >> (16 * (j & 1) + 6 * ((j / 2) & 1))) & 0x3f;
	for (int j = 12; j < 16; j++)
		v[j] = ((w[(j / 2) & 1] >> (16 * (j & 1) + 12)) & 0x0f) |
		    ((w[2] >> (16 * (j & 1) + 12 + 2 * ((j / 2) & 1))) & 3) << 4;
	memset(scales, 0, 12);
	for (int j = 0; j < 16; j++) {
		uint32_t sc = v[j] ^ 32;

		scales[j < 8 ? j : j - 8] |= (uint8_t)((sc & 0x0f) << (j < 8 ? 0 : 4));
		scales[8 + j % 4] |= (uint8_t)((sc >> 4) << 2 * (j / 4));
	}
}

/* Loads word k of row r from vector k at src. */
static void
get_words(const uint8_t *src, int r, uint32_t *words, int nw)
{
	for (int k = 0; k < nw; k++)
		words[k] = get32(src + VEC * k + 4 * r);
}

/*
 * Packing runs on all sixteen rows of a block-group at once: word m of
 * each row's block is staged as lane r of vector m (a 16 x nw transpose
 * through memory), and the same shifts and masks as above then make all
 * sixteen words of an output vector in one operation. The scalar helpers
 * stay for unpack, which wants a single row.
 */
typedef uint32_t vu32 __attribute__((vector_size(VEC)));

/* The most words staged per block: Q3_K's hmask, qs and scales. */
#define STAGE_MAX 27

/* Word m of each row's block at byte off into lane r of v[m], m < nw
 * (nw <= STAGE_MAX). */
static inline void
stage_words(const uint8_t *rows, size_t row_bytes, size_t off, int nw, vu32 *v)
{
	uint32_t t[STAGE_MAX][R];

	for (int r = 0; r < R; r++)
		for (int m = 0; m < nw; m++)
			t[m][r] = get32(rows + (size_t)r * row_bytes + off + 4 * (size_t)m);
	for (int m = 0; m < nw; m++)
		memcpy(&v[m], t[m], VEC);
}

static inline void
store_vecs(uint8_t *dst, const vu32 *v, int nv)
{
	for (int k = 0; k < nv; k++)
		memcpy(dst + VEC * k, &v[k], VEC);
}

/* Swaps the bits under mask << d of *a with those under mask of *b (a
 * delta swap; mask and mask << d must not overlap). */
static inline void
swap_bits(vu32 *a, vu32 *b, int d, uint32_t mask)
{
	vu32 t = ((*a >> d) ^ *b) & mask;

	*b ^= t;
	*a ^= t << d;
}

/* crumb_words(to_words) on sixteen rows: qs words in, crumb words out. The
 * 4 x 4 crumb transpose of crumbs_t4 as two rounds of swaps. */
static inline void
crumb_vecs(const vu32 *qs, vu32 *words)
{
	for (int c = 0; c < 4; c++) {
		vu32 a[4] = { qs[4 * c], qs[4 * c + 1], qs[4 * c + 2], qs[4 * c + 3] };

		swap_bits(&a[0], &a[2], 4, 0x0f0f0f0fu);
		swap_bits(&a[1], &a[3], 4, 0x0f0f0f0fu);
		swap_bits(&a[0], &a[1], 2, 0x33333333u);
		swap_bits(&a[2], &a[3], 2, 0x33333333u);
		for (int k = 0; k < 4; k++)
			words[8 * (c / 2) + 2 * k + (c & 1)] = a[k];
	}
}

/* q2_pair_words(to_words) on sixteen rows: word 2 p + h takes crumbs
 * 2 h and 2 h + 1 of both sub-blocks 2 p + e, interleaved by e. A nibble
 * swap between the pair's two words gathers each word's four crumbs, and
 * exchanging crumbs 1 and 2 of every byte puts them in order. */
static inline void
q2_pair_vecs(vu32 *w)
{
	for (int p = 0; p < 8; p++) {
		vu32 a = w[2 * p], b = w[2 * p + 1];

		/* a: crumbs a0 a1 a2 a3, b: b0 b1 b2 b3 (sub-blocks 2 p, 2 p + 1)
		 * out[0] = a0 b0 a1 b1, out[1] = a2 b2 a3 b3 */
		swap_bits(&a, &b, 4, 0x0f0f0f0fu); /* a: a0 a1 b0 b1, b: a2 a3 b2 b3 */
		w[2 * p] = (a & 0xc3c3c3c3u) | ((a >> 2) & 0x0c0c0c0cu) |
		    ((a << 2) & 0x30303030u);
		w[2 * p + 1] = (b & 0xc3c3c3c3u) | ((b >> 2) & 0x0c0c0c0cu) |
		    ((b << 2) & 0x30303030u);
	}
}

/* Low nibbles of the four bytes of s, packed into bits 0..15. */
static inline vu32
lo_nibbles(vu32 s)
{
	vu32 x = s & 0x0f0f0f0fu;

	x = (x | x >> 4) & 0x00ff00ffu;
	return (x | x >> 8) & 0xffffu;
}

/* q2_words(to_words) on sixteen rows, from the four scale-byte words. */
static inline void
q2_vecs(const vu32 *s, vu32 *sc, vu32 *mn)
{
	for (int w = 0; w < 2; w++) {
		/* high nibbles h0..h3 of a word: h0 | h2 << 4 in bits 0..7 of
		 * z, h1 | h3 << 4 in bits 8..15 (even, odd sub-blocks) */
		vu32 ya = (s[2 * w] >> 4) & 0x0f0f0f0fu, yb = (s[2 * w + 1] >> 4) & 0x0f0f0f0fu;
		vu32 za = ya | ya >> 12, zb = yb | yb >> 12;

		sc[w] = lo_nibbles(s[2 * w]) | lo_nibbles(s[2 * w + 1]) << 16;
		mn[w] = (za & 0xffu) | (zb & 0xffu) << 8 | (za & 0xff00u) << 8 |
		    (zb & 0xff00u) << 16;
	}
}

static void
pack_q2_K(int64_t n, const uint8_t *rows, size_t row_bytes, uint8_t *group)
{
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint8_t *bg = group + (size_t)i * Q2_BG;
		size_t off = (size_t)i * sizeof(struct block_q2_K);
		vu32 v[20], q[16], sc[2], mn[2];

		/* words 0..3 scales, 4..19 qs; d and dmin after them */
		stage_words(rows, row_bytes, off, 20, v);
		for (int r = 0; r < R; r++) {
			const uint8_t *a = rows + (size_t)r * row_bytes + off;

			memcpy(bg + Q2_D + 2 * r, a + offsetof(struct block_q2_K, d), 2);
			memcpy(bg + Q2_DMIN + 2 * r, a + offsetof(struct block_q2_K, dmin), 2);
		}
		q2_vecs(v, sc, mn);
		store_vecs(bg + Q2_SC, sc, 2);
		store_vecs(bg + Q2_MIN, mn, 2);
		crumb_vecs(v + 4, q);
		q2_pair_vecs(q);
		store_vecs(bg + Q2_QS, q, 16);
	}
}

static void
unpack_q2_K(int64_t n, const uint8_t *group, int r, uint8_t *row)
{
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *bg = group + (size_t)i * Q2_BG;
		struct block_q2_K a;
		uint32_t q[16], sc[2], mn[2];

		memcpy(&a.d, bg + Q2_D + 2 * r, 2);
		memcpy(&a.dmin, bg + Q2_DMIN + 2 * r, 2);
		get_words(bg + Q2_SC, r, sc, 2);
		get_words(bg + Q2_MIN, r, mn, 2);
		q2_words(a.scales, sc, mn, 0);
		get_words(bg + Q2_QS, r, q, 16);
		q2_pair_words(q, 0);
		crumb_words(a.qs, q, 0);
		memcpy(row + (size_t)i * sizeof(a), &a, sizeof(a));
	}
}

/* hbit_words(to_words) on sixteen rows: bit j of byte b of word k is bit
 * k of byte b of hmask word j, an 8 x 8 bit transpose per byte of the
 * eight words, in three rounds of swaps. */
static inline void
hbit_vecs(vu32 *h)
{
	static const uint32_t mask[3] = { 0x0f0f0f0fu, 0x33333333u, 0x55555555u };

	for (int l = 0, d = 4; d > 0; l++, d /= 2)
		for (int k = 0; k < 8; k++)
			if (!(k & d))
				swap_bits(&h[k], &h[k + d], d, mask[l]);
}

/* Byte n of the scale bytes staged in s. */
static inline vu32
sbyte(const vu32 *s, int n)
{
	return (s[n / 4] >> 8 * (n % 4)) & 0xffu;
}

/* q3_words(to_words) on sixteen rows, from the three scale-byte words. */
static inline void
q3_vecs(const vu32 *s, vu32 *w)
{
	vu32 v[16];

	for (int j = 0; j < 16; j++) {
		vu32 lo = j < 8 ? sbyte(s, j) & 0x0fu : sbyte(s, j - 8) >> 4;
		vu32 hi = (sbyte(s, 8 + j % 4) >> 2 * (j / 4)) & 3u;

		v[j] = (lo | hi << 4) ^ 32u;
	}
	w[0] = w[1] = w[2] = (vu32){ 0 };
	for (int j = 0; j < 12; j++)
		w[j / 4] |= v[j] << (16 * (j & 1) + 6 * ((j / 2) & 1));
	for (int j = 12; j < 16; j++) {
		w[(j / 2) & 1] |= (v[j] & 0x0fu) << (16 * (j & 1) + 12);
		w[2] |= (v[j] >> 4) << (16 * (j & 1) + 12 + 2 * ((j / 2) & 1));
	}
}

static void
pack_q3_K(int64_t n, const uint8_t *rows, size_t row_bytes, uint8_t *group)
{
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint8_t *bg = group + (size_t)i * Q3_BG;
		size_t off = (size_t)i * sizeof(struct block_q3_K);
		vu32 v[27], q[16], sc[3];

		/* words 0..7 hmask, 8..23 qs, 24..26 scales; d, the block's last
		 * two bytes, is copied alone so as not to read past the row */
		stage_words(rows, row_bytes, off, 27, v);
		for (int r = 0; r < R; r++)
			memcpy(bg + Q3_D + 2 * r, rows + (size_t)r * row_bytes + off +
			    offsetof(struct block_q3_K, d), 2);
		q3_vecs(v + 24, sc);
		store_vecs(bg + Q3_SC, sc, 3);
		crumb_vecs(v + 8, q);
		store_vecs(bg + Q3_QS, q, 16);
		hbit_vecs(v);
		store_vecs(bg + Q3_HM, v, 8);
	}
}

static void
unpack_q3_K(int64_t n, const uint8_t *group, int r, uint8_t *row)
{
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *bg = group + (size_t)i * Q3_BG;
		struct block_q3_K a;
		uint32_t q[16], h[8], sc[3];

		memcpy(&a.d, bg + Q3_D + 2 * r, 2);
		get_words(bg + Q3_SC, r, sc, 3);
		q3_words(a.scales, sc, 0);
		get_words(bg + Q3_QS, r, q, 16);
		crumb_words(a.qs, q, 0);
		get_words(bg + Q3_HM, r, h, 8);
		hbit_words(a.hmask, h, 0);
		memcpy(row + (size_t)i * sizeof(a), &a, sizeof(a));
	}
}

/* ---- the kernels ---- */

static inline __m512i
ld(const uint8_t *p)
{
	return _mm512_loadu_si512(p);
}

/* Four activation bytes (or two bsums) at p in every lane. */
static inline __m512i
bc4(const void *p)
{
	int32_t v;

	memcpy(&v, p, sizeof(v));
	return _mm512_set1_epi32(v);
}

/* The Q8_K block i of activation row t. */
static inline const struct block_q8_K *
xblock(const void *x, size_t xs, int t, int64_t i)
{
	return (const struct block_q8_K *)((const uint8_t *)x + (size_t)t * xs) + i;
}

/* Block-groups ahead that a kernel asks the cache for. Its own loads go
 * back and forth inside a block-group, which the hardware prefetchers
 * follow poorly from DRAM. Past the group's end the prefetches touch the
 * next group (the driver's next call) or nothing: a prefetch never faults. */
#define PF_AHEAD 4

/* Prefetches the block-group bg bytes long at p. */
static ALWAYS_INLINE void
prefetch_bg(const uint8_t *p, int bg)
{
	RP_UNROLL
	for (int l = 0; l < bg; l += VEC)
		_mm_prefetch((const char *)p + l, _MM_HINT_T0);
}

/* S_j of sub-block j for one activation row: levels q[0..3] (four
 * consecutive elements per lane each) against xq[0..15]. */
static ALWAYS_INLINE __m512i
sub_sum(const __m512i *q, const int8_t *xq)
{
	__m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], bc4(xq));

	s = _mm512_dpbusd_epi32(s, q[1], bc4(xq + 4));
	s = _mm512_dpbusd_epi32(s, q[2], bc4(xq + 8));
	return _mm512_dpbusd_epi32(s, q[3], bc4(xq + 12));
}

/* Sub-blocks j (even) and j + 1 go to two accumulators per activation row
 * (isum[t], isum[CPU_RP_NX + t]) when few rows leave the dependency chain
 * of vpdpwssd exposed; summed in int32 at the end, exactly. */
#define SPLIT(nx) ((nx) <= 4)

static ALWAYS_INLINE void
gemm_q2_K_n(const int nx, int64_t n, const uint8_t *g, const void *x, size_t xs, float *out)
{
	const __m512i m3 = _mm512_set1_epi8(3), m12 = _mm512_set1_epi8(0x0c);
	const __m512i m15 = _mm512_set1_epi32(0x0f), m60 = _mm512_set1_epi32(0x3c);
	const __m512i m15p = _mm512_set1_epi32(0x000f000f);
	__m512 acc[CPU_RP_NX];

	RP_UNROLL
	for (int t = 0; t < nx; t++)
		acc[t] = _mm512_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++, g += Q2_BG) {
		__m512i isum[2 * CPU_RP_NX];
		const __m512i scw[2] = { ld(g + Q2_SC), ld(g + Q2_SC + VEC) };
		const __m512i mnw[2] = { ld(g + Q2_MIN), ld(g + Q2_MIN + VEC) };
		__m512i mp[8]; /* min pairs (m_2p, m_2p+1) */
		__m512 d, dm;

		prefetch_bg(g + PF_AHEAD * Q2_BG, Q2_BG);

		RP_UNROLL
		for (int t = 0; t < nx; t++)
			isum[t] = isum[CPU_RP_NX + t] = _mm512_setzero_si512();
		RP_UNROLL
		for (int p = 0; p < 8; p++) {
			/* sub-block 2 p at 1x, 2 p + 1 at 4x its levels (q2_pair_words);
			 * so scale pairs (4 sc, 0) and (sc, 0): isum gets 4x */
			const __m512i sw = scw[p / 4];
			__m512i q0[4], q1[4];
			__m512i sc0 = _mm512_and_si512(p % 4 ?
			    _mm512_srli_epi32(sw, 8 * (p % 4) - 2) : _mm512_slli_epi32(sw, 2), m60);
			__m512i sc1 = _mm512_and_si512(_mm512_srli_epi32(sw, 8 * (p % 4) + 4), m15);

			RP_UNROLL
			for (int h = 0; h < 2; h++) {
				__m512i w = ld(g + Q2_QS + VEC * (2 * p + h));
				__m512i w4 = _mm512_srli_epi32(w, 4);

				q0[2 * h] = _mm512_and_si512(w, m3);
				q1[2 * h] = _mm512_and_si512(w, m12);
				q0[2 * h + 1] = _mm512_and_si512(w4, m3);
				q1[2 * h + 1] = _mm512_and_si512(w4, m12);
			}
			RP_UNROLL
			for (int t = 0; t < nx; t++) {
				const int8_t *xq = xblock(x, xs, t, i)->qs + 32 * p;

				isum[t] = _mm512_dpwssd_epi32(isum[t], sub_sum(q0, xq), sc0);
				isum[SPLIT(nx) ? CPU_RP_NX + t : t] = _mm512_dpwssd_epi32(
				    isum[SPLIT(nx) ? CPU_RP_NX + t : t], sub_sum(q1, xq + 16), sc1);
			}
		}
		RP_UNROLL
		for (int p = 0; p < 8; p++)
			mp[p] = _mm512_and_si512(_mm512_srli_epi32(mnw[p / 4], 4 * (p % 4)), m15p);
		d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + Q2_D)));
		dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + Q2_DMIN)));
		RP_UNROLL
		for (int t = 0; t < nx; t++) {
			const struct block_q8_K *b = xblock(x, xs, t, i);
			__m512 xd = _mm512_set1_ps(b->d);
			__m512i is = _mm512_srai_epi32(SPLIT(nx) ? _mm512_add_epi32(isum[t],
			    isum[CPU_RP_NX + t]) : isum[t], 2);
			__m512i ms = _mm512_setzero_si512();

			RP_UNROLL
			for (int p = 0; p < 8; p++)
				ms = _mm512_dpwssd_epi32(ms, mp[p], bc4(b->bsums + 2 * p));
			acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(d, xd),
			    acc[t]);
			acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(dm, xd),
			    acc[t]);
		}
	}
	RP_UNROLL
	for (int t = 0; t < nx; t++)
		_mm512_storeu_ps(out + R * t, acc[t]);
}

/* Q3_K's scale pair p, (v_2p, v_2p+1) sign-extended to int16 (= sc - 32),
 * from its three scale words (layout at q3_words). */
static ALWAYS_INLINE __m512i
q3_pair(const __m512i *w, int p)
{
	if (p < 6) /* the field at bit 6 (p & 1) of word p / 2 */
		return _mm512_srai_epi16(_mm512_slli_epi16(w[p / 2], 10 - 6 * (p & 1)), 10);
	/* low 4 bits at 12 of word p - 6, top 2 at 12 + 2 (p - 6) of word 2:
	 * bits 10..13 from the first, 14..15 from the second (0xe4: C ? A : B) */
	return _mm512_srai_epi16(_mm512_ternarylogic_epi32(
	    _mm512_srli_epi16(w[p - 6], 2), _mm512_slli_epi16(w[2], p == 6 ? 2 : 0),
	    _mm512_set1_epi16(0x3c00), 0xe4), 10);
}

static ALWAYS_INLINE void
gemm_q3_K_n(const int nx, int64_t n, const uint8_t *g, const void *x, size_t xs, float *out)
{
	const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
	const __m512i lo16 = _mm512_set1_epi32(0xffff);
	__m512 acc[CPU_RP_NX];

	RP_UNROLL
	for (int t = 0; t < nx; t++)
		acc[t] = _mm512_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++, g += Q3_BG) {
		__m512i isum[2 * CPU_RP_NX];
		const __m512i scw[3] = { ld(g + Q3_SC), ld(g + Q3_SC + VEC),
			ld(g + Q3_SC + 2 * VEC) };
		__m512 d;

		prefetch_bg(g + PF_AHEAD * Q3_BG, Q3_BG);

		RP_UNROLL
		for (int t = 0; t < nx; t++)
			isum[t] = isum[CPU_RP_NX + t] = _mm512_setzero_si512();
		RP_UNROLL
		for (int p = 0; p < 8; p++) {
			__m512i pr = q3_pair(scw, p);
			/* -4 (sc - 32) pairs against the bsums: the level offset */
			__m512i off = _mm512_sub_epi16(_mm512_setzero_si512(),
			    _mm512_slli_epi16(pr, 2));
			__m512i hw = ld(g + Q3_HM + VEC * p);

			RP_UNROLL
			for (int e = 0; e < 2; e++) {
				int j = 2 * p + e, o = SPLIT(nx) && e ? CPU_RP_NX : 0;
				__m512i w = ld(g + Q3_QS + VEC * j), q[4];
				__m512i sc = e ? _mm512_srli_epi32(pr, 16) :
				    _mm512_and_si512(pr, lo16);

				RP_UNROLL
				for (int s = 0; s < 4; s++) {
					__m512i c = _mm512_and_si512(_mm512_srli_epi32(w, 2 * s),
					    m3);
					__mmask64 hi = _mm512_test_epi8_mask(hw,
					    _mm512_set1_epi8((char)(1 << (4 * e + s))));

					q[s] = _mm512_mask_add_epi8(c, hi, c, four);
				}
				RP_UNROLL
				for (int t = 0; t < nx; t++)
					isum[o + t] = _mm512_dpwssd_epi32(isum[o + t],
					    sub_sum(q, xblock(x, xs, t, i)->qs + 16 * j), sc);
			}
			RP_UNROLL
			for (int t = 0; t < nx; t++)
				isum[t] = _mm512_dpwssd_epi32(isum[t], off,
				    bc4(xblock(x, xs, t, i)->bsums + 2 * p));
		}
		d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + Q3_D)));
		RP_UNROLL
		for (int t = 0; t < nx; t++) {
			__m512i is = SPLIT(nx) ? _mm512_add_epi32(isum[t], isum[CPU_RP_NX + t]) :
			    isum[t];

			acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is),
			    _mm512_mul_ps(d, _mm512_set1_ps(xblock(x, xs, t, i)->d)), acc[t]);
		}
	}
	RP_UNROLL
	for (int t = 0; t < nx; t++)
		_mm512_storeu_ps(out + R * t, acc[t]);
}


static void
gemm_q2_K(int64_t n, const uint8_t *group, const void *x, size_t x_stride, int nx, float *out)
{
	CPU_NX_SWITCH(nx, gemm_q2_K_n, n, group, x, x_stride, out)
}

static void
gemm_q3_K(int64_t n, const uint8_t *group, const void *x, size_t x_stride, int nx, float *out)
{
	CPU_NX_SWITCH(nx, gemm_q3_K_n, n, group, x, x_stride, out)
}

const struct cpu_rp_ops cpu_rp_q2_K = {
	sizeof(struct block_q2_K), pack_q2_K, unpack_q2_K, gemm_q2_K
};

const struct cpu_rp_ops cpu_rp_q3_K = {
	sizeof(struct block_q3_K), pack_q3_K, unpack_q3_K, gemm_q3_K
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
