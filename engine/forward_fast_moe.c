/*
 * forward_fast_moe.c - the feed-forward half of a block on the fast path:
 * the same function as forward_moe.c, computed per expert over all the
 * tokens that chose it.
 *
 * Each FFN that runs for a batch (a dense FFN, every chosen routed expert,
 * the shared experts) is a job over the rows of its tokens. The block's
 * input is converted to the experts' dot type once for the whole batch;
 * then two parallel phases cover every job at once, in row blocks handed
 * out dynamically so a thread that finishes early takes another expert's
 * work (skewed routing does not leave a thread idle behind a barrier):
 *   1. gate and up of one row block, then SiLU(gate) * up on it, so both
 *      products of a row block are used while they are in cache;
 *   2. down, after each job's hidden rows are converted once.
 * Each expert's weights are read once per batch: once per prompt chunk in
 * prefill, once per step for all sessions of a batched decode. Every
 * output is still one dot product by one thread, and results per token
 * are accumulated in expert id order, so nothing depends on the thread
 * count or on which other tokens share the batch.
 */
#include "engine/forward_fast.h"

#include <string.h>

#include "kernels/ref/ops.h"

/* Rows of one matrix per task: enough work to amortise taking a task,
 * small enough that one expert spreads over every thread. */
#define TASK_ROWS 64

/* One FFN over its tokens: down(silu(gate x) * up x). */
struct ffn_job {
	const struct ktx_wt *gate, *up, *down;
	int64_t i2;                /* matrix index in each weight's stack */
	size_t nff;                /* hidden width */
	struct fwd_act xa;         /* input rows, converted for gate */
	struct fwd_act ua;         /* for up when it takes another conversion */
	struct fwd_act ga;         /* hidden rows, converted for down */
	float *g, *u;              /* [n][nff]; g becomes silu(g) * u */
	float *y;                  /* [n][n_embd] */
};

/* A whole batch of jobs and the first error any task met. */
struct ffn_batch {
	const struct ktx_model *m;
	struct ffn_job *jobs;
	size_t njobs;
	int rc;
	struct ktx_err *err;
};

/* True when every weight of an FFN has a fast kernel. */
static bool
mlp_fast(const struct ktx_wt *gate, const struct ktx_wt *up, const struct ktx_wt *down)
{
	return fwd_fast_has(gate) && fwd_fast_has(up) && fwd_fast_has(down);
}

/*
 * Sets up job j for the n rows of xa, with ua the rows for up when up
 * takes another conversion (else ua->dot_type is -1). Everything a job
 * holds is in the model's arena.
 */
static int
job_init(struct ffn_job *j, const struct ktx_model *m, const struct ktx_wt *gate,
    const struct ktx_wt *up, const struct ktx_wt *down, int64_t i2, size_t nff,
    const struct fwd_act *xa, const struct fwd_act *ua, struct ktx_err *err)
{
	size_t n = xa->n;

	memset(j, 0, sizeof(*j));
	j->ga.dot_type = -1;
	j->gate = gate;
	j->up = up;
	j->down = down;
	j->i2 = i2;
	j->nff = nff;
	j->xa = *xa;
	j->ua = *ua;
	j->g = ktx_arena_array(m->scratch, n * nff, sizeof(float));
	j->u = ktx_arena_array(m->scratch, n * nff, sizeof(float));
	j->y = ktx_arena_array(m->scratch, n * m->hp.n_embd, sizeof(float));
	if (j->g == NULL || j->u == NULL || j->y == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for an FFN of %zu tokens", n);
	return 0;
}

/* Keeps the first error of a parallel phase. */
static void
batch_fail(struct ffn_batch *b, int rc, const struct ktx_err *e)
{
#pragma omp critical(ktx_ffn_err)
	{
		if (b->rc == 0) {
			b->rc = rc;
			if (b->err != NULL)
				*b->err = *e;
		}
	}
}

/* The task list of one phase: task k of job j covers rows
 * [(k - first[j]) * TASK_ROWS, ...) of that job's matrix of rows[j] rows.
 * Returns the task count. */
static size_t
task_index(const struct ffn_batch *b, bool down, size_t *first)
{
	size_t total = 0;

	for (size_t j = 0; j < b->njobs; j++) {
		const struct ffn_job *jb = &b->jobs[j];
		size_t rows = down ? (size_t)jb->down->ne[1] : jb->nff;

		first[j] = total;
		total += (rows + TASK_ROWS - 1) / TASK_ROWS;
	}
	first[b->njobs] = total;
	return total;
}

/* Phase 1, one task: gate and up rows [r0, r1) of job j for all its
 * tokens, then SiLU(gate) * up on them. */
static int
gate_up_task(const struct ktx_model *m, struct ffn_job *j, int64_t r0, int64_t r1,
    struct ktx_err *err)
{
	const struct fwd_act *ua = j->ua.dot_type >= 0 ? &j->ua : &j->xa;
	int rc;

	if ((rc = fwd_fast_matmul_act(m, j->gate, j->i2, r0, r1 - r0, &j->xa, j->g + r0, j->nff,
	    1, err)) != 0 ||
	    (rc = fwd_fast_matmul_act(m, j->up, j->i2, r0, r1 - r0, ua, j->u + r0, j->nff, 1,
	    err)) != 0)
		return rc;
	for (size_t t = 0; t < j->xa.n; t++)
		ktx_ref_swiglu(j->g + t * j->nff + r0, j->u + t * j->nff + r0, (size_t)(r1 - r0));
	return 0;
}

/* Phase 2, one task: down rows [r0, r1) of job j. */
static int
down_task(const struct ktx_model *m, struct ffn_job *j, int64_t r0, int64_t r1,
    struct ktx_err *err)
{
	return fwd_fast_matmul_act(m, j->down, j->i2, r0, r1 - r0, &j->ga, j->y + r0,
	    m->hp.n_embd, 1, err);
}

/* Runs one phase's tasks over the model's threads. */
static void
run_phase(struct ffn_batch *b, bool down)
{
	struct ktx_arena_mark mark = ktx_arena_mark(b->m->scratch);
	size_t *first = ktx_arena_array(b->m->scratch, b->njobs + 1, sizeof(size_t)), ntask;
	double work = 0;

	if (first == NULL) {
		struct ktx_err e;

		batch_fail(b, ktx_err_set(&e, KTX_ENOMEM, "out of memory for %zu FFN jobs",
		    b->njobs), &e);
		return;
	}
	ntask = task_index(b, down, first);
	for (size_t j = 0; j < b->njobs; j++)
		work += (double)b->jobs[j].xa.n * (double)b->jobs[j].nff *
		    (double)b->m->hp.n_embd;
#pragma omp parallel for schedule(dynamic, 1) num_threads(ktx_par_threads(b->m, work))
	for (size_t k = 0; k < ntask; k++) {
		size_t j = 0, lo = 0, hi = b->njobs;
		struct ffn_job *jb;
		int64_t r0, r1, rows;
		struct ktx_err e;
		int rc;

		/* The job whose range holds k: first[j] <= k < first[j + 1]. */
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (first[mid + 1] <= k)
				lo = mid + 1;
			else
				hi = mid;
		}
		j = lo;
		jb = &b->jobs[j];
		rows = down ? jb->down->ne[1] : (int64_t)jb->nff;
		r0 = (int64_t)(k - first[j]) * TASK_ROWS;
		r1 = r0 + TASK_ROWS < rows ? r0 + TASK_ROWS : rows;
		rc = down ? down_task(b->m, jb, r0, r1, &e) : gate_up_task(b->m, jb, r0, r1, &e);
		if (rc != 0)
			batch_fail(b, rc, &e);
	}
	ktx_arena_release(b->m->scratch, mark);
}

/* Converts job j's hidden rows (room taken by batch_run) for its down
 * matrix. */
static void
convert_hidden(struct ffn_batch *b, size_t j)
{
	struct ffn_job *jb = &b->jobs[j];
	struct ktx_err e;
	int rc;

	if ((rc = fwd_act_fill(&jb->ga, jb->g, jb->nff, &e)) != 0)
		batch_fail(b, rc, &e);
}

/* Runs every job of b: gate/up/SiLU, conversion, down. */
static int
batch_run(struct ffn_batch *b)
{
	int rc;

	b->rc = 0;
	run_phase(b, false);
	for (size_t j = 0; j < b->njobs && b->rc == 0; j++) {
		struct ffn_job *jb = &b->jobs[j];

		if ((rc = fwd_act_alloc(&jb->ga, jb->down, jb->xa.n, (int64_t)jb->nff,
		    b->m->scratch, b->err)) != 0)
			b->rc = rc;
	}
	/* One job (a dense FFN) converts its rows over all threads itself;
	 * several convert in parallel, one job per thread. */
	if (b->rc == 0 && b->njobs == 1)
		convert_hidden(b, 0);
	if (b->rc == 0 && b->njobs > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(b->m->n_threads)
		for (size_t j = 0; j < b->njobs; j++)
			convert_hidden(b, j);
	}
	if (b->rc == 0)
		run_phase(b, true);
	return b->rc;
}

/* A dense FFN over all n tokens, as job j (set up here). */
static int
dense_job(struct ffn_job *j, const struct ktx_model *m, const struct ktx_wt *gate,
    const struct ktx_wt *up, const struct ktx_wt *down, size_t nff, const float *h, size_t n,
    struct ktx_err *err)
{
	size_t e = m->hp.n_embd;
	struct fwd_act xa, ua;
	int rc;

	ua.dot_type = -1;
	if ((rc = fwd_act_make(&xa, gate, h, e, n, (int64_t)e, m->scratch, err)) != 0 ||
	    (!fwd_act_fits(&xa, up) &&
	    (rc = fwd_act_make(&ua, up, h, e, n, (int64_t)e, m->scratch, err)) != 0))
		return rc;
	return job_init(j, m, gate, up, down, 0, nff, &xa, &ua, err);
}

/* A dense block's FFN. */
static int
dense(const struct ktx_model *m, const struct ktx_layer *L, size_t n, const float *h,
    float *out, struct ktx_err *err)
{
	struct ktx_arena_mark mark = ktx_arena_mark(m->scratch);
	struct ffn_job j;
	struct ffn_batch b = { m, &j, 1, 0, err };
	int rc;

	if ((rc = dense_job(&j, m, &L->ffn_gate, &L->ffn_up, &L->ffn_down, m->hp.n_ff, h, n,
	    err)) == 0 && (rc = batch_run(&b)) == 0)
		memcpy(out, j.y, n * m->hp.n_embd * sizeof(float));
	ktx_arena_release(m->scratch, mark);
	return rc;
}

/* The routing of n tokens: sel[t][k] and wts[t][k] for the k used experts. */
static int
route(const struct ktx_model *m, const struct ktx_layer *L, size_t n, const float *h,
    uint32_t *sel, float *wts, struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	size_t ne = hp->n_expert, nu = m->n_expert_used;
	struct ktx_arena_mark mark = ktx_arena_mark(m->scratch);
	float *router = ktx_arena_array(m->scratch, n * ne, sizeof(float));
	float *scratch = ktx_arena_array(m->scratch, 3 * ne, sizeof(float));
	uint32_t *iscratch = ktx_arena_array(m->scratch, ne, sizeof(uint32_t));
	int rc = 0;

	if (router == NULL || scratch == NULL || iscratch == NULL)
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory routing %zu tokens", n);
	else if ((rc = fwd_matmul(m, &L->gate_inp, 0, 0, (int64_t)ne, h, hp->n_embd, n, router,
	    ne, err)) == 0)
		for (size_t t = 0; t < n; t++)
			fwd_route(hp, (uint32_t)nu, router + t * ne, L->exp_probs_b, sel + t * nu,
			    wts + t * nu, scratch, iscratch);
	ktx_arena_release(m->scratch, mark);
	return rc;
}

/* The rows of the c tokens tok[0..c) of all (converted for the whole
 * batch), gathered into the arena; an empty all gives an empty set. */
static int
act_gather(struct fwd_act *out, const struct fwd_act *all, const uint32_t *tok, uint32_t c,
    struct ktx_arena *arena, struct ktx_err *err)
{
	size_t rb = all->row_bytes * (size_t)all->nsub;
	uint8_t *p;

	*out = *all;
	if (all->dot_type < 0)
		return 0;
	out->n = c;
	if ((p = ktx_arena_array(arena, c, rb)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the rows of %u tokens", c);
	for (uint32_t k = 0; k < c; k++)
		memcpy(p + (size_t)k * rb, all->data + (size_t)tok[k] * rb, rb);
	out->data = p;
	return 0;
}

/* The routed experts plus the shared ones (MoE.forward: y + shared(x)). */
static int
moe(const struct ktx_model *m, const struct ktx_layer *L, size_t n, const float *h, float *out,
    struct ktx_err *err)
{
	const struct ktx_hparams *hp = &m->hp;
	struct ktx_arena *ar = m->scratch;
	struct ktx_arena_mark mark = ktx_arena_mark(ar);
	size_t e = hp->n_embd, ne = hp->n_expert, nu = m->n_expert_used, nff = hp->n_ff_exp;
	uint32_t *sel = ktx_arena_array(ar, n * nu, sizeof(uint32_t));
	uint32_t *tok = ktx_arena_array(ar, n * nu, sizeof(uint32_t));
	uint32_t *start = ktx_arena_array(ar, ne + 1, sizeof(uint32_t));
	float *wts = ktx_arena_array(ar, n * nu, sizeof(float));
	float *wsel = ktx_arena_array(ar, n * nu, sizeof(float));
	double *acc = ktx_arena_array(ar, n * e, sizeof(double));
	struct ffn_job *jobs = ktx_arena_array(ar, ne + 1, sizeof(*jobs));
	struct ffn_batch b = { m, jobs, 0, 0, err };
	struct fwd_act ha, hu;
	size_t i, njobs_routed;
	int rc;

	if (!sel || !start || !tok || !wts || !wsel || !acc || !jobs) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for the experts of %zu tokens", n);
		goto out;
	}
	memset(start, 0, (ne + 1) * sizeof(uint32_t));
	memset(acc, 0, n * e * sizeof(double));
	if ((rc = route(m, L, n, h, sel, wts, err)) != 0)
		goto out;
	/* The block's input, converted once for every expert (twice when up
	 * takes another dot type than gate). */
	hu.dot_type = -1;
	if ((rc = fwd_act_make(&ha, &L->gate_exps, h, e, n, (int64_t)e, ar, err)) != 0 ||
	    (!fwd_act_fits(&ha, &L->up_exps) &&
	    (rc = fwd_act_make(&hu, &L->up_exps, h, e, n, (int64_t)e, ar, err)) != 0))
		goto out;
	/* Tokens grouped by expert, in expert id order and token order within
	 * (a counting sort): expert x's tokens and weights are at tok/wsel
	 * [start[x], start[x + 1]). */
	for (i = 0; i < n * nu; i++)
		start[sel[i] + 1]++;
	for (i = 0; i < ne; i++)
		start[i + 1] += start[i];
	for (i = 0; i < n * nu; i++) {
		uint32_t k = start[sel[i]]++;

		tok[k] = (uint32_t)(i / nu);
		wsel[k] = wts[i];
	}
	/* The fill moved each start to the next expert's: shift them back. */
	memmove(start + 1, start, ne * sizeof(uint32_t));
	start[0] = 0;
	for (uint32_t x = 0; x < ne; x++) {
		uint32_t base = start[x], c = start[x + 1] - base;
		struct fwd_act xa, ua;

		if (c == 0)
			continue;
		/* The chosen tokens' converted rows. */
		if ((rc = act_gather(&xa, &ha, tok + base, c, ar, err)) != 0 ||
		    (rc = act_gather(&ua, &hu, tok + base, c, ar, err)) != 0 ||
		    (rc = job_init(&jobs[b.njobs++], m, &L->gate_exps, &L->up_exps,
		    &L->down_exps, x, nff, &xa, &ua, err)) != 0)
			goto out;
	}
	njobs_routed = b.njobs;
	/* The shared experts run alongside the routed ones. */
	if (hp->n_expert_shared > 0 && (rc = dense_job(&jobs[b.njobs++], m, &L->gate_shexp,
	    &L->up_shexp, &L->down_shexp, nff * hp->n_expert_shared, h, n, err)) != 0)
		goto out;
	if ((rc = batch_run(&b)) != 0)
		goto out;
	for (size_t j = 0; j < njobs_routed; j++) {
		const struct ffn_job *jb = &jobs[j];
		uint32_t base = start[jb->i2];

		for (size_t c = 0; c < jb->xa.n; c++)
			ktx_ref_axpy(acc + (size_t)tok[base + c] * e, wsel[base + c],
			    jb->y + c * e, e);
	}
	if (hp->n_expert_shared > 0) {
		const float *ys = jobs[njobs_routed].y;

		for (i = 0; i < n * e; i++)
			out[i] = (float)(acc[i] + ys[i]);
	} else {
		for (i = 0; i < n * e; i++)
			out[i] = (float)acc[i];
	}
out:
	ktx_arena_release(ar, mark);
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
		return dense(m, L, n, h, out, err);
	return moe(m, L, n, h, out, err);
}
