/*
 * test_cpu_dot.c - every kernel of kernels/cpu against its reference twin
 * in kernels/ref/dot_ref.c, at every CPU level this machine runs (forced in
 * turn with ktx_cpu_set_level, as KTX_CPU would), and the twins themselves
 * against dequantize-then-multiply.
 *
 * Error bound, per type, for fast vs reference: both compute the same exact
 * integer sum per block (sub-block or lane partial sums of products of
 * integers that cannot overflow), then combine the block's float scales
 * and add up the blocks in different orders. Each order is a sum of at
 * most 2 nb + 16 rounded float operations per term (nb blocks, the scale
 * products, a tree of lane sums), so by the standard summation bound
 * |fast - ref| <= (2 nb + 16) u S + ops 2^-149, where u = 2^-24 and S is
 * the sum of the magnitudes of every term (for the asymmetric K-quants the
 * scale part and the min part counted separately; measured by dequantizing
 * each part alone), and the last term covers rounding in the denormal
 * range. For float weights nb is n (one term per element). The measured
 * worst case is printed as a diagnostic; it sits far below the bound.
 *
 * Reference vs dequantize-then-multiply: the same bound (the dequantized
 * values are the same products, rounded per element). Reference vs float
 * activations: |ref - sum w x| <= sum |w| |x - dq(q(x))| + the same
 * rounding term - the twin adds no error beyond the activations' rounding.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"
#include "kernels/cpu/cpu.h"
#include "kernels/qtypes.h"
#include "kernels/quant_blocks.h"
#include "kernels/ref/dot_ref.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/quant_ref.h"
#include "tests/tap.h"
#include "tests/unit/qrandom.h"

#define MAX_N (28 * QK_K) /* 7168, DeepSeek-V3's hidden width */

static const uint32_t types[] = { KTX_TYPE_Q2_K, KTX_TYPE_Q3_K, KTX_TYPE_Q4_K, KTX_TYPE_Q5_K,
	KTX_TYPE_Q6_K, KTX_TYPE_Q8_0, KTX_TYPE_Q4_0, KTX_TYPE_Q5_0, KTX_TYPE_IQ4_NL,
	KTX_TYPE_IQ1_S, KTX_TYPE_IQ1_M, KTX_TYPE_IQ2_XXS, KTX_TYPE_IQ2_XS, KTX_TYPE_IQ3_XXS,
	KTX_TYPE_IQ4_XS, KTX_TYPE_F32, KTX_TYPE_F16, KTX_TYPE_BF16 };
#define NTYPES (sizeof(types) / sizeof(types[0]))

struct bufs {
	uint8_t *w, *copy, *xq;
	float *x, *xdq, *wdq;
};

/* The dequantized activation row (float32 rows are themselves). */
static void
dequant_act(int dt, const void *xq, float *xdq, int64_t n)
{
	if (dt == KTX_TYPE_F32)
		memcpy(xdq, xq, (size_t)n * sizeof(float));
	else
		ktx_dequantize((uint32_t)dt, xq, xdq, n, NULL);
}

/* Fast vs reference for type t at the current level over regimes and
 * lengths; returns the worst error as a fraction of its bound. */
static void
check_type(uint32_t t, struct bufs *B)
{
	static const int64_t lens_k[] = { QK_K, 3 * QK_K, MAX_N };
	static const int64_t lens_l[] = { 32, 96, 224, MAX_N };
	static const int64_t lens_f[] = { 1, 7, 33, 1003, MAX_N - 5 };
	int dt = ktx_cpu_dot_type(t);
	const int64_t *lens = dt == KTX_TYPE_Q8_K ? lens_k : dt == KTX_TYPE_Q8_0 ? lens_l : lens_f;
	int nlens = dt == KTX_TYPE_Q8_K ? 3 : dt == KTX_TYPE_Q8_0 ? 4 : 5;
	ref_dot_fn ref = ref_dot_fn_for(t);
	double worst = 0, worst_deq = 0, worst_act = 0;
	int bad = 0, bad_deq = 0, bad_act = 0, rc_bad = 0;

	for (int li = 0; li < nlens; li++) {
		int64_t n = lens[li];
		int64_t nb = dt == KTX_TYPE_F32 ? n : n / (dt == KTX_TYPE_Q8_K ? QK_K : 32);

		for (int rw = 0; rw < R_COUNT; rw++) {
			for (int rx = 0; rx < R_COUNT; rx++) {
				float fast, r;
				double S, e, sum = 0, sum_act = 0, act_err = 0;

				/* huge weights with huge activations would overflow */
				if (rw == R_HUGE && rx == R_HUGE)
					continue;
				random_row(t, B->w, n, (enum regime)rw);
				random_act(B->x, n, (enum regime)rx, dt);
				if (ktx_cpu_quantize_row((uint32_t)dt, B->x, B->xq, n) != 0 ||
				    ktx_cpu_dot(t, n, B->w, B->xq, &fast) != 0) {
					rc_bad++;
					continue;
				}
				r = ref(n, B->w, B->xq);
				dequant_act(dt, B->xq, B->xdq, n);
				S = magnitude(t, B->w, n, B->xdq, B->wdq, B->copy);
				e = fabs((double)fast - r) / sum_bound(nb, S);
				if (!(e <= 1.0)) {
					if (bad++ < 3)
						tap_diag("%s n=%lld w:%s x:%s fast %.9g ref %.9g S %g",
						    ktx_type_name(t), (long long)n, regime_names[rw],
						    regime_names[rx], fast, r, S);
				} else if (e > worst) {
					worst = e;
				}
				/* the twin against dequantize-then-multiply */
				ktx_dequantize(t, B->w, B->wdq, n, NULL);
				for (int64_t i = 0; i < n; i++) {
					sum += (double)B->wdq[i] * B->xdq[i];
					sum_act += (double)B->wdq[i] * B->x[i];
					act_err += fabs((double)B->wdq[i]) * fabs((double)B->x[i] - B->xdq[i]);
				}
				e = fabs(r - sum) / sum_bound(nb, S);
				if (!(e <= 1.0)) {
					if (bad_deq++ < 3)
						tap_diag("%s n=%lld w:%s x:%s ref %.9g deq %.9g",
						    ktx_type_name(t), (long long)n, regime_names[rw],
						    regime_names[rx], r, sum);
				} else if (e > worst_deq) {
					worst_deq = e;
				}
				e = fabs(r - sum_act) / (act_err * (1 + 0x1p-20) + sum_bound(nb, S));
				if (!(e <= 1.0))
					bad_act++;
				else if (e > worst_act)
					worst_act = e;
			}
		}
	}
	tap_ok(rc_bad == 0 && bad == 0, "%s: %s kernel (%s) within bound of its reference twin",
	    ktx_cpu_level_name(ktx_cpu_level()), ktx_type_name(t),
	    ktx_cpu_level_name(ktx_cpu_kernel_level(t)));
	tap_diag("  worst error / bound: fast %.2g, ref-vs-dequant %.2g, ref-vs-float-act %.2g",
	    worst, worst_deq, worst_act);
	if (ktx_cpu_level() == KTX_CPU_GENERIC) {
		tap_ok(bad_deq == 0, "%s reference twin = dequantize then multiply, within bound",
		    ktx_type_name(t));
		tap_ok(bad_act == 0, "%s reference twin error <= activation rounding error",
		    ktx_type_name(t));
	}
}

/* The activation quantizers at this level against kernels/ref, byte for
 * byte, on every regime plus exact ties. */
static void
check_quantizers(struct bufs *B)
{
	static uint8_t ref[MAX_N * 2];
	int bad_k = 0, bad_0 = 0;

	for (int rx = 0; rx < R_COUNT; rx++) {
		for (int rep = 0; rep < 4; rep++) {
			random_act(B->x, MAX_N, (enum regime)rx, KTX_TYPE_Q8_0);
			if (rep == 3) /* an all-zero block and a lone maximum of each sign */
				memset(B->x, 0, QK_K * sizeof(float));
			if (rep == 2) {
				B->x[5] = -1e3f;
				B->x[9] = 1e3f;
			}
			ktx_cpu_quantize_row(KTX_TYPE_Q8_K, B->x, B->xq, MAX_N);
			ref_quantize_row_q8_K(B->x, ref, MAX_N);
			bad_k += memcmp(ref, B->xq, (size_t)ktx_type_row_bytes(KTX_TYPE_Q8_K, MAX_N)) != 0;
			ktx_cpu_quantize_row(KTX_TYPE_Q8_0, B->x, B->xq, MAX_N);
			ref_quantize_row_q8_0(B->x, ref, MAX_N);
			bad_0 += memcmp(ref, B->xq, (size_t)ktx_type_row_bytes(KTX_TYPE_Q8_0, MAX_N)) != 0;
		}
	}
	/* values that land exactly on .5 after scaling: 127 / 127 * k.5 */
	for (int i = 0; i < MAX_N; i++)
		B->x[i] = (i % 32 == 0) ? 127.0f : (float)((int)(i % 253) - 126) + 0.5f;
	ktx_cpu_quantize_row(KTX_TYPE_Q8_0, B->x, B->xq, MAX_N);
	ref_quantize_row_q8_0(B->x, ref, MAX_N);
	bad_0 += memcmp(ref, B->xq, (size_t)ktx_type_row_bytes(KTX_TYPE_Q8_0, MAX_N)) != 0;
	for (int i = 0; i < MAX_N; i++)
		B->x[i] = (i % 256 == 0) ? -127.0f : (float)((int)(i % 253) - 126) + 0.5f;
	ktx_cpu_quantize_row(KTX_TYPE_Q8_K, B->x, B->xq, MAX_N);
	ref_quantize_row_q8_K(B->x, ref, MAX_N);
	bad_k += memcmp(ref, B->xq, (size_t)ktx_type_row_bytes(KTX_TYPE_Q8_K, MAX_N)) != 0;
	tap_ok(bad_k == 0, "%s: q8_K activation quantizer bit-identical to reference",
	    ktx_cpu_level_name(ktx_cpu_level()));
	tap_ok(bad_0 == 0, "%s: q8_0 activation quantizer bit-identical to reference",
	    ktx_cpu_level_name(ktx_cpu_level()));
}

/* matmul: odd row counts, 1, 5 and 6 activation rows (the batched kernels
 * take 4 at a time and leave 1 or 2), 1/2/3 threads all give the very same
 * bits, each equal to ktx_cpu_dot on that row alone. */
static void
check_matmul(struct bufs *B)
{
	enum { n = 3 * QK_K, rows = 37, maxnx = 6 };
	static const uint32_t mt[] = { KTX_TYPE_Q2_K, KTX_TYPE_Q3_K, KTX_TYPE_Q4_K, KTX_TYPE_Q5_K,
		KTX_TYPE_Q6_K, KTX_TYPE_Q8_0, KTX_TYPE_IQ2_XXS, KTX_TYPE_F16 };
	static const int nxs[] = { 1, 5, 6 };
	static float y[3][maxnx * rows];
	int bad = 0;

	for (size_t k = 0; k < sizeof(mt) / sizeof(mt[0]); k++) {
		uint32_t t = mt[k];
		int dt = ktx_cpu_dot_type(t);
		size_t ws = (size_t)ktx_type_row_bytes(t, n), xs = ktx_cpu_act_row_bytes(t, n);

		for (size_t q = 0; q < sizeof(nxs) / sizeof(nxs[0]); q++) {
			int nx = nxs[q];

			random_row(t, B->w, n * rows, R_NORMAL);
			random_act(B->x, n * nx, R_NORMAL, dt);
			for (int i = 0; i < nx; i++)
				ktx_cpu_quantize_row((uint32_t)dt, B->x + i * n, B->xq + (size_t)i * xs,
				    n);
			for (int th = 1; th <= 3; th++)
				if (ktx_cpu_matmul(t, n, rows, B->w, ws, B->xq, xs, nx, y[th - 1],
				    (size_t)rows, th) != 0)
					bad++;
			for (int i = 0; i < nx; i++) {
				for (int r = 0; r < rows; r++) {
					float d;

					ktx_cpu_dot(t, n, B->w + (size_t)r * ws, B->xq + (size_t)i * xs,
					    &d);
					for (int th = 0; th < 3; th++)
						bad += memcmp(&d, &y[th][i * rows + r], sizeof(d)) != 0;
				}
			}
		}
	}
	tap_ok(bad == 0, "%s: matmul (37 rows x 1, 5, 6 activation rows) equals the one-row "
	    "dot bit for bit, with 1, 2 and 3 threads", ktx_cpu_level_name(ktx_cpu_level()));
}

/* The i-quants' batched kernels (added with kernels/cpu/avx512_iq.c): for
 * every pair of weight and activation scale regimes and 2, 3, 8, 9 and 33
 * activation rows (whole batches and remainders of the dotn and gemm
 * kernels), each output of matmul equals the one-row dot bit for bit.
 * IQ4_NL rows are 7 blocks long, so its kernels' odd last block is
 * covered too. */
static void
check_matmul_iq(struct bufs *B)
{
	enum { rows = 7, maxnx = 33 };
	static const uint32_t it[] = { KTX_TYPE_IQ1_S, KTX_TYPE_IQ1_M, KTX_TYPE_IQ2_XXS,
		KTX_TYPE_IQ2_XS, KTX_TYPE_IQ3_XXS, KTX_TYPE_IQ4_XS, KTX_TYPE_IQ4_NL };
	static const int nxs[] = { 2, 3, 8, 9, maxnx };
	static float y[maxnx * rows];

	for (size_t k = 0; k < sizeof(it) / sizeof(it[0]); k++) {
		uint32_t t = it[k];
		int dt = ktx_cpu_dot_type(t);
		int64_t n = t == KTX_TYPE_IQ4_NL ? 7 * QK4_NL : 2 * QK_K;
		size_t ws = (size_t)ktx_type_row_bytes(t, n), xs = ktx_cpu_act_row_bytes(t, n);
		int bad = 0;

		for (int rw = 0; rw < R_COUNT; rw++) {
			for (int rx = 0; rx < R_COUNT; rx++) {
				if (rw == R_HUGE && rx == R_HUGE)
					continue;
				for (size_t q = 0; q < sizeof(nxs) / sizeof(nxs[0]); q++) {
					int nx = nxs[q];

					random_row(t, B->w, n * rows, (enum regime)rw);
					random_act(B->x, n * nx, (enum regime)rx, dt);
					for (int i = 0; i < nx; i++)
						ktx_cpu_quantize_row((uint32_t)dt, B->x + i * n,
						    B->xq + (size_t)i * xs, n);
					if (ktx_cpu_matmul(t, n, rows, B->w, ws, B->xq, xs, nx, y,
					    (size_t)rows, 1) != 0)
						bad++;
					for (int i = 0; i < nx; i++) {
						for (int r = 0; r < rows; r++) {
							float d;

							ktx_cpu_dot(t, n, B->w + (size_t)r * ws,
							    B->xq + (size_t)i * xs, &d);
							bad += memcmp(&d, &y[i * rows + r], sizeof(d)) != 0;
						}
					}
				}
			}
		}
		tap_ok(bad == 0, "%s: %s matmul (7 rows x 2, 3, 8, 9, 33 activation rows, every scale "
		    "regime) equals the one-row dot bit for bit", ktx_cpu_level_name(ktx_cpu_level()),
		    ktx_type_name(t));
	}
}

/*
 * The many-activation-row path (at AVX-512, the tiled gemm of the K-quants
 * and Q8_0): for every weight/activation scale regime pair, row lengths of
 * 1, 5 and 9 blocks of 256 (the gemm walks a row in chunks of 8) or 1, 5
 * and 65 blocks of 32 (Q8_0 goes in pairs, 16 pairs a chunk), 37 rows
 * (past a block of 16) and 5 to 41 activation rows (groups of 8, tiles of
 * 32, and what is left of each), every output of matmul equals the one-row
 * dot bit for bit, with 1 and 3 threads.
 */
static void
check_matmul_many(void)
{
	enum { rows = 37, maxnx = 41, maxn = 9 * QK_K };
	static const uint32_t mt[] = { KTX_TYPE_Q2_K, KTX_TYPE_Q3_K, KTX_TYPE_Q4_K, KTX_TYPE_Q5_K,
		KTX_TYPE_Q6_K, KTX_TYPE_Q8_0 };
	static const int64_t lens_k[] = { QK_K, 5 * QK_K, maxn };
	static const int64_t lens_0[] = { QK8_0, 5 * QK8_0, 65 * QK8_0 };
	static const int nxs[] = { 5, 8, 9, 16, 31, 41 };
	size_t xs_max = ktx_cpu_act_row_bytes(KTX_TYPE_Q4_K, maxn);
	/* Q8_0 has the most bytes per element of these */
	uint8_t *w = malloc((size_t)ktx_type_row_bytes(KTX_TYPE_Q8_0, maxn) * rows);
	uint8_t *xq = malloc(xs_max * maxnx);
	float *x = malloc(sizeof(float) * maxn * maxnx);
	float *y = malloc(sizeof(float) * rows * maxnx * 2);
	int bad = 0, calls = 0;

	if (w == NULL || xq == NULL || x == NULL || y == NULL) {
		tap_ok(0, "allocate the many-row buffers");
		goto out;
	}
	for (size_t k = 0; k < sizeof(mt) / sizeof(mt[0]); k++) {
		uint32_t t = mt[k];
		int dt = ktx_cpu_dot_type(t);

		for (size_t li = 0; li < sizeof(lens_k) / sizeof(lens_k[0]); li++) {
			int64_t n = dt == KTX_TYPE_Q8_K ? lens_k[li] : lens_0[li];
			size_t ws = (size_t)ktx_type_row_bytes(t, n), xs = ktx_cpu_act_row_bytes(t, n);

			for (int rw = 0; rw < R_COUNT; rw++) {
				for (int rx = 0; rx < R_COUNT; rx++) {
					/* one activation count per regime pair, all of them
					 * at the first length */
					int q0 = li == 0 ? 0 : (rw * R_COUNT + rx) % 6;
					int q1 = li == 0 ? 6 : q0 + 1;

					if (rw == R_HUGE && rx == R_HUGE)
						continue;
					for (int q = q0; q < q1; q++) {
						int nx = nxs[q];

						random_row(t, w, n * rows, (enum regime)rw);
						random_act(x, n * nx, (enum regime)rx, dt);
						for (int i = 0; i < nx; i++)
							ktx_cpu_quantize_row((uint32_t)dt, x + i * n,
							    xq + (size_t)i * xs, n);
						for (int th = 0; th < 2; th++)
							bad += ktx_cpu_matmul(t, n, rows, w, ws, xq, xs,
							    nx, y + th * rows * maxnx, (size_t)rows,
							    th ? 3 : 1) != 0;
						for (int i = 0; i < nx; i++) {
							for (int r = 0; r < rows; r++) {
								float d;

								ktx_cpu_dot(t, n, w + (size_t)r * ws,
								    xq + (size_t)i * xs, &d);
								bad += memcmp(&d, &y[i * rows + r],
								    sizeof(d)) != 0;
								bad += memcmp(&d,
								    &y[rows * maxnx + i * rows + r],
								    sizeof(d)) != 0;
							}
						}
						calls++;
					}
				}
			}
		}
	}
	tap_ok(bad == 0 && calls > 0, "%s: K-quant and q8_0 matmul (37 rows x 5 to 41 "
	    "activation rows, 3 row lengths, every scale regime, 1 and 3 threads) equals the "
	    "one-row dot bit for bit", ktx_cpu_level_name(ktx_cpu_level()));
out:
	free(w);
	free(xq);
	free(x);
	free(y);
}

/*
 * ktx_cpu_matmul_sum: for 1, 2 and 3 sub-rows per input, 1 to 200 inputs
 * (past the kernel's chunk of 64 activation rows, several times), 67 rows
 * (a row block of 64 and an odd rest), y rows padded (stride rows + 3) and
 * 1 and 3 threads, every output equals the products of ktx_cpu_matmul over
 * the same activation rows added in sub-row order, bit for bit, and the
 * padding is left alone. Types: the K-quant, Q8_0 and i-quant gemms, Q4_0
 * (no gemm) and F16 (float activations).
 */
static void
check_matmul_sum(void)
{
	enum { rows = 67, ys = rows + 3, maxnx = 200, maxsub = 3, maxn = QK_K };
	static const uint32_t mt[] = { KTX_TYPE_Q2_K, KTX_TYPE_Q6_K, KTX_TYPE_Q8_0, KTX_TYPE_Q4_0,
		KTX_TYPE_IQ2_XXS, KTX_TYPE_F16 };
	static const int nxs[] = { 1, 2, 5, 33, 70, maxnx };
	const float pad = -1234.5f;
	size_t xs_max = ktx_cpu_act_row_bytes(KTX_TYPE_F16, maxn);
	uint8_t *w = malloc((size_t)ktx_type_row_bytes(KTX_TYPE_F32, maxn) * rows);
	uint8_t *xq = malloc(xs_max * maxnx * maxsub);
	float *x = malloc(sizeof(float) * maxn * maxnx * maxsub);
	float *prod = malloc(sizeof(float) * rows * maxnx * maxsub);
	float *y = malloc(sizeof(float) * ys * maxnx);
	int bad = 0, calls = 0;

	if (w == NULL || xq == NULL || x == NULL || prod == NULL || y == NULL) {
		tap_ok(0, "allocate the summed matmul's buffers");
		goto out;
	}
	for (size_t k = 0; k < sizeof(mt) / sizeof(mt[0]); k++) {
		uint32_t t = mt[k];
		int dt = ktx_cpu_dot_type(t);
		int64_t n = dt == KTX_TYPE_Q8_K ? QK_K : 3 * QK8_0;
		size_t ws = (size_t)ktx_type_row_bytes(t, n), xs = ktx_cpu_act_row_bytes(t, n);

		random_row(t, w, n * rows, R_NORMAL);
		random_act(x, n * maxnx * maxsub, R_NORMAL, dt);
		for (int i = 0; i < maxnx * maxsub; i++)
			ktx_cpu_quantize_row((uint32_t)dt, x + (size_t)i * (size_t)n,
			    xq + (size_t)i * xs, n);
		/* every activation row's products, the separate way */
		bad += ktx_cpu_matmul(t, n, rows, w, ws, xq, xs, maxnx * maxsub, prod, rows, 1) != 0;
		for (int nsub = 1; nsub <= maxsub; nsub++) {
			for (size_t q = 0; q < sizeof(nxs) / sizeof(nxs[0]); q++) {
				int nx = nxs[q];

				for (int th = 1; th <= 3; th += 2) {
					for (int i = 0; i < ys * maxnx; i++)
						y[i] = pad;
					bad += ktx_cpu_matmul_sum(t, n, rows, w, ws, xq, xs, nx, nsub,
					    y, ys, th) != 0;
					for (int i = 0; i < nx; i++) {
						for (int r = 0; r < ys; r++) {
							float e = pad;

							if (r < rows) {
								e = prod[i * nsub * rows + r];
								for (int s = 1; s < nsub; s++)
									e += prod[(i * nsub + s) * rows + r];
							}
							bad += memcmp(&e, &y[i * ys + r], sizeof(e)) != 0;
						}
					}
					if (nx < maxnx)
						bad += y[nx * ys] != pad;
					calls++;
				}
			}
		}
	}
	tap_ok(bad == 0 && calls > 0, "%s: matmul_sum (67 rows x 1 to 200 inputs of 1, 2 or 3 "
	    "sub-rows, 1 and 3 threads) equals the sub-rows' matmul products added in order, "
	    "bit for bit", ktx_cpu_level_name(ktx_cpu_level()));
	for (int i = 0; i < ys; i++)
		y[i] = pad;
	bad = ktx_cpu_matmul_sum(KTX_TYPE_Q4_K, QK_K, 1, w, 0, xq, 0, 1, 0, y, ys, 1) != -1;
	bad += ktx_cpu_matmul_sum(KTX_TYPE_Q4_K, QK_K, 1, w, 0, xq, 0, 1, -1, y, ys, 1) != -1;
	bad += ktx_cpu_matmul_sum(KTX_TYPE_Q4_K, QK_K, 1, w, 0, xq, 0, 1, KTX_CPU_NSUB_MAX + 1, y,
	    ys, 1) != -1;
	bad += ktx_cpu_matmul_sum(KTX_TYPE_Q4_K, QK_K, 1, w, 0, xq, 0, -1, 2, y, ys, 1) != -1;
	bad += ktx_cpu_matmul_sum(KTX_TYPE_Q4_K, QK_K, 1, w, 0, xq, 0, INT64_MAX / 2 + 1, 2, y,
	    ys, 1) != -1;
	bad += ktx_cpu_matmul_sum(KTX_TYPE_Q4_K, 100, 1, w, 0, xq, 0, 1, 2, y, ys, 1) != -1;
	bad += y[0] != pad;
	tap_ok(bad == 0, "%s: matmul_sum refuses nsub < 1, nsub > %d, nx < 0, an overflowing "
	    "row count and partial blocks, writing nothing", ktx_cpu_level_name(ktx_cpu_level()),
	    KTX_CPU_NSUB_MAX);
out:
	free(w);
	free(xq);
	free(x);
	free(prod);
	free(y);
}

/* Hand-packed blocks whose dot products are known exactly. */
static void
check_hand_packed(void)
{
	struct block_q4_0 w4;
	struct block_q8_0 w8, x8;
	struct block_q4_K wk;
	struct block_q8_K xk;
	float d;

	/* Q4_0: every level 9 - 8 = 1, d 2; activations 1..32 with d 0.5 */
	w4.d = ktx_fp32_to_fp16(2.0f);
	memset(w4.qs, 0x99, sizeof(w4.qs));
	x8.d = ktx_fp32_to_fp16(0.5f);
	for (int j = 0; j < 32; j++)
		x8.qs[j] = (int8_t)(j + 1);
	ktx_cpu_dot(KTX_TYPE_Q4_0, 32, &w4, &x8, &d);
	tap_ok(d == 528.0f, "%s: hand-packed q4_0 . q8_0 = 528 (got %g)",
	    ktx_cpu_level_name(ktx_cpu_level()), d);
	/* Q8_0: levels -128 and 127 alternating (the extremes), activations +-127 */
	w8.d = ktx_fp32_to_fp16(1.0f);
	for (int j = 0; j < 32; j++) {
		w8.qs[j] = (int8_t)(j % 2 ? 127 : -128);
		x8.qs[j] = (int8_t)(j % 2 ? 127 : -127);
	}
	x8.d = ktx_fp32_to_fp16(1.0f);
	ktx_cpu_dot(KTX_TYPE_Q8_0, 32, &w8, &x8, &d);
	tap_ok(d == 16.0f * (128 * 127 + 127 * 127), "%s: hand-packed q8_0 extremes (got %g)",
	    ktx_cpu_level_name(ktx_cpu_level()), d);
	/* Q4_K: all nibbles 15, scale 63 and min 63 in every sub-block, d = dmin = 1;
	 * activations all 1 (d 1): 256 * (63 * 15 - 63) */
	memset(&wk, 0, sizeof(wk));
	wk.d = wk.dmin = ktx_fp32_to_fp16(1.0f);
	memset(wk.scales, 0xff, sizeof(wk.scales));
	memset(wk.qs, 0xff, sizeof(wk.qs));
	xk.d = 1.0f;
	memset(xk.qs, 1, sizeof(xk.qs));
	for (int j = 0; j < 16; j++)
		xk.bsums[j] = 16;
	ktx_cpu_dot(KTX_TYPE_Q4_K, QK_K, &wk, &xk, &d);
	tap_ok(d == 256.0f * (63 * 15 - 63), "%s: hand-packed q4_K (got %g)",
	    ktx_cpu_level_name(ktx_cpu_level()), d);
}

int
main(void)
{
	struct bufs B;
	int max;

	/* KTX_CPU is read once, at the first call: set it before that one */
	setenv("KTX_CPU", "generic", 1);
	tap_ok(ktx_cpu_level() == KTX_CPU_GENERIC, "KTX_CPU=generic selects the generic level");
	max = ktx_cpu_max_level();

	B.w = malloc((size_t)ktx_type_row_bytes(KTX_TYPE_F32, MAX_N * 40));
	B.copy = malloc((size_t)ktx_type_row_bytes(KTX_TYPE_F32, MAX_N));
	B.xq = malloc((size_t)ktx_type_row_bytes(KTX_TYPE_F32, MAX_N * 3));
	B.x = malloc(sizeof(float) * MAX_N * 3);
	B.xdq = malloc(sizeof(float) * MAX_N);
	B.wdq = malloc(sizeof(float) * MAX_N);
	if (!B.w || !B.copy || !B.xq || !B.x || !B.xdq || !B.wdq) {
		tap_ok(0, "allocate buffers");
		return tap_done();
	}
	tap_diag("this CPU runs up to %s", ktx_cpu_level_name(max));
	tap_ok(ktx_cpu_set_level(max + 1) != 0, "a level above the CPU's is refused");
	for (int level = KTX_CPU_GENERIC; level <= max; level++) {
		ktx_cpu_set_level(level);
		tap_ok(ktx_cpu_level() == level, "level %s selected", ktx_cpu_level_name(level));
		for (size_t i = 0; i < NTYPES; i++)
			check_type(types[i], &B);
		check_quantizers(&B);
		check_matmul(&B);
		check_matmul_iq(&B);
		check_matmul_many();
		check_matmul_sum();
		check_hand_packed();
	}
	tap_ok(ktx_cpu_dot_type(KTX_TYPE_Q4_1) == -1 && ktx_cpu_act_row_bytes(KTX_TYPE_Q4_K, 100) == 0,
	    "unsupported types and partial blocks are refused");
	free(B.w);
	free(B.copy);
	free(B.xq);
	free(B.x);
	free(B.xdq);
	free(B.wdq);
	return tap_done();
}
