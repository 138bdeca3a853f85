/*
 * repack.h - weights repacked at load into interleaved groups of rows, for
 * kernels that compute KTX_CPU_RP_ROWS weight rows at once, one per 32-bit
 * lane of an AVX-512 register: each activation block is broadcast and meets
 * sixteen rows, the blocks' scales are vectors over the rows and no
 * horizontal sums are left.
 *
 * A group takes exactly the bytes of the KTX_CPU_RP_ROWS rows it replaces
 * (ktx_type_row_bytes() each), so a matrix is repacked in place and every
 * group of it starts at (first row of the group) * row_bytes. Each type's
 * layout is its own (kernels/cpu/rp_*.c) and never leaves the process:
 * files keep the GGUF layout, and ktx_cpu_rp_unpack_row gives it back.
 *
 * Results: ktx_cpu_matmul_sum's contract. Each output is computed by one
 * kernel call in a fixed order of operations, the same for any number of
 * activation rows, chunk or thread count, so batched decode gives each
 * session the bits it gets alone; they differ from the plain kernels'
 * (another summation order) within rounding.
 *
 * Functions return 0, or -1 for a type or shape without a repacked kernel.
 */
#ifndef KTX_KERNELS_CPU_REPACK_H
#define KTX_KERNELS_CPU_REPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KTX_CPU_RP_ROWS 16

/* True when matrices of wtype with rows of n elements can be repacked (a
 * kernel for the type at this CPU's level, n a whole number of blocks). */
bool ktx_cpu_rp_has(uint32_t wtype, int64_t n);

/* Repacks rows rows (a multiple of KTX_CPU_RP_ROWS) of n elements, stored
 * back to back at w in the file's layout, in place. */
int ktx_cpu_rp_pack(uint32_t wtype, int64_t n, int64_t rows, void *w);

/* Row r of the repacked matrix at w, in the file's layout, into row
 * (ktx_type_row_bytes(wtype, n) bytes). */
int ktx_cpu_rp_unpack_row(uint32_t wtype, int64_t n, const void *w, int64_t r, void *row);

/*
 * y[t * y_stride + r] = sum over s < nsub of W[r] . xq[t * nsub + s], the
 * sum from s = 0 up, for r < rows (a multiple of KTX_CPU_RP_ROWS; w is the
 * first row's group) and t < nx, over nthreads OpenMP threads (0: OpenMP's
 * default). Activation rows as for ktx_cpu_matmul (x_stride bytes apart).
 */
int ktx_cpu_rp_matmul(uint32_t wtype, int64_t n, int64_t rows, const void *w,
    const void *xq, size_t x_stride, int64_t nx, int nsub, float *y, size_t y_stride,
    int nthreads);

/* What each type's file (kernels/cpu/rp_*.c) provides. */
#define CPU_RP_NX 8 /* activation rows per gemm call, at most */

struct cpu_rp_ops {
	size_t block_bytes; /* bytes of one block of QK_K elements of one row */
	/* The KTX_CPU_RP_ROWS rows at rows (row_bytes apart, file layout) into
	 * one group at group; group may not overlap rows. */
	void (*pack)(int64_t n, const uint8_t *rows, size_t row_bytes, uint8_t *group);
	/* Row r of group, in the file's layout, into row. */
	void (*unpack)(int64_t n, const uint8_t *group, int r, uint8_t *row);
	/* out[t * KTX_CPU_RP_ROWS + r] = row r of group . x[t] for t < nx
	 * (1 <= nx <= CPU_RP_NX; activation row t at x + t * x_stride). Each
	 * output's bits must not depend on nx or t. */
	void (*gemm)(int64_t n, const uint8_t *group, const void *x, size_t x_stride, int nx,
	    float *out);
};

/* Each type's ops (AVX-512 F/BW/VL/VNNI), in kernels/cpu/rp_*.c. */
extern const struct cpu_rp_ops cpu_rp_q2_K;
extern const struct cpu_rp_ops cpu_rp_q3_K;
extern const struct cpu_rp_ops cpu_rp_q4_K;
extern const struct cpu_rp_ops cpu_rp_q5_K;
extern const struct cpu_rp_ops cpu_rp_q6_K;

#endif
