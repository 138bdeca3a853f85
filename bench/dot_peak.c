/*
 * dot_peak.c - the machine's ceiling for 8-bit dot products: how many
 * AVX-512 VNNI vpdpbusd instructions (64 multiply-adds of unsigned by
 * signed bytes each) a core retires per second with nothing else to do,
 * on every thread OpenMP gives (or -t N). Prefill is bound by this: a
 * token's matmuls cost a known number of multiply-adds, so this figure
 * times the thread count over that number is the fastest prefill any
 * kernel of 8-bit activations can reach (bench/README.md uses it).
 * Prints one JSON object: {"vpdpbusd_g_s": per thread, "int8_gmac_s": all
 * threads, "threads": N}. Not a test; on a CPU without AVX-512 VNNI it
 * says so and exits 1.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Independent accumulators: more than latency x throughput, so the chain
 * of each never stalls the core. */
#define CHAINS 12
#define ITERS 50000000L

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Instructions per second of one thread over ITERS x CHAINS vpdpbusd;
 * *sink keeps the result alive (nonzero). */
__attribute__((target("avx512f,avx512vnni"))) static double
vnni_rate(unsigned *sink)
{
	__m512i b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(5), s;
	/* distinct starting values, or the compiler merges the chains */
	__m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2);
	__m512i a3 = _mm512_set1_epi32(3), a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5);
	__m512i a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7), a8 = _mm512_set1_epi32(8);
	__m512i a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10);
	__m512i a11 = _mm512_set1_epi32(11);
	double t0 = now_s();

	for (long k = 0; k < ITERS; k++) {
		a0 = _mm512_dpbusd_epi32(a0, b, c);
		a1 = _mm512_dpbusd_epi32(a1, b, c);
		a2 = _mm512_dpbusd_epi32(a2, b, c);
		a3 = _mm512_dpbusd_epi32(a3, b, c);
		a4 = _mm512_dpbusd_epi32(a4, b, c);
		a5 = _mm512_dpbusd_epi32(a5, b, c);
		a6 = _mm512_dpbusd_epi32(a6, b, c);
		a7 = _mm512_dpbusd_epi32(a7, b, c);
		a8 = _mm512_dpbusd_epi32(a8, b, c);
		a9 = _mm512_dpbusd_epi32(a9, b, c);
		a10 = _mm512_dpbusd_epi32(a10, b, c);
		a11 = _mm512_dpbusd_epi32(a11, b, c);
		/* b unknown to the compiler each pass: no folding of the loop */
		__asm__ volatile("" : "+v"(b));
	}
	t0 = now_s() - t0;
	s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
	    _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
	s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9),
	    _mm512_add_epi32(a10, a11)));
	*sink = (unsigned)_mm512_reduce_add_epi32(s);
	return (double)ITERS * CHAINS / t0;
}

int
main(int argc, char **argv)
{
	double sum = 0;
	unsigned sink = 0;
	int nt = 0;

	for (int p = 1; p < argc; p++) {
		if (strcmp(argv[p], "-t") == 0 && p + 1 < argc) {
			nt = atoi(argv[++p]);
		} else {
			fprintf(stderr, "usage: dot_peak [-t THREADS]\n");
			return 2;
		}
	}
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512vnni")) {
		fprintf(stderr, "dot_peak: this CPU has no AVX-512 VNNI\n");
		return 1;
	}
#ifdef _OPENMP
	if (nt <= 0)
		nt = omp_get_num_procs();
#pragma omp parallel num_threads(nt) reduction(+ : sum) reduction(| : sink)
	sum += vnni_rate(&sink);
#else
	nt = 1;
	sum = vnni_rate(&sink);
#endif
	printf("{\"vpdpbusd_g_s\": %.2f, \"int8_gmac_s\": %.0f, \"threads\": %d, \"check\": %d}\n",
	    sum / nt / 1e9, sum * 64 / 1e9, nt, sink != 0);
	return 0;
}
