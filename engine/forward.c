/*
 * forward.c - the reference forward pass of a deepseek2 model over a batch
 * of tokens: embedding, the blocks, the output head.
 *
 * DeepSeek-V3 inference/model.py, Transformer.forward and Block.forward:
 *   x = embed(token)
 *   per block: x += attn(attn_norm(x));  x += ffn(ffn_norm(x))
 *   logits = head(norm(x))
 * The blocks live in forward_attn.c (MLA) and forward_moe.c (dense FFN or
 * experts). A batch may mix sessions (batched decode) or hold a run of one
 * session's prompt (prefill); every token sees exactly the cache of its own
 * session up to its own position.
 */
#include "engine/model.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/ref/ops.h"

/* Items whose logits one pass over the output weights computes. */
#define HEAD_ROWS 32

/*
 * Logits for the items that asked for them, HEAD_ROWS items per pass over
 * the output weights (the largest matrix a token meets): the sessions of a
 * batched decode step share one pass. Rows go straight into the items'
 * buffers when those follow each other in memory (a prompt's positions),
 * else through a scratch block (released with the pass's arena). hbuf holds
 * n rows of n_embd.
 */
static int
head(struct ktx_model *m, const struct ktx_fwd_item *items, size_t n, const float *x,
    float *hbuf, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t e = hp->n_embd, nv = hp->n_vocab, t = 0, k, c;
	const struct ktx_fwd_item *chunk[HEAD_ROWS];
	float *scratch = NULL, *y;
	bool packed;
	int rc = 0;

	while (rc == 0) {
		/* The next HEAD_ROWS items that want logits. */
		for (c = 0; c < HEAD_ROWS && t < n; t++)
			if (items[t].logits != NULL)
				chunk[c++] = &items[t];
		if (c == 0)
			break;
		packed = true;
		for (k = 0; k < c; k++) {
			ktx_ref_rmsnorm(hbuf + k * e, x + (size_t)(chunk[k] - items) * e, m->out_norm,
			    e, hp->rms_eps);
			packed = packed && (k == 0 || chunk[k]->logits == chunk[k - 1]->logits + nv);
		}
		y = chunk[0]->logits;
		if (!packed) {
			if (scratch == NULL && (scratch = ktx_arena_array(m->scratch, HEAD_ROWS * nv,
			    sizeof(float))) == NULL) {
				rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for %d rows of logits",
				    HEAD_ROWS);
				break;
			}
			y = scratch;
		}
		/* [n_embd -> n_vocab] */
		if ((rc = fwd_matmul(m, &m->output, 0, 0, (int64_t)nv, hbuf, e, c, y, nv,
		    err)) != 0)
			break;
		for (k = 0; !packed && k < c; k++)
			memcpy(chunk[k]->logits, scratch + k * nv, nv * sizeof(float));
	}
	return rc;
}

int
ktx_forward(struct ktx_model *m, const struct ktx_fwd_item *items, size_t n,
    struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t e = hp->n_embd, t, i;
	float *x, *h, *a, *buf;
	uint32_t il;
	int rc = 0;

	if (n == 0)
		return 0;
	x = ktx_arena_array(m->scratch, n * e, sizeof(float));
	h = ktx_arena_array(m->scratch, n * e, sizeof(float));
	a = ktx_arena_array(m->scratch, n * e, sizeof(float));
	buf = ktx_arena_array(m->scratch, e, sizeof(float));
	if (x == NULL || h == NULL || a == NULL || buf == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for a batch of %zu tokens", n);
		goto out;
	}
	/* ---- embedding: token_embd [n_embd, n_vocab] ---- */
	for (t = 0; t < n; t++) {
		const float *row;

		if (items[t].token < 0 || (uint32_t)items[t].token >= hp->n_vocab) {
			rc = ktx_err_set(err, KTX_EINVAL,
			    "token id %d is outside the vocabulary (0..%u)",
			    items[t].token, hp->n_vocab - 1);
			goto out;
		}
		row = fwd_row(&m->tok_embd, 0, items[t].token, buf, err);
		if (row == NULL) {
			rc = err ? err->code : KTX_EFORMAT;
			goto out;
		}
		memcpy(x + t * e, row, e * sizeof(float));
	}
	/* ---- blocks ---- */
	for (il = 0; il < hp->n_layer; il++) {
		const struct ktx_layer *L = &m->layers[il];

		for (t = 0; t < n; t++)
			ktx_ref_rmsnorm(h + t * e, x + t * e, L->attn_norm, e, hp->rms_eps);
		if ((rc = fwd_attention(m, il, items, n, h, a, err)) != 0)
			goto out;
		for (i = 0; i < n * e; i++)
			x[i] += a[i];
		for (t = 0; t < n; t++)
			ktx_ref_rmsnorm(h + t * e, x + t * e, L->ffn_norm, e, hp->rms_eps);
		if ((rc = fwd_ffn(m, il, n, h, a, err)) != 0)
			goto out;
		for (i = 0; i < n * e; i++)
			x[i] += a[i];
	}
	/* ---- output head ---- */
	rc = head(m, items, n, x, h, err);
out:
	/* Every buffer of the pass came from the arena: all released. */
	ktx_arena_reset(m->scratch);
	return rc;
}
