/*
 * rp_simd.h - what the repacked kernels (kernels/cpu/rp_*.c) share: the
 * broadcast vpdpbusd.
 * Include it after the file's AVX-512 target pragma and <immintrin.h>: the
 * inline function takes the including file's instruction set.
 */
#ifndef KTX_KERNELS_CPU_RP_SIMD_H
#define KTX_KERNELS_CPU_RP_SIMD_H

#include <stdint.h>

#include "kernels/cpu/cpu_impl.h"

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
