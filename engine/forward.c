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

/* Logits for the items that asked for them; runs of items whose buffers
 * follow each other in memory share one pass over the output weights. */
static int
head(struct ktx_model *m, const struct ktx_fwd_item *items, size_t n, const float *x,
    float *hbuf, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t e = hp->n_embd, nv = hp->n_vocab, t, u, k;
	int rc;

	for (t = 0; t < n; t = u) {
		if (items[t].logits == NULL) {
			u = t + 1;
			continue;
		}
		for (u = t + 1; u < n && items[u].logits == items[u - 1].logits + nv; u++)
			;
		for (k = t; k < u; k++)
			ktx_ref_rmsnorm(hbuf + (k - t) * e, x + k * e, m->out_norm, e, hp->rms_eps);
		/* [n_embd -> n_vocab] */
		if ((rc = fwd_matmul(m, &m->output, 0, 0, (int64_t)nv, hbuf, e, u - t,
		    items[t].logits,
		    nv, err)) != 0)
			return rc;
	}
	return 0;
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
	x = malloc(n * e * sizeof(float));
	h = malloc(n * e * sizeof(float));
	a = malloc(n * e * sizeof(float));
	buf = malloc(e * sizeof(float));
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
	free(x);
	free(h);
	free(a);
	free(buf);
	return rc;
}
