/*
 * cpu.c - picks the kernel level at start (CPUID, then the KTX_CPU
 * override), converts activations, and runs the row-parallel matmul.
 */
#include "kernels/cpu/cpu.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/cpu/cpu_impl.h"
#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/dot_ref.h"
#include "kernels/ref/quant_ref.h"

/* Rows one thread takes at a time: long runs of consecutive rows keep the
 * hardware prefetchers streaming (single-session decode on a V3-wide block
 * is 7 % faster at 64 than at 16), and a 2048-row expert matrix still
 * spreads over 32 threads. */
#define ROW_BLOCK 64
/* Activation rows a summing matmul (nsub > 1) takes at a time in a row
 * block: their products, SUM_CHUNK x ROW_BLOCK floats (16 KiB, beside the
 * AVX-512 gemm's 48 KiB of accumulators: OpenMP workers have small
 * stacks), wait on the stack until each output adds its sub-rows into y,
 * while they are still in L1. Two of that gemm's tiles of 32 rows. */
#define SUM_CHUNK 64
/* Below this many weight elements a matmul runs on the calling thread. */
#define PARALLEL_MIN ((int64_t)1 << 16)

static const char *const level_names[KTX_CPU_LEVELS_] = { "generic", "avx2", "avx512" };

static struct cpu_kernels tables[KTX_CPU_LEVELS_];
static int max_level;
static int cur_level;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Whether CPUID leaf 1 reports F16C; clang 14's __builtin_cpu_supports
 * does not know the name "f16c". */
static int
has_f16c(void)
{
	unsigned a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}

/* The best level the CPU (and the OS, which CPUID's OSXSAVE-aware checks
 * in __builtin_cpu_supports cover) runs. */
static int
detect_level(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !has_f16c())
		return KTX_CPU_GENERIC;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
		return KTX_CPU_AVX512;
	return KTX_CPU_AVX2;
}

/* Builds the three tables (each level starts from the one below) and
 * applies KTX_CPU; an unknown value is ignored. */
static void
init_once(void)
{
	static const uint32_t types[] = { KTX_TYPE_Q4_0, KTX_TYPE_Q5_0, KTX_TYPE_Q8_0,
		KTX_TYPE_IQ4_NL, KTX_TYPE_Q2_K, KTX_TYPE_Q3_K, KTX_TYPE_Q4_K, KTX_TYPE_Q5_K,
		KTX_TYPE_Q6_K, KTX_TYPE_IQ1_S, KTX_TYPE_IQ1_M, KTX_TYPE_IQ2_XXS, KTX_TYPE_IQ2_XS,
		KTX_TYPE_IQ3_XXS, KTX_TYPE_IQ4_XS, KTX_TYPE_F32, KTX_TYPE_F16, KTX_TYPE_BF16 };
	struct cpu_kernels *g = &tables[KTX_CPU_GENERIC];
	const char *env;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		g->dot[types[i]] = ref_dot_fn_for(types[i]);
		g->dot_level[types[i]] = KTX_CPU_GENERIC;
	}
	g->quant_q8_K = ref_quantize_row_q8_K;
	g->quant_q8_0 = ref_quantize_row_q8_0;
	tables[KTX_CPU_AVX2] = *g;
	cpu_fill_avx2(&tables[KTX_CPU_AVX2]);
	tables[KTX_CPU_AVX512] = tables[KTX_CPU_AVX2];
	cpu_fill_avx512(&tables[KTX_CPU_AVX512]);
	cpu_fill_avx512_iq(&tables[KTX_CPU_AVX512]);

	max_level = detect_level();
	cur_level = max_level;
	env = getenv("KTX_CPU");
	if (env != NULL) {
		for (int l = 0; l < KTX_CPU_LEVELS_; l++)
			if (strcmp(env, level_names[l]) == 0 && l <= max_level)
				cur_level = l;
	}
}

/* OpenMP's thread count for a new parallel region (1 without OpenMP). */
static int
omp_default_threads(void)
{
#ifdef _OPENMP
	return omp_get_max_threads();
#else
	return 1;
#endif
}

static const struct cpu_kernels *
kernels(void)
{
	pthread_once(&once, init_once);
	return &tables[cur_level];
}

int
ktx_cpu_level(void)
{
	pthread_once(&once, init_once);
	return cur_level;
}

int
ktx_cpu_max_level(void)
{
	pthread_once(&once, init_once);
	return max_level;
}

const char *
ktx_cpu_level_name(int level)
{
	return level >= 0 && level < KTX_CPU_LEVELS_ ? level_names[level] : "?";
}

int
ktx_cpu_set_level(int level)
{
	pthread_once(&once, init_once);
	if (level < 0 || level > max_level)
		return -1;
	cur_level = level;
	return 0;
}

int
ktx_cpu_dot_type(uint32_t wtype)
{
	return ref_dot_type(wtype);
}

/* Elements per block of a weight type with a kernel (0 otherwise). */
static int64_t
block_elems(uint32_t type)
{
	switch (type) {
	case KTX_TYPE_F32:
	case KTX_TYPE_F16:
	case KTX_TYPE_BF16:
		return 1;
	case KTX_TYPE_Q4_0:
	case KTX_TYPE_Q5_0:
	case KTX_TYPE_Q8_0:
	case KTX_TYPE_IQ4_NL:
		return 32;
	default:
		return ref_dot_type(type) == KTX_TYPE_Q8_K ? QK_K : 0;
	}
}

size_t
ktx_cpu_act_row_bytes(uint32_t wtype, int64_t n)
{
	int64_t be = block_elems(wtype);

	if (be == 0 || n <= 0 || n % be != 0)
		return 0;
	switch (ref_dot_type(wtype)) {
	case KTX_TYPE_Q8_K:
		return (size_t)(n / QK_K) * sizeof(struct block_q8_K);
	case KTX_TYPE_Q8_0:
		return (size_t)(n / QK8_0) * sizeof(struct block_q8_0);
	default:
		return (size_t)n * sizeof(float);
	}
}

int
ktx_cpu_kernel_level(uint32_t wtype)
{
	if (wtype >= KTX_TYPE_COUNT_ || kernels()->dot[wtype] == NULL)
		return -1;
	return kernels()->dot_level[wtype];
}

int
ktx_cpu_quantize_row(uint32_t dot_type, const float *x, void *dst, int64_t n)
{
	const struct cpu_kernels *k = kernels();

	switch (dot_type) {
	case KTX_TYPE_Q8_K:
		if (n <= 0 || n % QK_K != 0)
			return -1;
		k->quant_q8_K(x, dst, n);
		return 0;
	case KTX_TYPE_Q8_0:
		if (n <= 0 || n % QK8_0 != 0)
			return -1;
		k->quant_q8_0(x, dst, n);
		return 0;
	case KTX_TYPE_F32:
		if (n <= 0)
			return -1;
		memmove(dst, x, (size_t)n * sizeof(float));
		return 0;
	default:
		return -1;
	}
}

int
ktx_cpu_dot(uint32_t wtype, int64_t n, const void *w, const void *xq, float *out)
{
	if (ktx_cpu_act_row_bytes(wtype, n) == 0)
		return -1;
	*out = kernels()->dot[wtype](n, w, xq);
	return 0;
}

/*
 * Weight rows [0, nr) (ws bytes apart) times activation rows [0, nx) (xs
 * bytes apart) into p[t * ps + r]: the gemm for more than CPU_DOTN_MAX
 * activation rows where the type has one, else dotn for runs of up to
 * CPU_DOTN_MAX and dot for what is left. Every output has dot's bits.
 */
static void
block_products(const struct cpu_kernels *k, uint32_t wtype, int64_t n, int64_t nr,
    const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, int64_t nx, float *p, size_t ps)
{
	cpu_dot_fn dot = k->dot[wtype];
	cpu_dotn_fn dotn = nx > 1 ? k->dotn[wtype] : NULL;
	cpu_gemm_fn gemm = nx > CPU_DOTN_MAX ? k->gemm[wtype] : NULL;

	if (gemm != NULL) {
		gemm(n, nr, w, ws, x, xs, nx, p, ps);
		return;
	}
	for (int64_t r = 0; r < nr; r++) {
		const uint8_t *wr = w + (size_t)r * ws;
		int64_t t = 0;

		for (; dotn != NULL && t + 1 < nx; t += CPU_DOTN_MAX) {
			int m = nx - t < CPU_DOTN_MAX ? (int)(nx - t) : CPU_DOTN_MAX;
			float out[CPU_DOTN_MAX];

			dotn(n, wr, x + (size_t)t * xs, xs, m, out);
			for (int j = 0; j < m; j++)
				p[(size_t)(t + j) * ps + (size_t)r] = out[j];
		}
		for (; t < nx; t++)
			p[(size_t)t * ps + (size_t)r] = dot(n, wr, x + (size_t)t * xs);
	}
}

/* The outputs of row block b (ROW_BLOCK rows from b * ROW_BLOCK) for all
 * nx inputs of nsub sub-rows: ktx_cpu_matmul_sum's loop body. */
static void
matmul_sum_block(const struct cpu_kernels *k, uint32_t wtype, int64_t n, int64_t rows,
    const uint8_t *wp, size_t w_stride, const uint8_t *xp, size_t x_stride, int64_t nx,
    int nsub, int64_t chunk, float *y, size_t y_stride, int64_t b)
{
	int64_t r0 = b * ROW_BLOCK, nr = rows - r0 < ROW_BLOCK ? rows - r0 : ROW_BLOCK;
	int64_t nxa = nx * nsub;
	const uint8_t *wb = wp + (size_t)r0 * w_stride;
	float p[SUM_CHUNK * ROW_BLOCK];

	if (nsub == 1) {
		block_products(k, wtype, n, nr, wb, w_stride, xp, x_stride, nx, y + r0, y_stride);
		return;
	}
	for (int64_t t0 = 0; t0 < nxa; t0 += chunk) {
		int64_t m = nxa - t0 < chunk ? nxa - t0 : chunk;

		block_products(k, wtype, n, nr, wb, w_stride, xp + (size_t)t0 * x_stride, x_stride,
		    m, p, ROW_BLOCK);
		for (int64_t u = 0; u < m / nsub; u++) {
			float *yu = y + (size_t)(t0 / nsub + u) * y_stride + (size_t)r0;
			const float *pu = p + (size_t)(u * nsub) * ROW_BLOCK;

			for (int64_t r = 0; r < nr; r++)
				yu[r] = pu[r];
			for (int s = 1; s < nsub; s++)
				for (int64_t r = 0; r < nr; r++)
					yu[r] += pu[(size_t)s * ROW_BLOCK + (size_t)r];
		}
	}
}

int
ktx_cpu_matmul_sum(uint32_t wtype, int64_t n, int64_t rows, const void *w, size_t w_stride,
    const void *xq, size_t x_stride, int64_t nx, int nsub, float *y, size_t y_stride,
    int nthreads)
{
	const struct cpu_kernels *k;
	const uint8_t *wp = w, *xp = xq;
	int64_t nblocks, nxa, chunk;

	if (ktx_cpu_act_row_bytes(wtype, n) == 0 || rows < 0 || nx < 0 || nsub < 1 ||
	    nsub > KTX_CPU_NSUB_MAX || nx > INT64_MAX / nsub)
		return -1;
	k = kernels();
	nxa = nx * nsub;
	/* whole outputs per chunk, so that a row's sub-rows meet in one */
	chunk = SUM_CHUNK - SUM_CHUNK % nsub;
	nblocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
	if (nthreads <= 0)
		nthreads = omp_default_threads();
	/* One thread, or too little work to wake others: no parallel region
	 * at all (a nested one, from a caller's parallel loop, still costs
	 * libgomp a team and a lock). */
	if (nthreads == 1 || rows * n * (nxa < 4 ? 1 : nxa / 4) < PARALLEL_MIN) {
		for (int64_t b = 0; b < nblocks; b++)
			matmul_sum_block(k, wtype, n, rows, wp, w_stride, xp, x_stride, nx, nsub,
			    chunk, y, y_stride, b);
		return 0;
	}
	/* Each (row, activation row) product is one dot computation by one
	 * thread (dotn and gemm give the bits dot would; chunking the
	 * activation rows only splits the gemm's tiles), and each output adds
	 * its sub-rows' products in order in the thread that made them, so
	 * the result is the same for any thread count. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
	for (int64_t b = 0; b < nblocks; b++)
		matmul_sum_block(k, wtype, n, rows, wp, w_stride, xp, x_stride, nx, nsub, chunk, y,
		    y_stride, b);
	return 0;
}

int
ktx_cpu_matmul(uint32_t wtype, int64_t n, int64_t rows, const void *w, size_t w_stride,
    const void *xq, size_t x_stride, int64_t nx, float *y, size_t y_stride, int nthreads)
{
	return ktx_cpu_matmul_sum(wtype, n, rows, w, w_stride, xq, x_stride, nx, 1, y, y_stride,
	    nthreads);
}
