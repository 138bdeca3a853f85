/*
 * ops.c - reference float ops of the forward pass; see ops.h.
 *
 * Sums run in double so that the float32 result sits within rounding of the
 * float64 oracle; order of summation is fixed (index order), so a result
 * never depends on the thread that computed it.
 */
#include "kernels/ref/ops.h"

#include <math.h>

double
ktx_ref_dot(const float *a, const float *b, size_t n)
{
	/* Eight partial sums, combined pairwise: the same order on every
	 * call, and independent chains the compiler keeps in vector
	 * registers (one chain would wait on each add's latency). */
	double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		s0 += (double)a[i] * b[i];
		s1 += (double)a[i + 1] * b[i + 1];
		s2 += (double)a[i + 2] * b[i + 2];
		s3 += (double)a[i + 3] * b[i + 3];
		s4 += (double)a[i + 4] * b[i + 4];
		s5 += (double)a[i + 5] * b[i + 5];
		s6 += (double)a[i + 6] * b[i + 6];
		s7 += (double)a[i + 7] * b[i + 7];
	}
	for (; i < n; i++)
		s0 += (double)a[i] * b[i];
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

void
ktx_ref_axpy(double *acc, double s, const float *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		acc[i] += s * a[i];
}

void
ktx_ref_rmsnorm(float *y, const float *x, const float *w, size_t n, float eps)
{
	double ss = 0, scale;
	size_t i;

	for (i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	scale = 1.0 / sqrt(ss / (double)n + eps);
	for (i = 0; i < n; i++)
		y[i] = (float)(x[i] * scale * w[i]);
}

void
ktx_ref_softmax(float *x, size_t n)
{
	double sum = 0;
	float max = x[0];
	size_t i;

	for (i = 1; i < n; i++)
		if (x[i] > max)
			max = x[i];
	for (i = 0; i < n; i++)
		sum += exp((double)x[i] - max);
	for (i = 0; i < n; i++)
		x[i] = (float)(exp((double)x[i] - max) / sum);
}

void
ktx_ref_softmax_d(double *x, size_t n)
{
	double max = x[0], sum = 0;
	size_t i;

	for (i = 1; i < n; i++)
		if (x[i] > max)
			max = x[i];
	for (i = 0; i < n; i++) {
		x[i] = exp(x[i] - max);
		sum += x[i];
	}
	for (i = 0; i < n; i++)
		x[i] /= sum;
}

float
ktx_ref_sigmoid(float x)
{
	return (float)(1.0 / (1.0 + exp(-(double)x)));
}

float
ktx_ref_silu(float x)
{
	return (float)((double)x / (1.0 + exp(-(double)x)));
}

void
ktx_ref_swiglu(float *g, const float *u, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		g[i] = (float)((double)ktx_ref_silu(g[i]) * u[i]);
}

void
ktx_ref_topk(const float *x, size_t n, size_t k, uint32_t *idx)
{
	size_t i, j;

	/* Insertion into a sorted prefix: k is small (experts, groups). */
	for (i = 0; i < n; i++) {
		size_t len = i < k ? i : k;

		j = len;
		while (j > 0 && x[idx[j - 1]] < x[i]) {
			if (j < k)
				idx[j] = idx[j - 1];
			j--;
		}
		if (j < k)
			idx[j] = (uint32_t)i;
	}
}

uint32_t
ktx_ref_argmax(const float *x, size_t n)
{
	uint32_t best = 0;
	size_t i;

	for (i = 1; i < n; i++)
		if (x[i] > x[best])
			best = (uint32_t)i;
	return best;
}

/* The pair index at which a wavelength makes num_rot turns over ctx
 * positions (find_correction_dim in DeepSeek-V3 inference/model.py). */
static double
yarn_corr_dim(double num_rot, uint32_t dim, double base, double ctx)
{
	return dim * log(ctx / (num_rot * 2 * M_PI)) / (2 * log(base));
}

void
ktx_ref_rope_freqs(double *freq, uint32_t dim, double base, double yarn_factor,
    double orig_ctx, double beta_fast, double beta_slow)
{
	double low, high;
	uint32_t i;

	for (i = 0; i < dim / 2; i++)
		freq[i] = 1.0 / pow(base, (double)(2 * i) / dim);
	if (!(yarn_factor > 1))
		return;
	/* find_correction_range: fast-turning pairs below low keep their
	 * frequency, slow ones above high are divided by the factor, and a
	 * linear ramp blends the pairs between. */
	low = floor(yarn_corr_dim(beta_fast, dim, base, orig_ctx));
	high = ceil(yarn_corr_dim(beta_slow, dim, base, orig_ctx));
	if (low < 0)
		low = 0;
	if (high > dim - 1)
		high = dim - 1;
	if (low == high)
		high += 0.001;
	for (i = 0; i < dim / 2; i++) {
		double ramp = (i - low) / (high - low), smooth;

		if (ramp < 0)
			ramp = 0;
		if (ramp > 1)
			ramp = 1;
		smooth = 1 - ramp;
		freq[i] = freq[i] / yarn_factor * (1 - smooth) + freq[i] * smooth;
	}
}

double
ktx_ref_yarn_mscale(double factor, double mscale)
{
	if (factor <= 1)
		return 1.0;
	return 0.1 * mscale * log(factor) + 1.0;
}

void
ktx_ref_rope(float *x, uint32_t dim, const double *freq, uint32_t pos)
{
	uint32_t i;

	for (i = 0; i < dim / 2; i++) {
		double a = (double)pos * freq[i], c = cos(a), s = sin(a);
		double x0 = x[2 * i], x1 = x[2 * i + 1];

		x[2 * i] = (float)(x0 * c - x1 * s);
		x[2 * i + 1] = (float)(x0 * s + x1 * c);
	}
}
