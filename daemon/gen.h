/*
 * gen.h - generation as the worker sees it: load a model, answer one
 * conversation, forget a conversation.
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
	uint32_t experts;
	uint32_t context;
	void (*progress)(void *ctx, double fraction, const char *what);
	void *progress_ctx;
};

struct gen_info {
	char name[128];
	uint32_t n_ctx;
	uint64_t bytes_ram, bytes_vram;
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
/* Polled between prefill chunks and decode steps; true stops. */
typedef bool (*gen_cancel_fn)(void *ctx);

/* Why a generation ended. */
enum gen_end {
	GEN_END_EOS,      /* the model ended its turn */
	GEN_END_LENGTH,   /* max_tokens or the context was reached */
	GEN_END_CANCELED, /* cancel said stop */
};

int gen_load(const struct gen_params *p, struct gen **out, struct ktx_err *err);
void gen_free(struct gen *g);
void gen_get_info(const struct gen *g, struct gen_info *info);

/*
 * Answers r: renders the turns with the model's chat template, reuses the
 * conversation's cached session for the prefix they share, prefills the
 * rest, then samples until the end of the turn, max_tokens, the context or
 * cancel. *answer (malloc'ed, NUL-terminated) holds the whole answer so far
 * even on failure. KTX_ERANGE when the prompt does not fit the context.
 */
int gen_run(struct gen *g, const struct gen_request *r, gen_emit_fn emit, gen_cancel_fn cancel,
    void *ctx, char **answer, enum gen_end *end, struct job_stats *stats, struct ktx_err *err);

/* Drops the cached session of a conversation (it was deleted). */
void gen_forget(struct gen *g, int64_t conversation);

#endif
