/*
 * attn_flash.h - the fast path's latent attention kernel (absorbed MLA,
 * flash-style) and the conversions of the latent KV cache's elements.
 *
 * Rows are (query, head) pairs. Row r attends over the first nk[r] rows of
 * one layer's cache (keys = values = cache rows [latent | rope key], in
 * the cache's element type): score_j = scale * q_r . key_j over the whole
 * row width, output o_r = sum_j softmax(score)_j * key_j[0..kl). Keys are
 * taken in tiles of ATTN_KEY_TILE with a running maximum and sum (the
 * online softmax), so no row of scores longer than a tile exists; a tile
 * is read once for every row of the call.
 *
 * Each row's arithmetic depends only on its own query, nk and the keys,
 * never on the other rows of the call or how rows are grouped into calls:
 * a session decoded in a batch gets the bits it gets alone. SIMD level:
 * kernels/cpu's (ktx_cpu_level()), chosen per call.
 */
#ifndef KTX_ENGINE_ATTN_FLASH_H
#define KTX_ENGINE_ATTN_FLASH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/ktx.h"

/* Keys per tile. */
#define ATTN_KEY_TILE 32

/* Bytes of one cache element of type t. */
size_t attn_cache_elsize(enum ktx_cache_type t);
/* Stores n floats as cache elements of type t at dst (rounding to nearest
 * even, as kernels/ref/fp16.h does). */
void attn_cache_store(enum ktx_cache_type t, void *dst, const float *x, size_t n);
/* Loads n cache elements of type t as floats (exact). */
void attn_cache_load(enum ktx_cache_type t, float *dst, const void *src, size_t n);

struct attn_rows {
	size_t n;                 /* rows */
	const float *const *q;    /* [n] queries of width floats */
	float *const *o;          /* [n] outputs of kl floats */
	const uint32_t *nk;       /* [n] keys each row sees, >= 1, never decreasing */
};

/* Floats of scratch attn_flash needs for n rows. */
size_t attn_flash_scratch(size_t n);

/*
 * The attention of rows over the cache rows kv + j * kv_stride bytes
 * (j < the largest nk), each of width elements of type t whose first kl
 * are the values. scratch holds attn_flash_scratch(rows->n) floats.
 */
void attn_flash(enum ktx_cache_type t, const void *kv, size_t kv_stride, size_t width,
    size_t kl, float scale, const struct attn_rows *rows, float *scratch);

#endif
