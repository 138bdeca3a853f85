/*
 * mkmodel.h - ktx-mkmodel's parts: the model description (spec), building
 * the GGUF (metadata and tensor list), and filling tensors with seeded
 * random values.
 */
#ifndef KTX_TOOLS_MKMODEL_H
#define KTX_TOOLS_MKMODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/err.h"
#include "kernels/qtypes.h"

/* Tensor classes that get their own element type. */
enum mk_class {
	MK_EMBD,       /* token_embd */
	MK_OUTPUT,     /* output */
	MK_ATTN,       /* attn_q, attn_q_a/_b, attn_kv_a_mqa, attn_kv_b or k_b/v_b, attn_output */
	MK_DENSE,      /* ffn_gate/up/down of the leading dense blocks, nextn.eh_proj */
	MK_SHEXP,      /* shared experts */
	MK_EXPS,       /* routed experts: gate and up */
	MK_EXPS_DOWN,  /* routed experts: down */
	MK_NORM,       /* norms, router, correction bias: always f32 */
	MK_NCLASS
};

enum mk_routing {
	MK_ROUTE_V2, /* softmax, no bias, no weight norm */
	MK_ROUTE_V3, /* sigmoid + exp_probs_b correction bias, normalised */
};

enum mk_layout {
	MK_LAYOUT_KV_B, /* legacy attn_kv_b [kv_lora, n_head * (nope + v)] */
	MK_LAYOUT_K_B,  /* attn_k_b {nope, kv_lora, n_head} + attn_v_b {kv_lora, v, n_head} */
};

enum mk_fill {
	MK_FILL_AUTO,     /* quantize random floats; random blocks when ktx cannot or the tensor is big */
	MK_FILL_QUANTIZE, /* quantize random floats wherever ktx can */
	MK_FILL_BLOCKS,   /* random blocks with valid scales for every quantized tensor */
};

struct mk_spec {
	const char *out;       /* output path */
	const char *vocab;     /* GGUF to copy tokenizer.* from, or NULL */
	const char *name;      /* general.name */
	uint64_t seed;
	uint32_t n_embd, n_layer, n_nextn, n_dense_lead, n_head;
	uint32_t q_lora, kv_lora, qk_rope, qk_nope, v_head;
	uint32_t n_ff, n_ff_exp, n_expert, n_expert_used, n_shared, n_group, n_group_used;
	uint32_t n_vocab, ctx_len, yarn_orig_ctx;
	float rope_base, rms_eps, yarn_factor, mscale_all_dim, weights_scale;
	bool yarn_beta_keys; /* write yarn_beta_fast/slow (32, 1) */
	enum mk_routing routing;
	enum mk_layout layout;
	enum mk_fill fill;
	enum ktx_type type[MK_NCLASS];
	int threads;           /* 0: OpenMP's default */
	bool quiet;
};

struct mk_stats {
	int64_t n_tensors;
	uint64_t params, data_bytes;
};

/* Builds the model described by spec and writes spec->out; notes tensors
 * whose rows do not fit the asked type on stderr unless spec->quiet. */
int mk_build(const struct mk_spec *spec, struct mk_stats *stats, struct ktx_err *err);

/* How a tensor's values are drawn. */
enum mk_dist {
	MK_DIST_WEIGHT, /* N(0, 1/sqrt(ne[0])) */
	MK_DIST_EMBD,   /* N(0, 1) */
	MK_DIST_NORM,   /* 1 + N(0, 0.1^2) */
	MK_DIST_BIAS,   /* N(0, 0.1^2) */
};

/* What the fill callback needs to produce one tensor. */
struct mk_tensor_job {
	enum ktx_type type;
	enum mk_dist dist;
	int64_t ne0;          /* row length */
	uint64_t key;         /* the tensor's random stream: seed and name */
	bool blocks;          /* random blocks instead of quantized random floats */
};

/* A gguf_tensor_fill_fn: produces the job's tensor into dst. */
int mk_fill_tensor(void *job, void *dst, uint64_t nbytes, struct ktx_err *err);

/* Whether mkmodel can make blocks of type t directly (without quantizing). */
bool mk_can_fill_blocks(enum ktx_type t);

/* A stream key from the seed and a tensor name. */
uint64_t mk_key(uint64_t seed, const char *name);

#endif
