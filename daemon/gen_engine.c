/*
 * gen_engine.c - gen.h on top of the engine: chat template, tokenizer,
 * sessions cached per conversation, sampling, streaming detokenizer.
 *
 * A follow-up in a conversation whose session is still cached only prefills
 * what differs from the tokens already in it (the new question, plus
 * whatever the template renders differently, e.g. R1 dropping earlier
 * thinking). GEN_CACHE sessions are kept, least recently used evicted.
 */
#include "config.h"

#include "daemon/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/chat.h"
#include "engine/gguf.h"
#include "engine/ktx.h"
#include "engine/tokenizer.h"

#define GEN_CACHE 8
/* Defaults when a job leaves them out: DeepSeek's recommended sampling. */
#define GEN_DEFAULT_MAX_TOKENS 1024

struct cached {
	int64_t conversation; /* 0: free slot */
	struct ktx_session *s;
	uint64_t used;
};

struct gen {
	struct ktx_model *model;
	const struct ktx_tokenizer *tok;
	enum ktx_chat_style style;
	struct ktx_model_info info;
	struct cached cache[GEN_CACHE];
	uint64_t clock;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
gen_load(const struct gen_params *p, struct gen **out, struct ktx_err *err)
{
	struct ktx_model_params mp;
	struct gguf_file *f;
	struct gen *g;
	int rc;

	*out = NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory");
	/* The chat format is read from the file's own template. */
	if ((rc = gguf_open(p->model, &f, err)) != 0) {
		free(g);
		return rc;
	}
	rc = ktx_chat_style_from_gguf(f, &g->style, err);
	gguf_close(f);
	if (rc != 0) {
		free(g);
		return rc;
	}
	ktx_model_params_default(&mp);
	mp.path = p->model;
	mp.n_threads = p->threads;
	mp.n_expert_used = p->experts;
	mp.n_ctx = p->context;
	mp.progress = p->progress;
	mp.progress_ctx = p->progress_ctx;
	if ((rc = ktx_model_load(&mp, &g->model, err)) != 0) {
		free(g);
		return rc;
	}
	g->tok = ktx_model_tokenizer(g->model);
	ktx_model_get_info(g->model, &g->info);
	*out = g;
	return 0;
}

void
gen_free(struct gen *g)
{
	int i;

	if (g == NULL)
		return;
	for (i = 0; i < GEN_CACHE; i++)
		ktx_session_free(g->cache[i].s);
	ktx_model_free(g->model);
	free(g);
}

void
gen_get_info(const struct gen *g, struct gen_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", g->info.name ? g->info.name : "?");
	info->n_ctx = g->info.n_ctx;
	info->bytes_ram = g->info.bytes_ram;
	info->bytes_vram = g->info.bytes_vram;
}

void
gen_forget(struct gen *g, int64_t conversation)
{
	int i;

	for (i = 0; i < GEN_CACHE; i++)
		if (g->cache[i].conversation == conversation) {
			ktx_session_free(g->cache[i].s);
			memset(&g->cache[i], 0, sizeof(g->cache[i]));
		}
}

/* The conversation's cached session, or a new one in the least recently used slot. */
static int
session_for(struct gen *g, int64_t conversation, struct ktx_session **out, struct ktx_err *err)
{
	struct cached *c = &g->cache[0];
	int i, rc;

	for (i = 0; i < GEN_CACHE; i++) {
		if (g->cache[i].conversation == conversation && g->cache[i].s != NULL) {
			c = &g->cache[i];
			goto found;
		}
		if (g->cache[i].used < c->used)
			c = &g->cache[i];
	}
	ktx_session_free(c->s);
	memset(c, 0, sizeof(*c));
	if ((rc = ktx_session_new(g->model, 0, &c->s, err)) != 0)
		return rc;
	c->conversation = conversation;
found:
	c->used = ++g->clock;
	*out = c->s;
	return 0;
}

/* Renders the turns with the chat template and tokenizes them. */
static int
prompt_tokens(struct gen *g, const struct gen_request *r, int32_t **ids, size_t *n,
    struct ktx_err *err)
{
	struct ktx_chat_msg *msgs;
	char *text = NULL;
	size_t i, len;
	int rc;

	if ((msgs = calloc(r->n_turns ? r->n_turns : 1, sizeof(*msgs))) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory");
	for (i = 0; i < r->n_turns; i++) {
		msgs[i].role = r->turns[i].assistant ? KTX_ROLE_ASSISTANT : KTX_ROLE_USER;
		msgs[i].content = r->turns[i].content;
	}
	rc = ktx_chat_render(g->style, msgs, r->n_turns, true, &text, &len, err);
	free(msgs);
	if (rc != 0)
		return rc;
	/* The rendered text starts with the BOS spelling: parse specials, add no BOS. */
	rc = ktx_tokenize(g->tok, text, len, true, ids, n, err);
	free(text);
	return rc;
}

/* Appends len bytes to the growing answer. */
static int
answer_add(char **buf, size_t *len, size_t *cap, const char *text, size_t n)
{
	char *nb;
	size_t nc;

	if (*len + n + 1 > *cap) {
		nc = *cap ? *cap : 256;
		while (*len + n + 1 > nc)
			nc *= 2;
		if ((nb = realloc(*buf, nc)) == NULL)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, text, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

/* Samples and decodes until the turn ends; the session already holds the prompt. */
static int
decode(struct gen *g, struct ktx_session *s, const struct gen_request *r, gen_emit_fn emit,
    gen_cancel_fn cancel, void *ctx, char **answer, enum gen_end *end, struct job_stats *stats,
    struct ktx_err *err)
{
	struct ktx_sampler_params sp;
	struct ktx_sampler *sampler;
	struct ktx_detok *dt = NULL;
	size_t len = 0, cap = 0, n;
	const char *text;
	int32_t id, max = r->opt->max_tokens > 0 ? r->opt->max_tokens : GEN_DEFAULT_MAX_TOKENS;
	int rc, status;

	ktx_sampler_params_default(&sp);
	sp.temperature = (float)r->opt->temperature;
	sp.top_p = (float)r->opt->top_p;
	sp.seed = r->opt->seed_set ? r->opt->seed : (uint64_t)time(NULL) ^ (uint64_t)clock();
	if ((sampler = ktx_sampler_new(&sp)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the sampler");
	if ((rc = ktx_detok_new(g->tok, KTX_DETOK_SKIP_CONTROL, &dt, err)) != 0)
		goto out;
	*end = GEN_END_LENGTH;
	for (;;) {
		if (cancel(ctx)) {
			*end = GEN_END_CANCELED;
			break;
		}
		id = ktx_sampler_sample(sampler, ktx_session_logits(s), g->info.n_vocab,
		    ktx_session_tokens(s), ktx_session_n_past(s));
		if (id < 0) {
			rc = ktx_err_set(err, KTX_ENOMEM, "the sampler failed (no logits, or out of memory)");
			goto out;
		}
		if (ktx_model_is_eog(g->model, id)) {
			*end = GEN_END_EOS;
			break;
		}
		if ((rc = ktx_detok_push(dt, id, &text, &n, err)) != 0)
			goto out;
		stats->gen_tokens++;
		if (n > 0 && (answer_add(answer, &len, &cap, text, n) != 0 ||
				 emit(ctx, text, n) != 0)) {
			*end = GEN_END_CANCELED;
			break;
		}
		if ((int32_t)stats->gen_tokens >= max || ktx_session_n_past(s) >= g->info.n_ctx)
			break;
		status = 0;
		if ((rc = ktx_decode_step(&s, &id, 1, &status, err)) != 0)
			goto out;
		if (status != 0)
			break; /* the context is full: the answer ends here */
	}
	ktx_detok_flush(dt, &text, &n);
	if (n > 0 && answer_add(answer, &len, &cap, text, n) == 0)
		emit(ctx, text, n);
	if (*answer == NULL && answer_add(answer, &len, &cap, "", 0) != 0)
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for the answer");
out:
	ktx_detok_free(dt);
	ktx_sampler_free(sampler);
	return rc;
}

int
gen_run(struct gen *g, const struct gen_request *r, gen_emit_fn emit, gen_cancel_fn cancel,
    void *ctx, char **answer, enum gen_end *end, struct job_stats *stats, struct ktx_err *err)
{
	struct ktx_session *s;
	const int32_t *have;
	int32_t *ids = NULL;
	size_t n = 0, p = 0, n_have;
	double t0, t1;
	int rc;

	*answer = NULL;
	*end = GEN_END_CANCELED;
	memset(stats, 0, sizeof(*stats));
	if ((rc = prompt_tokens(g, r, &ids, &n, err)) != 0)
		return rc;
	if (n == 0 || n >= g->info.n_ctx) {
		free(ids);
		return ktx_err_set(err, KTX_ERANGE,
		    "the conversation needs %zu tokens but the context holds %u; "
		    "start a new conversation", n, g->info.n_ctx);
	}
	if ((rc = session_for(g, r->conversation, &s, err)) != 0) {
		free(ids);
		return rc;
	}
	/* Reuse the longest shared prefix; re-run at least the last token for its logits. */
	have = ktx_session_tokens(s);
	n_have = ktx_session_n_past(s);
	while (p < n_have && p < n && have[p] == ids[p])
		p++;
	if (p == n)
		p--;
	stats->prompt_tokens = (uint32_t)n;
	stats->cached_tokens = (uint32_t)p;
	t0 = now_s();
	if ((rc = ktx_session_truncate(s, (uint32_t)p, err)) == 0)
		rc = ktx_session_append(s, ids + p, n - p, cancel, ctx, err);
	free(ids);
	t1 = now_s();
	stats->prefill_s = t1 - t0;
	if (rc == KTX_ECANCELED) {
		*end = GEN_END_CANCELED;
		gen_forget(g, r->conversation);
		return 0;
	}
	if (rc != 0) {
		gen_forget(g, r->conversation);
		return rc;
	}
	rc = decode(g, s, r, emit, cancel, ctx, answer, end, stats, err);
	stats->decode_s = now_s() - t1;
	if (rc != 0)
		gen_forget(g, r->conversation);
	return rc;
}
