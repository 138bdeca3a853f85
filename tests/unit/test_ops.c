/*
 * test_ops.c - the reference ops (kernels/ref/ops.c) and expert routing
 * (engine/forward_moe.c) on small cases computed by hand.
 */
#include <math.h>
#include <string.h>

#include "engine/model.h"
#include "kernels/ref/ops.h"
#include "tests/tap.h"

static void
test_dot(void)
{
	const float a[] = {1, 2, 3, 4, 5}, b[] = {5, 4, 3, 2, 1};
	double acc[3] = {1, 1, 1};

	tap_near(ktx_ref_dot(a, b, 5), 35.0, 0, "dot of 5 (tail past the 4-wide loop)");
	tap_near(ktx_ref_dot(a, b, 0), 0.0, 0, "dot of nothing is 0");
	ktx_ref_axpy(acc, 2.0, a, 3);
	tap_ok(acc[0] == 3 && acc[1] == 5 && acc[2] == 7, "axpy adds 2 * a");
}

static void
test_rmsnorm(void)
{
	const float x[] = {1, 2, 3, 4}, w[] = {1, 1, 2, 0.5f};
	float y[4];

	/* mean(x^2) = 7.5, 1/sqrt(7.5) = 0.36514837 */
	ktx_ref_rmsnorm(y, x, w, 4, 0.0f);
	tap_near(y[0], 0.36514837, 1e-7, "rmsnorm y0");
	tap_near(y[1], 0.73029674, 1e-7, "rmsnorm y1");
	tap_near(y[2], 2.19089023, 1e-6, "rmsnorm y2 (weight 2)");
	tap_near(y[3], 0.73029674, 1e-7, "rmsnorm y3 (weight 0.5)");
	/* eps matters for small inputs: x = 1e-3 -> 1e-3 / sqrt(1e-6 + 1e-6) */
	{
		const float xs[] = {1e-3f}, ws[] = {1};

		ktx_ref_rmsnorm(y, xs, ws, 1, 1e-6f);
		tap_near(y[0], 0.70710678, 1e-6, "rmsnorm eps is added to the mean square");
	}
}

static void
test_softmax(void)
{
	float x[] = {1, 2, 3}, big[] = {1000, 1000};
	double xd[] = {-1, -1, -1, -1};

	ktx_ref_softmax(x, 3);
	tap_near(x[0], 0.09003057, 1e-7, "softmax [1,2,3] p0");
	tap_near(x[1], 0.24472847, 1e-7, "softmax [1,2,3] p1");
	tap_near(x[2], 0.66524096, 1e-7, "softmax [1,2,3] p2");
	ktx_ref_softmax(big, 2);
	tap_near(big[0], 0.5, 0, "softmax of large equal values does not overflow");
	ktx_ref_softmax_d(xd, 4);
	tap_near(xd[3], 0.25, 1e-15, "double softmax of equal values is uniform");
}

static void
test_activations(void)
{
	float g[] = {1, -2}, u[] = {3, 1};

	tap_near(ktx_ref_sigmoid(0), 0.5, 0, "sigmoid(0)");
	tap_near(ktx_ref_sigmoid(2), 0.88079708, 1e-7, "sigmoid(2)");
	tap_near(ktx_ref_silu(1), 0.73105858, 1e-7, "silu(1)");
	tap_near(ktx_ref_silu(-2), -0.23840584, 1e-7, "silu(-2)");
	ktx_ref_swiglu(g, u, 2);
	tap_near(g[0], 2.19317574, 1e-6, "swiglu: silu(1) * 3");
	tap_near(g[1], -0.23840584, 1e-7, "swiglu: silu(-2) * 1");
}

static void
test_topk(void)
{
	const float x[] = {0.1f, 0.5f, 0.3f, 0.5f, 0.2f};
	const float y[] = {3, 1, 2};
	uint32_t idx[5];

	ktx_ref_topk(x, 5, 3, idx);
	tap_ok(idx[0] == 1 && idx[1] == 3 && idx[2] == 2, "top-3, equal values lower index first");
	ktx_ref_topk(x, 5, 5, idx);
	tap_ok(idx[0] == 1 && idx[1] == 3 && idx[2] == 2 && idx[3] == 4 && idx[4] == 0,
	    "top-5 of 5 is the full descending order");
	ktx_ref_topk(y, 3, 1, idx);
	tap_is_int(idx[0], 0, "top-1 is the maximum");
	tap_is_int(ktx_ref_argmax(x, 5), 1, "argmax takes the first of equal maxima");
}

static void
test_rope(void)
{
	double f[8];
	float x[] = {1, 0, 0, 1}, y[] = {0.5f, -2, 3, 7};

	/* Plain RoPE: base^(-2i/dim). */
	ktx_ref_rope_freqs(f, 4, 10000, 1, 4096, 32, 1);
	tap_near(f[0], 1.0, 0, "rope freq 0 is 1");
	tap_near(f[1], 0.01, 1e-15, "rope freq 1 of dim 4 is 10000^-0.5");
	/* Pairs (x0,x1), (x2,x3) rotated by pos * freq. */
	ktx_ref_rope(x, 4, f, 2);
	tap_near(x[0], cos(2.0), 1e-7, "rope pair 0 x0 = cos(2)");
	tap_near(x[1], sin(2.0), 1e-7, "rope pair 0 x1 = sin(2)");
	tap_near(x[2], -sin(0.02), 1e-7, "rope pair 1 x0 = -sin(0.02)");
	tap_near(x[3], cos(0.02), 1e-7, "rope pair 1 x1 = cos(0.02)");
	ktx_ref_rope(y, 4, f, 0);
	tap_ok(y[0] == 0.5f && y[1] == -2 && y[2] == 3 && y[3] == 7,
	    "rope at position 0 is the identity");

	/* YaRN over dim 16, base 10000, factor 40, original context 4096,
	 * beta 32/1: correction range [floor 2.618, ceil 5.628] = [2, 6];
	 * pairs below 2 keep their frequency, pairs from 6 are divided by
	 * 40, pair 4 is half way: f * (0.5 / 40 + 0.5). */
	ktx_ref_rope_freqs(f, 16, 10000, 40, 4096, 32, 1);
	tap_near(f[0], 1.0, 1e-15, "yarn: pair 0 unchanged");
	tap_near(f[2], 0.1, 1e-15, "yarn: pair 2 (= low) unchanged");
	tap_near(f[3], pow(10000, -3.0 / 8) * (0.25 / 40 + 0.75), 1e-15,
	    "yarn: pair 3 a quarter interpolated");
	tap_near(f[4], 0.01 * (0.5 / 40 + 0.5), 1e-15, "yarn: pair 4 half interpolated");
	tap_near(f[6], 0.001 / 40, 1e-15, "yarn: pair 6 (= high) divided by the factor");
	tap_near(f[7], pow(10000, -7.0 / 8) / 40, 1e-15, "yarn: pair 7 divided by the factor");
	tap_near(ktx_ref_yarn_mscale(40, 1.0), 1.0 + 0.1 * log(40.0), 1e-15,
	    "yarn mscale 1 + 0.1 ln 40");
	tap_near(ktx_ref_yarn_mscale(40, 0.707), 1.0 + 0.0707 * log(40.0), 1e-15,
	    "yarn mscale with mscale_all_dim 0.707");
	tap_near(ktx_ref_yarn_mscale(1, 1.0), 1.0, 0, "no mscale without scaling");
}

static void
route_hp(struct ktx_hparams *hp, uint32_t ne, enum ktx_gating g, uint32_t groups,
    uint32_t used_groups,
    bool norm, float scale)
{
	memset(hp, 0, sizeof(*hp));
	hp->n_expert = ne;
	hp->gating = g;
	hp->n_group = groups;
	hp->n_group_used = used_groups;
	hp->weights_norm = norm;
	hp->weights_scale = scale;
}

static void
test_route(void)
{
	struct ktx_hparams hp;
	float scratch[3 * 8], w[4], logits[8], bias[8];
	uint32_t iscratch[8], ex[4];
	const float want_sel[8] = {0.9f, 0.05f, 0.6f, 0.6f, 0.5f, 0.5f, 0.8f, 0.1f};
	int i;

	/* V2 softmax, no norm, scale 1: softmax([1,2,3,0]) top-2. */
	route_hp(&hp, 4, KTX_GATING_SOFTMAX, 1, 1, false, 1.0f);
	memcpy(logits, (const float[]){1, 2, 3, 0}, 4 * sizeof(float));
	fwd_route(&hp, 2, logits, NULL, ex, w, scratch, iscratch);
	tap_ok(ex[0] == 2 && ex[1] == 1, "softmax routing picks experts 2, 1");
	tap_near(w[0], 0.64391426, 1e-7, "softmax weight of expert 2 (no norm)");
	tap_near(w[1], 0.23688282, 1e-7, "softmax weight of expert 1 (no norm)");

	/* V3 sigmoid: the bias promotes expert 0 into the choice, but its
	 * weight is its unbiased score; normalized, times 2.5. */
	route_hp(&hp, 4, KTX_GATING_SIGMOID, 1, 1, true, 2.5f);
	memcpy(logits, (const float[]){0, 1, 2, -1}, 4 * sizeof(float));
	memcpy(bias, (const float[]){1.0f, 0, 0, 0}, 4 * sizeof(float));
	fwd_route(&hp, 2, logits, bias, ex, w, scratch, iscratch);
	tap_ok(ex[0] == 0 && ex[1] == 2, "sigmoid routing: the bias selects expert 0 first");
	tap_near(w[0], 2.5 * 0.5 / (0.5 + 0.88079708), 1e-6,
	    "biased pick weighs its unbiased score");
	tap_near(w[1], 2.5 * 0.88079708 / (0.5 + 0.88079708), 1e-6, "normalized and scaled weight");

	/* Group-limited routing, 4 groups of 2, 2 groups used. Biased scores
	 * {0.9,0.05} {0.6,0.6} {0.5,0.5} {0.8,0.1}: by top-2 sum (with a bias)
	 * the groups are 1 and 2 -> experts 2, 3; by max (no bias) they are 0
	 * and 3 -> experts 0, 6. Plain top-2 would also give 0, 6. */
	route_hp(&hp, 8, KTX_GATING_SIGMOID, 4, 2, true, 1.0f);
	for (i = 0; i < 8; i++) {
		logits[i] = 0;
		bias[i] = want_sel[i] - 0.5f;
	}
	fwd_route(&hp, 2, logits, bias, ex, w, scratch, iscratch);
	tap_ok(ex[0] == 2 && ex[1] == 3,
	    "groups scored by their top-2 sum when there is a bias (V3)");
	tap_near(w[0], 0.5, 1e-7, "group routing weights are the unbiased, normalized scores");
	for (i = 0; i < 8; i++)
		logits[i] = (float)log(want_sel[i] / (1 - want_sel[i]));
	fwd_route(&hp, 2, logits, NULL, ex, w, scratch, iscratch);
	tap_ok(ex[0] == 0 && ex[1] == 6, "groups scored by their maximum without a bias (V2)");
	route_hp(&hp, 8, KTX_GATING_SIGMOID, 4, 1, false, 1.0f);
	fwd_route(&hp, 2, logits, NULL, ex, w, scratch, iscratch);
	tap_ok(ex[0] == 0 && ex[1] == 1, "one group used: both experts from group 0");
}

int
main(void)
{
	test_dot();
	test_rmsnorm();
	test_softmax();
	test_activations();
	test_topk();
	test_rope();
	test_route();
	return tap_done();
}
