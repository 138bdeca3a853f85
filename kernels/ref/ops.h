/*
 * ops.h - the reference definition of every float op of the forward pass.
 *
 * Plain, scalar C on float32 vectors, accumulating in double: these are what
 * the faster kernels are measured against, so they favour being obviously
 * right over being fast. Weight matrices in their file encoding are the
 * engine's business (engine/forward_matmul.c dequantizes rows and calls
 * ktx_ref_dot); nothing here knows about quant types or models.
 */
#ifndef KTX_KERNELS_REF_OPS_H
#define KTX_KERNELS_REF_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Sum of a[i] * b[i], accumulated in double. */
double ktx_ref_dot(const float *a, const float *b, size_t n);

/* acc[i] += s * a[i]: one row's share of a transposed product. */
void ktx_ref_axpy(double *acc, double s, const float *a, size_t n);

/* y = x / sqrt(mean(x^2) + eps) * w (y may be x). */
void ktx_ref_rmsnorm(float *y, const float *x, const float *w, size_t n, float eps);

/* x = softmax(x), in place; n >= 1. */
void ktx_ref_softmax(float *x, size_t n);

/* The same on doubles (attention scores). */
void ktx_ref_softmax_d(double *x, size_t n);

float ktx_ref_sigmoid(float x);

/* x * sigmoid(x). */
float ktx_ref_silu(float x);

/* g[i] = silu(g[i]) * u[i]: the gated FFN's activation. */
void ktx_ref_swiglu(float *g, const float *u, size_t n);

/*
 * Indices of the k largest of x[0..n) into idx[0..k), largest first; equal
 * values keep the lower index first (a stable order, so results never depend
 * on anything but the values). k <= n.
 */
void ktx_ref_topk(const float *x, size_t n, size_t k, uint32_t *idx);

/* Index of the largest value (the lowest such index on ties). */
uint32_t ktx_ref_argmax(const float *x, size_t n);

/*
 * RoPE frequencies of a head's rope part: freq[i] = base^(-2i/dim) for the
 * dim/2 pairs. With yarn_factor > 1 they are YaRN-interpolated over the
 * original context orig_ctx with beta_fast/beta_slow, as DeepSeek-V3's
 * precompute_freqs_cis does (inference/model.py).
 */
void ktx_ref_rope_freqs(double *freq, uint32_t dim, double base, double yarn_factor,
    double orig_ctx, double beta_fast, double beta_slow);

/* YaRN's attention-scale correction 1 + 0.1 * mscale * ln(factor) (1 when
 * factor <= 1); the softmax scale is multiplied by its square. */
double ktx_ref_yarn_mscale(double factor, double mscale);

/*
 * Rotates the consecutive pairs (x[2i], x[2i+1]) of x[0..dim) by the angle
 * pos * freq[i] (DeepSeek's apply_rotary_emb, llama.cpp's "normal" mode).
 */
void ktx_ref_rope(float *x, uint32_t dim, const double *freq, uint32_t pos);

#endif
