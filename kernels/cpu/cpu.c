/*
 * cpu.c - picks the kernel level at start (CPUID, then the KTX_CPU
 * override), converts activations, and runs the row-parallel matmul.
 */
#include "kernels/cpu/cpu.h"

#include <cpuid.h>
#include <pthread.h>
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

int
ktx_cpu_matmul(uint32_t wtype, int64_t n, int64_t rows, const void *w, size_t w_stride,
    const void *xq, size_t x_stride, int64_t nx, float *y, size_t y_stride, int nthreads)
{
	const uint8_t *wp = w, *xp = xq;
	int64_t nblocks;
	cpu_dot_fn dot;
	cpu_dotn_fn dotn;
	cpu_gemm_fn gemm;

	if (ktx_cpu_act_row_bytes(wtype, n) == 0 || rows < 0 || nx < 0)
		return -1;
	dot = kernels()->dot[wtype];
	dotn = nx > 1 ? kernels()->dotn[wtype] : NULL;
	gemm = nx > CPU_DOTN_MAX ? kernels()->gemm[wtype] : NULL;
	nblocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
	if (nthreads <= 0)
		nthreads = omp_default_threads();
	/* Each (row, activation row) output is one dot computation by one
	 * thread (dotn and gemm give the bits dot would), so the result is
	 * the same for any thread count. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) \
    if (rows * n * (nx < 4 ? 1 : nx / 4) >= PARALLEL_MIN)
	for (int64_t b = 0; b < nblocks; b++) {
		int64_t r1 = (b + 1) * ROW_BLOCK < rows ? (b + 1) * ROW_BLOCK : rows;

		if (gemm != NULL) {
			gemm(n, r1 - b * ROW_BLOCK, wp + (size_t)(b * ROW_BLOCK) * w_stride, w_stride,
			    xp, x_stride, nx, y + b * ROW_BLOCK, y_stride);
			continue;
		}
		for (int64_t r = b * ROW_BLOCK; r < r1; r++) {
			const uint8_t *wr = wp + (size_t)r * w_stride;
			int64_t t = 0;

			for (; dotn != NULL && t + 1 < nx; t += CPU_DOTN_MAX) {
				int k = nx - t < CPU_DOTN_MAX ? (int)(nx - t) : CPU_DOTN_MAX;
				float out[CPU_DOTN_MAX];

				dotn(n, wr, xp + (size_t)t * x_stride, x_stride, k, out);
				for (int j = 0; j < k; j++)
					y[(size_t)(t + j) * y_stride + (size_t)r] = out[j];
			}
			for (; t < nx; t++)
				y[(size_t)t * y_stride + (size_t)r] =
				    dot(n, wr, xp + (size_t)t * x_stride);
		}
	}
	return 0;
}
