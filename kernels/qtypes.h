/*
 * qtypes.h - tensor element types, numbered as GGUF files number them.
 *
 * The numeric values are part of the GGUF format (ggml's enum ggml_type in
 * ggml/include/ggml.h, upstream commit 84f71294); they are what a tensor
 * info's type field holds. Ids that are retired in the format are absent.
 */
#ifndef KTX_KERNELS_QTYPES_H
#define KTX_KERNELS_QTYPES_H

enum ktx_type {
	KTX_TYPE_F32 = 0,
	KTX_TYPE_F16 = 1,
	KTX_TYPE_Q4_0 = 2,
	KTX_TYPE_Q4_1 = 3,
	KTX_TYPE_Q5_0 = 6,
	KTX_TYPE_Q5_1 = 7,
	KTX_TYPE_Q8_0 = 8,
	KTX_TYPE_Q8_1 = 9,
	KTX_TYPE_Q2_K = 10,
	KTX_TYPE_Q3_K = 11,
	KTX_TYPE_Q4_K = 12,
	KTX_TYPE_Q5_K = 13,
	KTX_TYPE_Q6_K = 14,
	KTX_TYPE_Q8_K = 15,
	KTX_TYPE_IQ2_XXS = 16,
	KTX_TYPE_IQ2_XS = 17,
	KTX_TYPE_IQ3_XXS = 18,
	KTX_TYPE_IQ1_S = 19,
	KTX_TYPE_IQ4_NL = 20,
	KTX_TYPE_IQ3_S = 21,
	KTX_TYPE_IQ2_S = 22,
	KTX_TYPE_IQ4_XS = 23,
	KTX_TYPE_I8 = 24,
	KTX_TYPE_I16 = 25,
	KTX_TYPE_I32 = 26,
	KTX_TYPE_I64 = 27,
	KTX_TYPE_F64 = 28,
	KTX_TYPE_IQ1_M = 29,
	KTX_TYPE_BF16 = 30,
	KTX_TYPE_COUNT_ = 40 /* bound for tables indexed by type; not a type */
};

#endif
