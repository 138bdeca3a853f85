/*
 * forward_fast.h - the fast path of the forward pass (KTX_PATH_FAST): the
 * matmuls through the SIMD kernels of kernels/cpu with the activations
 * converted to each weight type's dot type, and the FFN / experts built on
 * them. The reference path (forward_matmul.c's dequantizing matmuls) is the
 * definition these are measured against (tests/oracle/test_kl.py).
 */
#ifndef KTX_ENGINE_FORWARD_FAST_H
#define KTX_ENGINE_FORWARD_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"

/*
 * Activation rows converted once to one dot type (Q8_K, Q8_0 or float32),
 * for every matrix whose weights take that type and row length: an input
 * read by several matrices is converted once.
 *
 * A quantized row is stored as one or two: the 8-bit row and, for the
 * weights whose act_residual is set (the model's KTX_ACT_* classes), the
 * 8-bit row of what it left out (x - dequant(q(x))). The product is then
 * the sum of both dots, so the activations carry about 16 bits instead of
 * 8 for the price of a second activation row in the same pass over each
 * weight row (the kernels unpack a weight block once for several
 * activation rows).
 */
struct fwd_act {
	int dot_type;          /* a KTX_TYPE_*; -1 while empty */
	int64_t ne;            /* elements per row */
	size_t row_bytes;      /* bytes per converted sub-row */
	int nsub;              /* sub-rows per row: 2 when quantized, else 1 */
	size_t n;              /* rows */
	const uint8_t *data;   /* [n][nsub][row_bytes] */
	uint8_t *owned;        /* data when it was allocated here */
};

/* True when the fast kernels compute w's rows (its type has a kernel and
 * its row length is a whole number of that type's blocks). */
bool fwd_fast_has(const struct ktx_wt *w);

/* Converts n rows of ne floats (x[t] at x + t * xs) for weight w (its
 * type, and a residual row when w->act_residual); float32 rows already
 * packed are used in place. The rows' memory comes from arena (released
 * with it, on the arena's thread), or from malloc when arena is NULL. */
int fwd_act_make(struct fwd_act *a, const struct ktx_wt *w, const float *x, size_t xs, size_t n,
    int64_t ne, struct ktx_arena *arena, struct ktx_err *err);
/* fwd_act_make in two steps, so the memory can be taken on the arena's
 * thread and the rows converted in a parallel region: room for n rows for
 * w (never in place), then the conversion of x into it. */
int fwd_act_alloc(struct fwd_act *a, const struct ktx_wt *w, size_t n, int64_t ne,
    struct ktx_arena *arena, struct ktx_err *err);
int fwd_act_fill(struct fwd_act *a, const float *x, size_t xs, struct ktx_err *err);
/* True when a holds rows that w's kernel takes. */
bool fwd_act_fits(const struct fwd_act *a, const struct ktx_wt *w);
void fwd_act_free(struct fwd_act *a);

/* y[t][r - row0] = W[i2][r] . a[t] for r in [row0, row0 + nrows), over
 * nthreads threads (0: the model's). a must fit w (fwd_act_fits). */
int fwd_fast_matmul_act(const struct ktx_model *m, const struct ktx_wt *w, int64_t i2,
    int64_t row0, int64_t nrows, const struct fwd_act *a, float *y, size_t y_stride,
    int nthreads, struct ktx_err *err);
/* fwd_matmul's contract on the fast kernels (w must pass fwd_fast_has),
 * the activations converted into arena (NULL: malloc). */
int fwd_fast_matmul(const struct ktx_model *m, const struct ktx_wt *w, int64_t i2,
    int64_t row0, int64_t nrows, const float *x, size_t x_stride, size_t n, float *y,
    size_t y_stride, int nthreads, struct ktx_arena *arena, struct ktx_err *err);

/* True when every FFN weight of block il has a fast kernel. */
bool fwd_fast_ffn_has(const struct ktx_model *m, uint32_t il);
/* fwd_ffn on the fast path (forward_fast_moe.c); block il must pass
 * fwd_fast_ffn_has. */
int fwd_fast_ffn(struct ktx_model *m, uint32_t il, size_t n, const float *h, float *out,
    struct ktx_err *err);

#endif
