/*
 * forward_fast.c - matmuls of the fast path: activations converted once to
 * the weight type's dot type (kernels/cpu/cpu.h: Q8_K for K- and i-quants,
 * Q8_0 for the legacy types, float32 for float weights), then one
 * ktx_cpu_matmul_sum call that reads each weight row once for all inputs
 * and adds each input's sub-rows (fwd_act).
 *
 * Float weights keep float32 activations, so a float model's fast path
 * differs from the reference only in summation order. Each output is one
 * dot product computed by one thread, so results do not depend on the
 * thread count or on which other inputs share the batch (batched decode
 * gives each session what it would get alone).
 */
#include "engine/forward_fast.h"

#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/repack.h"

/* Below this many floats, converting activations stays on one thread. */
#define ACT_PARALLEL_MIN 65536

bool
fwd_fast_has(const struct ktx_wt *w)
{
	return w->name != NULL && ktx_cpu_dot_type(w->type) >= 0 &&
	       ktx_cpu_act_row_bytes(w->type, w->ne[0]) != 0;
}

/* Sub-rows per converted row for w: the residual only where w asks for it
 * and the activations are quantized. */
static int
act_nsub(int dot_type, const struct ktx_wt *w)
{
	return dot_type != KTX_TYPE_F32 && w->act_residual ? 2 : 1;
}

bool
fwd_act_fits(const struct fwd_act *a, const struct ktx_wt *w)
{
	return a->dot_type >= 0 && a->dot_type == ktx_cpu_dot_type(w->type) &&
	       a->ne == w->ne[0] && a->row_bytes == ktx_cpu_act_row_bytes(w->type, w->ne[0]) &&
	       a->nsub == act_nsub(a->dot_type, w);
}

void
fwd_act_free(struct fwd_act *a)
{
	free(a->owned);
	memset(a, 0, sizeof(*a));
	a->dot_type = -1;
}

/* Elements of the largest activation block (Q8_K's). */
#define ACT_BLOCK_MAX 256

/*
 * One row into its dot type; with nsub 2 the quantized residual follows
 * in the next rb bytes. The residual is made block by block (blocks are
 * quantized independently), so no row-sized buffer is needed. Returns
 * nonzero when the quantizer refuses the length.
 */
static int
convert_row(int dt, int nsub, const float *x, uint8_t *dst, size_t rb, int64_t ne)
{
	const struct ktx_type_traits *tt = ktx_type_traits((uint32_t)dt);
	float r[ACT_BLOCK_MAX];
	int64_t qk, b, i;

	if (ktx_cpu_quantize_row((uint32_t)dt, x, dst, ne) != 0)
		return 1;
	if (nsub == 1)
		return 0;
	if (tt == NULL || (qk = tt->block_elems) > ACT_BLOCK_MAX || ne % qk != 0)
		return 1;
	for (b = 0; b < ne / qk; b++) {
		const float *xb = x + b * qk;
		size_t off = (size_t)b * tt->block_bytes;

		if (ktx_dequantize((uint32_t)dt, dst + off, r, qk, NULL) != 0)
			return 1;
		for (i = 0; i < qk; i++)
			r[i] = xb[i] - r[i];
		if (ktx_cpu_quantize_row((uint32_t)dt, r, dst + rb + off, qk) != 0)
			return 1;
	}
	return 0;
}

int
fwd_act_alloc(struct fwd_act *a, const struct ktx_wt *w, size_t n, int64_t ne,
    struct ktx_arena *arena, struct ktx_err *err)
{
	enum ktx_type wtype = w->type;
	int dt = ktx_cpu_dot_type(wtype);
	size_t rb = ktx_cpu_act_row_bytes(wtype, ne), bytes;
	uint8_t *p;

	memset(a, 0, sizeof(*a));
	a->dot_type = -1;
	if (dt < 0 || rb == 0)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    "no fast kernel for %s rows of %lld elements",
		    ktx_type_name(wtype), (long long)ne);
	bytes = n * (size_t)act_nsub(dt, w) * rb + 1;
	p = arena != NULL ? ktx_arena_alloc(arena, bytes) : malloc(bytes);
	if (p == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory converting %zu activation rows",
		    n);
	a->ne = ne;
	a->row_bytes = rb;
	a->n = n;
	a->nsub = act_nsub(dt, w);
	a->dot_type = dt;
	a->data = p;
	a->owned = arena != NULL ? NULL : p;
	return 0;
}

int
fwd_act_fill(struct fwd_act *a, const float *x, size_t xs, struct ktx_err *err)
{
	uint8_t *dst = (uint8_t *)a->data;
	size_t rb = a->row_bytes;
	int64_t t;
	int bad = 0;

	/* Few rows: no parallel region at all (one nested in the caller's
	 * loop still costs libgomp a team). */
	if ((double)a->n * (double)a->ne < ACT_PARALLEL_MIN) {
		for (t = 0; t < (int64_t)a->n; t++)
			bad |= convert_row(a->dot_type, a->nsub, x + (size_t)t * xs,
			    dst + (size_t)t * a->nsub * rb, rb, a->ne);
	} else {
#pragma omp parallel for schedule(static) reduction(| : bad)
		for (t = 0; t < (int64_t)a->n; t++)
			bad |= convert_row(a->dot_type, a->nsub, x + (size_t)t * xs,
			    dst + (size_t)t * a->nsub * rb, rb, a->ne);
	}
	if (bad)
		return ktx_err_set(err, KTX_EINVAL, "cannot convert activation rows of %lld "
		    "elements", (long long)a->ne);
	return 0;
}

int
fwd_act_make(struct fwd_act *a, const struct ktx_wt *w, const float *x, size_t xs, size_t n,
    int64_t ne, struct ktx_arena *arena, struct ktx_err *err)
{
	int dt = ktx_cpu_dot_type(w->type);
	int rc;

	/* Packed float rows are what a float kernel reads: no copy. */
	if (dt == KTX_TYPE_F32 && ktx_cpu_act_row_bytes(w->type, ne) != 0 &&
	    (xs == (size_t)ne || n == 1)) {
		memset(a, 0, sizeof(*a));
		a->ne = ne;
		a->row_bytes = ktx_cpu_act_row_bytes(w->type, ne);
		a->n = n;
		a->nsub = 1;
		a->data = (const uint8_t *)x;
		a->dot_type = dt;
		return 0;
	}
	if ((rc = fwd_act_alloc(a, w, n, ne, arena, err)) == 0 &&
	    (rc = fwd_act_fill(a, x, xs, err)) != 0)
		fwd_act_free(a);
	return rc;
}

int
fwd_fast_matmul_act(const struct ktx_model *m, const struct ktx_wt *w, int64_t i2,
    int64_t row0, int64_t nrows, const struct fwd_act *a, float *y, size_t y_stride,
    int nthreads, struct ktx_err *err)
{
	const uint8_t *src = w->data + ((size_t)i2 * (size_t)w->ne[1] + (size_t)row0) *
	    w->row_bytes;

	if (a->n == 0 || nrows == 0)
		return 0;
	if (nthreads <= 0)
		nthreads = m->n_threads;
	if (w->repacked) {
		/* Interleaved groups (model_repack.c): whole groups only. */
		if (row0 % KTX_CPU_RP_ROWS != 0 || nrows % KTX_CPU_RP_ROWS != 0)
			return ktx_err_set(err, KTX_EINVAL,
			    "rows %lld..%lld of %s split its groups of %d interleaved rows",
			    (long long)row0, (long long)(row0 + nrows), w->name, KTX_CPU_RP_ROWS);
		if (ktx_cpu_rp_matmul(w->type, w->ne[0], nrows, src, a->data, a->row_bytes,
		    (int64_t)a->n, a->nsub, y, y_stride, nthreads) != 0)
			return ktx_err_set(err, KTX_EUNSUPPORTED, "no repacked kernel for %s (%s)",
			    w->name, ktx_type_name(w->type));
		return 0;
	}
	/* Each row's product is its 8-bit part plus its residual's: the
	 * kernel adds a row's sub-rows while their products are hot. */
	if (ktx_cpu_matmul_sum(w->type, w->ne[0], nrows, src, w->row_bytes, a->data,
	    a->row_bytes, (int64_t)a->n, a->nsub, y, y_stride, nthreads) != 0)
		return ktx_err_set(err, KTX_EUNSUPPORTED, "no fast kernel for %s (%s)", w->name,
		    ktx_type_name(w->type));
	return 0;
}

int
fwd_fast_matmul(const struct ktx_model *m, const struct ktx_wt *w, int64_t i2, int64_t row0,
    int64_t nrows, const float *x, size_t x_stride, size_t n, float *y, size_t y_stride,
    int nthreads, struct ktx_arena *arena, struct ktx_err *err)
{
	struct ktx_arena_mark mark;
	struct fwd_act a;
	int rc;

	if (arena != NULL)
		mark = ktx_arena_mark(arena);
	if ((rc = fwd_act_make(&a, w, x, x_stride, n, w->ne[0], arena, err)) != 0)
		return rc;
	rc = fwd_fast_matmul_act(m, w, i2, row0, nrows, &a, y, y_stride, nthreads, err);
	fwd_act_free(&a);
	if (arena != NULL)
		ktx_arena_release(arena, mark);
	return rc;
}
