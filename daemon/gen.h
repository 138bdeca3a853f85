/*
 * gen.h - generation as the worker sees it: load a model, answer several
 * conversations at once, forget a conversation.
 *
 * The small seam between the daemon's worker thread and the engine
 * (engine/ktx.h, tokenizer.h, chat.h): gen_engine.c implements it with the
 * engine. Every call runs on the worker thread only.
 */
#ifndef KTX_DAEMON_GEN_H
#define KTX_DAEMON_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/store.h"
#include "engine/err.h"

struct gen;

struct gen_params {
	const char *model;
	int threads;
	unsigned act_residual;     /* KTX_ACT_* classes with residual rows */
	int cache_type;            /* a KTX_CACHE_* */
	int load;                  /* a KTX_LOAD_* */
	uint32_t experts;
	uint32_t context;
	void (*progress)(void *ctx, double fraction, const char *what);
	void *progress_ctx;
};

struct gen_info {
	char name[128];
	uint32_t n_ctx;
	uint64_t bytes_ram, bytes_vram;
	bool mapped;               /* the weights are a mapping of the file */
};

/* One turn of the conversation a job answers. */
struct gen_turn {
	bool assistant;
	const char *content;
};

struct gen_request {
	int64_t conversation;    /* sessions are cached by conversation */
	const struct gen_turn *turns;
	size_t n_turns;          /* the last one is the question */
	const struct job_options *opt;
};

/* Receives each piece of the answer (whole UTF-8 characters); non-zero stops. */
typedef int (*gen_emit_fn)(void *ctx, const char *text, size_t len);

/* Why a generation ended. */
enum gen_end {
	GEN_END_EOS,      /* the model ended its turn */
	GEN_END_LENGTH,   /* max_tokens or the context was reached */
	GEN_END_CANCELED, /* stopped from outside, or emit said stop */
};

int gen_load(const struct gen_params *p, struct gen **out, struct ktx_err *err);
void gen_free(struct gen *g);
void gen_get_info(const struct gen *g, struct gen_info *info);

/*
 * One job being generated. Jobs run side by side (continuous batching):
 * each is prefilled in chunks (gen_job_prefill), then all prefilled jobs
 * take their decode steps together (gen_step), each with its own sampler,
 * limits and end. A job owns its conversation's session while it runs; the
 * session goes back to the cache when the job ends well.
 */
struct gen_job;

/*
 * Starts answering r: renders the turns with the model's chat template and
 * finds the part of the prompt the conversation's cached session already
 * holds. emit receives the answer's pieces (ctx is passed back).
 * KTX_ERANGE when the prompt does not fit the context.
 */
int gen_job_new(struct gen *g, const struct gen_request *r, gen_emit_fn emit, void *ctx,
    struct gen_job **out, struct ktx_err *err);
/* True while part of j's prompt has not been run yet. */
bool gen_job_prefilling(const struct gen_job *j);
/* True once j has ended (finished, failed or stopped by emit). */
bool gen_job_ended(const struct gen_job *j);
/* Runs the next chunk of j's prompt: short while other jobs are decoding
 * (beside_decoding), so their tokens keep flowing; else the engine's own
 * larger chunk, which reads each chosen expert fewer times. */
void gen_job_prefill(struct gen_job *j, bool beside_decoding);
/*
 * One decode step of n prefilled, running jobs at once: samples each one's
 * next token and emits its text, ends those that reach the end of the turn,
 * max_tokens or the context, and runs the others' tokens through the model
 * in one batch. A job's failure ends only that job.
 */
void gen_step(struct gen *g, struct gen_job **jobs, size_t n);
/*
 * Ends and frees j (canceled: stopped from outside). *answer (malloc'ed,
 * NUL-terminated) holds the whole answer so far even on failure. Returns 0
 * or the job's error (with err). answer, end, stats and err may be NULL.
 */
int gen_job_finish(struct gen *g, struct gen_job *j, bool canceled, char **answer,
    enum gen_end *end, struct job_stats *stats, struct ktx_err *err);

/* Drops the cached session of a conversation (it was deleted); a running
 * job of it does not put its session back. */
void gen_forget(struct gen *g, int64_t conversation);

#endif
