/*
 * quant.h - element types: sizes, and conversion to and from float32.
 *
 * The block layouts live in kernels/quant_blocks.h; the reference
 * (de)quantizers that define them live in kernels/ref/. This header is the
 * engine's checked entry point: it refuses unknown types and lengths that are
 * not a whole number of blocks instead of reading past a buffer.
 */
#ifndef KTX_ENGINE_QUANT_H
#define KTX_ENGINE_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"
#include "kernels/qtypes.h"

struct ktx_type_traits {
	const char *name;      /* as ggml names it: "f32", "q4_K", "iq2_xxs", ... */
	int64_t block_elems;   /* elements per block (1 for plain types) */
	size_t block_bytes;    /* bytes per block */
	bool can_dequantize;   /* ktx can turn it into float32 */
	bool can_quantize;     /* ktx can make it from float32 */
};

/* NULL when type is not a known GGUF type id. */
const struct ktx_type_traits *ktx_type_traits(uint32_t type);
/* "f32", ..., or "type-N" for unknown ids (static storage). */
const char *ktx_type_name(uint32_t type);

/* Bytes of n elements; 0 when n is not a whole number of blocks, the type is
 * unknown, or the result would overflow. */
uint64_t ktx_type_row_bytes(uint32_t type, int64_t n);

/* Converts n elements (a whole number of blocks) from src to float32 dst. */
int ktx_dequantize(uint32_t type, const void *src, float *dst, int64_t n, struct ktx_err *err);
/* Converts n float32 elements (a whole number of blocks) to blocks of type. */
int ktx_quantize(uint32_t type, const float *src, void *dst, int64_t n, struct ktx_err *err);

#endif
