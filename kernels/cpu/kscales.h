/*
 * kscales.h - branch-free unpacking of Q3_K's packed scales, shared by the
 * ISA files (each compiles it for its own instruction set).
 */
#ifndef KTX_KERNELS_CPU_KSCALES_H
#define KTX_KERNELS_CPU_KSCALES_H

#include <stdint.h>
#include <string.h>

/*
 * Q3_K's 16 6-bit scales, still biased by 32, as bytes: scale j has its low
 * nibble in byte j (j < 8) or the high nibble of byte j - 8, and its top two
 * bits at bit 2 (j / 4) of byte 8 + j % 4. lo/hi get scales 0-7 / 8-15.
 */
static inline void
q3_scale_bytes(const uint8_t *sp, uint64_t *lo, uint64_t *hi)
{
	const uint64_t n4 = 0x0f0f0f0f0f0f0f0full;
	const uint32_t b2 = 0x03030303u;
	uint64_t a;
	uint32_t b;

	memcpy(&a, sp, sizeof(a));
	memcpy(&b, sp + 8, sizeof(b));
	*lo = (a & n4) | ((uint64_t)(b & b2) | (uint64_t)((b >> 2) & b2) << 32) << 4;
	*hi = ((a >> 4) & n4) | ((uint64_t)((b >> 4) & b2) | (uint64_t)((b >> 6) & b2) << 32) << 4;
}

#endif
