/*
 * mkmodel_fill.c - seeded random tensor contents for ktx-mkmodel.
 *
 * Every value is a pure function of (seed, tensor name, element or byte
 * index): the stream is splitmix64 at that position. So the output does not
 * depend on the thread count or on the order tensors are made in, and the
 * work splits into independent chunks.
 *
 * Two ways to make a quantized tensor:
 *   - quantize random floats with ktx_quantize (exact model of "a real
 *     weight, quantized"; slow for the K- and IQ-quants on big tensors);
 *   - random blocks: random bytes for the quants, then valid scales written
 *     over them, chosen so the dequantized values have the same spread as the
 *     float path. Gigabytes per second, which is what makes a DeepSeek-V3
 *     sized file in seconds. The scale for a type is calibrated once by
 *     dequantizing blocks whose scales are 1.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"
#include "kernels/quant_blocks.h"
#include "tools/mkmodel.h"

/* Elements (float path) or blocks (block path) per unit of parallel work. */
#define FLOAT_CHUNK (1 << 16)
#define BLOCK_CHUNK 4096

/* splitmix64's output function (Steele, Lea, Flood 2014). */
static inline uint64_t
mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The i-th value of the stream key. */
static inline uint64_t
rand_at(uint64_t key, uint64_t i)
{
	return mix(key + (i + 1) * 0x9e3779b97f4a7c15ULL);
}

uint64_t
mk_key(uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return mix(seed ^ mix(h));
}

/* A standard normal value from one 64-bit draw (Box-Muller). */
static inline float
normal_at(uint64_t key, uint64_t i)
{
	uint64_t r = rand_at(key, i);
	double u1 = ((double)(r >> 40) + 0.5) / 16777216.0;
	double u2 = (double)(r & 0xffffff) / 16777216.0;

	return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* The spread the job's distribution asks for. */
static float
job_sigma(const struct mk_tensor_job *j)
{
	switch (j->dist) {
	case MK_DIST_WEIGHT: return 1.0f / sqrtf((float)j->ne0);
	case MK_DIST_EMBD: return 1.0f;
	case MK_DIST_NORM: case MK_DIST_BIAS: return 0.1f;
	}
	return 1.0f;
}

/* Produces n float values starting at element first. */
static void
gen_floats(const struct mk_tensor_job *j, uint64_t first, int64_t n, float *out)
{
	float sigma = job_sigma(j), base = j->dist == MK_DIST_NORM ? 1.0f : 0.0f;

	for (int64_t k = 0; k < n; k++)
		out[k] = base + sigma * normal_at(j->key, first + (uint64_t)k);
}

/* Float path: draw rows of floats and convert them chunk by chunk. */
static int
fill_floats(const struct mk_tensor_job *j, uint8_t *dst, uint64_t nbytes, struct ktx_err *err)
{
	uint64_t rb = ktx_type_row_bytes(j->type, j->ne0);
	int64_t rows = (int64_t)(nbytes / rb);
	int64_t per = j->ne0 >= FLOAT_CHUNK ? 1 : FLOAT_CHUNK / j->ne0;
	int64_t nchunks = (rows + per - 1) / per;
	int rc = 0;

#pragma omp parallel for schedule(dynamic) if (nchunks > 4)
	for (int64_t c = 0; c < nchunks; c++) {
		int64_t r0 = c * per, nr = rows - r0 < per ? rows - r0 : per;
		float *buf = malloc((size_t)(nr * j->ne0) * sizeof(float));
		struct ktx_err e;
		int r;

		if (buf == NULL) {
			r = ktx_err_set(&e, KTX_ENOMEM, "out of memory");
		} else {
			gen_floats(j, (uint64_t)r0 * (uint64_t)j->ne0, nr * j->ne0, buf);
			r = ktx_quantize(j->type, buf, dst + (uint64_t)r0 * rb, nr * j->ne0, &e);
		}
		free(buf);
		if (r != 0) {
#pragma omp critical
			{
				if (rc == 0) {
					rc = r;
					*err = e;
				}
			}
		}
	}
	return rc;
}

/* Where a block type keeps its fp16 scales. With a min scale, values are
 * d * sc * q - dmin * m (K-quants) or d * q + m (Q4_1, Q5_1); dmin = d times
 * the mean q (negated for the second form) centres them on zero. */
struct scale_pos {
	enum ktx_type type;
	int d, dmin;      /* byte offsets; -1: none (IQ1_M spreads its scale) */
	float dmin_ratio; /* dmin / d */
};

static const struct scale_pos scale_pos[] = {
	{ KTX_TYPE_Q4_0, offsetof(struct block_q4_0, d), -1, 0 },
	{ KTX_TYPE_Q4_1, offsetof(struct block_q4_1, d), offsetof(struct block_q4_1, m), -7.5f },
	{ KTX_TYPE_Q5_0, offsetof(struct block_q5_0, d), -1, 0 },
	{ KTX_TYPE_Q5_1, offsetof(struct block_q5_1, d), offsetof(struct block_q5_1, m), -15.5f },
	{ KTX_TYPE_Q8_0, offsetof(struct block_q8_0, d), -1, 0 },
	{ KTX_TYPE_IQ4_NL, offsetof(struct block_iq4_nl, d), -1, 0 },
	{ KTX_TYPE_Q2_K, offsetof(struct block_q2_K, d), offsetof(struct block_q2_K, dmin), 1.5f },
	{ KTX_TYPE_Q3_K, offsetof(struct block_q3_K, d), -1, 0 },
	{ KTX_TYPE_Q4_K, offsetof(struct block_q4_K, d), offsetof(struct block_q4_K, dmin), 7.5f },
	{ KTX_TYPE_Q5_K, offsetof(struct block_q5_K, d), offsetof(struct block_q5_K, dmin), 15.5f },
	{ KTX_TYPE_Q6_K, offsetof(struct block_q6_K, d), -1, 0 },
	{ KTX_TYPE_IQ2_XXS, offsetof(struct block_iq2_xxs, d), -1, 0 },
	{ KTX_TYPE_IQ2_XS, offsetof(struct block_iq2_xs, d), -1, 0 },
	{ KTX_TYPE_IQ3_XXS, offsetof(struct block_iq3_xxs, d), -1, 0 },
	{ KTX_TYPE_IQ3_S, offsetof(struct block_iq3_s, d), -1, 0 },
	{ KTX_TYPE_IQ2_S, offsetof(struct block_iq2_s, d), -1, 0 },
	{ KTX_TYPE_IQ1_S, offsetof(struct block_iq1_s, d), -1, 0 },
	{ KTX_TYPE_IQ1_M, -1, -1, 0 },
	{ KTX_TYPE_IQ4_XS, offsetof(struct block_iq4_xs, d), -1, 0 },
};

static const struct scale_pos *
find_scale_pos(enum ktx_type t)
{
	for (size_t i = 0; i < sizeof(scale_pos) / sizeof(scale_pos[0]); i++)
		if (scale_pos[i].type == t)
			return &scale_pos[i];
	return NULL;
}

bool
mk_can_fill_blocks(enum ktx_type t)
{
	const struct ktx_type_traits *tr = ktx_type_traits(t);

	return find_scale_pos(t) != NULL && tr != NULL && tr->can_dequantize;
}

static uint16_t
to_fp16(float f)
{
	uint16_t h = 0;

	ktx_quantize(KTX_TYPE_F16, &f, &h, 1, NULL);
	return h;
}

/* Writes the fp16 scale bits h (and hmin, for types with a min scale). */
static void
put_scale(const struct scale_pos *sp, uint8_t *b, uint16_t h, uint16_t hmin)
{
	if (sp->d >= 0) {
		memcpy(b + sp->d, &h, 2);
		if (sp->dmin >= 0)
			memcpy(b + sp->dmin, &hmin, 2);
		return;
	}
	/* IQ1_M: nibble k of the scale is the top nibble of scale word k. */
	for (int k = 0; k < 4; k++) {
		uint16_t w;

		memcpy(&w, b + offsetof(struct block_iq1_m, scales) + 2 * k, 2);
		w = (uint16_t)((w & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
		memcpy(b + offsetof(struct block_iq1_m, scales) + 2 * k, &w, 2);
	}
}

/* Random bytes for blocks [b0, b0 + nb) of a tensor, scales not yet set:
 * byte k of the tensor is byte k % 8 of the stream's value k / 8. */
static void
random_blocks(uint64_t key, size_t bb, uint64_t b0, uint64_t nb, uint8_t *out)
{
	uint64_t byte0 = b0 * bb, len = nb * bb, w = byte0 / 8, at = 0, r;
	unsigned skip = (unsigned)(byte0 % 8);

	if (skip != 0) {
		r = rand_at(key, w++);
		at = 8 - skip < len ? 8 - skip : len;
		memcpy(out, (const uint8_t *)&r + skip, at);
	}
	for (; at + 8 <= len; at += 8) {
		r = rand_at(key, w++);
		memcpy(out + at, &r, 8);
	}
	if (at < len) {
		r = rand_at(key, w);
		memcpy(out + at, &r, len - at);
	}
}

/* RMS of the values of random blocks of type t whose scales are 1. */
static double
calibrate(enum ktx_type t, const struct scale_pos *sp, struct ktx_err *err)
{
	const struct ktx_type_traits *tr = ktx_type_traits(t);
	enum { NB = 64 };
	uint8_t *blk = malloc(NB * tr->block_bytes);
	float *val = malloc((size_t)(NB * tr->block_elems) * sizeof(float));
	double ss = 0;
	int rc = KTX_ENOMEM;

	if (blk != NULL && val != NULL) {
		random_blocks(0x6b74782d63616c69ULL ^ (uint64_t)t, tr->block_bytes, 0, NB, blk);
		for (int b = 0; b < NB; b++)
			put_scale(sp, blk + (size_t)b * tr->block_bytes, to_fp16(1.0f),
			    to_fp16(sp->dmin_ratio));
		rc = ktx_dequantize(t, blk, val, NB * tr->block_elems, err);
		for (int64_t i = 0; rc == 0 && i < NB * tr->block_elems; i++)
			ss += (double)val[i] * val[i];
	}
	free(blk);
	free(val);
	if (rc != 0)
		return -1;
	return sqrt(ss / (double)(NB * tr->block_elems));
}

/* Block path: random quants, then scales drawn around sigma / rms. */
static int
fill_blocks(const struct mk_tensor_job *j, uint8_t *dst, uint64_t nbytes, struct ktx_err *err)
{
	const struct ktx_type_traits *tr = ktx_type_traits(j->type);
	const struct scale_pos *sp = find_scale_pos(j->type);
	uint64_t nblocks = nbytes / tr->block_bytes;
	int64_t nchunks = (int64_t)((nblocks + BLOCK_CHUNK - 1) / BLOCK_CHUNK);
	double rms = calibrate(j->type, sp, err);
	uint16_t tab[256][2]; /* fp16 d and dmin of each jitter step */

	if (rms < 0)
		return err->code;
	if (!(rms > 0))
		return ktx_err_set(err, KTX_EINVAL, "random %s blocks dequantize to zeros", tr->name);
	/* Each block's scale varies by +-25%, as real blocks do; converting 256
	 * steps once keeps fp16 rounding out of the per-block loop. */
	for (int k = 0; k < 256; k++) {
		float d = (float)(job_sigma(j) / rms) * (0.75f + 0.5f * ((float)k + 0.5f) / 256.0f);

		tab[k][0] = to_fp16(d);
		tab[k][1] = to_fp16(d * sp->dmin_ratio);
	}
#pragma omp parallel for schedule(dynamic) if (nchunks > 4)
	for (int64_t c = 0; c < nchunks; c++) {
		uint64_t b0 = (uint64_t)c * BLOCK_CHUNK;
		uint64_t nb = nblocks - b0 < BLOCK_CHUNK ? nblocks - b0 : BLOCK_CHUNK;
		uint8_t *out = dst + b0 * tr->block_bytes;

		random_blocks(j->key, tr->block_bytes, b0, nb, out);
		for (uint64_t b = 0; b < nb; b++) {
			const uint16_t *h = tab[rand_at(~j->key, b0 + b) >> 56];

			put_scale(sp, out + b * tr->block_bytes, h[0], h[1]);
		}
	}
	return 0;
}

int
mk_fill_tensor(void *job, void *dst, uint64_t nbytes, struct ktx_err *err)
{
	const struct mk_tensor_job *j = job;

	if (j->blocks)
		return fill_blocks(j, dst, nbytes, err);
	return fill_floats(j, dst, nbytes, err);
}
