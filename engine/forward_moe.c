/*
 * forward_moe.c - the feed-forward half of a block: a dense SiLU-gated FFN
 * in the leading blocks, a mixture of experts after them.
 *
 * DeepSeek-V3 inference/model.py, classes MLP, Gate, Expert and MoE. The
 * tokens of a batch are grouped by the expert they chose, so each expert's
 * weights are read once per batch however many tokens (or sessions) use it.
 */
#include "engine/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward_fast.h"
#include "kernels/ref/ops.h"

void
fwd_route(const struct ktx_hparams *hp, uint32_t n_used, const float *logits,
    const float *bias, uint32_t *experts, float *weights, float *scratch, uint32_t *iscratch)
{
	uint32_t ne = hp->n_expert, gs = hp->n_expert / hp->n_group, e, g, k;
	float *score = scratch, *sel = scratch + ne, *gscore = scratch + 2 * (size_t)ne;
	double sum = 0;

	/* Gate.forward: scores = softmax or sigmoid of the router logits. */
	memcpy(score, logits, ne * sizeof(float));
	if (hp->gating == KTX_GATING_SOFTMAX)
		ktx_ref_softmax(score, ne);
	else
		for (e = 0; e < ne; e++)
			score[e] = ktx_ref_sigmoid(score[e]);
	/* The correction bias steers the choice only ("scores + self.bias");
	 * the weights below use the unbiased scores. */
	for (e = 0; e < ne; e++)
		sel[e] = bias != NULL ? score[e] + bias[e] : score[e];
	if (hp->n_group > 1) {
		/* Group-limited: a group's score is the sum of its top two biased
		 * scores when there is a bias (V3 noaux_tc), else its best score
		 * (V2 group_limited_greedy); experts outside the best
		 * n_group_used groups are masked out. */
		for (g = 0; g < hp->n_group; g++) {
			const float *s = sel + (size_t)g * gs;

			if (bias != NULL && gs >= 2) {
				ktx_ref_topk(s, gs, 2, iscratch);
				gscore[g] = s[iscratch[0]] + s[iscratch[1]];
			} else {
				gscore[g] = s[ktx_ref_argmax(s, gs)];
			}
		}
		ktx_ref_topk(gscore, hp->n_group, hp->n_group_used, iscratch);
		for (g = 0; g < hp->n_group; g++) {
			bool keep = false;

			for (k = 0; k < hp->n_group_used; k++)
				keep = keep || iscratch[k] == g;
			if (!keep)
				for (e = g * gs; e < (g + 1) * gs; e++)
					sel[e] = -INFINITY;
		}
	}
	ktx_ref_topk(sel, ne, n_used, experts);
	/* weights = original_scores.gather(indices), normalized if the model
	 * says so, times route_scale. */
	for (k = 0; k < n_used; k++) {
		weights[k] = score[experts[k]];
		sum += weights[k];
	}
	for (k = 0; k < n_used; k++) {
		double w = weights[k];

		if (hp->weights_norm)
			w /= sum;
		weights[k] = (float)(w * hp->weights_scale);
	}
}

/* down(silu(gate x) * up x) for n inputs, with matrix i2 of each weight:
 * [n_embd -> nff], [n_embd -> nff], [nff -> n_embd]. */
static int
mlp(const struct ktx_model *m, const struct ktx_wt *gate, const struct ktx_wt *up,
    const struct ktx_wt *down, int64_t i2, size_t nff, const float *x, size_t n, float *y,
    struct ktx_err *err)
{
	size_t e = m->hp.n_embd, t;
	float *g = malloc(n * nff * sizeof(float)), *u = malloc(n * nff * sizeof(float));
	int rc;

	if (g == NULL || u == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for an FFN of %zu tokens", n);
		goto out;
	}
	if ((rc = fwd_matmul(m, gate, i2, 0, (int64_t)nff, x, e, n, g, nff, err)) != 0 ||
	    (rc = fwd_matmul(m, up, i2, 0, (int64_t)nff, x, e, n, u, nff, err)) != 0)
		goto out;
	for (t = 0; t < n; t++)
		ktx_ref_swiglu(g + t * nff, u + t * nff, nff);
	rc = fwd_matmul(m, down, i2, 0, (int64_t)e, g, nff, n, y, e, err);
out:
	free(g);
	free(u);
	return rc;
}

/* The routed experts plus the shared ones (MoE.forward: y + shared(x)). */
static int
moe(const struct ktx_model *m, const struct ktx_layer *L, size_t n, const float *h, float *out,
    struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t e = hp->n_embd, ne = hp->n_expert, nu = m->n_expert_used, t, k, c, i, cnt;
	float *router, *wts, *x, *y, *wsel, *scratch;
	uint32_t *sel, *iscratch, *tok;
	double *acc;
	uint32_t ex;
	int rc = 0;

	router = malloc(n * ne * sizeof(float));
	wts = malloc(n * nu * sizeof(float));
	sel = malloc(n * nu * sizeof(uint32_t));
	scratch = malloc(3 * ne * sizeof(float));
	iscratch = malloc(ne * sizeof(uint32_t));
	x = malloc(n * e * sizeof(float));
	y = malloc(n * e * sizeof(float));
	wsel = malloc(n * sizeof(float));
	tok = malloc(n * sizeof(uint32_t));
	acc = calloc(n * e, sizeof(double));
	if (!router || !wts || !sel || !scratch || !iscratch || !x || !y || !wsel || !tok || !acc) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for the experts of %zu tokens", n);
		goto out;
	}
	/* [n_embd -> n_expert] */
	if ((rc = fwd_matmul(m, &L->gate_inp, 0, 0, (int64_t)ne, h, e, n, router, ne, err)) != 0)
		goto out;
	for (t = 0; t < n; t++)
		fwd_route(hp, (uint32_t)nu, router + t * ne, L->exp_probs_b, sel + t * nu,
		    wts + t * nu, scratch, iscratch);
	/* Expert by expert, in id order, with all the tokens that chose it. */
	for (ex = 0; ex < ne; ex++) {
		for (t = 0, cnt = 0; t < n; t++)
			for (k = 0; k < nu; k++)
				if (sel[t * nu + k] == ex) {
					tok[cnt] = (uint32_t)t;
					wsel[cnt++] = wts[t * nu + k];
				}
		if (cnt == 0)
			continue;
		for (c = 0; c < cnt; c++)
			memcpy(x + c * e, h + (size_t)tok[c] * e, e * sizeof(float));
		if ((rc = mlp(m, &L->gate_exps, &L->up_exps, &L->down_exps, ex, hp->n_ff_exp, x,
		    cnt,
		    y, err)) != 0)
			goto out;
		for (c = 0; c < cnt; c++)
			ktx_ref_axpy(acc + (size_t)tok[c] * e, wsel[c], y + c * e, e);
	}
	if (hp->n_expert_shared > 0) {
		if ((rc = mlp(m, &L->gate_shexp, &L->up_shexp, &L->down_shexp, 0,
		    (size_t)hp->n_ff_exp * hp->n_expert_shared, h, n, y, err)) != 0)
			goto out;
	} else {
		memset(y, 0, n * e * sizeof(float));
	}
	for (i = 0; i < n * e; i++)
		out[i] = (float)(acc[i] + y[i]);
out:
	free(router);
	free(wts);
	free(sel);
	free(scratch);
	free(iscratch);
	free(x);
	free(y);
	free(wsel);
	free(tok);
	free(acc);
	return rc;
}

int
fwd_ffn(struct ktx_model *m, uint32_t il, size_t n, const float *h, float *out,
    struct ktx_err *err)
{
	const struct ktx_layer *L = &m->layers[il];

	if (m->compute == KTX_PATH_FAST && fwd_fast_ffn_has(m, il))
		return fwd_fast_ffn(m, il, n, h, out, err);
	if (il < m->hp.n_dense_lead)
		return mlp(m, &L->ffn_gate, &L->ffn_up, &L->ffn_down, 0, m->hp.n_ff, h, n, out,
		    err);
	return moe(m, L, n, h, out, err);
}
