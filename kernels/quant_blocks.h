/*
 * quant_blocks.h - the byte layout of every quantized block ktx reads or
 * writes, shared by the C kernels and (later) the CUDA ones.
 *
 * These layouts are the GGUF file format: they follow the block structs of
 * ggml/src/ggml-common.h (llama.cpp commit 84f71294) field for field, and a
 * static assertion after each struct pins its size so a stray padding byte
 * fails the build instead of shifting every tensor. Half-precision fields are
 * raw IEEE binary16 bits (uint16_t); kernels/ref/fp16.h converts them. All
 * multi-byte fields are little-endian, as ktx only runs on little-endian hosts.
 *
 * What each format means - how a block turns into floats - is defined by the
 * reference dequantizers in kernels/ref/.
 */
#ifndef KTX_KERNELS_QUANT_BLOCKS_H
#define KTX_KERNELS_QUANT_BLOCKS_H

#include <stdint.h>

#ifdef __cplusplus
#define KTX_BLOCK_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define KTX_BLOCK_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Elements of a K-quant / i-quant super-block. */
#define QK_K 256
/* Bytes of the packed 6-bit scales and mins of Q4_K and Q5_K. */
#define K_SCALE_SIZE 12

/* Elements of a legacy block. */
#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK4_NL 32

/* Q4_0: x = d * (q - 8), q in 0..15; element j in the low nibble of qs[j],
 * element j + 16 in the high one. 4.5 bits per weight. */
struct block_q4_0 {
	uint16_t d;             /* fp16 scale */
	uint8_t qs[QK4_0 / 2];  /* nibbles */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q4_0) == 2 + QK4_0 / 2, "block_q4_0 size");

/* Q4_1: x = d * q + m, q in 0..15, nibbles as Q4_0. 5 bits per weight. */
struct block_q4_1 {
	uint16_t d;             /* fp16 scale */
	uint16_t m;             /* fp16 min */
	uint8_t qs[QK4_1 / 2];  /* nibbles */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q4_1) == 2 * 2 + QK4_1 / 2, "block_q4_1 size");

/* Q5_0: x = d * (q - 16), q in 0..31: nibbles as Q4_0, the fifth bit of
 * element j is bit j of the little-endian uint32 qh. 5.5 bits per weight. */
struct block_q5_0 {
	uint16_t d;             /* fp16 scale */
	uint8_t qh[4];          /* fifth bits */
	uint8_t qs[QK5_0 / 2];  /* nibbles */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q5_0) == 2 + 4 + QK5_0 / 2, "block_q5_0 size");

/* Q5_1: x = d * q + m, q in 0..31 packed as Q5_0. 6 bits per weight. */
struct block_q5_1 {
	uint16_t d;             /* fp16 scale */
	uint16_t m;             /* fp16 min */
	uint8_t qh[4];          /* fifth bits */
	uint8_t qs[QK5_1 / 2];  /* nibbles */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q5_1) == 2 * 2 + 4 + QK5_1 / 2, "block_q5_1 size");

/* Q8_0: x = d * q. 8.5 bits per weight. */
struct block_q8_0 {
	uint16_t d;             /* fp16 scale */
	int8_t qs[QK8_0];
};
KTX_BLOCK_ASSERT(sizeof(struct block_q8_0) == 2 + QK8_0, "block_q8_0 size");

/* Q2_K: 16 sub-blocks of 16, x = d * sc * q - dmin * m with 4-bit sc and m
 * (scales[i] = sc | m << 4) and 2-bit q. 2.625 bits per weight. */
struct block_q2_K {
	uint8_t scales[QK_K / 16]; /* low nibble scale, high nibble min */
	uint8_t qs[QK_K / 4];      /* 2-bit quants */
	uint16_t d;                /* fp16 super-scale of the scales */
	uint16_t dmin;             /* fp16 super-scale of the mins */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q2_K) == 2 * 2 + QK_K / 16 + QK_K / 4, "block_q2_K size");

/* Q3_K: 16 sub-blocks of 16, x = d * (sc - 32) * (q - 4) with 6-bit sc and
 * 3-bit q (low 2 bits in qs, high bit in hmask). 3.4375 bits per weight. */
struct block_q3_K {
	uint8_t hmask[QK_K / 8];   /* high bit of each quant */
	uint8_t qs[QK_K / 4];      /* low 2 bits of each quant */
	uint8_t scales[12];        /* 16 6-bit scales, packed */
	uint16_t d;                /* fp16 super-scale */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q3_K) == 2 + QK_K / 4 + QK_K / 8 + 12, "block_q3_K size");

/* Q4_K: 8 sub-blocks of 32, x = d * sc * q - dmin * m with 6-bit sc and m
 * and 4-bit q. 4.5 bits per weight. */
struct block_q4_K {
	uint16_t d;                      /* fp16 super-scale of the scales */
	uint16_t dmin;                   /* fp16 super-scale of the mins */
	uint8_t scales[K_SCALE_SIZE];    /* 8 scales and 8 mins, 6 bits each */
	uint8_t qs[QK_K / 2];            /* 4-bit quants */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q4_K) == 2 * 2 + K_SCALE_SIZE + QK_K / 2, "block_q4_K size");

/* Q5_K: as Q4_K with a fifth quant bit in qh. 5.5 bits per weight. */
struct block_q5_K {
	uint16_t d;                      /* fp16 super-scale of the scales */
	uint16_t dmin;                   /* fp16 super-scale of the mins */
	uint8_t scales[K_SCALE_SIZE];    /* 8 scales and 8 mins, 6 bits each */
	uint8_t qh[QK_K / 8];            /* high bit of each quant */
	uint8_t qs[QK_K / 2];            /* low 4 bits of each quant */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q5_K) == 2 * 2 + K_SCALE_SIZE + QK_K / 2 + QK_K / 8,
    "block_q5_K size");

/* Q6_K: 16 sub-blocks of 16, x = d * sc * (q - 32) with 8-bit signed sc and
 * 6-bit q (low 4 bits in ql, high 2 in qh). 6.5625 bits per weight. */
struct block_q6_K {
	uint8_t ql[QK_K / 2];      /* low 4 bits of each quant */
	uint8_t qh[QK_K / 4];      /* high 2 bits of each quant */
	int8_t scales[QK_K / 16];  /* signed 8-bit scales */
	uint16_t d;                /* fp16 super-scale */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q6_K) == 2 + QK_K / 16 + 3 * QK_K / 4, "block_q6_K size");

/* Q8_K: the activation type the K- and i-quant dot products use; x = d * q
 * with a float32 d, and the sum of each 16 quants kept for the min terms. */
struct block_q8_K {
	float d;                   /* float32 scale */
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];  /* sum of qs over each group of 16 */
};
KTX_BLOCK_ASSERT(sizeof(struct block_q8_K) == 4 + QK_K + QK_K / 16 * 2, "block_q8_K size");

/* IQ2_XXS: 8 groups of 32; each uint32 pair holds four 8-bit indices into
 * the 256-entry E8 lattice grid iq2xxs_grid, four 7-bit sign codes and a
 * 4-bit group scale. 2.0625 bits per weight. */
struct block_iq2_xxs {
	uint16_t d;                /* fp16 super-scale */
	uint16_t qs[QK_K / 8];
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq2_xxs) == 2 + QK_K / 8 * 2, "block_iq2_xxs size");

/* IQ2_XS: 9-bit grid index (iq2xs_grid, 512 entries) and 7-bit sign code per
 * 8 values, 4-bit scales per 16. 2.3125 bits per weight. */
struct block_iq2_xs {
	uint16_t d;                /* fp16 super-scale */
	uint16_t qs[QK_K / 8];     /* index | sign code << 9 */
	uint8_t scales[QK_K / 32]; /* two 4-bit scales per group of 32 */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq2_xs) == 2 + QK_K / 8 * 2 + QK_K / 32, "block_iq2_xs size");

/* IQ2_S: 10-bit indices into iq2s_grid (low 8 bits in qs, 2 high bits per
 * index in qh), an explicit sign byte per 8 values, 4-bit scales per 16.
 * 2.5625 bits per weight. */
struct block_iq2_s {
	uint16_t d;                /* fp16 super-scale */
	uint8_t qs[QK_K / 4];      /* 32 index bytes, then 32 sign bytes */
	uint8_t qh[QK_K / 32];     /* high index bits, 2 per group of 8 */
	uint8_t scales[QK_K / 32]; /* two 4-bit scales per group of 32 */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq2_s) == 2 + QK_K / 4 + QK_K / 16, "block_iq2_s size");

/* IQ3_XXS: 8-bit indices into iq3xxs_grid (4 values each), then per group
 * of 32 a uint32 of four 7-bit sign codes and a 4-bit scale.
 * 3.0625 bits per weight. */
struct block_iq3_xxs {
	uint16_t d;                /* fp16 super-scale */
	uint8_t qs[3 * QK_K / 8];  /* 64 grid indices, then 8 scale/sign words */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq3_xxs) == 2 + 3 * (QK_K / 8), "block_iq3_xxs size");

/* IQ3_S: 9-bit indices into iq3s_grid (4 values each; the ninth bit in
 * qh), an explicit sign byte per 8 values, 4-bit odd scales per 32.
 * 3.4375 bits per weight. */
struct block_iq3_s {
	uint16_t d;                /* fp16 super-scale */
	uint8_t qs[QK_K / 4];      /* low 8 bits of the grid indices */
	uint8_t qh[QK_K / 32];     /* ninth index bits */
	uint8_t signs[QK_K / 8];   /* one bit per value */
	uint8_t scales[QK_K / 64]; /* two 4-bit scales per 64 */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq3_s) == 2 + 13 * (QK_K / 32) + QK_K / 64,
    "block_iq3_s size");

/* IQ1_S: 11-bit indices into iq1s_grid (8 ternary values each), per group of
 * 32 a 3-bit scale and the sign of a +-IQ1S_DELTA shift. 1.5625 bits per
 * weight. */
struct block_iq1_s {
	uint16_t d;                /* fp16 super-scale */
	uint8_t qs[QK_K / 8];      /* low 8 bits of the grid indices */
	uint16_t qh[QK_K / 32];    /* 3 high index bits x4, 3-bit scale, delta sign */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq1_s) == 2 + QK_K / 8 + QK_K / 16, "block_iq1_s size");

/* IQ1_M: as IQ1_S with a scale per 16 and a delta sign per 8; the fp16
 * super-scale is spread over the top nibbles of the four scale words.
 * 1.75 bits per weight. */
struct block_iq1_m {
	uint8_t qs[QK_K / 8];      /* low 8 bits of the grid indices */
	uint8_t qh[QK_K / 16];     /* 3 high index bits and a delta sign, per 8 */
	uint8_t scales[QK_K / 32]; /* 3-bit scales; super-scale in the top nibbles */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq1_m) == QK_K / 8 + QK_K / 16 + QK_K / 32,
    "block_iq1_m size");

/* IQ4_NL: x = d * kvalues_iq4nl[q], nibbles as Q4_0. 4.5 bits per weight;
 * the fallback for rows that are not a multiple of 256 long. */
struct block_iq4_nl {
	uint16_t d;             /* fp16 scale */
	uint8_t qs[QK4_NL / 2]; /* element j in the low nibble, j + 16 high */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq4_nl) == 2 + QK4_NL / 2, "block_iq4_nl size");

/* IQ4_XS: 4-bit indices into the non-linear table kvalues_iq4nl, 6-bit
 * scales per group of 32 (stored minus 32). 4.25 bits per weight. */
struct block_iq4_xs {
	uint16_t d;                /* fp16 super-scale */
	uint16_t scales_h;         /* high 2 bits of the 8 scales */
	uint8_t scales_l[QK_K / 64]; /* low 4 bits of the 8 scales */
	uint8_t qs[QK_K / 2];      /* element j in the low nibble, j + 16 high */
};
KTX_BLOCK_ASSERT(sizeof(struct block_iq4_xs) == 2 + 2 + QK_K / 64 + QK_K / 2, "block_iq4_xs size");

#endif
