/*
 * cpu_impl.h - what the ISA files of kernels/cpu/ share with cpu.c: the
 * table of kernels one level provides, and each level's fill function.
 */
#ifndef KTX_KERNELS_CPU_CPU_IMPL_H
#define KTX_KERNELS_CPU_CPU_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qtypes.h"

typedef float (*cpu_dot_fn)(int64_t n, const void *w, const void *x);
typedef void (*cpu_quant_fn)(const float *x, void *dst, int64_t n);
/* One weight row times nx <= CPU_DOTN_MAX activation rows (x_stride bytes
 * apart) into out[0..nx-1], unpacking each weight block once; out[t] must
 * be bit-identical to dot(n, w, x + t * x_stride). */
typedef void (*cpu_dotn_fn)(int64_t n, const void *w, const void *x, size_t x_stride, int nx,
    float *out);

/* Weight rows [0, rows) (w_stride bytes apart) times nx activation rows
 * into y[t * y_stride + r], for many activation rows at once; each output
 * must be bit-identical to dot(n, w + r * w_stride, x + t * x_stride). */
typedef void (*cpu_gemm_fn)(int64_t n, int64_t rows, const void *w, size_t w_stride,
    const void *x, size_t x_stride, int64_t nx, float *y, size_t y_stride);

#define CPU_DOTN_MAX 4

/* Kernel bodies meant to fold into their constant-nx callers. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* F(k, ...) with the constant k = nx (1..8; more goes as 8), for the ISA
 * files: their loops over activation rows unroll and the accumulators stay
 * in registers. */
#define CPU_NX_SWITCH(nx, F, ...)                                              \
	switch (nx) {                                                          \
	case 1: F(1, __VA_ARGS__); break;                                      \
	case 2: F(2, __VA_ARGS__); break;                                      \
	case 3: F(3, __VA_ARGS__); break;                                      \
	case 4: F(4, __VA_ARGS__); break;                                      \
	case 5: F(5, __VA_ARGS__); break;                                      \
	case 6: F(6, __VA_ARGS__); break;                                      \
	case 7: F(7, __VA_ARGS__); break;                                      \
	default: F(8, __VA_ARGS__); break;                                     \
	}

struct cpu_kernels {
	cpu_dot_fn dot[KTX_TYPE_COUNT_];
	cpu_dotn_fn dotn[KTX_TYPE_COUNT_];      /* NULL: dot per activation row */
	cpu_gemm_fn gemm[KTX_TYPE_COUNT_];      /* NULL: dotn for any nx */
	signed char dot_level[KTX_TYPE_COUNT_]; /* level that provides dot[t] */
	cpu_quant_fn quant_q8_K;
	cpu_quant_fn quant_q8_0;
};

/* Each fill function overwrites the entries its level implements and
 * leaves the rest (inherited from the level below) alone. */
void cpu_fill_avx2(struct cpu_kernels *k);
void cpu_fill_avx512(struct cpu_kernels *k);
void cpu_fill_avx512_iq(struct cpu_kernels *k);

#endif
