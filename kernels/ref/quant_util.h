/*
 * quant_util.h - small helpers shared by the reference quantizers.
 */
#ifndef KTX_KERNELS_REF_QUANT_UTIL_H
#define KTX_KERNELS_REF_QUANT_UTIL_H

#include <math.h>

/* Below this magnitude a group counts as all zero (ggml's GROUP_MAX_EPS). */
#define QUANT_GROUP_EPS 1e-15f

/*
 * Rounds v to the nearest integer, ties to even (what ggml's nearest_int
 * does), clamped to [lo, hi]. Clamping first keeps the conversion defined
 * for the huge ratios a tiny or zero scale produces; NaN gives lo.
 */
static inline int
round_clamp(float v, int lo, int hi)
{
	if (!(v > (float)lo))
		return lo;
	if (v >= (float)hi)
		return hi;
	return (int)rintf(v);
}

#endif
