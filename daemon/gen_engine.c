/*
 * gen_engine.c - gen.h on top of the engine: chat template, tokenizer,
 * sessions cached per conversation, sampling, streaming detokenizer.
 *
 * A follow-up in a conversation whose session is still cached only prefills
 * what differs from the tokens already in it (the new question, plus
 * whatever the template renders differently, e.g. R1 dropping earlier
 * thinking). GEN_CACHE idle sessions are kept, least recently used
 * evicted; a running job takes its session out of the cache and puts it
 * back when it ends well, so two jobs never share a session.
 *
 * Continuous batching: prompts run in chunks (short ones between the decode
 * steps of other jobs; a token's numbers do not depend on the chunks) and
 * the prefilled jobs decode together through ktx_decode_step.
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
/* Prompt tokens run between two decode steps of the batch: what the
 * batch's decoders wait for while a long prompt comes in. */
#define GEN_PREFILL_CHUNK_SHARED 128

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
	struct gen_job *jobs;   /* running */
	struct ktx_session **step_s; /* gen_step's scratch, step_cap each */
	int32_t *step_tok;
	int *step_status;
	struct gen_job **step_job;
	size_t step_cap;
};

struct gen_job {
	struct gen_job *prev, *next;
	int64_t conversation;
	bool keep;               /* put the session back in the cache at the end */
	struct ktx_session *s;
	int32_t *ids;            /* the prompt */
	size_t n_ids, pos;       /* pos: tokens of it in the session */
	struct ktx_sampler *sampler;
	struct ktx_detok *dt;
	int32_t max;
	gen_emit_fn emit;
	void *ctx;
	char *answer;
	size_t len, cap;
	bool ended;
	enum gen_end end;
	int rc;
	struct ktx_err err;
	struct job_stats stats;
	double t_decode;         /* when its first decode step began */
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
	mp.act_residual = p->act_residual;
	mp.cache_type = (enum ktx_cache_type)p->cache_type;
	mp.load = (enum ktx_load)p->load;
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
	while (g->jobs != NULL)
		gen_job_finish(g, g->jobs, true, NULL, NULL, NULL, NULL);
	for (i = 0; i < GEN_CACHE; i++)
		ktx_session_free(g->cache[i].s);
	free(g->step_s);
	free(g->step_tok);
	free(g->step_status);
	free(g->step_job);
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
	info->mapped = g->info.load == KTX_LOAD_MMAP;
}

void
gen_forget(struct gen *g, int64_t conversation)
{
	struct gen_job *j;
	int i;

	for (i = 0; i < GEN_CACHE; i++)
		if (g->cache[i].conversation == conversation) {
			ktx_session_free(g->cache[i].s);
			memset(&g->cache[i], 0, sizeof(g->cache[i]));
		}
	for (j = g->jobs; j != NULL; j = j->next)
		if (j->conversation == conversation)
			j->keep = false;
}

/* Takes the conversation's idle session out of the cache, or makes a new one. */
static int
session_take(struct gen *g, int64_t conversation, struct ktx_session **out,
    struct ktx_err *err)
{
	int i;

	for (i = 0; i < GEN_CACHE; i++)
		if (g->cache[i].conversation == conversation && g->cache[i].s != NULL) {
			*out = g->cache[i].s;
			memset(&g->cache[i], 0, sizeof(g->cache[i]));
			return 0;
		}
	return ktx_session_new(g->model, 0, out, err);
}

/* Caches s as the conversation's, in place of an older copy or the least recently used. */
static void
session_put(struct gen *g, int64_t conversation, struct ktx_session *s)
{
	struct cached *c = &g->cache[0];
	int i;

	for (i = 0; i < GEN_CACHE; i++) {
		if (g->cache[i].conversation == conversation) {
			c = &g->cache[i];
			break;
		}
		if (g->cache[i].used < c->used)
			c = &g->cache[i];
	}
	ktx_session_free(c->s);
	c->conversation = conversation;
	c->s = s;
	c->used = ++g->clock;
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

/* Ends j with an error (unless it has ended already). */
static void
job_fail(struct gen_job *j, int rc, const struct ktx_err *err)
{
	if (j->ended)
		return;
	j->ended = true;
	j->rc = rc;
	j->keep = false;
	if (err != NULL)
		j->err = *err;
	else
		ktx_err_set(&j->err, rc, "generation failed: %s", ktx_status_name(rc));
}

/* Ends j normally. */
static void
job_end(struct gen_job *j, enum gen_end end)
{
	j->ended = true;
	j->end = end;
}

int
gen_job_new(struct gen *g, const struct gen_request *r, gen_emit_fn emit, void *ctx,
    struct gen_job **out, struct ktx_err *err)
{
	struct ktx_sampler_params sp;
	struct gen_job *j;
	const int32_t *have;
	size_t p = 0, n_have;
	int rc;

	*out = NULL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory starting a job");
	j->conversation = r->conversation;
	j->emit = emit;
	j->ctx = ctx;
	j->end = GEN_END_CANCELED;
	j->max = r->opt->max_tokens > 0 ? r->opt->max_tokens : GEN_DEFAULT_MAX_TOKENS;
	if ((rc = prompt_tokens(g, r, &j->ids, &j->n_ids, err)) != 0)
		goto fail;
	if (j->n_ids == 0 || j->n_ids >= g->info.n_ctx) {
		rc = ktx_err_set(err, KTX_ERANGE,
		    "the conversation needs %zu tokens but the context holds %u; "
		    "start a new conversation", j->n_ids, g->info.n_ctx);
		goto fail;
	}
	ktx_sampler_params_default(&sp);
	sp.temperature = (float)r->opt->temperature;
	sp.top_p = (float)r->opt->top_p;
	sp.seed = r->opt->seed_set ? r->opt->seed : (uint64_t)time(NULL) ^ (uint64_t)clock();
	if ((j->sampler = ktx_sampler_new(&sp)) == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for the sampler");
		goto fail;
	}
	if ((rc = ktx_detok_new(g->tok, KTX_DETOK_SKIP_CONTROL, &j->dt, err)) != 0)
		goto fail;
	if ((rc = session_take(g, r->conversation, &j->s, err)) != 0)
		goto fail;
	/* Reuse the longest shared prefix; re-run at least the last token for its logits. */
	have = ktx_session_tokens(j->s);
	n_have = ktx_session_n_past(j->s);
	while (p < n_have && p < j->n_ids && have[p] == j->ids[p])
		p++;
	if (p == j->n_ids)
		p--;
	if ((rc = ktx_session_truncate(j->s, (uint32_t)p, err)) != 0)
		goto fail;
	j->pos = p;
	j->keep = true;
	j->stats.prompt_tokens = (uint32_t)j->n_ids;
	j->stats.cached_tokens = (uint32_t)p;
	j->next = g->jobs;
	if (g->jobs != NULL)
		g->jobs->prev = j;
	g->jobs = j;
	*out = j;
	return 0;
fail:
	ktx_session_free(j->s);
	ktx_detok_free(j->dt);
	ktx_sampler_free(j->sampler);
	free(j->ids);
	free(j);
	return rc;
}

bool
gen_job_prefilling(const struct gen_job *j)
{
	return !j->ended && j->pos < j->n_ids;
}

bool
gen_job_ended(const struct gen_job *j)
{
	return j->ended;
}

void
gen_job_prefill(struct gen_job *j, bool beside_decoding)
{
	size_t chunk = beside_decoding ? GEN_PREFILL_CHUNK_SHARED : KTX_PREFILL_CHUNK;
	size_t n = j->n_ids - j->pos;
	struct ktx_err err;
	double t0 = now_s();
	int rc;

	if (!gen_job_prefilling(j))
		return;
	if (n > chunk)
		n = chunk;
	ktx_err_clear(&err);
	rc = ktx_session_append(j->s, j->ids + j->pos, n, NULL, NULL, &err);
	j->stats.prefill_s += now_s() - t0;
	if (rc != 0) {
		job_fail(j, rc, &err);
		return;
	}
	j->pos += n;
}

/* Makes room for n jobs in gen_step's scratch arrays. */
static int
step_reserve(struct gen *g, size_t n)
{
	void *p;

	if (n <= g->step_cap)
		return 0;
	if ((p = realloc(g->step_s, n * sizeof(*g->step_s))) == NULL)
		return -1;
	g->step_s = p;
	if ((p = realloc(g->step_tok, n * sizeof(*g->step_tok))) == NULL)
		return -1;
	g->step_tok = p;
	if ((p = realloc(g->step_status, n * sizeof(*g->step_status))) == NULL)
		return -1;
	g->step_status = p;
	if ((p = realloc(g->step_job, n * sizeof(*g->step_job))) == NULL)
		return -1;
	g->step_job = p;
	g->step_cap = n;
	return 0;
}

/* Samples j's next token and emits its text; true when it goes on decoding with *id. */
static bool
sample_next(struct gen *g, struct gen_job *j, int32_t *id)
{
	const char *text;
	struct ktx_err err;
	size_t n;
	int rc;

	if (j->t_decode == 0)
		j->t_decode = now_s();
	*id = ktx_sampler_sample(j->sampler, ktx_session_logits(j->s), g->info.n_vocab,
	    ktx_session_tokens(j->s), ktx_session_n_past(j->s));
	if (*id < 0) {
		job_fail(j, KTX_ENOMEM, NULL);
		ktx_err_set(&j->err, KTX_ENOMEM, "the sampler failed (no logits, or out of memory)");
		return false;
	}
	if (ktx_model_is_eog(g->model, *id)) {
		job_end(j, GEN_END_EOS);
		return false;
	}
	ktx_err_clear(&err);
	if ((rc = ktx_detok_push(j->dt, *id, &text, &n, &err)) != 0) {
		job_fail(j, rc, &err);
		return false;
	}
	j->stats.gen_tokens++;
	if (n > 0 && (answer_add(&j->answer, &j->len, &j->cap, text, n) != 0 ||
		j->emit(j->ctx, text, n) != 0)) {
		job_end(j, GEN_END_CANCELED);
		return false;
	}
	if ((int32_t)j->stats.gen_tokens >= j->max || ktx_session_n_past(j->s) >= g->info.n_ctx) {
		job_end(j, GEN_END_LENGTH);
		return false;
	}
	return true;
}

void
gen_step(struct gen *g, struct gen_job **jobs, size_t n)
{
	struct ktx_err err;
	size_t i, k = 0;
	int rc;

	if (step_reserve(g, n) != 0) {
		for (i = 0; i < n; i++)
			job_fail(jobs[i], KTX_ENOMEM, NULL);
		return;
	}
	for (i = 0; i < n; i++) {
		if (jobs[i]->ended || gen_job_prefilling(jobs[i]))
			continue;
		if (!sample_next(g, jobs[i], &g->step_tok[k]))
			continue;
		g->step_s[k] = jobs[i]->s;
		g->step_job[k] = jobs[i];
		g->step_status[k] = 0;
		k++;
	}
	ktx_err_clear(&err);
	if ((rc = ktx_decode_step(g->step_s, g->step_tok, k, g->step_status, &err)) != 0) {
		for (i = 0; i < k; i++)
			job_fail(g->step_job[i], rc, &err);
		return;
	}
	for (i = 0; i < k; i++) {
		if (g->step_status[i] == KTX_ERANGE)
			job_end(g->step_job[i], GEN_END_LENGTH); /* the context is full */
		else if (g->step_status[i] != 0)
			job_fail(g->step_job[i], g->step_status[i], NULL);
	}
}

int
gen_job_finish(struct gen *g, struct gen_job *j, bool canceled, char **answer,
    enum gen_end *end, struct job_stats *stats, struct ktx_err *err)
{
	const char *text;
	size_t n;
	int rc;

	if (!j->ended) {
		job_end(j, GEN_END_CANCELED);
		canceled = true;
	}
	/* A prompt cut short leaves a session the cache cannot describe. */
	if (j->pos < j->n_ids)
		j->keep = false;
	ktx_detok_flush(j->dt, &text, &n);
	if (n > 0 && answer_add(&j->answer, &j->len, &j->cap, text, n) == 0 && !canceled)
		j->emit(j->ctx, text, n);
	if (j->answer == NULL && answer_add(&j->answer, &j->len, &j->cap, "", 0) != 0 &&
	    j->rc == 0)
		job_fail(j, KTX_ENOMEM, NULL);
	if (j->t_decode > 0)
		j->stats.decode_s = now_s() - j->t_decode;
	if (j->keep)
		session_put(g, j->conversation, j->s);
	else
		ktx_session_free(j->s);
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		g->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	rc = j->rc;
	if (answer != NULL)
		*answer = j->answer;
	else
		free(j->answer);
	if (end != NULL)
		*end = j->end;
	if (stats != NULL)
		*stats = j->stats;
	if (err != NULL && rc != 0)
		*err = j->err;
	ktx_detok_free(j->dt);
	ktx_sampler_free(j->sampler);
	free(j->ids);
	free(j);
	return rc;
}
