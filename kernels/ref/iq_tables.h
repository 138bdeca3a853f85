/*
 * iq_tables.h - the constant tables that define the i-quant formats: the
 * lattice grids the indices point into, the sign codes, the non-linear
 * 4-bit values.
 *
 * They are part of the file format, so they are copied value for value from
 * ggml/src/ggml-common.h (llama.cpp commit 84f71294), keeping ggml's names.
 * A grid entry packs one value per byte, element j in bits 8j..8j+7.
 */
#ifndef KTX_KERNELS_REF_IQ_TABLES_H
#define KTX_KERNELS_REF_IQ_TABLES_H

#include <stdint.h>

/* The shift of IQ1_S / IQ1_M values: x = dl * (grid value +- delta). */
#define IQ1S_DELTA 0.125f
#define IQ1M_DELTA 0.125f

/* Bit j of a sign byte: value j of 8 is negated when set. */
extern const uint8_t kmask_iq2xs[8];
/* A 7-bit sign code -> 8 sign bits with even parity (the eighth is implied). */
extern const uint8_t ksigns_iq2xs[128];
/* The 16 values of IQ4_NL / IQ4_XS, in ascending order. */
extern const int8_t kvalues_iq4nl[16];
/* 8 unsigned magnitudes (8, 25 or 43) each. */
extern const uint64_t iq2xxs_grid[256];
extern const uint64_t iq2xs_grid[512];
extern const uint64_t iq2s_grid[1024];
/* 4 unsigned magnitudes each. */
extern const uint32_t iq3xxs_grid[256];
extern const uint32_t iq3s_grid[512];
/* 8 signed ternary values (-1, 0, 1) each. */
#define NGRID_IQ1S 2048
extern const uint64_t iq1s_grid[NGRID_IQ1S];

#endif
