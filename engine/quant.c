/*
 * quant.c - the element type table and the checked entry points to the
 * reference (de)quantizers; see quant.h.
 *
 * Every type a GGUF file can name has its block geometry here (from ggml's
 * type_traits in ggml/src/ggml.c at llama.cpp 84f71294), so that tensor
 * sizes can be checked even for types ktx cannot convert; the converters
 * exist for the types DeepSeek files use.
 */
#include "engine/quant.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "kernels/ref/quant_ref.h"

typedef void (*dequantize_fn)(const void *src, float *dst, int64_t n);
typedef void (*quantize_fn)(const float *src, void *dst, int64_t n);

struct type_entry {
	struct ktx_type_traits traits;
	dequantize_fn dequantize;
	quantize_fn quantize;
};

/* Table entries: a plain integer type, a block type ktx cannot convert,
 * one it can only read, one it can read and make. */
#define PLAIN(name, bytes) {{ name, 1, bytes, false, false }, NULL, NULL }
#define BLOCKS(name, elems, bytes) {{ name, elems, bytes, false, false }, NULL, NULL }
#define DEQ(name, elems, bytes, deq) {{ name, elems, bytes, true, false }, deq, NULL }
#define CONV(name, elems, bytes, deq, q) {{ name, elems, bytes, true, true }, deq, q }

static const struct type_entry types[KTX_TYPE_COUNT_] = {
	[KTX_TYPE_F32] = CONV("f32", 1, 4, ref_dequantize_row_f32, ref_quantize_row_f32),
	[KTX_TYPE_F16] = CONV("f16", 1, 2, ref_dequantize_row_f16, ref_quantize_row_f16),
	[KTX_TYPE_BF16] = CONV("bf16", 1, 2, ref_dequantize_row_bf16, ref_quantize_row_bf16),
	[KTX_TYPE_Q4_0] = CONV("q4_0", QK4_0, sizeof(struct block_q4_0),
	    ref_dequantize_row_q4_0, ref_quantize_row_q4_0),
	[KTX_TYPE_Q4_1] = CONV("q4_1", QK4_1, sizeof(struct block_q4_1),
	    ref_dequantize_row_q4_1, ref_quantize_row_q4_1),
	[KTX_TYPE_Q5_0] = CONV("q5_0", QK5_0, sizeof(struct block_q5_0),
	    ref_dequantize_row_q5_0, ref_quantize_row_q5_0),
	[KTX_TYPE_Q5_1] = CONV("q5_1", QK5_1, sizeof(struct block_q5_1),
	    ref_dequantize_row_q5_1, ref_quantize_row_q5_1),
	[KTX_TYPE_Q8_0] = CONV("q8_0", QK8_0, sizeof(struct block_q8_0),
	    ref_dequantize_row_q8_0, ref_quantize_row_q8_0),
	[KTX_TYPE_Q2_K] = CONV("q2_K", QK_K, sizeof(struct block_q2_K),
	    ref_dequantize_row_q2_K, ref_quantize_row_q2_K),
	[KTX_TYPE_Q3_K] = CONV("q3_K", QK_K, sizeof(struct block_q3_K),
	    ref_dequantize_row_q3_K, ref_quantize_row_q3_K),
	[KTX_TYPE_Q4_K] = CONV("q4_K", QK_K, sizeof(struct block_q4_K),
	    ref_dequantize_row_q4_K, ref_quantize_row_q4_K),
	[KTX_TYPE_Q5_K] = CONV("q5_K", QK_K, sizeof(struct block_q5_K),
	    ref_dequantize_row_q5_K, ref_quantize_row_q5_K),
	[KTX_TYPE_Q6_K] = CONV("q6_K", QK_K, sizeof(struct block_q6_K),
	    ref_dequantize_row_q6_K, ref_quantize_row_q6_K),
	[KTX_TYPE_Q8_K] = CONV("q8_K", QK_K, sizeof(struct block_q8_K),
	    ref_dequantize_row_q8_K, ref_quantize_row_q8_K),
	[KTX_TYPE_IQ2_XXS] = DEQ("iq2_xxs", QK_K, sizeof(struct block_iq2_xxs),
	    ref_dequantize_row_iq2_xxs),
	[KTX_TYPE_IQ2_XS] = DEQ("iq2_xs", QK_K, sizeof(struct block_iq2_xs),
	    ref_dequantize_row_iq2_xs),
	[KTX_TYPE_IQ2_S] = DEQ("iq2_s", QK_K, sizeof(struct block_iq2_s), ref_dequantize_row_iq2_s),
	[KTX_TYPE_IQ3_S] = DEQ("iq3_s", QK_K, sizeof(struct block_iq3_s), ref_dequantize_row_iq3_s),
	[KTX_TYPE_IQ3_XXS] = DEQ("iq3_xxs", QK_K, sizeof(struct block_iq3_xxs),
	    ref_dequantize_row_iq3_xxs),
	[KTX_TYPE_IQ1_S] = DEQ("iq1_s", QK_K, sizeof(struct block_iq1_s),
	    ref_dequantize_row_iq1_s),
	[KTX_TYPE_IQ1_M] = DEQ("iq1_m", QK_K, sizeof(struct block_iq1_m),
	    ref_dequantize_row_iq1_m),
	[KTX_TYPE_IQ4_NL] = CONV("iq4_nl", QK4_NL, sizeof(struct block_iq4_nl),
	    ref_dequantize_row_iq4_nl, ref_quantize_row_iq4_nl),
	[KTX_TYPE_IQ4_XS] = CONV("iq4_xs", QK_K, sizeof(struct block_iq4_xs),
	    ref_dequantize_row_iq4_xs, ref_quantize_row_iq4_xs),
	/* known to the format, not (yet) convertible by ktx */
	[KTX_TYPE_Q8_1] = BLOCKS("q8_1", 32, 36),
	[KTX_TYPE_I8] = PLAIN("i8", 1),
	[KTX_TYPE_I16] = PLAIN("i16", 2),
	[KTX_TYPE_I32] = PLAIN("i32", 4),
	[KTX_TYPE_I64] = PLAIN("i64", 8),
	[KTX_TYPE_F64] = PLAIN("f64", 8),
};

/* The table entry of type, or NULL for an id the format does not define. */
static const struct type_entry *
entry(uint32_t type)
{
	if (type >= KTX_TYPE_COUNT_ || types[type].traits.name == NULL)
		return NULL;
	return &types[type];
}

const struct ktx_type_traits *
ktx_type_traits(uint32_t type)
{
	const struct type_entry *e = entry(type);

	return e != NULL ? &e->traits : NULL;
}

const char *
ktx_type_name(uint32_t type)
{
	static _Thread_local char buf[24];
	const struct type_entry *e = entry(type);

	if (e != NULL)
		return e->traits.name;
	snprintf(buf, sizeof(buf), "type-%u", type);
	return buf;
}

uint64_t
ktx_type_row_bytes(uint32_t type, int64_t n)
{
	const struct type_entry *e = entry(type);
	uint64_t blocks;

	if (e == NULL || n < 0 || n % e->traits.block_elems != 0)
		return 0;
	blocks = (uint64_t)(n / e->traits.block_elems);
	if (blocks > UINT64_MAX / e->traits.block_bytes)
		return 0;
	return blocks * e->traits.block_bytes;
}

/* Checks type and n for a conversion (quantize or dequantize); on success
 * *out is the table entry. */
static int
check_conversion(uint32_t type, int64_t n, bool quantize, const struct type_entry **out,
    struct ktx_err *err)
{
	const char *what = quantize ? "quantize" : "dequantize";
	const struct type_entry *e = entry(type);

	if (e == NULL)
		return ktx_err_set(err, KTX_EFORMAT, "cannot %s: %u is not a known element type",
		    what, type);
	if (quantize ? !e->traits.can_quantize : !e->traits.can_dequantize)
		return ktx_err_set(err, KTX_EUNSUPPORTED, "cannot %s: ktx has no %s for type %s",
		    what, quantize ? "quantizer" : "dequantizer", e->traits.name);
	if (n < 0 || n % e->traits.block_elems != 0)
		return ktx_err_set(err, KTX_EINVAL,
		    "cannot %s %lld elements of %s: not a whole number of %lld-element blocks",
		    what, (long long)n, e->traits.name, (long long)e->traits.block_elems);
	/* no convertible type takes more bytes per element than float32 */
	if ((uint64_t)n > SIZE_MAX / sizeof(float))
		return ktx_err_set(err, KTX_ERANGE,
		    "cannot %s %lld elements of %s: too large for memory", what, (long long)n,
		    e->traits.name);
	*out = e;
	return KTX_OK;
}

/*
 * Blocks hold uint16 and float32 fields, so the reference code reads them
 * at 4-byte alignment; a file with a general.alignment below 4 can hand
 * out tensor data that is not. Such data goes one block at a time through
 * an aligned copy (slow, but such files are rare).
 */
#define BOUNCE_BYTES 512
_Static_assert(sizeof(struct block_q8_K) <= BOUNCE_BYTES, "largest block fits the bounce buffer");

static bool
misaligned(const void *p)
{
	return ((uintptr_t)p & 3) != 0;
}

int
ktx_dequantize(uint32_t type, const void *src, float *dst, int64_t n, struct ktx_err *err)
{
	const struct type_entry *e;
	int rc = check_conversion(type, n, false, &e, err);
	_Alignas(8) unsigned char block[BOUNCE_BYTES];

	if (rc != KTX_OK)
		return rc;
	if (n == 0)
		return KTX_OK;
	if (!misaligned(src)) {
		e->dequantize(src, dst, n);
		return KTX_OK;
	}
	for (int64_t i = 0; i < n / e->traits.block_elems; i++) {
		memcpy(block, (const unsigned char *)src + i * e->traits.block_bytes,
		    e->traits.block_bytes);
		e->dequantize(block, dst + i * e->traits.block_elems, e->traits.block_elems);
	}
	return KTX_OK;
}

int
ktx_quantize(uint32_t type, const float *src, void *dst, int64_t n, struct ktx_err *err)
{
	const struct type_entry *e;
	int rc = check_conversion(type, n, true, &e, err);
	_Alignas(8) unsigned char block[BOUNCE_BYTES];

	if (rc != KTX_OK)
		return rc;
	if (n == 0)
		return KTX_OK;
	if (!misaligned(dst)) {
		e->quantize(src, dst, n);
		return KTX_OK;
	}
	for (int64_t i = 0; i < n / e->traits.block_elems; i++) {
		e->quantize(src + i * e->traits.block_elems, block, e->traits.block_elems);
		memcpy((unsigned char *)dst + i * e->traits.block_bytes, block,
		    e->traits.block_bytes);
	}
	return KTX_OK;
}
