/*
 * session.c - conversations: a token history and its latent KV cache, grown
 * as tokens arrive; prefill in chunks, batched decode across sessions.
 *
 * The cache holds, per layer and position, kv_lora + rope elements (the
 * latent and the rotated rope key), never expanded keys and values: a
 * follow-up turn appends to it without recomputing earlier ones. Its
 * elements are the model's cache type (F16, BF16 or F32) on the fast path
 * and float32 on the reference path. Each layer's rows are contiguous, so
 * attention streams them; growing the cache moves the layers apart.
 */
#include "engine/model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attn_flash.h"

/* Tokens per prefill chunk: cancel is polled between chunks. */
#define PREFILL_CHUNK KTX_PREFILL_CHUNK
/* The first allocation of a cache, in positions. */
#define MIN_CAP 64

int
ktx_session_new(struct ktx_model *m, uint32_t n_ctx, struct ktx_session **out,
    struct ktx_err *err)
{
	struct ktx_session *s;

	*out = NULL;
	if (n_ctx == 0)
		n_ctx = m->n_ctx;
	if (n_ctx > m->hp.n_ctx_train)
		return ktx_err_set(err, KTX_ERANGE,
		    "session length %u exceeds the model's context of %u",
		    n_ctx, m->hp.n_ctx_train);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for a session");
	s->m = m;
	s->n_ctx = n_ctx;
	s->kv_type = m->compute == KTX_PATH_REF ? KTX_CACHE_F32 : m->cache_type;
	s->kv_elsize = attn_cache_elsize(s->kv_type);
	s->logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
	if (s->logits == NULL) {
		free(s);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for a session's logits");
	}
	*out = s;
	return 0;
}

void
ktx_session_free(struct ktx_session *s)
{
	if (s == NULL)
		return;
	free(s->tokens);
	free(s->kv);
	free(s->logits);
	free(s);
}

uint32_t
ktx_session_n_past(const struct ktx_session *s)
{
	return s->n_past;
}

const int32_t *
ktx_session_tokens(const struct ktx_session *s)
{
	return s->tokens;
}

const float *
ktx_session_logits(const struct ktx_session *s)
{
	return s->logits_valid ? s->logits : NULL;
}

int
ktx_session_truncate(struct ktx_session *s, uint32_t n, struct ktx_err *err)
{
	if (n > s->n_past)
		return ktx_err_set(err, KTX_ERANGE, "cannot keep %u tokens of a session holding %u",
		    n,
		    s->n_past);
	if (n < s->n_past) {
		/* The cache rows past n are simply overwritten later; the
		 * logits belonged to the dropped tail. */
		s->n_past = n;
		s->logits_valid = false;
	}
	return 0;
}

int
ktx_session_reserve(struct ktx_session *s, uint32_t n, struct ktx_err *err)
{
	size_t row = ktx_kv_stride(s), nl = s->m->hp.n_layer, il;
	uint32_t cap;
	int32_t *tokens;
	uint8_t *kv;

	if (n <= s->cap)
		return 0;
	if (n > s->n_ctx)
		return ktx_err_set(err, KTX_ERANGE,
		    "the context is full: %u tokens exceed the limit of %u",
		    n, s->n_ctx);
	/* Doubling keeps appends amortized O(1) without reserving n_ctx
	 * up front for sessions that stay short. */
	cap = s->cap < MIN_CAP ? MIN_CAP : s->cap;
	while (cap < n)
		cap = cap > s->n_ctx / 2 ? s->n_ctx : cap * 2;
	if (cap > s->n_ctx)
		cap = s->n_ctx;
	tokens = realloc(s->tokens, (size_t)cap * sizeof(*tokens));
	if (tokens == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for %u tokens of history", cap);
	s->tokens = tokens;
	if (row != 0 && nl > SIZE_MAX / row / cap)
		return ktx_err_set(err, KTX_ENOMEM, "a KV cache of %u positions is too large", cap);
	kv = realloc(s->kv, (size_t)cap * row * nl);
	if (kv == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for a KV cache of %u positions",
		    cap);
	/* Layer il's rows move from il * old cap to il * cap, the last layer
	 * first so that none is overwritten before it moves; rows from
	 * n_past on hold nothing yet. */
	for (il = nl; s->n_past > 0 && il-- > 1;)
		memmove(kv + il * cap * row, kv + il * s->cap * row, (size_t)s->n_past * row);
	s->kv = kv;
	s->cap = cap;
	return 0;
}

/* Checks that n more tokens fit and are all in the vocabulary. */
static int
check_append(const struct ktx_session *s, const int32_t *tokens, size_t n, struct ktx_err *err)
{
	size_t i;

	if (n > (size_t)(s->n_ctx - s->n_past))
		return ktx_err_set(err, KTX_ERANGE,
		    "the context is full: %u tokens held + %zu new exceed the limit of %u "
		    "(start a new conversation or raise the context length)", s->n_past, n,
		    s->n_ctx);
	for (i = 0; i < n; i++)
		if (tokens[i] < 0 || (uint32_t)tokens[i] >= s->m->hp.n_vocab)
			return ktx_err_set(err, KTX_EINVAL,
			    "token %zu (id %d) is outside the vocabulary "
			    "(0..%u)", i, tokens[i], s->m->hp.n_vocab - 1);
	return 0;
}

/*
 * Runs tokens through s in chunks. The last token of every chunk writes
 * s->logits, so a cancelled prefill leaves a consistent session; with
 * all_logits every position writes its row there.
 */
static int
prefill(struct ktx_session *s, const int32_t *tokens, size_t n, ktx_cancel_fn cancel,
    void *cancel_ctx, float *all_logits, struct ktx_err *err)
{
	struct ktx_fwd_item *items;
	size_t done, k, cnt, nv = s->m->hp.n_vocab;
	int rc;

	if ((rc = check_append(s, tokens, n, err)) != 0)
		return rc;
	if (n == 0)
		return 0;
	if ((rc = ktx_session_reserve(s, s->n_past + (uint32_t)n, err)) != 0)
		return rc;
	items = malloc((n < PREFILL_CHUNK ? n : PREFILL_CHUNK) * sizeof(*items));
	if (items == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for a prefill");
	for (done = 0; done < n; done += cnt) {
		if (done > 0 && cancel != NULL && cancel(cancel_ctx)) {
			rc = ktx_err_set(err, KTX_ECANCELED,
			    "prefill cancelled after %zu of %zu tokens",
			    done, n);
			break;
		}
		cnt = n - done < PREFILL_CHUNK ? n - done : PREFILL_CHUNK;
		for (k = 0; k < cnt; k++) {
			items[k].s = s;
			items[k].token = tokens[done + k];
			items[k].pos = s->n_past + (uint32_t)k;
			items[k].logits = all_logits ? all_logits + (done + k) * nv : NULL;
		}
		if (all_logits == NULL)
			items[cnt - 1].logits = s->logits;
		if ((rc = ktx_forward(s->m, items, cnt, err)) != 0) {
			s->logits_valid = false;
			break;
		}
		memcpy(s->tokens + s->n_past, tokens + done, cnt * sizeof(*tokens));
		s->n_past += (uint32_t)cnt;
		if (all_logits != NULL)
			memcpy(s->logits, items[cnt - 1].logits, nv * sizeof(float));
		s->logits_valid = true;
	}
	free(items);
	return rc;
}

int
ktx_session_append(struct ktx_session *s, const int32_t *tokens, size_t n,
    ktx_cancel_fn cancel, void *cancel_ctx, struct ktx_err *err)
{
	return prefill(s, tokens, n, cancel, cancel_ctx, NULL, err);
}

int
ktx_session_eval_all(struct ktx_session *s, const int32_t *tokens, size_t n,
    float *all_logits, struct ktx_err *err)
{
	if (all_logits == NULL && n > 0)
		return ktx_err_set(err, KTX_EINVAL, "no buffer for the logits");
	return prefill(s, tokens, n, NULL, NULL, all_logits, err);
}

int
ktx_decode_step(struct ktx_session **sessions, const int32_t *tokens, size_t n, int *status,
    struct ktx_err *err)
{
	struct ktx_fwd_item *items;
	struct ktx_model *m;
	struct ktx_err e2;
	size_t i, j, k;
	int rc;

	if (n == 0)
		return 0;
	m = sessions[0] ? sessions[0]->m : NULL;
	for (i = 0; i < n; i++) {
		if (sessions[i] == NULL || sessions[i]->m != m)
			return ktx_err_set(err, KTX_EINVAL,
			    "decode step: session %zu is missing or belongs "
			    "to another model", i);
		for (j = 0; j < i; j++)
			if (sessions[j] == sessions[i])
				return ktx_err_set(err, KTX_EINVAL,
				    "decode step: session %zu is listed twice", i);
	}
	items = malloc(n * sizeof(*items));
	if (items == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for a decode step");
	/* A session that cannot take its token sits this step out. */
	for (i = 0, k = 0; i < n; i++) {
		struct ktx_session *s = sessions[i];

		status[i] = check_append(s, &tokens[i], 1, &e2);
		if (status[i] == 0)
			status[i] = ktx_session_reserve(s, s->n_past + 1, &e2);
		if (status[i] != 0)
			continue;
		items[k].s = s;
		items[k].token = tokens[i];
		items[k].pos = s->n_past;
		items[k].logits = s->logits;
		k++;
	}
	rc = ktx_forward(m, items, k, err);
	if (rc == 0) {
		for (i = 0; i < n; i++) {
			struct ktx_session *s = sessions[i];

			if (status[i] != 0)
				continue;
			s->tokens[s->n_past++] = tokens[i];
			s->logits_valid = true;
		}
	} else {
		/* Nothing was appended; logits buffers may be half written. */
		for (i = 0; i < n; i++)
			if (status[i] == 0)
				sessions[i]->logits_valid = false;
	}
	free(items);
	return rc;
}
