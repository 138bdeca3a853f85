/*
 * test_cpu_repack.c - repacked weights (kernels/cpu/repack.h) for every
 * type this machine has a repacked kernel for: the in-place repack gives
 * the file's rows back bit for bit; ktx_cpu_rp_matmul agrees with the
 * reference twin (kernels/ref/dot_ref.c's dot of the original row) within
 * the blocked-sum bound of test_cpu_dot.c, over scale regimes and lengths;
 * its bits do not depend on how many activation rows a call takes, on the
 * thread count, on which group range is asked for, or on nsub (a sum of
 * sub-rows equals the sum of their separate products); bad shapes are
 * refused; and below AVX-512 nothing is offered.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/repack.h"
#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/dot_ref.h"
#include "tests/tap.h"
#include "tests/unit/qrandom.h"

#define ROWS 48 /* three groups */
#define NX 21   /* activation rows: several gemm chunks and a ragged end */
#define MAX_N (28 * QK_K)

static const uint32_t types[] = { KTX_TYPE_Q2_K, KTX_TYPE_Q3_K, KTX_TYPE_Q4_K, KTX_TYPE_Q5_K,
	KTX_TYPE_Q6_K };

struct mats {
	uint8_t *orig, *packed, *row, *xq, *copy;
	float *x, *xdq, *tmp, *y, *y2;
};

static bool
same_bits(const float *a, const float *b, size_t n)
{
	return memcmp(a, b, n * sizeof(float)) == 0;
}

/* Round trip and agreement with the reference for type t, length n, one
 * regime; fills M->packed. */
static void
check_accuracy(uint32_t t, int64_t n, enum regime r, struct mats *M)
{
	size_t rb = (size_t)ktx_type_row_bytes(t, n), xs = ktx_cpu_act_row_bytes(t, n);
	int dt = ktx_cpu_dot_type(t), bad_rt = 0;
	double worst = 0;

	for (int i = 0; i < ROWS; i++)
		random_row(t, M->orig + (size_t)i * rb, n, r);
	for (int j = 0; j < NX; j++) {
		random_act(M->x + (size_t)j * n, n, j % 3 == 0 ? r : R_NORMAL, dt);
		ktx_cpu_quantize_row((uint32_t)dt, M->x + (size_t)j * n, M->xq + (size_t)j * xs, n);
	}
	memcpy(M->packed, M->orig, rb * ROWS);
	if (!tap_ok(ktx_cpu_rp_pack(t, n, ROWS, M->packed) == 0, "%s n=%lld %s: pack",
	    ktx_type_name(t), (long long)n, regime_names[r]))
		return;
	for (int i = 0; i < ROWS; i++) {
		memset(M->row, 0xa5, rb);
		ktx_cpu_rp_unpack_row(t, n, M->packed, i, M->row);
		bad_rt += memcmp(M->row, M->orig + (size_t)i * rb, rb) != 0;
	}
	tap_ok(bad_rt == 0, "%s n=%lld %s: every row unpacks to the file's bytes (%d differ)",
	    ktx_type_name(t), (long long)n, regime_names[r], bad_rt);
	tap_ok(memcmp(M->packed, M->orig, rb * ROWS) != 0 || n < QK_K,
	    "%s n=%lld %s: the packed layout is not the file's", ktx_type_name(t), (long long)n,
	    regime_names[r]);
	if (ktx_cpu_rp_matmul(t, n, ROWS, M->packed, M->xq, xs, NX, 1, M->y, ROWS, 2) != 0) {
		tap_ok(0, "%s: matmul", ktx_type_name(t));
		return;
	}
	for (int j = 0; j < NX; j++) {
		ktx_dequantize((uint32_t)dt, M->xq + (size_t)j * xs, M->xdq, n, NULL);
		for (int i = 0; i < ROWS; i++) {
			const uint8_t *w = M->orig + (size_t)i * rb;
			double ref = ref_dot_fn_for(t)(n, w, M->xq + (size_t)j * xs);
			double S = magnitude(t, w, n, M->xdq, M->tmp, M->copy);
			double e = fabs((double)M->y[j * ROWS + i] - ref) / sum_bound(n / QK_K, S);

			if (!(e <= worst))
				worst = e; /* NaN stays: it fails below */
		}
	}
	tap_ok(worst <= 1.0, "%s n=%lld %s: within the bound of the reference (worst %.3g of it)",
	    ktx_type_name(t), (long long)n, regime_names[r], worst);
}

/* Bits that must not move: activation rows one at a time, 1 or 3 threads,
 * a sub-range of groups, nsub 2 against summed products. */
static void
check_invariance(uint32_t t, int64_t n, struct mats *M)
{
	size_t rb = (size_t)ktx_type_row_bytes(t, n), xs = ktx_cpu_act_row_bytes(t, n);
	bool one = true, sub = true, sum = true;

	ktx_cpu_rp_matmul(t, n, ROWS, M->packed, M->xq, xs, NX, 1, M->y, ROWS, 1);
	for (int j = 0; j < NX; j++) {
		ktx_cpu_rp_matmul(t, n, ROWS, M->packed, M->xq + (size_t)j * xs, xs, 1, 1, M->y2,
		    ROWS, 1);
		one &= same_bits(M->y2, M->y + j * ROWS, ROWS);
	}
	tap_ok(one, "%s n=%lld: one activation row at a time gives the same bits",
	    ktx_type_name(t), (long long)n);
	ktx_cpu_rp_matmul(t, n, ROWS, M->packed, M->xq, xs, NX, 1, M->y2, ROWS, 3);
	tap_ok(same_bits(M->y2, M->y, (size_t)NX * ROWS), "%s n=%lld: 3 threads, same bits",
	    ktx_type_name(t), (long long)n);
	/* Groups 1..2 alone, into a strided output. */
	ktx_cpu_rp_matmul(t, n, ROWS - KTX_CPU_RP_ROWS, M->packed + rb * KTX_CPU_RP_ROWS, M->xq, xs,
	    NX, 1, M->y2, ROWS, 1);
	for (int j = 0; j < NX; j++)
		sub &= same_bits(M->y2 + j * ROWS, M->y + j * ROWS + KTX_CPU_RP_ROWS,
		    ROWS - KTX_CPU_RP_ROWS);
	tap_ok(sub, "%s n=%lld: a range of groups gives the same bits", ktx_type_name(t),
	    (long long)n);
	/* nsub 2: output j sums activation rows 2 j and 2 j + 1. */
	ktx_cpu_rp_matmul(t, n, ROWS, M->packed, M->xq, xs, NX / 2, 2, M->y2, ROWS, 2);
	for (int j = 0; j < NX / 2; j++)
		for (int i = 0; i < ROWS; i++) {
			float want = M->y[2 * j * ROWS + i] + M->y[(2 * j + 1) * ROWS + i];

			sum &= memcmp(&want, &M->y2[j * ROWS + i], sizeof(want)) == 0;
		}
	tap_ok(sum, "%s n=%lld: nsub 2 is the in-order sum of the two products",
	    ktx_type_name(t), (long long)n);
}

static void
check_refusals(uint32_t t, struct mats *M)
{
	size_t xs = ktx_cpu_act_row_bytes(t, QK_K);

	tap_ok(!ktx_cpu_rp_has(t, QK_K + 32) && !ktx_cpu_rp_has(t, 0),
	    "%s: lengths that are not whole blocks have no repacked kernel", ktx_type_name(t));
	tap_ok(ktx_cpu_rp_pack(t, QK_K, 20, M->packed) == -1, "%s: 20 rows are refused",
	    ktx_type_name(t));
	tap_ok(ktx_cpu_rp_matmul(t, QK_K, 24, M->packed, M->xq, xs, 1, 1, M->y, 24, 1) == -1,
	    "%s: a matmul of 24 rows is refused", ktx_type_name(t));
	tap_ok(ktx_cpu_rp_matmul(t, QK_K, 16, M->packed, M->xq, xs, 1, 0, M->y, 16, 1) == -1,
	    "%s: nsub 0 is refused", ktx_type_name(t));
}

int
main(void)
{
	static const int64_t lens[] = { QK_K, 3 * QK_K, MAX_N };
	struct mats M;
	size_t rbmax = MAX_N * 2 + 4096, xsmax = (MAX_N / QK_K) * sizeof(struct block_q8_K);
	int tested = 0;

	M.orig = malloc(rbmax * ROWS);
	M.packed = malloc(rbmax * ROWS);
	M.row = malloc(rbmax);
	M.copy = malloc(rbmax);
	M.xq = malloc(xsmax * NX);
	M.x = malloc(sizeof(float) * MAX_N * NX);
	M.xdq = malloc(sizeof(float) * MAX_N);
	M.tmp = malloc(sizeof(float) * MAX_N);
	M.y = malloc(sizeof(float) * ROWS * NX);
	M.y2 = malloc(sizeof(float) * ROWS * NX);
	if (!M.orig || !M.packed || !M.row || !M.copy || !M.xq || !M.x || !M.xdq || !M.tmp ||
	    !M.y || !M.y2) {
		tap_ok(0, "out of memory");
		return tap_done();
	}
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		uint32_t t = types[k];

		if (!ktx_cpu_rp_has(t, QK_K)) {
			tap_diag("%s: no repacked kernel at level %s", ktx_type_name(t),
			    ktx_cpu_level_name(ktx_cpu_level()));
			continue;
		}
		tested++;
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
			for (int r = 0; r < R_COUNT; r++) {
				check_accuracy(t, lens[l], (enum regime)r, &M);
				if (r == R_NORMAL)
					check_invariance(t, lens[l], &M);
			}
		check_refusals(t, &M);
	}
	tap_ok(tested == (int)(sizeof(types) / sizeof(types[0])) ||
	    ktx_cpu_level() < KTX_CPU_AVX512, "%d K-quant types with repacked kernels at level %s",
	    tested, ktx_cpu_level_name(ktx_cpu_level()));
	if (ktx_cpu_max_level() >= KTX_CPU_AVX512 && ktx_cpu_set_level(KTX_CPU_AVX2) == 0) {
		bool none = true;

		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			none &= !ktx_cpu_rp_has(types[k], QK_K);
		tap_ok(none, "below AVX-512 no type is repacked");
		ktx_cpu_set_level(KTX_CPU_AVX512);
	}
	free(M.orig);
	free(M.packed);
	free(M.row);
	free(M.copy);
	free(M.xq);
	free(M.x);
	free(M.xdq);
	free(M.tmp);
	free(M.y);
	free(M.y2);
	return tap_done();
}
