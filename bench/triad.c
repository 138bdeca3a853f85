/*
 * triad.c - the bandwidth probe of bench/run-bench.sh: a STREAM-like triad
 * a[i] = b[i] + s * c[i] over arrays far larger than the caches, on every
 * thread OpenMP gives (or -t N), best of a few passes. Prints one JSON
 * object: {"triad_gbs": X, "threads": N, "mib": M}. Memory bandwidth on a
 * shared machine moves within seconds, so the script runs it before and
 * after each measurement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PASSES 5

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	size_t mib = 256, n, i;
	int nt = 0, p;
	double best = 0;
	float *a, *b, *c;

	for (p = 1; p < argc; p++) {
		if (strcmp(argv[p], "-t") == 0 && p + 1 < argc) {
			nt = atoi(argv[++p]);
		} else if (strcmp(argv[p], "--mib") == 0 && p + 1 < argc) {
			mib = (size_t)atol(argv[++p]);
		} else {
			fprintf(stderr, "usage: triad [-t THREADS] [--mib MIB_PER_ARRAY]\n");
			return 2;
		}
	}
#ifdef _OPENMP
	if (nt <= 0)
		nt = omp_get_num_procs();
#else
	nt = 1;
#endif
	if (mib < 1 || mib > 65536 || nt < 1 || nt > 4096) {
		fprintf(stderr, "triad: want 1..65536 MiB and 1..4096 threads\n");
		return 2;
	}
	n = mib * 1024 * 1024 / sizeof(float);
	a = malloc(n * sizeof(float));
	b = malloc(n * sizeof(float));
	c = malloc(n * sizeof(float));
	if (a == NULL || b == NULL || c == NULL) {
		fprintf(stderr, "triad: out of memory for 3 x %zu MiB\n", mib);
		return 1;
	}
#pragma omp parallel for num_threads(nt) schedule(static)
	for (i = 0; i < n; i++) {
		a[i] = 0;
		b[i] = 1;
		c[i] = 2;
	}
	for (p = 0; p < PASSES; p++) {
		double t0 = now_s(), gbs;

#pragma omp parallel for num_threads(nt) schedule(static)
		for (i = 0; i < n; i++)
			a[i] = b[i] + 0.5f * c[i];
		gbs = 3.0 * (double)n * sizeof(float) / (now_s() - t0) / 1e9;
		if (gbs > best)
			best = gbs;
	}
	printf("{\"triad_gbs\": %.2f, \"threads\": %d, \"mib\": %zu, \"check\": %.1f}\n", best, nt,
	    mib, (double)a[n / 2]);
	free(a);
	free(b);
	free(c);
	return 0;
}
