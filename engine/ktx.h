/*
 * ktx.h - the engine's public seam: what ktx-run and ktxd use.
 *
 * Load a model (with progress), open sessions (a conversation's tokens and
 * its latent KV cache), append tokens (prefill, cancellable between chunks),
 * step the decode of one or many sessions together, sample, free. Nothing
 * here knows about sockets or databases. Errors follow engine/err.h.
 *
 * Threading: one model may be used from one thread at a time (the daemon's
 * worker); the engine parallelises inside a call with its own pool.
 */
#ifndef KTX_ENGINE_KTX_H
#define KTX_ENGINE_KTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

struct ktx_model;
struct ktx_session;
struct ktx_sampler;
struct ktx_tokenizer;

/* Called during loading with fraction in [0,1] and a short phrase. */
typedef void (*ktx_progress_fn)(void *ctx, double fraction, const char *what);
/* Polled between prefill chunks and decode steps; true means stop. */
typedef bool (*ktx_cancel_fn)(void *ctx);

enum ktx_attn_path {
	KTX_ATTN_ABSORBED = 0, /* decode in latent space (default) */
	KTX_ATTN_NAIVE = 1,    /* expand K/V from the latent (for checking) */
};

/* How matmuls and experts are computed. */
enum ktx_path {
	KTX_PATH_FAST = 0,     /* SIMD kernels, activations quantized to the
	                        * weight's dot type (default; KL-gated in tests) */
	KTX_PATH_REF = 1,      /* the scalar reference: exact dequantization */
};

/*
 * Matmul classes of the fast path whose activations carry an 8-bit
 * residual row beside their 8-bit row (about 16-bit activations, for a
 * second activation row in each dot product; see forward_fast.h).
 */
enum ktx_act_class {
	KTX_ACT_ATTN = 1 << 0,     /* attention projections */
	KTX_ACT_DENSE = 1 << 1,    /* dense FFNs and shared experts */
	KTX_ACT_ROUTED = 1 << 2,   /* routed experts */
	KTX_ACT_OUTPUT = 1 << 3,   /* the output head */
	KTX_ACT_ALL = (1 << 4) - 1,
	KTX_ACT_DEFAULT = KTX_ACT_ALL,
};

/*
 * How the latent KV cache stores its elements on the fast path; the
 * reference path always keeps float32 (it is the definition). F16 halves
 * the cache but moves the float oracle models' mean KL to about 1e-6, the
 * gate's bound (tests/oracle/test_kl.py), so float32 stays the default.
 */
enum ktx_cache_type {
	KTX_CACHE_F32 = 0,     /* float32 (default) */
	KTX_CACHE_F16 = 1,     /* IEEE binary16: half the memory */
	KTX_CACHE_BF16 = 2,    /* bfloat16: half the memory, 3 bits less than F16 */
};

/*
 * How the weights reach memory. Read whole into anonymous memory with huge
 * pages, the kernels stream them at up to twice the speed of a mapping of
 * the file (4 KiB pages: a TLB miss and a prefetcher restart every page);
 * a mapping loads at once, shares the page cache and works for files
 * larger than the memory.
 */
enum ktx_load {
	KTX_LOAD_AUTO = 0,     /* read when the file fits in 3/4 of the available memory */
	KTX_LOAD_READ = 1,     /* read into memory */
	KTX_LOAD_MMAP = 2,     /* map the file */
};

struct ktx_model_params {
	const char *path;          /* GGUF file */
	enum ktx_load load;        /* how the weights reach memory (default auto) */
	bool no_repack;            /* keep the file's layout even where the fast path
	                            * has interleaved kernels (read weights only) */
	int n_threads;             /* 0: all online CPUs */
	uint32_t n_expert_used;    /* 0: the model's own */
	uint32_t n_ctx;            /* 0: the model's context length, capped at 4096 */
	enum ktx_attn_path attn;
	enum ktx_path compute;     /* fast (default) or reference arithmetic */
	enum ktx_cache_type cache_type; /* the latent cache's elements (fast path) */
	unsigned act_residual;     /* KTX_ACT_* classes with residual rows */
	ktx_progress_fn progress;  /* may be NULL */
	void *progress_ctx;
};

struct ktx_model_info {
	const char *arch;          /* "deepseek2" */
	const char *name;          /* general.name, or the file's base name */
	uint32_t n_vocab, n_ctx_train, n_ctx, n_layer, n_embd, n_head;
	uint32_t n_expert, n_expert_used, n_expert_shared, n_dense_lead;
	uint64_t n_params;
	uint64_t bytes_ram, bytes_vram;
	enum ktx_load load;        /* what auto chose: KTX_LOAD_READ or KTX_LOAD_MMAP */
	uint64_t bytes_repacked;   /* of bytes_ram, repacked into interleaved rows */
	int32_t token_bos, token_eos;
};

void ktx_model_params_default(struct ktx_model_params *p);
/* The KTX_ACT_* set that "all", "none" or a comma list of attn, dense,
 * routed, output names; -1 (classes untouched) for anything else. */
int ktx_act_residual_parse(const char *s, unsigned *classes);
/* The cache type "f32", "f16" or "bf16" names; -1 (t untouched) for
 * anything else. */
int ktx_cache_type_parse(const char *s, enum ktx_cache_type *t);
/* The load mode "auto", "read" or "mmap" names; -1 (l untouched) for
 * anything else. ktx_load_name is the inverse ("?" for no mode). */
int ktx_load_parse(const char *s, enum ktx_load *l);
const char *ktx_load_name(enum ktx_load l);
int ktx_model_load(const struct ktx_model_params *p, struct ktx_model **out, struct ktx_err *err);
void ktx_model_free(struct ktx_model *m);
void ktx_model_get_info(const struct ktx_model *m, struct ktx_model_info *info);
const struct ktx_tokenizer *ktx_model_tokenizer(const struct ktx_model *m);
/* True when id ends a turn (EOS or the chat template's end marker). */
bool ktx_model_is_eog(const struct ktx_model *m, int32_t id);

/* A session: token history + latent KV cache, at most n_ctx tokens
 * (0: the model's n_ctx). */
int ktx_session_new(struct ktx_model *m, uint32_t n_ctx, struct ktx_session **out, struct ktx_err *err);
void ktx_session_free(struct ktx_session *s);
uint32_t ktx_session_n_past(const struct ktx_session *s);
const int32_t *ktx_session_tokens(const struct ktx_session *s);
/* Drops everything after the first n tokens (to re-use a shared prefix). */
int ktx_session_truncate(struct ktx_session *s, uint32_t n, struct ktx_err *err);

/* Tokens per prefill chunk of ktx_session_append. Large, because each
 * chunk reads every expert its tokens chose once: at 512 a 512-token prompt
 * runs 1.4-1.6x faster than at 128 on a DeepSeek-V3-wide block. */
#define KTX_PREFILL_CHUNK 512

/*
 * Appends n tokens and runs them through the model (prefill, in chunks of
 * KTX_PREFILL_CHUNK; cancel is polled between chunks and may be NULL). Afterwards
 * ktx_session_logits() holds the next-token logits of the last token.
 * Past the context length: KTX_ERANGE naming the limit, nothing appended.
 */
int ktx_session_append(struct ktx_session *s, const int32_t *tokens, size_t n,
    ktx_cancel_fn cancel, void *cancel_ctx, struct ktx_err *err);
/* Like append, but writes the logits of every appended position to
 * all_logits ([n][n_vocab]) for checking and perplexity. */
int ktx_session_eval_all(struct ktx_session *s, const int32_t *tokens, size_t n,
    float *all_logits, struct ktx_err *err);
/* [n_vocab]; NULL before the first append and after a truncation. */
const float *ktx_session_logits(const struct ktx_session *s);

/*
 * One decode step over several sessions at once: appends tokens[i] to
 * sessions[i]. Routed experts chosen by several sessions are read once.
 * A session that fails (context full) gets its own status in status[i];
 * the others go on. Returns 0 unless the whole step failed.
 */
int ktx_decode_step(struct ktx_session **sessions, const int32_t *tokens, size_t n,
    int *status, struct ktx_err *err);

/* Sampling. temperature 0 means greedy. */
struct ktx_sampler_params {
	float temperature;
	int32_t top_k;          /* 0: off */
	float top_p;            /* 1: off */
	float min_p;            /* 0: off */
	float repeat_penalty;   /* 1: off */
	int32_t repeat_last_n;  /* tokens of history the penalty looks at */
	uint64_t seed;
};

void ktx_sampler_params_default(struct ktx_sampler_params *p);
struct ktx_sampler *ktx_sampler_new(const struct ktx_sampler_params *p); /* NULL: out of memory */
void ktx_sampler_free(struct ktx_sampler *s);
/* Picks the next id from logits[n_vocab]; history is the session's tokens.
 * -1 when n_vocab is 0, logits is NULL or memory runs out. */
int32_t ktx_sampler_sample(struct ktx_sampler *s, const float *logits, uint32_t n_vocab,
    const int32_t *history, size_t n_history);

#endif
