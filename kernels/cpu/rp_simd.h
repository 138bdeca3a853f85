/*
 * rp_simd.h - what the repacked kernels (kernels/cpu/rp_*.c) share: the
 * switch to a constant activation-row count and the broadcast vpdpbusd.
 * Include it after the file's AVX-512 target pragma and <immintrin.h>: the
 * inline function takes the including file's instruction set.
 */
#ifndef KTX_KERNELS_CPU_RP_SIMD_H
#define KTX_KERNELS_CPU_RP_SIMD_H

#include <stdint.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* F(k, ...) with the constant k = nx (1..CPU_RP_NX), as avx512.c's
 * KQ_SWITCH: the loops over activation rows unroll and their accumulators
 * stay in registers. */
#define RP_SWITCH(nx, F, ...)                                                  \
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

/*
 * acc + vpdpbusd(w, the 4 bytes at p in every 32-bit lane): the bytes are
 * broadcast by the instruction's memory operand ({1to16}). In asm because
 * GCC 12 does not fold _mm512_set1_epi32 into that operand: a separate
 * vpbroadcastd per 4 activation bytes takes a vector slot, the register
 * allocator then fills the inner loop with copies, and 8 activation rows
 * take about 1.2 times as long (measured on Q4_K and Q6_K).
 */
static inline __m512i
dpbusd_bcast(__m512i acc, __m512i w, const int8_t *p)
{
	__asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w),
	    "m"(*(const int8_t(*)[4])p));
	return acc;
}

#endif
