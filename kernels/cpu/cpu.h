/*
 * cpu.h - the fast CPU kernels: dot products of quantized weight rows with
 * quantized activations, and the matrix-vector / small-GEMM entry point the
 * forward pass calls.
 *
 * Every kernel has a plain twin in kernels/ref/dot_ref.c (the "generic"
 * level); the AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL, VNNI) levels
 * implement the same functions. The level is chosen once, from CPUID, the
 * first time any function here runs; the environment variable KTX_CPU
 * (generic, avx2 or avx512) can lower it, never raise it past the CPU.
 *
 * Use: for a weight of type wtype, convert each activation row once with
 * ktx_cpu_quantize_row() into ktx_cpu_dot_type(wtype) (a buffer of
 * ktx_cpu_act_row_bytes() bytes, reusable for every matrix that reads the
 * same input), then call ktx_cpu_matmul() (or ktx_cpu_matmul_sum() when
 * each input is a sum of several rows). Results do not depend on the
 * thread count: each output is one dot product computed by one thread
 * (with ktx_cpu_matmul_sum, a sum of them, in one thread and one order).
 *
 * Rows need the alignment of their blocks' fields, as GGUF data has: 2
 * bytes, 4 for F32 and Q8_K rows; SIMD loads are unaligned.
 *
 * Functions return 0, or -1 for a type without a kernel or a length that
 * is not a whole number of blocks (the engine reports KTX_EUNSUPPORTED /
 * KTX_EINVAL); they never print.
 */
#ifndef KTX_KERNELS_CPU_CPU_H
#define KTX_KERNELS_CPU_CPU_H

#include <stddef.h>
#include <stdint.h>

enum ktx_cpu_level {
	KTX_CPU_GENERIC = 0, /* the reference twins, any x86-64 */
	KTX_CPU_AVX2 = 1,    /* AVX2 + FMA + F16C */
	KTX_CPU_AVX512 = 2,  /* AVX-512 F + BW + VL + VNNI, on top of AVX2 */
	KTX_CPU_LEVELS_
};

/* The level in use (detected and KTX_CPU applied on first use). */
int ktx_cpu_level(void);
/* The best level this CPU supports, ignoring KTX_CPU. */
int ktx_cpu_max_level(void);
/* "generic", "avx2", "avx512"; "?" for anything else. */
const char *ktx_cpu_level_name(int level);
/* Switches to level (tests, benchmarks; not while kernels run on other
 * threads). Returns -1, changing nothing, if the CPU lacks it. */
int ktx_cpu_set_level(int level);

/* The activation type (KTX_TYPE_Q8_K, _Q8_0 or _F32) wtype's dot product
 * takes, or -1 when there is no kernel for wtype. */
int ktx_cpu_dot_type(uint32_t wtype);
/* Bytes of one activation row of n elements for weights of type wtype
 * (0 when unsupported or n is not a whole number of blocks). */
size_t ktx_cpu_act_row_bytes(uint32_t wtype, int64_t n);
/* The level whose code computes wtype's dot product now: the current level,
 * or a lower one where that level has no kernel of its own for wtype. */
int ktx_cpu_kernel_level(uint32_t wtype);

/* Converts n float32 activations to one row of dot_type (Q8_K, Q8_0 or
 * F32), bit-identical to kernels/ref's quantizer at every level. */
int ktx_cpu_quantize_row(uint32_t dot_type, const float *x, void *dst, int64_t n);

/* One weight row (n elements of wtype) times one activation row. */
int ktx_cpu_dot(uint32_t wtype, int64_t n, const void *w, const void *xq, float *out);

/*
 * y[t * y_stride + r] = W[r] . xq[t] for rows r < rows and activation rows
 * t < nx. W's row r starts at w + r * w_stride bytes, activation row t at
 * xq + t * x_stride bytes (rows of ktx_cpu_act_row_bytes()). Rows are
 * spread over nthreads OpenMP threads (0: OpenMP's default) in blocks;
 * each weight row is read once from memory for all nx activation rows.
 */
int ktx_cpu_matmul(uint32_t wtype, int64_t n, int64_t rows, const void *w, size_t w_stride,
    const void *xq, size_t x_stride, int64_t nx, float *y, size_t y_stride, int nthreads);

/* The most sub-rows ktx_cpu_matmul_sum adds into one output. */
#define KTX_CPU_NSUB_MAX 8

/*
 * ktx_cpu_matmul for inputs stored as nsub rows each (1 <= nsub <=
 * KTX_CPU_NSUB_MAX; an 8-bit row and its residual's, say), whose product is
 * the sum of the rows' products: xq holds nx * nsub activation rows,
 * x_stride bytes apart, input t's in rows t * nsub .. t * nsub + nsub - 1,
 * and y[t * y_stride + r] = W[r] . xq[t * nsub] + W[r] . xq[t * nsub + 1]
 * + ..., added in that order in float (for nsub 2 exactly the sum of the
 * two ktx_cpu_matmul outputs). No memory is allocated; the products wait
 * in small blocks on each thread's stack. nsub 1 is ktx_cpu_matmul.
 */
int ktx_cpu_matmul_sum(uint32_t wtype, int64_t n, int64_t rows, const void *w, size_t w_stride,
    const void *xq, size_t x_stride, int64_t nx, int nsub, float *y, size_t y_stride,
    int nthreads);

#endif
