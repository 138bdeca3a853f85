/*
 * model.c - loading a deepseek2 GGUF: hyper-parameters from the metadata,
 * tensors bound and checked against them, the tokenizer; and the model half
 * of engine/ktx.h (load, free, info).
 *
 * Every size the forward pass relies on is checked here, once, with a
 * message naming the key or tensor at fault: after ktx_model_load succeeds
 * the forward pass indexes weights without further checks.
 */
#include "engine/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/gguf.h"
#include "engine/ktx.h"
#include "engine/quant.h"
#include "engine/tokenizer.h"
#include "kernels/ref/ops.h"

#define ARCH "deepseek2"
/* Bounds on hyper-parameters: far above any real model, low enough that
 * products of two of them cannot overflow size_t. */
#define MAX_DIM (1u << 20)
#define MAX_LAYERS 4096u
#define MAX_EXPERTS 65536u
#define DEFAULT_CTX_CAP 4096u

/* ---- metadata ------------------------------------------------------------ */

static int
get_u32(const struct gguf_file *f, const char *name, bool required, uint32_t def, uint32_t *v,
    struct ktx_err *err)
{
	char key[128];
	int rc;

	snprintf(key, sizeof(key), ARCH ".%s", name);
	rc = gguf_get_u32(f, key, v, err);
	if (rc == KTX_ENOTFOUND && !required) {
		*v = def;
		return 0;
	}
	if (rc == KTX_ENOTFOUND)
		return ktx_err_set(err, KTX_EFORMAT, "model metadata lacks %s", key);
	return rc;
}

static int
get_f32(const struct gguf_file *f, const char *name, bool required, float def, float *v,
    struct ktx_err *err)
{
	char key[128];
	int rc;

	snprintf(key, sizeof(key), ARCH ".%s", name);
	rc = gguf_get_f32(f, key, v, err);
	if (rc == KTX_ENOTFOUND && !required) {
		*v = def;
		return 0;
	}
	if (rc == KTX_ENOTFOUND)
		return ktx_err_set(err, KTX_EFORMAT, "model metadata lacks %s", key);
	if (rc == 0 && !isfinite(*v))
		return ktx_err_set(err, KTX_EFORMAT, "%s is not a finite number", key);
	return rc;
}

static int
get_bool(const struct gguf_file *f, const char *name, bool *v, struct ktx_err *err)
{
	char key[128];
	int rc;

	snprintf(key, sizeof(key), ARCH ".%s", name);
	rc = gguf_get_bool(f, key, v, err);
	if (rc == KTX_ENOTFOUND) {
		*v = false;
		return 0;
	}
	return rc;
}

/* Fails unless lo <= v <= hi, naming the key. */
static int
check_range(const char *name, uint32_t v, uint32_t lo, uint32_t hi, struct ktx_err *err)
{
	if (v < lo || v > hi)
		return ktx_err_set(err, KTX_EFORMAT, ARCH ".%s = %u is out of range [%u, %u]",
		    name, v, lo, hi);
	return 0;
}

/* Reads the rope and YaRN keys. */
static int
read_rope(const struct gguf_file *f, struct ktx_hparams *hp, struct ktx_err *err)
{
	struct gguf_str type;
	int rc;

	if ((rc = get_f32(f, "rope.freq_base", false, 10000.0f, &hp->rope_base, err)) != 0)
		return rc;
	if (!(hp->rope_base > 1))
		return ktx_err_set(err, KTX_EFORMAT, ARCH ".rope.freq_base must be > 1");
	rc = gguf_get_str(f, ARCH ".rope.scaling.type", &type, err);
	if (rc == KTX_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (type.len == 4 && memcmp(type.ptr, "none", 4) == 0)
		return 0;
	if (type.len != 4 || memcmp(type.ptr, "yarn", 4) != 0)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    "rope scaling '%.*s' is not supported (ktx knows yarn)",
		    (int)(type.len > 64 ? 64 : type.len), type.ptr);
	hp->yarn = true;
	if ((rc = get_f32(f, "rope.scaling.factor", true, 1, &hp->yarn_factor, err)) != 0 ||
	    (rc = get_u32(f, "rope.scaling.original_context_length", true, 0, &hp->yarn_orig_ctx,
		err)) != 0 ||
	    (rc = get_f32(f, "rope.scaling.yarn_beta_fast", false, 32, &hp->yarn_beta_fast,
		err)) != 0 ||
	    (rc = get_f32(f, "rope.scaling.yarn_beta_slow", false, 1, &hp->yarn_beta_slow,
		err)) != 0 ||
	    (rc = get_f32(f, "rope.scaling.yarn_log_multiplier", false, 0, &hp->yarn_log_mul,
		err)) != 0)
		return rc;
	if (!(hp->yarn_factor >= 1) || hp->yarn_factor > 1e6f)
		return ktx_err_set(err, KTX_EFORMAT, ARCH ".rope.scaling.factor %g is out of range",
		    hp->yarn_factor);
	if (hp->yarn_orig_ctx < 1)
		return ktx_err_set(err, KTX_EFORMAT,
		    ARCH ".rope.scaling.original_context_length must be >= 1");
	if (!(hp->yarn_beta_fast > 0) || !(hp->yarn_beta_slow > 0))
		return ktx_err_set(err, KTX_EFORMAT,
		    ARCH ".rope.scaling.yarn_beta_fast/slow must be > 0");
	return 0;
}

/* Reads the attention dimensions; the two layouts store them differently. */
static int
read_attn(const struct gguf_file *f, struct ktx_hparams *hp, struct ktx_err *err)
{
	uint32_t n_head_kv, key_len, val_len, key_mla, val_mla;
	int rc;

	if ((rc = get_u32(f, "attention.head_count", true, 0, &hp->n_head, err)) != 0 ||
	    (rc = check_range("attention.head_count", hp->n_head, 1, 65536, err)) != 0 ||
	    (rc = get_u32(f, "attention.head_count_kv", false, hp->n_head, &n_head_kv, err)) != 0 ||
	    (rc = get_u32(f, "attention.q_lora_rank", false, 0, &hp->q_lora, err)) != 0 ||
	    (rc = check_range("attention.q_lora_rank", hp->q_lora, 0, MAX_DIM, err)) != 0 ||
	    (rc = get_u32(f, "attention.kv_lora_rank", true, 0, &hp->kv_lora, err)) != 0 ||
	    (rc = check_range("attention.kv_lora_rank", hp->kv_lora, 1, MAX_DIM, err)) != 0 ||
	    (rc = get_u32(f, "rope.dimension_count", true, 0, &hp->qk_rope, err)) != 0 ||
	    (rc = check_range("rope.dimension_count", hp->qk_rope, 2, 65536, err)) != 0 ||
	    (rc = get_u32(f, "attention.key_length", true, 0, &key_len, err)) != 0 ||
	    (rc = get_u32(f, "attention.value_length", true, 0, &val_len, err)) != 0 ||
	    (rc = get_u32(f, "attention.key_length_mla", false, 0, &key_mla, err)) != 0 ||
	    (rc = get_u32(f, "attention.value_length_mla", false, 0, &val_mla, err)) != 0 ||
	    (rc = get_f32(f, "attention.layer_norm_rms_epsilon", true, 0, &hp->rms_eps, err)) != 0)
		return rc;
	if (hp->qk_rope % 2 != 0)
		return ktx_err_set(err, KTX_EFORMAT, ARCH ".rope.dimension_count = %u is odd",
		    hp->qk_rope);
	if (!(hp->rms_eps > 0) || hp->rms_eps > 1)
		return ktx_err_set(err, KTX_EFORMAT,
		    ARCH ".attention.layer_norm_rms_epsilon %g is out of range",
		    hp->rms_eps);
	if (key_mla != 0) {
		/* Newer files describe the latent cache as one MQA head of
		 * kv_lora + rope keys and kv_lora values; the per-head sizes
		 * live in the *_mla keys. */
		if (val_mla == 0)
			return ktx_err_set(err, KTX_EFORMAT,
			    ARCH ".attention.key_length_mla is set but value_length_mla is not");
		if (key_len != hp->kv_lora + hp->qk_rope || val_len != hp->kv_lora ||
		    n_head_kv != 1)
			return ktx_err_set(err, KTX_EFORMAT,
			    "MLA metadata: key_length %u, value_length %u, head_count_kv %u, want %u, %u, 1",
			    key_len, val_len, n_head_kv, hp->kv_lora + hp->qk_rope, hp->kv_lora);
		key_len = key_mla;
		val_len = val_mla;
	} else if (n_head_kv != hp->n_head) {
		return ktx_err_set(err, KTX_EFORMAT,
		    ARCH ".attention.head_count_kv = %u, want %u (head_count)",
		    n_head_kv, hp->n_head);
	}
	if (key_len <= hp->qk_rope || key_len > MAX_DIM)
		return ktx_err_set(err, KTX_EFORMAT,
		    "key length %u must exceed the rope dimensions (%u)",
		    key_len, hp->qk_rope);
	if (val_len < 1 || val_len > MAX_DIM)
		return ktx_err_set(err, KTX_EFORMAT, "value length %u is out of range", val_len);
	hp->qk_nope = key_len - hp->qk_rope;
	hp->v_head = val_len;
	if ((uint64_t)hp->n_head * (hp->qk_nope + hp->qk_rope) > MAX_DIM * 16ull ||
	    (uint64_t)hp->n_head * hp->v_head > MAX_DIM * 16ull)
		return ktx_err_set(err, KTX_EFORMAT, "attention of %u heads is too large",
		    hp->n_head);
	return 0;
}

/* Reads the FFN and routing keys. */
static int
read_ffn(const struct gguf_file *f, struct ktx_hparams *hp, struct ktx_err *err)
{
	uint32_t gating;
	bool moe = hp->n_layer > hp->n_dense_lead;
	int rc;

	if ((rc = get_u32(f, "feed_forward_length", hp->n_dense_lead > 0, 0, &hp->n_ff,
		err)) != 0 ||
	    (rc = check_range("feed_forward_length", hp->n_ff, hp->n_dense_lead > 0, MAX_DIM,
		err)) != 0 ||
	    (rc = get_u32(f, "expert_count", moe, 0, &hp->n_expert, err)) != 0 ||
	    (rc = get_u32(f, "expert_used_count", moe, 0, &hp->n_expert_used, err)) != 0 ||
	    (rc = get_u32(f, "expert_feed_forward_length", moe, 0, &hp->n_ff_exp, err)) != 0 ||
	    (rc = get_u32(f, "expert_shared_count", false, 0, &hp->n_expert_shared, err)) != 0 ||
	    (rc = get_f32(f, "expert_weights_scale", false, 1.0f, &hp->weights_scale, err)) != 0 ||
	    (rc = get_bool(f, "expert_weights_norm", &hp->weights_norm, err)) != 0 ||
	    (rc = get_u32(f, "expert_gating_func", false, 0, &gating, err)) != 0 ||
	    (rc = get_u32(f, "expert_group_count", false, 0, &hp->n_group, err)) != 0 ||
	    (rc = get_u32(f, "expert_group_used_count", false, 0, &hp->n_group_used, err)) != 0)
		return rc;
	if (!moe)
		return 0;
	if ((rc = check_range("expert_count", hp->n_expert, 1, MAX_EXPERTS, err)) != 0 ||
	    (rc = check_range("expert_used_count", hp->n_expert_used, 1, hp->n_expert, err)) != 0 ||
	    (rc = check_range("expert_feed_forward_length", hp->n_ff_exp, 1, MAX_DIM, err)) != 0 ||
	    (rc = check_range("expert_shared_count", hp->n_expert_shared, 0, 1024, err)) != 0)
		return rc;
	/* Files from before the key existed are DeepSeek-V2/V2.5: softmax. */
	if (gating == 0)
		gating = KTX_GATING_SOFTMAX;
	if (gating != KTX_GATING_SOFTMAX && gating != KTX_GATING_SIGMOID)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    ARCH ".expert_gating_func = %u is not supported (1 softmax, 2 sigmoid)",
		    gating);
	hp->gating = (enum ktx_gating)gating;
	if (hp->n_group <= 1) {
		hp->n_group = 1;
		hp->n_group_used = 1;
	}
	if (hp->n_group_used == 0)
		hp->n_group_used = hp->n_group;
	if (hp->n_expert % hp->n_group != 0)
		return ktx_err_set(err, KTX_EFORMAT,
		    ARCH ".expert_group_count = %u does not divide expert_count %u",
		    hp->n_group, hp->n_expert);
	if ((rc = check_range("expert_group_used_count", hp->n_group_used, 1, hp->n_group,
		err)) != 0)
		return rc;
	if (hp->n_expert_used > hp->n_group_used * (hp->n_expert / hp->n_group))
		return ktx_err_set(err, KTX_EFORMAT,
		    "expert_used_count %u exceeds the %u experts of %u used groups",
		    hp->n_expert_used,
		    hp->n_group_used * (hp->n_expert / hp->n_group), hp->n_group_used);
	if (!(hp->weights_scale > 0))
		return ktx_err_set(err, KTX_EFORMAT, ARCH ".expert_weights_scale must be > 0");
	return 0;
}

static int
read_hparams(const struct gguf_file *f, struct ktx_hparams *hp, struct ktx_err *err)
{
	struct gguf_str arch;
	uint32_t n_block;
	int rc;

	memset(hp, 0, sizeof(*hp));
	rc = gguf_get_str(f, "general.architecture", &arch, err);
	if (rc == KTX_ENOTFOUND)
		return ktx_err_set(err, KTX_EFORMAT,
		    "not a model: general.architecture is missing");
	if (rc != 0)
		return rc;
	if (arch.len != strlen(ARCH) || memcmp(arch.ptr, ARCH, arch.len) != 0)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    "architecture '%.*s' is not supported (ktx runs " ARCH ")",
		    (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
	if ((rc = get_u32(f, "context_length", true, 0, &hp->n_ctx_train, err)) != 0 ||
	    (rc = check_range("context_length", hp->n_ctx_train, 1, UINT32_MAX, err)) != 0 ||
	    (rc = get_u32(f, "embedding_length", true, 0, &hp->n_embd, err)) != 0 ||
	    (rc = check_range("embedding_length", hp->n_embd, 1, MAX_DIM, err)) != 0 ||
	    (rc = get_u32(f, "block_count", true, 0, &n_block, err)) != 0 ||
	    (rc = check_range("block_count", n_block, 1, MAX_LAYERS, err)) != 0 ||
	    (rc = get_u32(f, "nextn_predict_layers", false, 0, &hp->n_nextn, err)) != 0 ||
	    (rc = check_range("nextn_predict_layers", hp->n_nextn, 0, n_block - 1, err)) != 0 ||
	    (rc = get_u32(f, "vocab_size", false, 0, &hp->n_vocab, err)) != 0 ||
	    (rc = check_range("vocab_size", hp->n_vocab, 0, 1u << 24, err)) != 0)
		return rc;
	/* Multi-token-prediction blocks come last; the forward pass stops
	 * before them. */
	hp->n_layer = n_block - hp->n_nextn;
	if ((rc = get_u32(f, "leading_dense_block_count", false, 0, &hp->n_dense_lead, err)) != 0 ||
	    (rc = check_range("leading_dense_block_count", hp->n_dense_lead, 0, hp->n_layer,
		err)) != 0)
		return rc;
	if ((rc = read_attn(f, hp, err)) != 0 || (rc = read_ffn(f, hp, err)) != 0 ||
	    (rc = read_rope(f, hp, err)) != 0)
		return rc;
	return 0;
}

/* ---- tensors ------------------------------------------------------------- */

/* Binding state: the file, and the cursor into the float32 copies. */
struct binder {
	struct ktx_model *m;
	struct gguf_file *f;
	float *small;
	size_t small_used, small_cap;
};

static const char *
shape_str(const int64_t *ne, uint32_t n, char *buf, size_t len)
{
	size_t at = 0;
	uint32_t i;

	at += (size_t)snprintf(buf, len, "{");
	for (i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "",
		    (long long)ne[i]);
	if (at < len)
		snprintf(buf + at, len - at, "}");
	return buf;
}

/*
 * Finds a tensor and checks its shape against want[0..n) (trailing dims 1).
 * Absent: KTX_EFORMAT naming it, unless optional (then *out stays NULL and
 * 0 is returned).
 */
static int
find_tensor(struct binder *b, const char *name, const int64_t *want, uint32_t n, bool optional,
    const struct gguf_tensor **out, struct ktx_err *err)
{
	const struct gguf_tensor *t = gguf_tensor_find(b->f, name);
	const struct ktx_type_traits *tr;
	char s1[96], s2[96];
	uint32_t i;

	*out = NULL;
	if (t == NULL) {
		if (optional)
			return 0;
		return ktx_err_set(err, KTX_EFORMAT, "tensor %s is missing", name);
	}
	for (i = 0; i < GGUF_MAX_DIMS; i++) {
		int64_t w = i < n ? want[i] : 1;

		if (t->ne[i] != w)
			return ktx_err_set(err, KTX_EFORMAT, "tensor %s has shape %s, want %s",
			    name,
			    shape_str(t->ne, t->n_dims > n ? t->n_dims : n, s1, sizeof(s1)),
			    shape_str(want, n, s2, sizeof(s2)));
	}
	tr = ktx_type_traits(t->type);
	if (tr == NULL || !tr->can_dequantize)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    "tensor %s has type %s, which ktx cannot read",
		    name, ktx_type_name(t->type));
	*out = t;
	return 0;
}

/* Binds a weight matrix (or stack of them) of shape want. */
static int
bind_wt(struct binder *b, struct ktx_wt *w, const char *name, const int64_t *want, uint32_t n,
    bool optional, struct ktx_err *err)
{
	const struct gguf_tensor *t;
	uint64_t rb;
	int rc;

	memset(w, 0, sizeof(*w));
	if ((rc = find_tensor(b, name, want, n, optional, &t, err)) != 0 || t == NULL)
		return rc;
	rb = ktx_type_row_bytes(t->type, t->ne[0]);
	if (rb == 0)
		return ktx_err_set(err, KTX_EFORMAT,
		    "tensor %s: rows of %lld are not whole %s blocks",
		    name, (long long)t->ne[0], ktx_type_name(t->type));
	if (rb * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] > t->nbytes)
		return ktx_err_set(err, KTX_EFORMAT,
		    "tensor %s holds %llu bytes, its shape needs more",
		    name, (unsigned long long)t->nbytes);
	w->name = t->name;
	w->type = t->type;
	w->ne[0] = t->ne[0];
	w->ne[1] = t->ne[1];
	w->ne[2] = t->ne[2];
	w->row_bytes = (size_t)rb;
	w->data = t->data;
	b->m->n_params += (uint64_t)gguf_tensor_nelements(t);
	b->m->n_bytes += t->nbytes;
	return 0;
}

/* Binds a vector of len floats (norm weights, biases) as a float32 copy. */
static int
bind_vec(struct binder *b, const float **out, const char *name, int64_t len, bool optional,
    struct ktx_err *err)
{
	const struct gguf_tensor *t;
	float *dst;
	int rc;

	*out = NULL;
	if ((rc = find_tensor(b, name, &len, 1, optional, &t, err)) != 0 || t == NULL)
		return rc;
	if (b->small_used + (size_t)len > b->small_cap)
		return ktx_err_set(err, KTX_EFORMAT, "tensor %s: more vector data than planned",
		    name);
	dst = b->small + b->small_used;
	if ((rc = ktx_dequantize(t->type, t->data, dst, len, err)) != 0)
		return rc;
	b->small_used += (size_t)len;
	b->m->n_params += (uint64_t)len;
	b->m->n_bytes += t->nbytes;
	*out = dst;
	return 0;
}

/* "blk.N.<s>" into the caller's name buffer, and a shape literal with its
 * length, for the binding calls below. */
#define NAME(s) (snprintf(name, sizeof(name), "blk.%u." s, il), name)
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__}), \
	(uint32_t)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* Binds the attention tensors of block il. */
static int
bind_attn(struct binder *b, uint32_t il, struct ktx_layer *L, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &b->m->hp;
	int64_t e = hp->n_embd, nq = (int64_t)hp->n_head * (hp->qk_nope + hp->qk_rope);
	char name[96];
	int rc;

	if ((rc = bind_vec(b, &L->attn_norm, NAME("attn_norm.weight"), e, false, err)) != 0)
		return rc;
	if (hp->q_lora > 0) {
		if ((rc = bind_wt(b, &L->q_a, NAME("attn_q_a.weight"), SHAPE(e, hp->q_lora), false,
			err)) != 0 ||
		    (rc = bind_vec(b, &L->q_a_norm, NAME("attn_q_a_norm.weight"), hp->q_lora, false,
			err)) != 0 ||
		    (rc = bind_wt(b, &L->q_b, NAME("attn_q_b.weight"), SHAPE(hp->q_lora, nq), false,
			err)) != 0)
			return rc;
	} else if ((rc = bind_wt(b, &L->q, NAME("attn_q.weight"), SHAPE(e, nq), false, err)) != 0) {
		return rc;
	}
	if ((rc = bind_wt(b, &L->kv_a, NAME("attn_kv_a_mqa.weight"),
	    SHAPE(e, hp->kv_lora + hp->qk_rope), false, err)) != 0 ||
	    (rc = bind_vec(b, &L->kv_a_norm, NAME("attn_kv_a_norm.weight"), hp->kv_lora, false,
		err)) != 0)
		return rc;
	if (b->m->hp.mla_layout) {
		if ((rc = bind_wt(b, &L->k_b, NAME("attn_k_b.weight"),
		    SHAPE(hp->qk_nope, hp->kv_lora, hp->n_head), false, err)) != 0 ||
		    (rc = bind_wt(b, &L->v_b, NAME("attn_v_b.weight"),
		    SHAPE(hp->kv_lora, hp->v_head, hp->n_head), false, err)) != 0)
			return rc;
	} else if ((rc = bind_wt(b, &L->kv_b, NAME("attn_kv_b.weight"),
	    SHAPE(hp->kv_lora, (int64_t)hp->n_head * (hp->qk_nope + hp->v_head)), false,
		err)) != 0) {
		return rc;
	}
	return bind_wt(b, &L->attn_out, NAME("attn_output.weight"),
	    SHAPE((int64_t)hp->n_head * hp->v_head, e), false, err);
}

/* Binds the FFN tensors of block il: dense or mixture of experts. */
static int
bind_ffn(struct binder *b, uint32_t il, struct ktx_layer *L, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &b->m->hp;
	int64_t e = hp->n_embd, fe = hp->n_ff_exp, ne = hp->n_expert;
	int64_t fs = (int64_t)hp->n_ff_exp * hp->n_expert_shared;
	char name[96];
	int rc;

	if ((rc = bind_vec(b, &L->ffn_norm, NAME("ffn_norm.weight"), e, false, err)) != 0)
		return rc;
	if (il < hp->n_dense_lead) {
		if ((rc = bind_wt(b, &L->ffn_gate, NAME("ffn_gate.weight"), SHAPE(e, hp->n_ff),
			false, err)) != 0 ||
		    (rc = bind_wt(b, &L->ffn_up, NAME("ffn_up.weight"), SHAPE(e, hp->n_ff), false,
			err)) != 0 ||
		    (rc = bind_wt(b, &L->ffn_down, NAME("ffn_down.weight"), SHAPE(hp->n_ff, e),
			false, err)) != 0)
			return rc;
		return 0;
	}
	if ((rc = bind_wt(b, &L->gate_inp, NAME("ffn_gate_inp.weight"), SHAPE(e, ne), false,
		err)) != 0 ||
	    (rc = bind_vec(b, &L->exp_probs_b, NAME("exp_probs_b.bias"), ne, true, err)) != 0 ||
	    (rc = bind_wt(b, &L->gate_exps, NAME("ffn_gate_exps.weight"), SHAPE(e, fe, ne), false,
		err)) != 0 ||
	    (rc = bind_wt(b, &L->up_exps, NAME("ffn_up_exps.weight"), SHAPE(e, fe, ne), false,
		err)) != 0 ||
	    (rc = bind_wt(b, &L->down_exps, NAME("ffn_down_exps.weight"), SHAPE(fe, e, ne), false,
		err)) != 0)
		return rc;
	if (hp->n_expert_shared == 0)
		return 0;
	if ((rc = bind_wt(b, &L->gate_shexp, NAME("ffn_gate_shexp.weight"), SHAPE(e, fs), false,
		err)) != 0 ||
	    (rc = bind_wt(b, &L->up_shexp, NAME("ffn_up_shexp.weight"), SHAPE(e, fs), false,
		err)) != 0 ||
	    (rc = bind_wt(b, &L->down_shexp, NAME("ffn_down_shexp.weight"), SHAPE(fs, e), false,
		err)) != 0)
		return rc;
	return 0;
}
#undef NAME

int
ktx_model_bind(struct ktx_model *m, struct gguf_file *f, struct ktx_err *err)
{
	struct ktx_hparams *hp = &m->hp;
	const struct gguf_tensor *emb;
	struct binder b = {.m = m, .f = f};
	uint32_t il;
	int rc;

	if ((rc = read_hparams(f, hp, err)) != 0)
		return rc;
	/* The vocabulary size follows the embedding when the key is absent. */
	emb = gguf_tensor_find(f, "token_embd.weight");
	if (emb == NULL)
		return ktx_err_set(err, KTX_EFORMAT, "tensor token_embd.weight is missing");
	if (hp->n_vocab == 0) {
		if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
			return ktx_err_set(err, KTX_EFORMAT,
			    "tensor token_embd.weight has %lld rows",
			    (long long)emb->ne[1]);
		hp->n_vocab = (uint32_t)emb->ne[1];
	}
	/* The layout is the file's choice: attn_k_b + attn_v_b in newer
	 * conversions, attn_kv_b in older ones. */
	hp->mla_layout = gguf_tensor_find(f, "blk.0.attn_k_b.weight") != NULL;

	b.small_cap = (size_t)hp->n_embd * (2 * hp->n_layer + 1) +
	    (size_t)hp->n_layer * (hp->q_lora + hp->kv_lora + hp->n_expert);
	b.small = malloc(b.small_cap * sizeof(float));
	if (b.small == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the model's norm weights");
	m->owned = b.small;
	m->layers = calloc(hp->n_layer, sizeof(*m->layers));
	if (m->layers == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for %u layers", hp->n_layer);

	if ((rc = bind_wt(&b, &m->tok_embd, "token_embd.weight", SHAPE(hp->n_embd, hp->n_vocab),
		false, err)) != 0 ||
	    (rc = bind_vec(&b, &m->out_norm, "output_norm.weight", hp->n_embd, false, err)) != 0 ||
	    (rc = bind_wt(&b, &m->output, "output.weight", SHAPE(hp->n_embd, hp->n_vocab), false,
		err)) != 0)
		return rc;
	for (il = 0; il < hp->n_layer; il++) {
		if ((rc = bind_attn(&b, il, &m->layers[il], err)) != 0 ||
		    (rc = bind_ffn(&b, il, &m->layers[il], err)) != 0)
			return rc;
	}
	return 0;
}
#undef SHAPE

/* ---- the public model API ------------------------------------------------ */

void
ktx_model_params_default(struct ktx_model_params *p)
{
	memset(p, 0, sizeof(*p));
	p->attn = KTX_ATTN_ABSORBED;
	p->compute = KTX_PATH_FAST;
	p->cache_type = KTX_CACHE_F32;
	p->act_residual = KTX_ACT_DEFAULT;
}

/* Marks which weights take residual activation rows (act_residual, a set
 * of KTX_ACT_* classes). */
static void
mark_act_residual(struct ktx_model *m, unsigned classes)
{
	bool attn = (classes & KTX_ACT_ATTN) != 0, dense = (classes & KTX_ACT_DENSE) != 0;
	bool routed = (classes & KTX_ACT_ROUTED) != 0;

	for (uint32_t il = 0; il < m->hp.n_layer; il++) {
		struct ktx_layer *L = &m->layers[il];
		struct ktx_wt *attn_w[] = { &L->q, &L->q_a, &L->q_b, &L->kv_a, &L->kv_b, &L->k_b,
			&L->v_b, &L->attn_out };
		struct ktx_wt *dense_w[] = { &L->ffn_gate, &L->ffn_up, &L->ffn_down, &L->gate_shexp,
			&L->up_shexp, &L->down_shexp };
		struct ktx_wt *routed_w[] = { &L->gate_inp, &L->gate_exps, &L->up_exps,
			&L->down_exps };

		for (size_t i = 0; i < sizeof(attn_w) / sizeof(attn_w[0]); i++)
			attn_w[i]->act_residual = attn;
		for (size_t i = 0; i < sizeof(dense_w) / sizeof(dense_w[0]); i++)
			dense_w[i]->act_residual = dense;
		for (size_t i = 0; i < sizeof(routed_w) / sizeof(routed_w[0]); i++)
			routed_w[i]->act_residual = routed;
	}
	m->output.act_residual = (classes & KTX_ACT_OUTPUT) != 0;
}

static void
progress(const struct ktx_model_params *p, double frac, const char *what)
{
	if (p->progress != NULL)
		p->progress(p->progress_ctx, frac, what);
}

/* Settings that belong to this load rather than the file. */
static int
apply_params(struct ktx_model *m, const struct ktx_model_params *p, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	uint32_t avail;

	if (p->attn != KTX_ATTN_ABSORBED && p->attn != KTX_ATTN_NAIVE)
		return ktx_err_set(err, KTX_EINVAL, "unknown attention path %d", (int)p->attn);
	m->attn = p->attn;
	if (p->compute != KTX_PATH_FAST && p->compute != KTX_PATH_REF)
		return ktx_err_set(err, KTX_EINVAL, "unknown compute path %d", (int)p->compute);
	m->compute = p->compute;
	if (p->cache_type != KTX_CACHE_F16 && p->cache_type != KTX_CACHE_BF16 &&
	    p->cache_type != KTX_CACHE_F32)
		return ktx_err_set(err, KTX_EINVAL, "unknown cache type %d", (int)p->cache_type);
	m->cache_type = p->cache_type;
	if ((p->act_residual & ~(unsigned)KTX_ACT_ALL) != 0)
		return ktx_err_set(err, KTX_EINVAL, "unknown activation classes 0x%x",
		    p->act_residual & ~(unsigned)KTX_ACT_ALL);
	mark_act_residual(m, p->act_residual);
	if (p->n_threads < 0)
		return ktx_err_set(err, KTX_EINVAL, "thread count %d is negative", p->n_threads);
	m->n_threads = p->n_threads;
#ifdef _OPENMP
	if (m->n_threads == 0)
		m->n_threads = omp_get_num_procs();
#else
	m->n_threads = 1;
#endif
	if (m->n_threads < 1)
		m->n_threads = 1;
	m->n_ctx = p->n_ctx;
	if (m->n_ctx == 0)
		m->n_ctx = hp->n_ctx_train < DEFAULT_CTX_CAP ? hp->n_ctx_train : DEFAULT_CTX_CAP;
	if (m->n_ctx > hp->n_ctx_train)
		return ktx_err_set(err, KTX_ERANGE, "context length %u exceeds the model's %u",
		    m->n_ctx, hp->n_ctx_train);
	m->n_expert_used = hp->n_expert_used;
	if (p->n_expert_used != 0) {
		avail = hp->n_group_used * (hp->n_expert / (hp->n_group ? hp->n_group : 1));
		if (hp->n_expert == 0)
			return ktx_err_set(err, KTX_EINVAL,
			    "the model has no routed experts to choose");
		if (p->n_expert_used > avail)
			return ktx_err_set(err, KTX_ERANGE,
			    "%u active experts asked, the model's routing "
			    "offers at most %u", p->n_expert_used, avail);
		m->n_expert_used = p->n_expert_used;
	}
	return 0;
}

/* The rope frequencies and the softmax scale, with YaRN's corrections. */
static int
setup_rope(struct ktx_model *m, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	double mscale = 1.0;

	m->rope_freq = malloc(hp->qk_rope / 2 * sizeof(double));
	if (m->rope_freq == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for rope frequencies");
	ktx_ref_rope_freqs(m->rope_freq, hp->qk_rope, hp->rope_base, hp->yarn ? hp->yarn_factor : 1,
	    hp->yarn_orig_ctx, hp->yarn_beta_fast, hp->yarn_beta_slow);
	/* DeepSeek-V3 inference/model.py, MLA.__init__: softmax_scale *=
	 * mscale^2 with mscale = 0.1 * mscale_all_dim * ln(factor) + 1; the
	 * GGUF stores 0.1 * mscale_all_dim as yarn_log_multiplier. */
	if (hp->yarn)
		mscale = ktx_ref_yarn_mscale(hp->yarn_factor, hp->yarn_log_mul / 0.1);
	m->kq_scale = (float)(mscale * mscale / sqrt((double)(hp->qk_nope + hp->qk_rope)));
	return 0;
}

static char *
model_name(const struct gguf_file *f, const char *path)
{
	struct gguf_str s;
	const char *base;
	char *out;

	if (gguf_get_str(f, "general.name", &s, NULL) == 0 && s.len > 0 && s.len < 256) {
		out = malloc(s.len + 1);
		if (out != NULL) {
			memcpy(out, s.ptr, s.len);
			out[s.len] = '\0';
		}
		return out;
	}
	base = strrchr(path, '/');
	return strdup(base ? base + 1 : path);
}

int
ktx_model_load(const struct ktx_model_params *p, struct ktx_model **out, struct ktx_err *err)
{
	struct ktx_model *m;
	int rc;

	*out = NULL;
	if (p == NULL || p->path == NULL)
		return ktx_err_set(err, KTX_EINVAL, "no model path given");
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->scratch = ktx_arena_new()) == NULL) {
		free(m);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory");
	}
	progress(p, 0.0, "loading the weights");
	if ((rc = ktx_model_file_open(p->path, p->load, &m->gguf, &m->load, err)) != 0)
		goto fail;
	progress(p, 0.2, "binding tensors");
	if ((rc = ktx_model_bind(m, m->gguf, err)) != 0 || (rc = apply_params(m, p, err)) != 0 ||
	    (rc = setup_rope(m, err)) != 0)
		goto fail;
	/* Repacking writes the image: only a copy of the file's own. */
	if (p->compute == KTX_PATH_FAST && m->load == KTX_LOAD_READ && !p->no_repack) {
		progress(p, 0.6, "repacking the weights");
		if ((rc = ktx_model_repack(m, err)) != 0)
			goto fail;
	}
	progress(p, 0.8, "loading the tokenizer");
	if (gguf_kv_find(m->gguf, "tokenizer.ggml.model") >= 0 &&
	    (rc = ktx_tokenizer_load(m->gguf, &m->tok, err)) != 0)
		goto fail;
	m->name = model_name(m->gguf, p->path);
	if (m->name == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory");
		goto fail;
	}
	progress(p, 1.0, "ready");
	*out = m;
	return 0;
fail:
	ktx_model_free(m);
	return rc;
}

void
ktx_model_free(struct ktx_model *m)
{
	if (m == NULL)
		return;
	ktx_tokenizer_free(m->tok);
	gguf_close(m->gguf);
	free(m->layers);
	free(m->owned);
	free(m->rope_freq);
	free(m->name);
	ktx_arena_free(m->scratch);
	free(m);
}

void
ktx_model_get_info(const struct ktx_model *m, struct ktx_model_info *info)
{
	const struct ktx_hparams *hp = &m->hp;

	memset(info, 0, sizeof(*info));
	info->arch = ARCH;
	info->name = m->name;
	info->n_vocab = hp->n_vocab;
	info->n_ctx_train = hp->n_ctx_train;
	info->n_ctx = m->n_ctx;
	info->n_layer = hp->n_layer;
	info->n_embd = hp->n_embd;
	info->n_head = hp->n_head;
	info->n_expert = hp->n_expert;
	info->n_expert_used = m->n_expert_used;
	info->n_expert_shared = hp->n_expert_shared;
	info->n_dense_lead = hp->n_dense_lead;
	info->n_params = m->n_params;
	info->bytes_ram = m->n_bytes;
	info->load = m->load;
	info->bytes_repacked = m->n_bytes_repacked;
	info->bytes_vram = 0;
	info->token_bos = m->tok ? ktx_token_bos(m->tok) : -1;
	info->token_eos = m->tok ? ktx_token_eos(m->tok) : -1;
}

const struct ktx_tokenizer *
ktx_model_tokenizer(const struct ktx_model *m)
{
	return m->tok;
}

bool
ktx_model_is_eog(const struct ktx_model *m, int32_t id)
{
	return m->tok != NULL && ktx_token_is_eog(m->tok, id);
}
