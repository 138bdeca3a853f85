/*
 * forward_matmul.c - matrix products with weights kept in the file's
 * encoding: each row is dequantized to float32 exactly (engine/quant.h),
 * once per call, and applied to every input of the batch.
 *
 * Each output element is computed by one thread, in a fixed order, so the
 * results do not depend on the number of threads. On the fast path
 * (KTX_PATH_FAST) fwd_matmul hands weights with a SIMD kernel to
 * forward_fast.c instead.
 */
#include "engine/model.h"

#include <stdlib.h>
#include <string.h>

#include "engine/forward_fast.h"
#include "engine/quant.h"
#include "kernels/ref/ops.h"

const float *
fwd_row(const struct ktx_wt *w, int64_t i2, int64_t r, float *buf, struct ktx_err *err)
{
	const uint8_t *src = w->data + ((size_t)i2 * (size_t)w->ne[1] + (size_t)r) * w->row_bytes;

	/* F32 rows are used in place when aligned (GGUF aligns tensor data). */
	if (w->type == KTX_TYPE_F32 && ((uintptr_t)src % sizeof(float)) == 0)
		return (const float *)(const void *)src;
	if (ktx_dequantize(w->type, src, buf, w->ne[0], err) != 0)
		return NULL;
	return buf;
}

int
fwd_matmul_rows(const struct ktx_wt *w, int64_t i2, int64_t row0, int64_t nrows,
    const float *x, size_t x_stride, size_t n, float *y, size_t y_stride, float *rowbuf,
    struct ktx_err *err)
{
	size_t ne0 = (size_t)w->ne[0], t;
	int64_t r;

	for (r = 0; r < nrows; r++) {
		const float *row = fwd_row(w, i2, row0 + r, rowbuf, err);

		if (row == NULL)
			return err ? err->code : KTX_EFORMAT;
		for (t = 0; t < n; t++)
			y[t * y_stride + (size_t)r] = (float)ktx_ref_dot(row, x + t * x_stride,
			    ne0);
	}
	return 0;
}

int
fwd_matmul_t_rows(const struct ktx_wt *w, int64_t i2, int64_t row0, int64_t nrows,
    const float *x, size_t x_stride, size_t n, float *y, size_t y_stride, float *rowbuf,
    double *acc, struct ktx_err *err)
{
	size_t ne0 = (size_t)w->ne[0], t, c;
	int64_t r;

	memset(acc, 0, n * ne0 * sizeof(*acc));
	for (r = 0; r < nrows; r++) {
		const float *row = fwd_row(w, i2, row0 + r, rowbuf, err);

		if (row == NULL)
			return err ? err->code : KTX_EFORMAT;
		for (t = 0; t < n; t++)
			ktx_ref_axpy(acc + t * ne0, x[t * x_stride + (size_t)r], row, ne0);
	}
	for (t = 0; t < n; t++)
		for (c = 0; c < ne0; c++)
			y[t * y_stride + c] = (float)acc[t * ne0 + c];
	return 0;
}

int
fwd_matmul(const struct ktx_model *m, const struct ktx_wt *w, int64_t i2, int64_t row0,
    int64_t nrows, const float *x, size_t x_stride, size_t n, float *y, size_t y_stride,
    struct ktx_err *err)
{
	int64_t chunk, nchunks, ci;
	int rc = 0, nt = ktx_par_threads(m, (double)nrows * (double)w->ne[0] * (double)n);

	if (m->compute == KTX_PATH_FAST && fwd_fast_has(w))
		return fwd_fast_matmul(m, w, i2, row0, nrows, x, x_stride, n, y, y_stride, nt,
		    m->scratch, err);
	if (nt == 1) {
		float *buf = malloc((size_t)w->ne[0] * sizeof(float));

		if (buf == NULL)
			return ktx_err_set(err, KTX_ENOMEM, "out of memory for a row of %s",
			    w->name);
		rc = fwd_matmul_rows(w, i2, row0, nrows, x, x_stride, n, y, y_stride, buf, err);
		free(buf);
		return rc;
	}
	/* Rows in chunks, several per thread, handed out dynamically: which
	 * thread computes a row never changes how it is computed. */
	chunk = (nrows + (int64_t)nt * 4 - 1) / ((int64_t)nt * 4);
	if (chunk < 1)
		chunk = 1;
	nchunks = (nrows + chunk - 1) / chunk;
#pragma omp parallel num_threads(nt)
	{
		float *buf = malloc((size_t)w->ne[0] * sizeof(float));
		struct ktx_err e2;
		int rc2;

#pragma omp for schedule(dynamic, 1)
		for (ci = 0; ci < nchunks; ci++) {
			int64_t r0 = ci * chunk, nr = nrows - r0 < chunk ? nrows - r0 : chunk;

			if (buf == NULL) {
				rc2 = KTX_ENOMEM;
				ktx_err_set(&e2, rc2, "out of memory for a row of %s", w->name);
			} else {
				rc2 = fwd_matmul_rows(w, i2, row0 + r0, nr, x, x_stride, n,
				    y + r0, y_stride, buf, &e2);
			}
			if (rc2 != 0) {
#pragma omp critical(ktx_matmul_err)
				{
					if (rc == 0) {
						rc = rc2;
						if (err != NULL)
							*err = e2;
					}
				}
			}
		}
		free(buf);
	}
	return rc;
}
