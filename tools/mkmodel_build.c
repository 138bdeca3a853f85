/*
 * mkmodel_build.c - the metadata and tensor list of a synthetic deepseek2
 * GGUF, laid out as the oracle models are (the conventions llama.cpp's
 * convert_hf_to_gguf.py writes for DeepSeek-V2/V3): the same keys in the
 * same order, the same tensor names, shapes (ggml ne order) and order.
 * The tensor bytes are produced at write time by mkmodel_fill.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "tools/mkmodel.h"

/* Tensors tracked while building. */
struct builder {
	const struct mk_spec *s;
	struct gguf_writer *w;
	struct mk_tensor_job *jobs; /* sized once: the writer keeps pointers */
	int64_t njobs, cap;
	bool noted[MK_NCLASS];
	struct mk_stats st;
};

/* The type a tensor of class c and row length ne0 gets. */
static enum ktx_type
class_type(struct builder *b, enum mk_class c, int64_t ne0, const char *name)
{
	enum ktx_type t = c == MK_NORM ? KTX_TYPE_F32 : b->s->type[c];
	const struct ktx_type_traits *tr = ktx_type_traits(t);
	enum ktx_type fb;

	if (ne0 % tr->block_elems == 0)
		return t;
	/* As llama-quantize does: a narrower block type ktx can still read. */
	fb = ne0 % 32 == 0 ? KTX_TYPE_Q8_0 : KTX_TYPE_F16;
	if (!b->s->quiet && !b->noted[c]) {
		fprintf(stderr, "ktx-mkmodel: %s has rows of %" PRId64 ", not a whole number of %s"
		    " blocks: it and tensors like it get %s\n", name, ne0, tr->name, ktx_type_name(fb));
		b->noted[c] = true;
	}
	return fb;
}

/* Adds one tensor whose values follow dist. */
static int
add(struct builder *b, enum mk_class c, enum mk_dist dist, const char *name, uint32_t n_dims,
    int64_t ne0, int64_t ne1, int64_t ne2, struct ktx_err *err)
{
	int64_t ne[3] = { ne0, ne1, ne2 };
	enum ktx_type t = class_type(b, c, ne0, name);
	const struct ktx_type_traits *tr = ktx_type_traits(t);
	struct mk_tensor_job *j;
	int64_t nel = ne0 * (n_dims > 1 ? ne1 : 1) * (n_dims > 2 ? ne2 : 1);
	bool quantized = tr->block_elems > 1;
	int rc;

	if (b->njobs == b->cap)
		return ktx_err_set(err, KTX_ERANGE, "too many tensors (internal limit %" PRId64 ")",
		    b->cap);
	j = &b->jobs[b->njobs];
	j->type = t;
	j->dist = dist;
	j->ne0 = ne0;
	j->key = mk_key(b->s->seed, name);
	switch (b->s->fill) {
	case MK_FILL_QUANTIZE: j->blocks = quantized && !tr->can_quantize; break;
	case MK_FILL_BLOCKS: j->blocks = quantized; break;
	case MK_FILL_AUTO:
		j->blocks = quantized && (!tr->can_quantize || nel > ((int64_t)1 << 20));
		break;
	}
	if (j->blocks && !mk_can_fill_blocks(t))
		return ktx_err_set(err, KTX_EUNSUPPORTED, "%s: ktx-mkmodel cannot make %s blocks",
		    name, tr->name);
	if (!j->blocks && !tr->can_quantize)
		return ktx_err_set(err, KTX_EUNSUPPORTED, "%s: ktx cannot quantize to %s",
		    name, tr->name);
	rc = gguf_writer_add_tensor(b->w, name, t, n_dims, ne, NULL, mk_fill_tensor, j, err);
	if (rc != 0)
		return rc;
	b->njobs++;
	b->st.n_tensors++;
	b->st.params += (uint64_t)nel;
	b->st.data_bytes += ktx_type_row_bytes(t, ne0) * (uint64_t)(nel / ne0);
	return 0;
}

/* Formats blk.<i>.<what> into buf. */
static const char *
blk(char *buf, size_t len, uint32_t i, const char *what)
{
	snprintf(buf, len, "blk.%" PRIu32 ".%s", i, what);
	return buf;
}

#define TRY(x) do { if ((rc = (x)) != 0) return rc; } while (0)

/* Attention tensors of block i. */
static int
add_attention(struct builder *b, uint32_t i, struct ktx_err *err)
{
	const struct mk_spec *s = b->s;
	int64_t e = s->n_embd, h = s->n_head, qk = s->qk_nope + s->qk_rope;
	char n[96];
	int rc;

	TRY(add(b, MK_NORM, MK_DIST_NORM, blk(n, sizeof(n), i, "attn_norm.weight"), 1, e, 1, 1, err));
	if (s->q_lora)
		TRY(add(b, MK_NORM, MK_DIST_NORM, blk(n, sizeof(n), i, "attn_q_a_norm.weight"), 1,
		    s->q_lora, 1, 1, err));
	TRY(add(b, MK_NORM, MK_DIST_NORM, blk(n, sizeof(n), i, "attn_kv_a_norm.weight"), 1,
	    s->kv_lora, 1, 1, err));
	if (s->q_lora) {
		/* [n_embd, q_lora], [q_lora, n_head * (nope + rope)] */
		TRY(add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_q_a.weight"), 2,
		    e, s->q_lora, 1, err));
		TRY(add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_q_b.weight"), 2,
		    s->q_lora, h * qk, 1, err));
	} else {
		/* [n_embd, n_head * (nope + rope)] */
		TRY(add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_q.weight"), 2,
		    e, h * qk, 1, err));
	}
	/* [n_embd, kv_lora + rope] */
	TRY(add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_kv_a_mqa.weight"), 2,
	    e, s->kv_lora + s->qk_rope, 1, err));
	if (s->layout == MK_LAYOUT_KV_B) {
		/* [kv_lora, n_head * (nope + v)] */
		TRY(add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_kv_b.weight"), 2,
		    s->kv_lora, h * (s->qk_nope + s->v_head), 1, err));
	} else {
		/* {nope, kv_lora, n_head} (each head's K part transposed), {kv_lora, v, n_head} */
		TRY(add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_k_b.weight"), 3,
		    s->qk_nope, s->kv_lora, h, err));
		TRY(add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_v_b.weight"), 3,
		    s->kv_lora, s->v_head, h, err));
	}
	/* [n_head * v, n_embd] */
	return add(b, MK_ATTN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "attn_output.weight"), 2,
	    h * s->v_head, e, 1, err);
}

/* Feed-forward tensors of block i: dense, or router + experts. */
static int
add_ffn(struct builder *b, uint32_t i, struct ktx_err *err)
{
	const struct mk_spec *s = b->s;
	int64_t e = s->n_embd, fe = s->n_ff_exp, x = s->n_expert, sh = (int64_t)s->n_ff_exp * s->n_shared;
	char n[96];
	int rc;

	TRY(add(b, MK_NORM, MK_DIST_NORM, blk(n, sizeof(n), i, "ffn_norm.weight"), 1, e, 1, 1, err));
	if (i < s->n_dense_lead) {
		/* [n_embd, n_ff] x2, [n_ff, n_embd] */
		TRY(add(b, MK_DENSE, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_gate.weight"), 2,
		    e, s->n_ff, 1, err));
		TRY(add(b, MK_DENSE, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_up.weight"), 2,
		    e, s->n_ff, 1, err));
		return add(b, MK_DENSE, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_down.weight"), 2,
		    s->n_ff, e, 1, err);
	}
	/* [n_embd, n_expert], then the V3 correction bias [n_expert] */
	TRY(add(b, MK_NORM, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_gate_inp.weight"), 2,
	    e, x, 1, err));
	if (s->routing == MK_ROUTE_V3)
		TRY(add(b, MK_NORM, MK_DIST_BIAS, blk(n, sizeof(n), i, "exp_probs_b.bias"), 1,
		    x, 1, 1, err));
	/* {n_embd, n_ff_exp, n_expert} x2, {n_ff_exp, n_embd, n_expert} */
	TRY(add(b, MK_EXPS, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_gate_exps.weight"), 3,
	    e, fe, x, err));
	TRY(add(b, MK_EXPS, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_up_exps.weight"), 3,
	    e, fe, x, err));
	TRY(add(b, MK_EXPS_DOWN, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_down_exps.weight"), 3,
	    fe, e, x, err));
	if (sh == 0)
		return 0;
	/* [n_embd, n_ff_exp * n_shared] x2, [n_ff_exp * n_shared, n_embd] */
	TRY(add(b, MK_SHEXP, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_gate_shexp.weight"), 2,
	    e, sh, 1, err));
	TRY(add(b, MK_SHEXP, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_up_shexp.weight"), 2,
	    e, sh, 1, err));
	return add(b, MK_SHEXP, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "ffn_down_shexp.weight"), 2,
	    sh, e, 1, err);
}

/* Every tensor, in the oracle models' order. */
static int
add_tensors(struct builder *b, struct ktx_err *err)
{
	const struct mk_spec *s = b->s;
	int64_t e = s->n_embd;
	char n[96];
	int rc;

	/* [n_embd, n_vocab] */
	TRY(add(b, MK_EMBD, MK_DIST_EMBD, "token_embd.weight", 2, e, s->n_vocab, 1, err));
	for (uint32_t i = 0; i < s->n_layer + s->n_nextn; i++) {
		TRY(add_attention(b, i, err));
		TRY(add_ffn(b, i, err));
		if (i < s->n_layer)
			continue;
		/* Multi-token prediction block: [2 n_embd, n_embd] and three norms. */
		TRY(add(b, MK_DENSE, MK_DIST_WEIGHT, blk(n, sizeof(n), i, "nextn.eh_proj.weight"), 2,
		    2 * e, e, 1, err));
		TRY(add(b, MK_NORM, MK_DIST_NORM, blk(n, sizeof(n), i, "nextn.enorm.weight"), 1,
		    e, 1, 1, err));
		TRY(add(b, MK_NORM, MK_DIST_NORM, blk(n, sizeof(n), i, "nextn.hnorm.weight"), 1,
		    e, 1, 1, err));
		TRY(add(b, MK_NORM, MK_DIST_NORM, blk(n, sizeof(n), i, "nextn.shared_head_norm.weight"),
		    1, e, 1, 1, err));
	}
	TRY(add(b, MK_NORM, MK_DIST_NORM, "output_norm.weight", 1, e, 1, 1, err));
	return add(b, MK_OUTPUT, MK_DIST_WEIGHT, "output.weight", 2, e, s->n_vocab, 1, err);
}

/* llama.cpp's llama_ftype for a file whose bulk is type t (llama.h). */
static uint32_t
file_type(enum ktx_type t)
{
	switch (t) {
	case KTX_TYPE_F32: return 0;
	case KTX_TYPE_F16: return 1;
	case KTX_TYPE_Q4_0: return 2;
	case KTX_TYPE_Q8_0: return 7;
	case KTX_TYPE_Q2_K: return 10;
	case KTX_TYPE_Q3_K: return 12;  /* Q3_K_M */
	case KTX_TYPE_Q4_K: return 15;  /* Q4_K_M */
	case KTX_TYPE_Q5_K: return 17;  /* Q5_K_M */
	case KTX_TYPE_Q6_K: return 18;
	case KTX_TYPE_IQ2_XXS: return 19;
	case KTX_TYPE_IQ2_XS: return 20;
	case KTX_TYPE_IQ3_XXS: return 23;
	case KTX_TYPE_IQ1_S: return 24;
	case KTX_TYPE_IQ4_XS: return 30;
	case KTX_TYPE_IQ1_M: return 31;
	case KTX_TYPE_BF16: return 32;
	default: return 0;
	}
}

#define KEY(k) "deepseek2." k

/* The metadata, in the order llama.cpp's converter writes it. */
static int
add_metadata(struct builder *b, const struct gguf_file *vocab, struct ktx_err *err)
{
	const struct mk_spec *s = b->s;
	struct gguf_writer *w = b->w;
	bool mla = s->layout == MK_LAYOUT_K_B;
	const char *name = s->name ? s->name : "ktx-mkmodel synthetic DeepSeek";
	int rc;

	TRY(gguf_writer_add_str(w, "general.architecture", "deepseek2", 9, err));
	TRY(gguf_writer_add_str(w, "general.type", "model", 5, err));
	TRY(gguf_writer_add_str(w, "general.name", name, strlen(name), err));
	TRY(gguf_writer_add_u32(w, KEY("block_count"), s->n_layer + s->n_nextn, err));
	TRY(gguf_writer_add_u32(w, KEY("context_length"), s->ctx_len, err));
	TRY(gguf_writer_add_u32(w, KEY("embedding_length"), s->n_embd, err));
	TRY(gguf_writer_add_u32(w, KEY("feed_forward_length"), s->n_ff, err));
	TRY(gguf_writer_add_u32(w, KEY("attention.head_count"), s->n_head, err));
	TRY(gguf_writer_add_u32(w, KEY("attention.head_count_kv"), mla ? 1 : s->n_head, err));
	TRY(gguf_writer_add_f32(w, KEY("rope.freq_base"), s->rope_base, err));
	TRY(gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps, err));
	TRY(gguf_writer_add_u32(w, KEY("expert_used_count"), s->n_expert_used, err));
	if (s->n_group > 0) {
		TRY(gguf_writer_add_u32(w, KEY("expert_group_count"), s->n_group, err));
		TRY(gguf_writer_add_u32(w, KEY("expert_group_used_count"), s->n_group_used, err));
	}
	TRY(gguf_writer_add_u32(w, KEY("expert_gating_func"), s->routing == MK_ROUTE_V3 ? 2 : 1, err));
	TRY(gguf_writer_add_u32(w, KEY("leading_dense_block_count"), s->n_dense_lead, err));
	TRY(gguf_writer_add_u32(w, KEY("vocab_size"), s->n_vocab, err));
	TRY(gguf_writer_add_u32(w, KEY("attention.q_lora_rank"), s->q_lora, err));
	TRY(gguf_writer_add_u32(w, KEY("attention.kv_lora_rank"), s->kv_lora, err));
	/* With k_b/v_b the "heads" are the latent: one KV head of kv_lora + rope. */
	TRY(gguf_writer_add_u32(w, KEY("attention.key_length"),
	    mla ? s->kv_lora + s->qk_rope : s->qk_nope + s->qk_rope, err));
	TRY(gguf_writer_add_u32(w, KEY("attention.value_length"), mla ? s->kv_lora : s->v_head, err));
	if (mla) {
		TRY(gguf_writer_add_u32(w, KEY("attention.key_length_mla"), s->qk_nope + s->qk_rope, err));
		TRY(gguf_writer_add_u32(w, KEY("attention.value_length_mla"), s->v_head, err));
	}
	TRY(gguf_writer_add_u32(w, KEY("expert_feed_forward_length"), s->n_ff_exp, err));
	TRY(gguf_writer_add_u32(w, KEY("expert_count"), s->n_expert, err));
	TRY(gguf_writer_add_u32(w, KEY("expert_shared_count"), s->n_shared, err));
	TRY(gguf_writer_add_f32(w, KEY("expert_weights_scale"), s->weights_scale, err));
	if (s->routing == MK_ROUTE_V3)
		TRY(gguf_writer_add_bool(w, KEY("expert_weights_norm"), true, err));
	TRY(gguf_writer_add_u32(w, KEY("rope.dimension_count"), s->qk_rope, err));
	if (s->yarn_factor > 1.0f) {
		TRY(gguf_writer_add_str(w, KEY("rope.scaling.type"), "yarn", 4, err));
		TRY(gguf_writer_add_f32(w, KEY("rope.scaling.factor"), s->yarn_factor, err));
		TRY(gguf_writer_add_u32(w, KEY("rope.scaling.original_context_length"),
		    s->yarn_orig_ctx, err));
		if (s->yarn_beta_keys) {
			TRY(gguf_writer_add_f32(w, KEY("rope.scaling.yarn_beta_fast"), 32.0f, err));
			TRY(gguf_writer_add_f32(w, KEY("rope.scaling.yarn_beta_slow"), 1.0f, err));
		}
		/* llama.cpp stores mscale_all_dim as 0.1 * mscale_all_dim. */
		TRY(gguf_writer_add_f32(w, KEY("rope.scaling.yarn_log_multiplier"),
		    0.1f * s->mscale_all_dim, err));
	}
	if (s->n_nextn > 0)
		TRY(gguf_writer_add_u32(w, KEY("nextn_predict_layers"), s->n_nextn, err));
	if (vocab != NULL)
		TRY(gguf_writer_copy_kv(w, vocab, "tokenizer.", err));
	TRY(gguf_writer_add_u32(w, "general.file_type", file_type(s->type[MK_EXPS]), err));
	return gguf_writer_add_u32(w, "general.quantization_version", 2, err);
}

int
mk_build(const struct mk_spec *spec, struct mk_stats *stats, struct ktx_err *err)
{
	struct builder b = { .s = spec };
	struct gguf_file *vocab = NULL;
	int rc;

	b.cap = (int64_t)(spec->n_layer + spec->n_nextn) * 32 + 8;
	b.jobs = calloc((size_t)b.cap, sizeof(*b.jobs));
	b.w = gguf_writer_new();
	if (b.jobs == NULL || b.w == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory");
		goto out;
	}
	if (spec->vocab != NULL && (rc = gguf_open(spec->vocab, &vocab, err)) != 0)
		goto out;
	rc = add_metadata(&b, vocab, err);
	if (rc == 0)
		rc = add_tensors(&b, err);
	gguf_close(vocab);
	if (rc == 0)
		rc = gguf_writer_write(b.w, spec->out, err);
	if (rc == 0 && stats != NULL)
		*stats = b.st;
out:
	gguf_writer_free(b.w);
	free(b.jobs);
	return rc;
}
