/*
 * forward_attn.c - multi-head latent attention (MLA) of one block.
 *
 * DeepSeek-V3 inference/model.py, class MLA. Per token, the cache keeps the
 * normalized latent c = norm(W_DKV h) [kv_lora] and the rotated rope key
 * k_pe [rope], shared by all heads. Head h's keys and values are
 * k_nope = W_UK[h] c and v = W_UV[h] c. Two ways to attend:
 *   naive:    expand k_nope and v for every cached position, attend as usual
 *             (model.py's attn_impl == "naive");
 *   absorbed: fold W_UK into the query (q_lat = W_UK[h]^T q_nope) and W_UV
 *             into the output, attending in latent space over c itself
 *             (attn_impl == "absorb"): nothing per position is expanded.
 * Both compute the same function; they differ in float rounding only.
 * On the reference path the absorbed softmax is computed per (token, head)
 * in double; the fast path runs attn_flash.c's tiled kernel over the cache
 * in its stored element type.
 *
 * Weight layouts: legacy attn_kv_b is [kv_lora -> n_head*(nope+v)], each
 * head's nope rows then v rows; newer files split it into attn_k_b (ne
 * {nope, kv_lora, n_head}: W_UK[h] transposed) and attn_v_b (ne {kv_lora, v,
 * n_head}: W_UV[h]).
 */
#include "engine/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attn_flash.h"
#include "engine/forward_fast.h"
#include "kernels/ref/ops.h"

/* Query tokens per task of the fast kernel, and (query, head) rows a task
 * aims at: a tile of keys is read once for all of them. */
#define FLASH_QBLOCK 8
#define FLASH_ROWS 64

/* Records the first error of a parallel loop. */
#define KEEP_ERR(rc, rc2, err, e2)                                   \
	do {                                                         \
		if ((rc2) != 0) {                                    \
			_Pragma("omp critical(ktx_attn_err)")        \
			{                                            \
				if ((rc) == 0) {                     \
					(rc) = (rc2);                \
					if ((err) != NULL)           \
						*(err) = (e2);       \
				}                                    \
			}                                            \
		}                                                    \
	} while (0)

/* Where head h's W_UK lives, and whether its rows run over nope (kv_b) or
 * over kv_lora (k_b). */
static void
uk_of(const struct ktx_model *m, const struct ktx_layer *L, uint32_t h, const struct ktx_wt **w,
    int64_t *i2, int64_t *row0, bool *rows_nope)
{
	const struct ktx_hparams *hp = &m->hp;

	if (hp->mla_layout) {
		*w = &L->k_b;
		*i2 = h;
		*row0 = 0;
		*rows_nope = false;
	} else {
		*w = &L->kv_b;
		*i2 = 0;
		*row0 = (int64_t)h * (hp->qk_nope + hp->v_head);
		*rows_nope = true;
	}
}

/* Where head h's W_UV lives: v_head rows of kv_lora either way. */
static void
uv_of(const struct ktx_model *m, const struct ktx_layer *L, uint32_t h, const struct ktx_wt **w,
    int64_t *i2, int64_t *row0)
{
	const struct ktx_hparams *hp = &m->hp;

	if (hp->mla_layout) {
		*w = &L->v_b;
		*i2 = h;
		*row0 = 0;
	} else {
		*w = &L->kv_b;
		*i2 = 0;
		*row0 = (int64_t)h * (hp->qk_nope + hp->v_head) + hp->qk_nope;
	}
}

/*
 * Head h's W_UK applied to n vectors: forward (latent [kv_lora] -> k_nope
 * [nope]) or transposed (q_nope [nope] -> q_lat [kv_lora]). Scratch: a row
 * buffer of max(nope, kv_lora) floats, n * max(...) doubles.
 */
static int
uk_apply(const struct ktx_model *m, const struct ktx_layer *L, uint32_t h, bool transposed,
    const float *x, size_t xs, size_t n, float *y, size_t ys, float *rowbuf, double *acc,
    struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	const struct ktx_wt *w;
	int64_t i2, row0, nrows;
	bool rows_nope;

	uk_of(m, L, h, &w, &i2, &row0, &rows_nope);
	nrows = rows_nope ? hp->qk_nope : hp->kv_lora;
	/* A row-wise product when the rows run over the outputs (on the
	 * calling thread: heads run in parallel). */
	if (rows_nope != transposed) {
		if (m->compute == KTX_PATH_FAST && fwd_fast_has(w))
			return fwd_fast_matmul(m, w, i2, row0, nrows, x, xs, n, y, ys, 1, NULL,
			    err);
		return fwd_matmul_rows(w, i2, row0, nrows, x, xs, n, y, ys, rowbuf, err);
	}
	return fwd_matmul_t_rows(w, i2, row0, nrows, x, xs, n, y, ys, rowbuf, acc, err);
}

/* Head h's W_UV applied to n latent vectors [kv_lora] -> [v_head]. */
static int
uv_apply(const struct ktx_model *m, const struct ktx_layer *L, uint32_t h, const float *x,
    size_t xs, size_t n, float *y, size_t ys, float *rowbuf, struct ktx_err *err)
{
	const struct ktx_wt *w;
	int64_t i2, row0;

	uv_of(m, L, h, &w, &i2, &row0);
	if (m->compute == KTX_PATH_FAST && fwd_fast_has(w))
		return fwd_fast_matmul(m, w, i2, row0, m->hp.v_head, x, xs, n, y, ys, 1, NULL,
		    err);
	return fwd_matmul_rows(w, i2, row0, m->hp.v_head, x, xs, n, y, ys, rowbuf, err);
}

/* Scratch sizes for uk_apply over up to n vectors. */
static size_t
uk_width(const struct ktx_hparams *hp)
{
	return hp->qk_nope > hp->kv_lora ? hp->qk_nope : hp->kv_lora;
}

/* Cache row pos of layer il as floats: in place for a float32 cache, else
 * converted into buf[kv width]. */
static const float *
kv_row_f32(const struct ktx_session *s, uint32_t il, uint32_t pos, float *buf)
{
	const void *row = ktx_kv_row(s, il, pos);

	if (s->kv_type == KTX_CACHE_F32)
		return row;
	attn_cache_load(s->kv_type, buf, row, ktx_kv_width(&s->m->hp));
	return buf;
}

/* ---- absorbed: attention in latent space --------------------------------- */

/*
 * The reference softmax: per (token, head) task over qc[task] = [q_lat |
 * q_pe], scores and weighted sum accumulated in double.
 */
static int
softmax_ref(struct ktx_model *m, uint32_t il, const struct ktx_fwd_item *items, size_t n,
    const float *qc, float *o_lat, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t kl = hp->kv_lora, w = ktx_kv_width(hp), task, ntask = n * hp->n_head;
	double avg_np = (items[0].pos + items[n - 1].pos) / 2.0 + 1;
	int rc = 0, nt = ktx_par_threads(m, (double)ntask * avg_np * (kl + w));

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
	for (task = 0; task < ntask; task++) {
		const struct ktx_fwd_item *it = &items[task / hp->n_head];
		size_t np = (size_t)it->pos + 1, j, c;
		const float *ql = qc + task * w;
		double *sc = malloc(np * sizeof(double)), *acc = malloc(kl * sizeof(double));
		float *buf = malloc(w * sizeof(float));
		struct ktx_err e2;
		int rc2 = 0;

		if (sc == NULL || acc == NULL || buf == NULL) {
			rc2 = ktx_err_set(&e2, KTX_ENOMEM, "out of memory for %zu attention scores",
			    np);
		} else {
			for (j = 0; j < np; j++) {
				const float *kv = kv_row_f32(it->s, il, (uint32_t)j, buf);

				sc[j] = (ktx_ref_dot(ql, kv, kl) + ktx_ref_dot(ql + kl, kv + kl,
				    hp->qk_rope)) *
				    m->kq_scale;
			}
			ktx_ref_softmax_d(sc, np);
			memset(acc, 0, kl * sizeof(double));
			for (j = 0; j < np; j++)
				ktx_ref_axpy(acc, sc[j], kv_row_f32(it->s, il, (uint32_t)j, buf), kl);
			for (c = 0; c < kl; c++)
				o_lat[task * kl + c] = (float)acc[c];
		}
		KEEP_ERR(rc, rc2, err, e2);
		free(sc);
		free(acc);
		free(buf);
	}
	return rc;
}

/* A task of the fast softmax: tokens [t0, t0 + nt) of one session, heads
 * [h0, h0 + nh). */
struct flash_task {
	size_t t0, nt;
	uint32_t h0, nh;
};

/*
 * The fast softmax (attn_flash.c): the items cut into blocks of up to
 * FLASH_QBLOCK consecutive tokens of one session, the heads into groups,
 * one task per block and group. Its rows are (token, head) in that order,
 * so the keys they see never decrease. A row's result does not depend on
 * the task it lands in, so the grouping may follow the thread count.
 */
static int
softmax_flash(struct ktx_model *m, uint32_t il, const struct ktx_fwd_item *items, size_t n,
    const float *qc, float *o_lat, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t kl = hp->kv_lora, w = ktx_kv_width(hp), nblk = 0, t, u, qb = 1, ntask, k;
	double avg_np = (items[0].pos + items[n - 1].pos) / 2.0 + 1;
	int rc = 0, nt = ktx_par_threads(m, (double)n * hp->n_head * avg_np * (kl + w));
	uint32_t hg, ng, g;
	struct flash_task *tasks;

	/* Runs of one session longer than a token take blocks of QBLOCK. */
	for (t = 1; t < n && qb == 1; t++)
		if (items[t].s == items[t - 1].s)
			qb = FLASH_QBLOCK;
	hg = (uint32_t)(FLASH_ROWS / qb);
	if (hg > hp->n_head)
		hg = hp->n_head;
	for (t = 0; t < n; t = u, nblk++)
		for (u = t + 1; u < n && u - t < qb && items[u].s == items[t].s; u++)
			;
	while (hg > 1 && nblk * ((hp->n_head + hg - 1) / hg) < (size_t)nt)
		hg = (hg + 1) / 2;
	ng = (hp->n_head + hg - 1) / hg;
	tasks = malloc(nblk * ng * sizeof(*tasks));
	if (tasks == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for attention of %zu tokens", n);
	for (t = 0, ntask = 0; t < n; t = u) {
		for (u = t + 1; u < n && u - t < qb && items[u].s == items[t].s; u++)
			;
		for (g = 0; g < ng; g++)
			tasks[ntask++] = (struct flash_task){t, u - t, g * hg,
			    g + 1 < ng ? hg : hp->n_head - g * hg};
	}
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
	for (k = 0; k < ntask; k++) {
		const struct flash_task *tk = &tasks[k];
		const struct ktx_session *s = items[tk->t0].s;
		size_t nr = tk->nt * tk->nh, r = 0, i;
		const float **qr = malloc(nr * sizeof(*qr));
		float **orow = malloc(nr * sizeof(*orow));
		uint32_t *nk = malloc(nr * sizeof(*nk)), h;
		float *scratch = malloc(attn_flash_scratch(nr) * sizeof(float));
		struct ktx_err e2;
		int rc2 = 0;

		if (qr == NULL || orow == NULL || nk == NULL || scratch == NULL) {
			rc2 = ktx_err_set(&e2, KTX_ENOMEM, "out of memory in attention");
		} else {
			struct attn_rows rows = {nr, qr, orow, nk};

			for (i = tk->t0; i < tk->t0 + tk->nt; i++)
				for (h = tk->h0; h < tk->h0 + tk->nh; h++, r++) {
					qr[r] = qc + (i * hp->n_head + h) * w;
					orow[r] = o_lat + (i * hp->n_head + h) * kl;
					nk[r] = items[i].pos + 1;
				}
			attn_flash(s->kv_type, ktx_kv_row(s, il, 0), ktx_kv_stride(s), w, kl,
			    m->kq_scale, &rows, scratch);
		}
		KEEP_ERR(rc, rc2, err, e2);
		free(qr);
		free(orow);
		free(nk);
		free(scratch);
	}
	free(tasks);
	return rc;
}

/*
 * q[n][n_head][nope+rope] (rope part rotated) -> o[n][n_head][v].
 * model.py MLA.forward, attn_impl == "absorb": q_nope is multiplied by
 * wkv_b's K part, scores are q_lat . c + q_pe . k_pe, the output is the
 * softmax-weighted c multiplied by wkv_b's V part.
 */
static int
attend_absorbed(struct ktx_model *m, const struct ktx_layer *L, uint32_t il,
    const struct ktx_fwd_item *items, size_t n, const float *q, float *o, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t dq = hp->qk_nope + hp->qk_rope, nq = hp->n_head * dq, kl = hp->kv_lora;
	size_t w = ktx_kv_width(hp), ntask = n * hp->n_head, t, hh;
	struct ktx_arena_mark mark = ktx_arena_mark(m->scratch);
	float *qc, *o_lat;
	int64_t h;
	int rc = 0, nt_uk, nt_uv;

	nt_uk = ktx_par_threads(m, (double)ntask * hp->qk_nope * kl);
	nt_uv = ktx_par_threads(m, (double)ntask * hp->v_head * kl);
	qc = ktx_arena_array(m->scratch, ntask * w, sizeof(float));
	o_lat = ktx_arena_array(m->scratch, ntask * kl, sizeof(float));
	if (qc == NULL || o_lat == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM,
		    "out of memory for latent attention of %zu tokens", n);
		goto out;
	}
	/* qc[t][h] = [W_UK[h]^T q_nope[t][h] | q_pe[t][h]], laid out like a
	 * cache row. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_uk)
	for (h = 0; h < (int64_t)hp->n_head; h++) {
		float *rowbuf = malloc(uk_width(hp) * sizeof(float));
		double *acc = malloc(n * uk_width(hp) * sizeof(double));
		struct ktx_err e2;
		int rc2;

		if (rowbuf == NULL || acc == NULL)
			rc2 = ktx_err_set(&e2, KTX_ENOMEM, "out of memory in attention");
		else
			rc2 = uk_apply(m, L, (uint32_t)h, true, q + h * dq, nq, n,
			    qc + h * w, hp->n_head * w, rowbuf, acc, &e2);
		KEEP_ERR(rc, rc2, err, e2);
		free(rowbuf);
		free(acc);
	}
	if (rc != 0)
		goto out;
	for (t = 0; t < n; t++)
		for (hh = 0; hh < hp->n_head; hh++)
			memcpy(qc + (t * hp->n_head + hh) * w + kl, q + t * nq + hh * dq + hp->qk_nope,
			    hp->qk_rope * sizeof(float));
	/* Softmax over the positions up to each token's own, per head. */
	if (m->compute == KTX_PATH_REF)
		rc = softmax_ref(m, il, items, n, qc, o_lat, err);
	else
		rc = softmax_flash(m, il, items, n, qc, o_lat, err);
	if (rc != 0)
		goto out;
	/* o[t][h] = W_UV[h] o_lat[t][h]. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_uv)
	for (h = 0; h < (int64_t)hp->n_head; h++) {
		float *rowbuf = malloc(kl * sizeof(float));
		struct ktx_err e2;
		int rc2;

		if (rowbuf == NULL)
			rc2 = ktx_err_set(&e2, KTX_ENOMEM, "out of memory in attention");
		else
			rc2 = uv_apply(m, L, (uint32_t)h, o_lat + h * kl, hp->n_head * kl, n,
			    o + h * hp->v_head, (size_t)hp->n_head * hp->v_head, rowbuf, &e2);
		KEEP_ERR(rc, rc2, err, e2);
		free(rowbuf);
	}
out:
	ktx_arena_release(m->scratch, mark);
	return rc;
}

/* ---- naive: expanded keys and values ------------------------------------- */

/*
 * The items [first, first + cnt) of one session: expand k_nope and v for
 * all its positions up to the last item's, then attend per head.
 * model.py MLA.forward, attn_impl == "naive".
 */
static int
attend_naive_session(struct ktx_model *m, const struct ktx_layer *L, uint32_t il,
    const struct ktx_fwd_item *items, size_t cnt, const float *q, float *o, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	const struct ktx_session *s = items[0].s;
	size_t dq = hp->qk_nope + hp->qk_rope, nq = hp->n_head * dq;
	size_t np = (size_t)items[cnt - 1].pos + 1, kl = hp->kv_lora;
	size_t nk = (size_t)hp->n_head * hp->qk_nope, nv = (size_t)hp->n_head * hp->v_head;
	size_t stride = ktx_kv_width(hp), task, ntask = cnt * hp->n_head, j;
	double avg_np = (items[0].pos + items[cnt - 1].pos) / 2.0 + 1;
	int nt_exp = ktx_par_threads(m, (double)np * (nk + nv) * kl);
	int nt_att = ktx_par_threads(m, (double)ntask * avg_np * (dq + hp->v_head));
	float *k, *v, *lat;
	int64_t h;
	int rc = 0;

	k = malloc(np * nk * sizeof(float));
	v = malloc(np * nv * sizeof(float));
	lat = malloc(np * stride * sizeof(float));
	if (k == NULL || v == NULL || lat == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory expanding keys of %zu positions",
		    np);
		goto out;
	}
	/* The cache rows as floats (this path is for checking). */
	for (j = 0; j < np; j++)
		attn_cache_load(s->kv_type, lat + j * stride, ktx_kv_row(s, il, (uint32_t)j),
		    stride);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_exp)
	for (h = 0; h < (int64_t)hp->n_head; h++) {
		float *rowbuf = malloc(uk_width(hp) * sizeof(float));
		double *acc = malloc(np * uk_width(hp) * sizeof(double));
		struct ktx_err e2;
		int rc2;

		if (rowbuf == NULL || acc == NULL)
			rc2 = ktx_err_set(&e2, KTX_ENOMEM, "out of memory in attention");
		else if ((rc2 = uk_apply(m, L, (uint32_t)h, false, lat, stride, np,
		    k + h * hp->qk_nope, nk, rowbuf, acc, &e2)) == 0)
			rc2 = uv_apply(m, L, (uint32_t)h, lat, stride, np, v + h * hp->v_head, nv,
			    rowbuf, &e2);
		KEEP_ERR(rc, rc2, err, e2);
		free(rowbuf);
		free(acc);
	}
	if (rc != 0)
		goto out;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_att)
	for (task = 0; task < ntask; task++) {
		size_t t = task / hp->n_head, hh = task % hp->n_head, c;
		size_t npt = (size_t)items[t].pos + 1;
		const float *qt = q + t * nq + hh * dq;
		double *sc = malloc(npt * sizeof(double)),
		    *acc = malloc(hp->v_head * sizeof(double));
		struct ktx_err e2;
		int rc2 = 0;

		if (sc == NULL || acc == NULL) {
			rc2 = ktx_err_set(&e2, KTX_ENOMEM, "out of memory for %zu attention scores",
			    npt);
		} else {
			for (j = 0; j < npt; j++)
				sc[j] = (ktx_ref_dot(qt, k + j * nk + hh * hp->qk_nope,
				    hp->qk_nope) +
				    ktx_ref_dot(qt + hp->qk_nope, lat + j * stride + kl,
				    hp->qk_rope)) *
				    m->kq_scale;
			ktx_ref_softmax_d(sc, npt);
			memset(acc, 0, hp->v_head * sizeof(double));
			for (j = 0; j < npt; j++)
				ktx_ref_axpy(acc, sc[j], v + j * nv + hh * hp->v_head, hp->v_head);
			for (c = 0; c < hp->v_head; c++)
				o[t * nv + hh * hp->v_head + c] = (float)acc[c];
		}
		KEEP_ERR(rc, rc2, err, e2);
		free(sc);
		free(acc);
	}
out:
	free(k);
	free(v);
	free(lat);
	return rc;
}

/* ---- the block ----------------------------------------------------------- */

int
fwd_attention(struct ktx_model *m, uint32_t il, const struct ktx_fwd_item *items, size_t n,
    const float *h, float *out, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	const struct ktx_layer *L = &m->layers[il];
	size_t e = hp->n_embd, dq = hp->qk_nope + hp->qk_rope, nq = hp->n_head * dq;
	size_t kvw = ktx_kv_width(hp), nv = (size_t)hp->n_head * hp->v_head, t, first, u;
	struct ktx_arena_mark mark = ktx_arena_mark(m->scratch);
	float *q = NULL, *qa = NULL, *kva = NULL, *o = NULL;
	uint32_t hh;
	int rc;

	q = ktx_arena_array(m->scratch, n * nq, sizeof(float));
	kva = ktx_arena_array(m->scratch, n * kvw, sizeof(float));
	o = ktx_arena_array(m->scratch, n * nv, sizeof(float));
	if (hp->q_lora > 0)
		qa = ktx_arena_array(m->scratch, n * hp->q_lora, sizeof(float));
	if (q == NULL || kva == NULL || o == NULL || (hp->q_lora > 0 && qa == NULL)) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for attention of %zu tokens", n);
		goto out;
	}
	/* Query: low-rank q_b(norm(q_a h)) (V3), or plain attn_q h (V2-Lite). */
	/* [n_embd -> q_lora], [q_lora -> n_head*(nope+rope)] */
	if (hp->q_lora > 0) {
		if ((rc = fwd_matmul(m, &L->q_a, 0, 0, hp->q_lora, h, e, n, qa, hp->q_lora,
			err)) != 0)
			goto out;
		for (t = 0; t < n; t++)
			ktx_ref_rmsnorm(qa + t * hp->q_lora, qa + t * hp->q_lora, L->q_a_norm,
			    hp->q_lora, hp->rms_eps);
		rc = fwd_matmul(m, &L->q_b, 0, 0, (int64_t)nq, qa, hp->q_lora, n, q, nq, err);
	} else {
		rc = fwd_matmul(m, &L->q, 0, 0, (int64_t)nq, h, e, n, q, nq, err);
	}
	if (rc != 0)
		goto out;
	/* Keys: the latent and the shared rope key, into the cache. */
	/* [n_embd -> kv_lora + rope] */
	if ((rc = fwd_matmul(m, &L->kv_a, 0, 0, (int64_t)kvw, h, e, n, kva, kvw, err)) != 0)
		goto out;
	for (t = 0; t < n; t++) {
		float *row = kva + t * kvw;

		ktx_ref_rmsnorm(row, row, L->kv_a_norm, hp->kv_lora, hp->rms_eps);
		ktx_ref_rope(row + hp->kv_lora, hp->qk_rope, m->rope_freq, items[t].pos);
		attn_cache_store(items[t].s->kv_type, ktx_kv_row(items[t].s, il, items[t].pos), row,
		    kvw);
		for (hh = 0; hh < hp->n_head; hh++)
			ktx_ref_rope(q + t * nq + hh * dq + hp->qk_nope, hp->qk_rope, m->rope_freq,
			    items[t].pos);
	}
	if (m->attn == KTX_ATTN_ABSORBED) {
		rc = attend_absorbed(m, L, il, items, n, q, o, err);
	} else {
		/* One expansion per session: its items are consecutive. */
		for (first = 0, rc = 0; first < n && rc == 0; first = u) {
			for (u = first + 1; u < n && items[u].s == items[first].s; u++)
				;
			rc = attend_naive_session(m, L, il, items + first, u - first,
			    q + first * nq,
			    o + first * nv, err);
		}
	}
	if (rc != 0)
		goto out;
	/* [n_head*v -> n_embd] */
	rc = fwd_matmul(m, &L->attn_out, 0, 0, (int64_t)e, o, nv, n, out, e, err);
out:
	ktx_arena_release(m->scratch, mark);
	return rc;
}
