/*
 * quant_ref.h - the reference (de)quantizers: plain C that defines what every
 * GGUF element type means.
 *
 * dequantize: n elements (a whole number of blocks) of src -> float32 dst,
 * bit-exact with ggml's C dequantizers (llama.cpp 84f71294), which is what
 * the oracle's dequant hashes are. quantize: n float32 elements -> blocks,
 * by the search strategies of ggml's non-imatrix reference quantizers
 * (quantize_row_*_ref), with the same arithmetic, so they pick the same
 * blocks; they differ only in degenerate cases where ggml's integer
 * conversions are undefined or wrap (ratios out of range because a scale
 * underflowed in fp16, a negative sub-block fit): these clamp instead.
 * Inputs to the quantizers must be finite.
 *
 * Callers check types and lengths (see engine/quant.h, which also bounces
 * data that is not 4-byte aligned); these functions assume a valid n and
 * aligned blocks.
 *
 * Every fast kernel is tested against these, so they favour being obviously
 * right over being quick.
 */
#ifndef KTX_KERNELS_REF_QUANT_REF_H
#define KTX_KERNELS_REF_QUANT_REF_H

#include <stdint.h>

/* Plain float types (quant_float.c). */
void ref_dequantize_row_f32(const void *src, float *dst, int64_t n);
void ref_quantize_row_f32(const float *src, void *dst, int64_t n);
void ref_dequantize_row_f16(const void *src, float *dst, int64_t n);
void ref_quantize_row_f16(const float *src, void *dst, int64_t n);
void ref_dequantize_row_bf16(const void *src, float *dst, int64_t n);
void ref_quantize_row_bf16(const float *src, void *dst, int64_t n);

/* Blocks of 32 with one scale, and a min for Q4_1 and Q5_1 (quant_legacy.c). */
void ref_dequantize_row_q4_0(const void *src, float *dst, int64_t n);
void ref_quantize_row_q4_0(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q4_1(const void *src, float *dst, int64_t n);
void ref_quantize_row_q4_1(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q5_0(const void *src, float *dst, int64_t n);
void ref_quantize_row_q5_0(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q5_1(const void *src, float *dst, int64_t n);
void ref_quantize_row_q5_1(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q8_0(const void *src, float *dst, int64_t n);
void ref_quantize_row_q8_0(const float *src, void *dst, int64_t n);

/* K-quants: super-blocks of 256 with quantized sub-block scales (quant_k.c). */
void ref_dequantize_row_q2_K(const void *src, float *dst, int64_t n);
void ref_quantize_row_q2_K(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q3_K(const void *src, float *dst, int64_t n);
void ref_quantize_row_q3_K(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q4_K(const void *src, float *dst, int64_t n);
void ref_quantize_row_q4_K(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q5_K(const void *src, float *dst, int64_t n);
void ref_quantize_row_q5_K(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q6_K(const void *src, float *dst, int64_t n);
void ref_quantize_row_q6_K(const float *src, void *dst, int64_t n);
void ref_dequantize_row_q8_K(const void *src, float *dst, int64_t n);
void ref_quantize_row_q8_K(const float *src, void *dst, int64_t n);

/* i-quants: lattice grids and non-linear values (quant_iq.c). */
void ref_dequantize_row_iq2_xxs(const void *src, float *dst, int64_t n);
void ref_dequantize_row_iq2_xs(const void *src, float *dst, int64_t n);
void ref_dequantize_row_iq2_s(const void *src, float *dst, int64_t n);
void ref_dequantize_row_iq3_xxs(const void *src, float *dst, int64_t n);
void ref_dequantize_row_iq3_s(const void *src, float *dst, int64_t n);
void ref_dequantize_row_iq1_s(const void *src, float *dst, int64_t n);
void ref_dequantize_row_iq1_m(const void *src, float *dst, int64_t n);
void ref_dequantize_row_iq4_nl(const void *src, float *dst, int64_t n);
void ref_quantize_row_iq4_nl(const float *src, void *dst, int64_t n);
void ref_dequantize_row_iq4_xs(const void *src, float *dst, int64_t n);
void ref_quantize_row_iq4_xs(const float *src, void *dst, int64_t n);

#endif
