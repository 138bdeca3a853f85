/*
 * repack.c - the entry points of repacked weights (repack.h): which types
 * have them, packing a matrix in place, and the matmul's loop over groups
 * of rows, activation chunks and threads around each type's group kernel.
 */
#include "kernels/cpu/repack.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/cpu/cpu.h"
#include "kernels/quant_blocks.h"
#include "kernels/qtypes.h"

/* Groups per parallel task: 64 rows, as ktx_cpu_matmul's row blocks. */
#define RP_TASK_GROUPS 4
/* Less work than this (weight elements x activation rows / 4) runs on the
 * calling thread: a parallel region costs a few microseconds. */
#define RP_PARALLEL_MIN ((int64_t)1 << 16)

/* The ops of wtype, or NULL when it has none at this level. */
static const struct cpu_rp_ops *
rp_ops(uint32_t wtype)
{
	if (ktx_cpu_level() < KTX_CPU_AVX512)
		return NULL;
	switch (wtype) {
	case KTX_TYPE_Q2_K:
		return &cpu_rp_q2_K;
	case KTX_TYPE_Q3_K:
		return &cpu_rp_q3_K;
	case KTX_TYPE_Q4_K:
		return &cpu_rp_q4_K;
	case KTX_TYPE_Q5_K:
		return &cpu_rp_q5_K;
	case KTX_TYPE_Q6_K:
		return &cpu_rp_q6_K;
	default:
		return NULL;
	}
}

/* The ops for rows of n elements of wtype, *row_bytes set; NULL when n is
 * not a whole number of blocks or the type has none. */
static const struct cpu_rp_ops *
rp_ops_for(uint32_t wtype, int64_t n, size_t *row_bytes)
{
	const struct cpu_rp_ops *ops = rp_ops(wtype);

	if (ops == NULL || n <= 0 || n % QK_K != 0)
		return NULL;
	*row_bytes = (size_t)(n / QK_K) * ops->block_bytes;
	return ops;
}

bool
ktx_cpu_rp_has(uint32_t wtype, int64_t n)
{
	size_t rb;

	return rp_ops_for(wtype, n, &rb) != NULL;
}

int
ktx_cpu_rp_pack(uint32_t wtype, int64_t n, int64_t rows, void *w)
{
	const struct cpu_rp_ops *ops;
	size_t rb, gb;
	uint8_t *tmp;

	if ((ops = rp_ops_for(wtype, n, &rb)) == NULL || rows < 0 ||
	    rows % KTX_CPU_RP_ROWS != 0)
		return -1;
	gb = rb * KTX_CPU_RP_ROWS;
	/* A group's rows are copied out first: pack reads rows and writes the
	 * group, which occupy the same bytes. */
	if ((tmp = malloc(gb)) == NULL)
		return -1;
	for (int64_t g = 0; g < rows / KTX_CPU_RP_ROWS; g++) {
		uint8_t *grp = (uint8_t *)w + (size_t)g * gb;

		memcpy(tmp, grp, gb);
		ops->pack(n, tmp, rb, grp);
	}
	free(tmp);
	return 0;
}

int
ktx_cpu_rp_unpack_row(uint32_t wtype, int64_t n, const void *w, int64_t r, void *row)
{
	const struct cpu_rp_ops *ops;
	size_t rb;

	if ((ops = rp_ops_for(wtype, n, &rb)) == NULL || r < 0)
		return -1;
	ops->unpack(n, (const uint8_t *)w + (size_t)(r / KTX_CPU_RP_ROWS) * rb * KTX_CPU_RP_ROWS,
	    (int)(r % KTX_CPU_RP_ROWS), row);
	return 0;
}

/*
 * Group g's outputs for output rows [t0, t0 + k) into y: the gemm over
 * their k * nsub activation rows, sub-rows summed from s = 0 up, a whole
 * 16-float vector at a time, as the gemm stored them (lane by lane the
 * same additions). Only called at the AVX-512 level, where the gemms are.
 */
_Static_assert(KTX_CPU_RP_ROWS == 16, "a group's outputs are one vector of 16 floats");

__attribute__((target("avx512f"))) static void
rp_chunk(const struct cpu_rp_ops *ops, int64_t n, const uint8_t *grp, const uint8_t *xq,
    size_t xs, int64_t t0, int k, int nsub, float *y, size_t ys)
{
	float out[CPU_RP_NX * KTX_CPU_RP_ROWS];

	ops->gemm(n, grp, xq + (size_t)(t0 * nsub) * xs, xs, k * nsub, out);
	for (int t = 0; t < k; t++) {
		const float *o = out + t * nsub * KTX_CPU_RP_ROWS;
		__m512 sum = _mm512_loadu_ps(o);

		for (int s = 1; s < nsub; s++)
			sum = _mm512_add_ps(sum, _mm512_loadu_ps(o + s * KTX_CPU_RP_ROWS));
		_mm512_storeu_ps(y + (size_t)(t0 + t) * ys, sum);
	}
}

/* Task task of ktx_cpu_rp_matmul: groups [task * RP_TASK_GROUPS, ...) for
 * every activation row. */
static void
rp_task(const struct cpu_rp_ops *ops, int64_t n, const uint8_t *w, size_t gb,
    int64_t ngroups, const void *xq, size_t x_stride, int64_t nx, int nsub, float *y,
    size_t y_stride, int64_t task)
{
	int64_t g1 = (task + 1) * RP_TASK_GROUPS < ngroups ? (task + 1) * RP_TASK_GROUPS :
	    ngroups;
	int per = CPU_RP_NX / nsub; /* output rows per gemm call */

	/* Activation chunks outside, groups inside: a chunk's rows (64 KiB at
	 * V3's width) and the task's four groups stay in L2 while the groups
	 * are read once from memory. */
	for (int64_t t0 = 0; t0 < nx; t0 += per) {
		int k = nx - t0 < per ? (int)(nx - t0) : per;

		for (int64_t g = task * RP_TASK_GROUPS; g < g1; g++)
			rp_chunk(ops, n, w + (size_t)g * gb, xq, x_stride, t0, k, nsub,
			    y + g * KTX_CPU_RP_ROWS, y_stride);
	}
}

int
ktx_cpu_rp_matmul(uint32_t wtype, int64_t n, int64_t rows, const void *w,
    const void *xq, size_t x_stride, int64_t nx, int nsub, float *y, size_t y_stride,
    int nthreads)
{
	const struct cpu_rp_ops *ops;
	int64_t ngroups, ntasks;
	size_t rb, gb;

	if ((ops = rp_ops_for(wtype, n, &rb)) == NULL || rows < 0 ||
	    rows % KTX_CPU_RP_ROWS != 0 || nx < 0 || nsub < 1 || nsub > CPU_RP_NX)
		return -1;
	gb = rb * KTX_CPU_RP_ROWS;
	ngroups = rows / KTX_CPU_RP_ROWS;
	ntasks = (ngroups + RP_TASK_GROUPS - 1) / RP_TASK_GROUPS;
#ifdef _OPENMP
	if (nthreads <= 0)
		nthreads = omp_get_max_threads();
#endif
	/* One thread or little work: no parallel region (see cpu.c). */
	if (nthreads <= 1 || ntasks <= 1 || rows * n * (nx < 4 ? 1 : nx / 4) < RP_PARALLEL_MIN) {
		for (int64_t task = 0; task < ntasks; task++)
			rp_task(ops, n, w, gb, ngroups, xq, x_stride, nx, nsub, y, y_stride, task);
		return 0;
	}
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
	for (int64_t task = 0; task < ntasks; task++)
		rp_task(ops, n, w, gb, ngroups, xq, x_stride, nx, nsub, y, y_stride, task);
	return 0;
}
