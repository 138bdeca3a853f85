/*
 * model.h - the engine's inside view of a loaded deepseek2 model and its
 * sessions, shared by the binding (model.c), the forward pass
 * (forward*.c) and sessions (session.c). Users go through engine/ktx.h.
 *
 * Weights stay in the file's encoding inside the mapping; a struct ktx_wt
 * says where a tensor's rows are, and the matmuls dequantize row by row.
 */
#ifndef KTX_ENGINE_MODEL_H
#define KTX_ENGINE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/arena.h"
#include "engine/err.h"
#include "engine/ktx.h"
#include "kernels/qtypes.h"

struct gguf_file;

/* A weight tensor as the file lays it out: rows of ne[0] elements, ne[1]
 * rows per matrix, ne[2] matrices (experts or heads). */
struct ktx_wt {
	const char *name;      /* NULL: the tensor is absent */
	enum ktx_type type;
	int64_t ne[3];
	size_t row_bytes;
	const uint8_t *data;
	bool act_residual;     /* fast path: 8-bit activations + residual row */
	bool repacked;         /* data in kernels/cpu/repack.h's groups (model_repack.c) */
};

enum ktx_gating {
	KTX_GATING_SOFTMAX = 1, /* numbered as expert_gating_func */
	KTX_GATING_SIGMOID = 2,
};

/* Every hyper-parameter the forward pass uses, from the file's metadata. */
struct ktx_hparams {
	uint32_t n_vocab, n_ctx_train, n_embd;
	uint32_t n_layer;        /* blocks run by the forward pass */
	uint32_t n_nextn;        /* multi-token-prediction blocks after them (ignored) */
	uint32_t n_dense_lead;   /* leading blocks with a dense FFN */
	uint32_t n_head, n_ff, n_ff_exp;
	uint32_t q_lora;         /* 0: plain attn_q (V2-Lite) */
	uint32_t kv_lora, qk_nope, qk_rope, v_head;
	uint32_t n_expert, n_expert_used, n_expert_shared;
	uint32_t n_group, n_group_used; /* 1/1 when routing is not group-limited */
	enum ktx_gating gating;
	bool weights_norm;
	float weights_scale;
	float rms_eps;
	float rope_base;
	bool yarn;
	float yarn_factor, yarn_beta_fast, yarn_beta_slow, yarn_log_mul;
	uint32_t yarn_orig_ctx;
	bool mla_layout;         /* attn_k_b + attn_v_b instead of attn_kv_b */
};

struct ktx_layer {
	const float *attn_norm;       /* [n_embd] */
	struct ktx_wt q;              /* [n_embd -> n_head*(nope+rope)] when q_lora == 0 */
	struct ktx_wt q_a;            /* [n_embd -> q_lora] */
	const float *q_a_norm;        /* [q_lora] */
	struct ktx_wt q_b;            /* [q_lora -> n_head*(nope+rope)] */
	struct ktx_wt kv_a;           /* attn_kv_a_mqa [n_embd -> kv_lora+rope] */
	const float *kv_a_norm;       /* [kv_lora] */
	struct ktx_wt kv_b;           /* [kv_lora -> n_head*(nope+v)], legacy layout */
	struct ktx_wt k_b;            /* ne {nope, kv_lora, n_head}: W_UK^T per head */
	struct ktx_wt v_b;            /* ne {kv_lora, v, n_head}: W_UV per head */
	struct ktx_wt attn_out;       /* [n_head*v -> n_embd] */
	const float *ffn_norm;        /* [n_embd] */
	/* dense blocks */
	struct ktx_wt ffn_gate, ffn_up; /* [n_embd -> n_ff] */
	struct ktx_wt ffn_down;       /* [n_ff -> n_embd] */
	/* MoE blocks */
	struct ktx_wt gate_inp;       /* [n_embd -> n_expert], the router */
	const float *exp_probs_b;     /* [n_expert] or NULL: selection bias */
	struct ktx_wt gate_exps, up_exps; /* [n_expert][n_embd -> n_ff_exp] */
	struct ktx_wt down_exps;      /* [n_expert][n_ff_exp -> n_embd] */
	struct ktx_wt gate_shexp, up_shexp; /* [n_embd -> n_shared*n_ff_exp] */
	struct ktx_wt down_shexp;     /* [n_shared*n_ff_exp -> n_embd] */
};

struct ktx_model {
	struct gguf_file *gguf;
	enum ktx_load load;          /* KTX_LOAD_READ or KTX_LOAD_MMAP */
	struct ktx_tokenizer *tok;
	struct ktx_hparams hp;
	struct ktx_layer *layers;     /* [hp.n_layer] */
	struct ktx_wt tok_embd;       /* [n_vocab][n_embd] */
	const float *out_norm;        /* [n_embd] */
	struct ktx_wt output;         /* [n_embd -> n_vocab] */
	float *owned;                 /* the small vectors above, as float32 */
	double *rope_freq;            /* [qk_rope/2] */
	float kq_scale;               /* softmax scale incl. YaRN's mscale^2 */
	uint32_t n_ctx;               /* default session length */
	uint32_t n_expert_used;       /* active experts (default hp's) */
	int n_threads;
	enum ktx_attn_path attn;
	enum ktx_path compute;
	enum ktx_cache_type cache_type;
	char *name;
	uint64_t n_params, n_bytes;
	uint64_t n_bytes_repacked;   /* of n_bytes, in repacked groups */
	struct ktx_arena *scratch;    /* the forward pass's buffers */
};

/* Latent KV cache and history of one conversation. */
struct ktx_session {
	struct ktx_model *m;
	uint32_t n_ctx;               /* limit */
	uint32_t n_past;
	uint32_t cap;                 /* positions allocated */
	int32_t *tokens;              /* [cap] */
	uint8_t *kv;                  /* [n_layer][cap][kv_lora + rope] elements */
	enum ktx_cache_type kv_type;  /* of the elements: F32 on the reference path */
	size_t kv_elsize;             /* bytes per element */
	float *logits;                /* [n_vocab] */
	bool logits_valid;
};

/* Binds hyper-parameters and tensors of an opened deepseek2 file. */
int ktx_model_bind(struct ktx_model *m, struct gguf_file *f, struct ktx_err *err);
/* Repacks the fast path's matrices that have repacked kernels, in place
 * (the image must be the process's own: KTX_LOAD_READ). */
int ktx_model_repack(struct ktx_model *m, struct ktx_err *err);
/* Opens path the way want says (KTX_LOAD_AUTO: model_load.c's choice);
 * *used is the mode taken, KTX_LOAD_READ or KTX_LOAD_MMAP. */
int ktx_model_file_open(const char *path, enum ktx_load want, struct gguf_file **out,
    enum ktx_load *used, struct ktx_err *err);

/* Floats per position per layer in the cache: kv_lora + rope. */
static inline size_t
ktx_kv_width(const struct ktx_hparams *hp)
{
	return (size_t)hp->kv_lora + hp->qk_rope;
}

/* The cache row of position pos in layer il: the normalized latent
 * [kv_lora], then the rotated rope key [rope], as s->kv_type elements.
 * A layer's rows follow each other (ktx_kv_stride bytes apart). */
static inline size_t
ktx_kv_stride(const struct ktx_session *s)
{
	return ktx_kv_width(&s->m->hp) * s->kv_elsize;
}

static inline void *
ktx_kv_row(const struct ktx_session *s, uint32_t il, uint32_t pos)
{
	return s->kv + ((size_t)il * s->cap + pos) * ktx_kv_stride(s);
}

/* Threads for a parallel loop of about work multiply-adds: below a few
 * hundred thousand, waking threads costs more than it saves. */
static inline int
ktx_par_threads(const struct ktx_model *m, double work)
{
	return work >= 262144.0 ? m->n_threads : 1;
}

/* Makes room for n positions in s's cache (n <= s->n_ctx). */
int ktx_session_reserve(struct ktx_session *s, uint32_t n, struct ktx_err *err);

/* One token to run: which session, its id and its position there. Its
 * cache row is written; logits (n_vocab floats) are written when not NULL. */
struct ktx_fwd_item {
	struct ktx_session *s;
	int32_t token;
	uint32_t pos;
	float *logits;
};

/*
 * Runs n tokens through the model in one batch. Items of one session must
 * have consecutive positions in order, and each session's cache must hold
 * every earlier position and have room for the new ones (ktx_session_reserve).
 */
int ktx_forward(struct ktx_model *m, const struct ktx_fwd_item *items, size_t n,
    struct ktx_err *err);

/*
 * Matmuls over weights in their file encoding (forward_matmul.c), for n
 * inputs at once; x[t] starts at x + t * x_stride, y[t] at y + t * y_stride.
 * fwd_matmul: y[t][r - row0] = W[i2][r] . x[t] for r in [row0, row0 + nrows),
 * parallel over rows with m->n_threads threads.
 * fwd_matmul_rows: the same on the calling thread; rowbuf holds ne[0] floats.
 * fwd_matmul_t_rows: the product with the transposed rows, on the calling
 * thread: y[t][c] = sum_r x[t][r - row0] * W[i2][r][c] (nrows inputs, ne[0]
 * outputs); acc holds n * ne[0] doubles.
 * Rows are dequantized once per call and applied to all n inputs.
 */
int fwd_matmul(const struct ktx_model *m, const struct ktx_wt *w, int64_t i2, int64_t row0,
    int64_t nrows, const float *x, size_t x_stride, size_t n, float *y, size_t y_stride,
    struct ktx_err *err);
int fwd_matmul_rows(const struct ktx_wt *w, int64_t i2, int64_t row0, int64_t nrows,
    const float *x, size_t x_stride, size_t n, float *y, size_t y_stride, float *rowbuf,
    struct ktx_err *err);
int fwd_matmul_t_rows(const struct ktx_wt *w, int64_t i2, int64_t row0, int64_t nrows,
    const float *x, size_t x_stride, size_t n, float *y, size_t y_stride, float *rowbuf,
    double *acc, struct ktx_err *err);
/* Row r of matrix i2 of w as float32: a pointer into the mapping for F32
 * weights, else dequantized into buf[ne[0]]. NULL on a dequantizer error. */
const float *fwd_row(const struct ktx_wt *w, int64_t i2, int64_t r, float *buf,
    struct ktx_err *err);

/* Attention of one layer (forward_attn.c): h[n][n_embd] in, out[n][n_embd]. */
int fwd_attention(struct ktx_model *m, uint32_t il, const struct ktx_fwd_item *items,
    size_t n, const float *h, float *out, struct ktx_err *err);

/* The FFN of one layer, dense or MoE (forward_moe.c). */
int fwd_ffn(struct ktx_model *m, uint32_t il, size_t n, const float *h, float *out,
    struct ktx_err *err);

/*
 * Routing of one token (forward_moe.c): from the router's logits[n_expert]
 * and the optional selection bias, the n_used chosen experts and their
 * weights. scratch holds 3 * n_expert floats, iscratch n_expert ids.
 */
void fwd_route(const struct ktx_hparams *hp, uint32_t n_used, const float *logits,
    const float *bias, uint32_t *experts, float *weights, float *scratch, uint32_t *iscratch);

#endif
