/*
 * dot_ref.h - the reference dot products of the hot path: one weight row
 * against one activation row already converted to the weight type's "dot
 * type" (Q8_K for the K- and i-quants, Q8_0 for the 32-element legacy types,
 * float32 for the float types).
 *
 * Each is the plain C definition its SIMD twins in kernels/cpu/ are tested
 * against: per block an exact integer sum of weight quant times activation
 * quant (times the integer sub-block scales), then that block's float
 * scales, summed over blocks in order. This is the arithmetic ggml's
 * vec_dot_*_q8_* kernels perform, so a path built on these rounds the
 * activations the way llama.cpp does (oracle README, "Precision").
 *
 * Float weights take float32 activations, not f16/bf16 ones as ggml does:
 * rounding the activations costs a float model KL of about 1e-5 and the
 * KL guard allows 1e-6 (issue 7); the products are summed in double.
 *
 * Contract: n is a whole number of weight blocks; activation quants are in
 * -127..127 (what ref_quantize_row_q8_K and _q8_0 produce), rows are
 * aligned to their block's alignment.
 */
#ifndef KTX_KERNELS_REF_DOT_REF_H
#define KTX_KERNELS_REF_DOT_REF_H

#include <stdint.h>

/* One weight row (n elements of its type) times one activation row. */
typedef float (*ref_dot_fn)(int64_t n, const void *w, const void *x);

/* The activation type a weight type's dot product takes (a KTX_TYPE_*), or
 * -1 when ktx has no dot product for it. */
int ref_dot_type(uint32_t wtype);
/* The reference dot product for a weight type, NULL when there is none. */
ref_dot_fn ref_dot_fn_for(uint32_t wtype);

/* Legacy types x Q8_0. */
float ref_dot_q4_0(int64_t n, const void *w, const void *x);
float ref_dot_q5_0(int64_t n, const void *w, const void *x);
float ref_dot_q8_0(int64_t n, const void *w, const void *x);
float ref_dot_iq4_nl(int64_t n, const void *w, const void *x);
/* K-quants x Q8_K. */
float ref_dot_q2_K(int64_t n, const void *w, const void *x);
float ref_dot_q3_K(int64_t n, const void *w, const void *x);
float ref_dot_q4_K(int64_t n, const void *w, const void *x);
float ref_dot_q5_K(int64_t n, const void *w, const void *x);
float ref_dot_q6_K(int64_t n, const void *w, const void *x);
/* i-quants x Q8_K. */
float ref_dot_iq1_s(int64_t n, const void *w, const void *x);
float ref_dot_iq1_m(int64_t n, const void *w, const void *x);
float ref_dot_iq2_xxs(int64_t n, const void *w, const void *x);
float ref_dot_iq2_xs(int64_t n, const void *w, const void *x);
float ref_dot_iq3_xxs(int64_t n, const void *w, const void *x);
float ref_dot_iq4_xs(int64_t n, const void *w, const void *x);
/* Float types x float32. */
float ref_dot_f32(int64_t n, const void *w, const void *x);
float ref_dot_f16(int64_t n, const void *w, const void *x);
float ref_dot_bf16(int64_t n, const void *w, const void *x);

#endif
