/*
 * sampler.c - choosing the next token from logits.
 *
 * The chain, in llama.cpp's default order: repetition penalty, then either
 * argmax (temperature 0) or top-k, top-p and min-p on the temperature-1
 * probabilities, then temperature, then a draw from a seeded xoshiro256**
 * generator. The same seed and logits give the same tokens on every
 * machine; ties between equal logits go to the lower id.
 */
#include "engine/ktx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ref/ops.h"

struct cand {
	int32_t id;
	float logit;
	double p;
};

struct ktx_sampler {
	struct ktx_sampler_params p;
	uint64_t rng[4];
	struct cand *cands;
	float *logits;
	uint8_t *seen;        /* [n_vocab]: ids already penalized this call */
	uint32_t cap;
};

void
ktx_sampler_params_default(struct ktx_sampler_params *p)
{
	memset(p, 0, sizeof(*p));
	p->temperature = 0.6f;
	p->top_k = 0;
	p->top_p = 0.95f;
	p->min_p = 0.0f;
	p->repeat_penalty = 1.0f;
	p->repeat_last_n = 64;
	p->seed = 0;
}

/* splitmix64: spreads a seed over the generator's state. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna, https://prng.di.unimi.it/). */
static uint64_t
next_u64(uint64_t *s)
{
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* A uniform double in [0, 1) from the top 53 bits. */
static double
next_unit(uint64_t *s)
{
	return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

struct ktx_sampler *
ktx_sampler_new(const struct ktx_sampler_params *p)
{
	struct ktx_sampler *s = calloc(1, sizeof(*s));
	uint64_t x;
	int i;

	if (s == NULL)
		return NULL;
	s->p = *p;
	x = p->seed;
	for (i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	return s;
}

void
ktx_sampler_free(struct ktx_sampler *s)
{
	if (s == NULL)
		return;
	free(s->cands);
	free(s->logits);
	free(s->seen);
	free(s);
}

/* Descending by logit, then ascending by id: a total order. */
static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* CTRL's repetition penalty as llama.cpp applies it: every distinct id of
 * the last repeat_last_n tokens has its logit divided by the penalty when
 * positive, multiplied when negative. seen[n_vocab] is all zero on entry
 * and on return. */
static void
penalize(const struct ktx_sampler_params *p, float *logits, uint8_t *seen, uint32_t n_vocab,
    const int32_t *history, size_t n_history)
{
	size_t i, from;

	if (p->repeat_penalty == 1.0f || p->repeat_last_n <= 0 || history == NULL)
		return;
	from = n_history > (size_t)p->repeat_last_n ? n_history - (size_t)p->repeat_last_n : 0;
	for (i = from; i < n_history; i++) {
		int32_t id = history[i];

		if (id < 0 || (uint32_t)id >= n_vocab || seen[id])
			continue;
		seen[id] = 1;
		if (logits[id] > 0)
			logits[id] /= p->repeat_penalty;
		else
			logits[id] *= p->repeat_penalty;
	}
	for (i = from; i < n_history; i++)
		if (history[i] >= 0 && (uint32_t)history[i] < n_vocab)
			seen[history[i]] = 0;
}

/* p = softmax(logit / temp) over c[0..n), sorted descending. */
static void
probs(struct cand *c, size_t n, double temp)
{
	double sum = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		c[i].p = exp(((double)c[i].logit - c[0].logit) / temp);
		sum += c[i].p;
	}
	for (i = 0; i < n; i++)
		c[i].p /= sum;
}

int32_t
ktx_sampler_sample(struct ktx_sampler *s, const float *logits, uint32_t n_vocab,
    const int32_t *history, size_t n_history)
{
	const struct ktx_sampler_params *p = &s->p;
	size_t n = n_vocab, i;
	double cum, r;

	if (n_vocab == 0 || logits == NULL)
		return -1;
	if (s->cap < n_vocab) {
		struct cand *c = realloc(s->cands, n_vocab * sizeof(*c));
		float *l;

		if (c == NULL)
			return -1;
		s->cands = c;
		l = realloc(s->logits, n_vocab * sizeof(*l));
		if (l == NULL)
			return -1;
		s->logits = l;
		free(s->seen);
		if ((s->seen = calloc(n_vocab, 1)) == NULL)
			return -1;
		s->cap = n_vocab;
	}
	memcpy(s->logits, logits, n_vocab * sizeof(float));
	penalize(p, s->logits, s->seen, n_vocab, history, n_history);
	if (!(p->temperature > 0))
		return (int32_t)ktx_ref_argmax(s->logits, n_vocab);

	for (i = 0; i < n; i++) {
		s->cands[i].id = (int32_t)i;
		s->cands[i].logit = s->logits[i];
	}
	qsort(s->cands, n, sizeof(*s->cands), cand_cmp);
	if (p->top_k > 0 && (size_t)p->top_k < n)
		n = (size_t)p->top_k;
	probs(s->cands, n, 1.0);
	if (p->top_p < 1.0f) {
		/* The smallest prefix whose mass reaches top_p. */
		for (i = 0, cum = 0; i < n; i++) {
			cum += s->cands[i].p;
			if (cum >= p->top_p) {
				n = i + 1;
				break;
			}
		}
	}
	if (p->min_p > 0.0f) {
		for (i = 1; i < n && s->cands[i].p >= p->min_p * s->cands[0].p; i++)
			;
		n = i;
	}
	probs(s->cands, n, p->temperature);
	r = next_unit(s->rng);
	for (i = 0, cum = 0; i + 1 < n; i++) {
		cum += s->cands[i].p;
		if (r < cum)
			break;
	}
	return s->cands[i].id;
}
