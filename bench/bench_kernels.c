/*
 * bench_kernels.c - weight-streaming speed of the CPU matvec kernels, next
 * to the machine's memory bandwidth measured in the same run.
 *
 * For each hot weight type: a set of 2048 x 7168 matrices (the shape of a
 * DeepSeek-V3 routed expert's gate/up projection) at least --mb MiB in all,
 * so each pass streams from DRAM, not cache; one activation row quantized
 * to the type's dot type; ktx_cpu_matmul over every matrix in turn, with
 * 1 and 2 threads. GB/s = weight bytes read / time. Beside it, the kernel's
 * error against its reference twin on the same matrices and activations:
 * max |fast - ref| / max |ref| over the first matrix's outputs. The "nx"
 * columns time nx activation rows at once (2: one decoding session with
 * its residual row; 16: eight batched sessions; 128: a 64-token prefill)
 * on 1 thread by its CPU time, still as GB/s of weights read (so the
 * activation rows' throughput is nx times the figure).
 * The bandwidth probes (a STREAM-like triad a = b + s c, and a read-only
 * sum, the access pattern of a matvec) run before and after the sweep,
 * because this machine's bandwidth drifts within seconds.
 *
 * Not a test: it prints a table and asserts nothing.
 *
 * With --nsub K the nx columns go through ktx_cpu_matmul_sum instead, the
 * nx activation rows as nx / K inputs of K sub-rows each (K = 2: the fast
 * path's residual rows), so that its chunked sums can be timed against
 * plain ktx_cpu_matmul over the same activation rows.
 *
 * Each figure is measured --repeat times, the three in turn, and printed as
 * median [min-max].
 *
 * usage: bench_kernels [--mb MIB] [--seconds S] [--repeat N] [--nx N,N...] [--nsub K]
 *     [TYPE...]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/quant.h"
#include "kernels/cpu/cpu.h"
#include "kernels/qtypes.h"
#include "kernels/ref/dot_ref.h"
#include "kernels/ref/fp16.h"

#define ROWS 2048
#define COLS 7168
#define MAX_NX 1024 /* most activation rows of an nx column */
#define MAX_NXS 6  /* most nx columns */
#define MAX_REPEAT 15

static const uint32_t types[] = { KTX_TYPE_Q2_K, KTX_TYPE_Q3_K, KTX_TYPE_Q4_K, KTX_TYPE_Q5_K,
	KTX_TYPE_Q6_K, KTX_TYPE_Q8_0, KTX_TYPE_Q4_0, KTX_TYPE_IQ1_S, KTX_TYPE_IQ1_M,
	KTX_TYPE_IQ2_XXS, KTX_TYPE_IQ2_XS, KTX_TYPE_IQ3_XXS, KTX_TYPE_IQ4_XS, KTX_TYPE_F16,
	KTX_TYPE_BF16, KTX_TYPE_F32 };

/* Seconds on a clock: CLOCK_MONOTONIC, or CLOCK_THREAD_CPUTIME_ID for the
 * time this thread actually ran (the machine may be shared). */
static double
clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double
now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

static uint64_t rng = 88172645463325252ull;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* A valid random weight matrix: float values for the types ktx can
 * quantize; random bytes with fp16 scales of about 1e-2 for the grid types
 * (any index pattern is a valid block, and each starts with its scale but
 * IQ1_M, whose spread scale any bytes encode validly). */
static int
fill_matrix(uint32_t t, uint8_t *m, size_t bytes)
{
	const struct ktx_type_traits *tr = ktx_type_traits(t);

	if (tr->can_quantize) {
		float *row = malloc(sizeof(float) * COLS);
		size_t rb = (size_t)ktx_type_row_bytes(t, COLS);

		if (row == NULL)
			return -1;
		for (int r = 0; r < ROWS; r++) {
			for (int c = 0; c < COLS; c++)
				row[c] = ((float)(rnd() % 2001) - 1000.0f) * 1e-5f;
			ktx_quantize(t, row, m + (size_t)r * rb, COLS, NULL);
		}
		free(row);
		return 0;
	}
	for (size_t i = 0; i < bytes; i++)
		m[i] = (uint8_t)rnd();
	if (t != KTX_TYPE_IQ1_M) {
		uint16_t d = ktx_fp32_to_fp16(0.01f);

		for (size_t b = 0; b < bytes / tr->block_bytes; b++)
			memcpy(m + b * tr->block_bytes, &d, sizeof(d));
	}
	return 0;
}

/* GB/s of a STREAM-like triad (counting 3 arrays moved) or, with
 * read_only, of summing one array, over nt threads; best of 5. */
static double
probe(float *a, float *b, float *c, size_t n, int nt, int read_only)
{
	double best = 0;
	volatile float sink = 0;

	for (int rep = 0; rep < 5; rep++) {
		double t0 = now(), dt;
		float s = 0;

		if (read_only) {
			/* four independent integer chains, so the loop waits on
			 * memory rather than on one add chain */
			const uint64_t *u = (const uint64_t *)a;
			uint64_t acc = 0;

#pragma omp parallel for num_threads(nt) reduction(+ : acc) schedule(static)
			for (size_t i = 0; i < n / 2; i += 4)
				acc += (u[i] + u[i + 1]) ^ (u[i + 2] + u[i + 3]);
			s = (float)acc;
		} else {
#pragma omp parallel for num_threads(nt) schedule(static)
			for (size_t i = 0; i < n; i++)
				a[i] = b[i] + 0.5f * c[i];
		}
		dt = now() - t0;
		sink += s;
		double gbs = (read_only ? 1.0 : 3.0) * (double)n * sizeof(float) / dt / 1e9;
		if (gbs > best)
			best = gbs;
	}
	(void)sink;
	return best;
}

static void
print_probes(const char *when, float *a, float *b, float *c, size_t n)
{
	printf("bandwidth %-6s triad 1t %6.1f GB/s  2t %6.1f GB/s | read 1t %6.1f GB/s  2t %6.1f GB/s\n",
	    when, probe(a, b, c, n, 1, 0), probe(a, b, c, n, 2, 0), probe(a, b, c, n, 1, 1),
	    probe(a, b, c, n, 2, 1));
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* "median [min-max]" of v[0..n-1] (sorted in place) into buf; with four
 * decimals below 1 (many activation rows at once read few GB/s). */
static const char *
spread(double *v, int n, char *buf)
{
	double med;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	snprintf(buf, 32, med < 1 ? "%6.4f [%6.4f-%6.4f]" : "%5.2f [%5.2f-%5.2f]", med, v[0],
	    v[n - 1]);
	return buf;
}

/* Times ktx_cpu_matmul over the whole set with nt threads and nx
 * activation rows (xs bytes apart), or ktx_cpu_matmul_sum of nx / nsub
 * inputs when nsub > 1: GB/s of weights by the wall clock;
 * *cpu_gbs (if not NULL) by this thread's CPU time, which for nt = 1 is the
 * kernel's speed whenever it has a core, however busy the machine is. */
static double
time_set(uint32_t t, uint8_t *set, size_t mbytes, int nmat, const void *xq, size_t xs, int nx,
    int nsub, float *y, int nt, double seconds, double *cpu_gbs)
{
	size_t rb = (size_t)ktx_type_row_bytes(t, COLS);
	double t0, c0, dt;
	long passes = 0;

	for (int m = 0; m < nmat; m++) /* warm-up pass */
		ktx_cpu_matmul_sum(t, COLS, ROWS, set + (size_t)m * mbytes, rb, xq, xs, nx / nsub,
		    nsub, y, ROWS, nt);
	t0 = now();
	c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	do {
		for (int m = 0; m < nmat; m++)
			ktx_cpu_matmul_sum(t, COLS, ROWS, set + (size_t)m * mbytes, rb, xq, xs,
			    nx / nsub, nsub, y, ROWS, nt);
		passes++;
		dt = now() - t0;
	} while (dt < seconds);
	if (cpu_gbs != NULL)
		*cpu_gbs = (double)passes * nmat * (double)mbytes /
		    (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e9;
	return (double)passes * nmat * (double)mbytes / dt / 1e9;
}

int
main(int argc, char **argv)
{
	double mib = 256, seconds = 0.5;
	int repeat = 3, nxs[MAX_NXS] = { 1, 2, 16, 128 }, nnx = 4, nsub = 1;
	char cell[3 + MAX_NXS][32];
	const char *only[32];
	int nonly = 0;
	size_t pn = (size_t)32 << 20; /* probe arrays: 3 x 128 MiB */
	float *pa, *pb, *pc, *x, *y, *yref;
	void *xq;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
			mib = atof(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (strcmp(argv[i], "--nx") == 0 && i + 1 < argc) {
			char *p = argv[++i];

			/* a comma list; anything else leaves nnx 0, refused below */
			for (nnx = 0; nnx < MAX_NXS; p++) {
				nxs[nnx++] = (int)strtol(p, &p, 10);
				if (nxs[nnx - 1] < 1 || nxs[nnx - 1] > MAX_NX || (*p != ',' && *p != '\0'))
					nnx = MAX_NXS + 1;
				if (*p != ',')
					break;
			}
			if (nnx > MAX_NXS || *p != '\0')
				nnx = 0;
		} else if (strcmp(argv[i], "--nsub") == 0 && i + 1 < argc)
			nsub = atoi(argv[++i]);
		else if (argv[i][0] == '-' || nonly == 32) {
			fprintf(stderr, "usage: bench_kernels [--mb MIB] [--seconds S] [--repeat N] "
			    "[--nx N,N...] [--nsub K] [TYPE...]\n");
			return 2;
		} else
			only[nonly++] = argv[i];
	}
	pa = malloc(pn * sizeof(float));
	pb = malloc(pn * sizeof(float));
	pc = malloc(pn * sizeof(float));
	x = malloc(COLS * sizeof(float));
	xq = malloc(MAX_NX * COLS * sizeof(float));
	y = malloc(MAX_NX * ROWS * sizeof(float));
	yref = malloc(ROWS * sizeof(float));
	if (!pa || !pb || !pc || !x || !xq || !y || !yref) {
		fprintf(stderr, "bench_kernels: out of memory\n");
		return 1;
	}
	for (int j = 0; j < nnx; j++)
		if (nsub >= 1 && nxs[j] % nsub != 0)
			nsub = 0;
	if (repeat < 1 || repeat > MAX_REPEAT || !(seconds > 0) || !(mib > 0) || nnx < 1 ||
	    nsub < 1 || nsub > KTX_CPU_NSUB_MAX) {
		fprintf(stderr, "bench_kernels: --repeat 1..%d, --seconds and --mb > 0, "
		    "--nx up to %d values in 1..%d, --nsub 1..%d dividing each nx\n", MAX_REPEAT,
		    MAX_NXS, MAX_NX, KTX_CPU_NSUB_MAX);
		return 2;
	}
	for (size_t i = 0; i < pn; i++)
		pa[i] = pb[i] = pc[i] = 1.0f;
	for (int c = 0; c < COLS; c++)
		x[c] = ((float)(rnd() % 2001) - 1000.0f) * 1e-3f;

	printf("ktx CPU kernels: level %s (max %s), matvec %dx%d, set >= %.0f MiB per type, "
	    "nx columns in sums of %d\n", ktx_cpu_level_name(ktx_cpu_level()),
	    ktx_cpu_level_name(ktx_cpu_max_level()), ROWS, COLS, mib, nsub);
	print_probes("before", pa, pb, pc, pn);
	printf("%-8s %-8s %7s %5s %-17s %-17s %-17s", "type", "kernel", "MiB/mat", "mats",
	    "1t GB/s (wall)", "1t GB/s (cpu)", "2t GB/s (wall)");
	for (int j = 0; j < nnx; j++)
		printf(" nx=%-3d 1t GB/s(cpu)", nxs[j]);
	printf(" %9s\n", "err/ref");
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		uint32_t t = types[k];
		size_t rb = (size_t)ktx_type_row_bytes(t, COLS), mbytes = rb * ROWS;
		int nmat, want = nonly == 0;
		uint8_t *set;
		double maxerr = 0, maxref = 0;

		for (int i = 0; i < nonly; i++)
			want |= strcmp(only[i], ktx_type_name(t)) == 0;
		if (!want)
			continue;
		nmat = (int)ceil(mib * 1048576.0 / (double)mbytes);
		set = malloc(mbytes * (size_t)nmat);
		if (set == NULL || fill_matrix(t, set, mbytes) != 0) {
			fprintf(stderr, "bench_kernels: out of memory for %s\n", ktx_type_name(t));
			return 1;
		}
		for (int m = 1; m < nmat; m++)
			memcpy(set + (size_t)m * mbytes, set, mbytes);
		ktx_cpu_quantize_row((uint32_t)ktx_cpu_dot_type(t), x, xq, COLS);
		ktx_cpu_matmul(t, COLS, ROWS, set, rb, xq, 0, 1, y, ROWS, 1);
		for (int r = 0; r < ROWS; r++) {
			yref[r] = ref_dot_fn_for(t)(COLS, set + (size_t)r * rb, xq);
			maxerr = fmax(maxerr, fabs((double)y[r] - yref[r]));
			maxref = fmax(maxref, fabs((double)yref[r]));
		}
		size_t xs = ktx_cpu_act_row_bytes(t, COLS);
		for (int b = 1; b < MAX_NX; b++)
			memcpy((uint8_t *)xq + (size_t)b * xs, xq, xs);
		/* the figures measured in turn, repeat times: medians */
		double g1[MAX_REPEAT], c1[MAX_REPEAT], g2[MAX_REPEAT], gx[MAX_NXS][MAX_REPEAT];
		for (int rep = 0; rep < repeat; rep++) {
			g1[rep] = time_set(t, set, mbytes, nmat, xq, xs, 1, 1, y, 1, seconds,
			    &c1[rep]);
			g2[rep] = time_set(t, set, mbytes, nmat, xq, xs, 1, 1, y, 2, seconds, NULL);
			for (int j = 0; j < nnx; j++)
				time_set(t, set, mbytes, nmat, xq, xs, nxs[j], nsub, y, 1, seconds,
				    &gx[j][rep]);
		}
		printf("%-8s %-8s %7.2f %5d %s %s %s", ktx_type_name(t),
		    ktx_cpu_level_name(ktx_cpu_kernel_level(t)), (double)mbytes / 1048576.0, nmat,
		    spread(g1, repeat, cell[0]), spread(c1, repeat, cell[1]),
		    spread(g2, repeat, cell[2]));
		for (int j = 0; j < nnx; j++)
			printf(" %s", spread(gx[j], repeat, cell[3 + j]));
		printf(" %9.1e\n", maxref > 0 ? maxerr / maxref : maxerr);
		fflush(stdout);
		free(set);
	}
	print_probes("after", pa, pb, pc, pn);
	free(pa);
	free(pb);
	free(pc);
	free(x);
	free(xq);
	free(y);
	free(yref);
	return 0;
}
