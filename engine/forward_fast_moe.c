/*
 * forward_fast_moe.c - the feed-forward half of a block on the fast path:
 * the same function as forward_moe.c, computed per expert over all the
 * tokens that chose it.
 *
 * The block's input is converted to the experts' dot type once for the
 * whole batch; each chosen expert then runs as one small GEMM (gate, up,
 * SiLU, down) over its tokens' rows, so its weights are read once per
 * batch: once per prompt chunk in prefill, once per step for all sessions
 * of a batched decode. Results per token are accumulated in expert id
 * order, independent of which other tokens share the batch.
 */
#include "engine/forward_fast.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/ref/ops.h"

/* True when every weight of an FFN has a fast kernel. */
static bool
mlp_fast(const struct ktx_wt *gate, const struct ktx_wt *up, const struct ktx_wt *down)
{
	return fwd_fast_has(gate) && fwd_fast_has(up) && fwd_fast_has(down);
}

/*
 * down(silu(gate x) * up x) for the n rows of xa (converted for gate), with
 * matrix i2 of each weight; x (float rows, stride xs) is read only when up
 * takes another dot type. g and u hold n * nff floats.
 */
static int
mlp(const struct ktx_model *m, const struct ktx_wt *gate, const struct ktx_wt *up,
    const struct ktx_wt *down, int64_t i2, size_t nff, const struct fwd_act *xa,
    const float *x, size_t xs, float *g, float *u, float *y, size_t ys, struct ktx_err *err)
{
	struct fwd_act ua, ga;
	size_t t;
	int rc;

	if ((rc = fwd_fast_matmul_act(m, gate, i2, 0, (int64_t)nff, xa, g, nff, 0, err)) != 0)
		return rc;
	if (fwd_act_fits(xa, up)) {
		rc = fwd_fast_matmul_act(m, up, i2, 0, (int64_t)nff, xa, u, nff, 0, err);
	} else if ((rc = fwd_act_make(&ua, up->type, x, xs, xa->n, up->ne[0], err)) == 0) {
		rc = fwd_fast_matmul_act(m, up, i2, 0, (int64_t)nff, &ua, u, nff, 0, err);
		fwd_act_free(&ua);
	}
	if (rc != 0)
		return rc;
	for (t = 0; t < xa->n; t++)
		ktx_ref_swiglu(g + t * nff, u + t * nff, nff);
	if ((rc = fwd_act_make(&ga, down->type, g, nff, xa->n, (int64_t)nff, err)) != 0)
		return rc;
	rc = fwd_fast_matmul_act(m, down, i2, 0, down->ne[1], &ga, y, ys, 0, err);
	fwd_act_free(&ga);
	return rc;
}

/* A dense FFN or the shared experts over all n tokens. */
static int
dense(const struct ktx_model *m, const struct ktx_wt *gate, const struct ktx_wt *up,
    const struct ktx_wt *down, size_t nff, const float *h, size_t n, float *y,
    struct ktx_err *err)
{
	size_t e = m->hp.n_embd;
	float *g = malloc(n * nff * sizeof(float)), *u = malloc(n * nff * sizeof(float));
	struct fwd_act xa;
	int rc;

	if (g == NULL || u == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for an FFN of %zu tokens", n);
		goto out;
	}
	if ((rc = fwd_act_make(&xa, gate->type, h, e, n, (int64_t)e, err)) != 0)
		goto out;
	rc = mlp(m, gate, up, down, 0, nff, &xa, h, e, g, u, y, e, err);
	fwd_act_free(&xa);
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
	size_t e = hp->n_embd, ne = hp->n_expert, nu = m->n_expert_used, nff = hp->n_ff_exp;
	size_t t, k, c, i, cnt, rb;
	float *router, *wts, *scratch, *g, *u, *y, *xg, *xf, *wsel;
	uint32_t *sel, *iscratch, *tok;
	double *acc;
	struct fwd_act ha, xa;
	uint32_t ex;
	int rc = 0;

	ha.owned = NULL;
	router = malloc(n * ne * sizeof(float));
	wts = malloc(n * nu * sizeof(float));
	sel = malloc(n * nu * sizeof(uint32_t));
	scratch = malloc(3 * ne * sizeof(float));
	iscratch = malloc(ne * sizeof(uint32_t));
	g = malloc(n * nff * sizeof(float));
	u = malloc(n * nff * sizeof(float));
	y = malloc(n * e * sizeof(float));
	xg = malloc(2 * n * e * sizeof(float)); /* >= n converted rows of any dot type */
	xf = malloc(n * e * sizeof(float));
	wsel = malloc(n * sizeof(float));
	tok = malloc(n * sizeof(uint32_t));
	acc = calloc(n * e, sizeof(double));
	if (!router || !wts || !sel || !scratch || !iscratch || !g || !u || !y || !xg || !xf || !wsel ||
	    !tok || !acc) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for the experts of %zu tokens", n);
		goto out;
	}
	/* [n_embd -> n_expert] */
	if ((rc = fwd_matmul(m, &L->gate_inp, 0, 0, (int64_t)ne, h, e, n, router, ne, err)) != 0)
		goto out;
	for (t = 0; t < n; t++)
		fwd_route(hp, (uint32_t)nu, router + t * ne, L->exp_probs_b, sel + t * nu,
		    wts + t * nu, scratch, iscratch);
	/* The block's input, converted once for every expert. */
	if ((rc = fwd_act_make(&ha, L->gate_exps.type, h, e, n, (int64_t)e, err)) != 0)
		goto out;
	xa = ha;
	xa.owned = NULL;
	rb = ha.row_bytes * (size_t)ha.nsub;
	for (ex = 0; ex < ne; ex++) {
		uint8_t *rows = (uint8_t *)xg;

		for (t = 0, cnt = 0; t < n; t++)
			for (k = 0; k < nu; k++)
				if (sel[t * nu + k] == ex) {
					tok[cnt] = (uint32_t)t;
					wsel[cnt++] = wts[t * nu + k];
				}
		if (cnt == 0)
			continue;
		/* Gather the chosen tokens' converted rows (and float rows
		 * for an up matrix of another dot type). */
		for (c = 0; c < cnt; c++)
			memcpy(rows + c * rb, ha.data + (size_t)tok[c] * rb, rb);
		if (!fwd_act_fits(&ha, &L->up_exps))
			for (c = 0; c < cnt; c++)
				memcpy(xf + c * e, h + (size_t)tok[c] * e, e * sizeof(float));
		xa.data = rows;
		xa.n = cnt;
		if ((rc = mlp(m, &L->gate_exps, &L->up_exps, &L->down_exps, ex, nff, &xa, xf, e,
		    g, u, y, e, err)) != 0)
			goto out;
		for (c = 0; c < cnt; c++)
			ktx_ref_axpy(acc + (size_t)tok[c] * e, wsel[c], y + c * e, e);
	}
	if (hp->n_expert_shared > 0) {
		if ((rc = dense(m, &L->gate_shexp, &L->up_shexp, &L->down_shexp,
		    nff * hp->n_expert_shared, h, n, y, err)) != 0)
			goto out;
	} else {
		memset(y, 0, n * e * sizeof(float));
	}
	for (i = 0; i < n * e; i++)
		out[i] = (float)(acc[i] + y[i]);
out:
	fwd_act_free(&ha);
	free(router);
	free(wts);
	free(sel);
	free(scratch);
	free(iscratch);
	free(g);
	free(u);
	free(y);
	free(xg);
	free(xf);
	free(wsel);
	free(tok);
	free(acc);
	return rc;
}

bool
fwd_fast_ffn_has(const struct ktx_model *m, uint32_t il)
{
	const struct ktx_layer *L = &m->layers[il];

	if (il < m->hp.n_dense_lead)
		return mlp_fast(&L->ffn_gate, &L->ffn_up, &L->ffn_down);
	return mlp_fast(&L->gate_exps, &L->up_exps, &L->down_exps) &&
	       (m->hp.n_expert_shared == 0 || mlp_fast(&L->gate_shexp, &L->up_shexp,
	       &L->down_shexp));
}

int
fwd_fast_ffn(struct ktx_model *m, uint32_t il, size_t n, const float *h, float *out,
    struct ktx_err *err)
{
	const struct ktx_layer *L = &m->layers[il];

	if (il < m->hp.n_dense_lead)
		return dense(m, &L->ffn_gate, &L->ffn_up, &L->ffn_down, m->hp.n_ff, h, n, out,
		    err);
	return moe(m, L, n, h, out, err);
}
