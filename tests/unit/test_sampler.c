/*
 * test_sampler.c - sampling: greedy, temperature, top-k, top-p, min-p,
 * repetition penalty, and that a seed reproduces its draws.
 */
#include <math.h>
#include <string.h>

#include "engine/ktx.h"
#include "tests/tap.h"

#define NV 6
#define DRAWS 20000

/* Draws DRAWS ids with p from logits; counts[NV]. */
static void
histogram(const struct ktx_sampler_params *p, const float *logits, const int32_t *hist, size_t nh,
    int *counts)
{
	struct ktx_sampler *s = ktx_sampler_new(p);
	int i;

	memset(counts, 0, NV * sizeof(int));
	for (i = 0; i < DRAWS; i++) {
		int32_t id = ktx_sampler_sample(s, logits, NV, hist, nh);

		if (id >= 0 && id < NV)
			counts[id]++;
	}
	ktx_sampler_free(s);
}

static struct ktx_sampler_params
params(float temp)
{
	struct ktx_sampler_params p;

	ktx_sampler_params_default(&p);
	p.temperature = temp;
	p.top_p = 1.0f;
	p.seed = 42;
	return p;
}

int
main(void)
{
	/* softmax of these: 0.0117 0.0317 0.0861 0.2341 0.6364 0.0000 */
	const float logits[NV] = {0, 1, 2, 3, 4, -20};
	const float tie[NV] = {1, 5, 2, 5, 0, 0};
	struct ktx_sampler_params p;
	struct ktx_sampler *s, *s2;
	int counts[NV], i, same;
	int32_t hist[] = {4, 4, 3};

	/* Greedy. */
	p = params(0);
	s = ktx_sampler_new(&p);
	tap_is_int(ktx_sampler_sample(s, logits, NV, NULL, 0), 4, "temperature 0 is argmax");
	tap_is_int(ktx_sampler_sample(s, tie, NV, NULL, 0), 1, "argmax ties go to the lower id");
	ktx_sampler_free(s);

	/* Repetition penalty 100 on ids 4 and 3 (positive logits divided):
	 * 4 -> 0.04, 3 -> 0.03, so id 2 wins greedily. */
	p = params(0);
	p.repeat_penalty = 100;
	s = ktx_sampler_new(&p);
	tap_is_int(ktx_sampler_sample(s, logits, NV, hist, 3), 2,
	    "repetition penalty demotes recent ids");
	ktx_sampler_free(s);
	p.repeat_last_n = 1; /* only id 3 is recent */
	s = ktx_sampler_new(&p);
	tap_is_int(ktx_sampler_sample(s, logits, NV, hist, 3), 4,
	    "the penalty looks back repeat_last_n only");
	ktx_sampler_free(s);
	{
		const float neg[NV] = {-1, -2, -3, -4, -5, -6};
		const int32_t h0[] = {0};

		p = params(0);
		p.repeat_penalty = 3;
		s = ktx_sampler_new(&p);
		tap_is_int(ktx_sampler_sample(s, neg, NV, h0, 1), 1,
		    "negative logits are multiplied by the penalty");
		ktx_sampler_free(s);
	}

	/* Temperature 1: frequencies follow the softmax. */
	p = params(1);
	histogram(&p, logits, NULL, 0, counts);
	tap_near(counts[4] / (double)DRAWS, 0.6364, 0.015, "T=1: id 4 drawn with p 0.636");
	tap_near(counts[3] / (double)DRAWS, 0.2341, 0.015, "T=1: id 3 drawn with p 0.234");
	tap_near(counts[0] / (double)DRAWS, 0.0117, 0.005, "T=1: id 0 drawn with p 0.012");
	/* Temperature 0.5 sharpens: p(4) = e^8 / sum e^(2x) = 0.8647. */
	p = params(0.5f);
	histogram(&p, logits, NULL, 0, counts);
	tap_near(counts[4] / (double)DRAWS, 0.8647, 0.015, "T=0.5: id 4 drawn with p 0.865");

	/* top-k 2: only ids 4, 3, renormalized: 0.731 / 0.269. */
	p = params(1);
	p.top_k = 2;
	histogram(&p, logits, NULL, 0, counts);
	tap_ok(counts[0] + counts[1] + counts[2] + counts[5] == 0,
	    "top-k 2 draws only the two best");
	tap_near(counts[4] / (double)DRAWS, 0.7311, 0.015, "top-k 2 renormalizes");
	p.top_k = 1;
	histogram(&p, logits, NULL, 0, counts);
	tap_is_int(counts[4], DRAWS, "top-k 1 is greedy");

	/* top-p 0.8: 0.636 < 0.8 <= 0.636 + 0.234, so ids 4 and 3. */
	p = params(1);
	p.top_p = 0.8f;
	histogram(&p, logits, NULL, 0, counts);
	tap_ok(counts[4] + counts[3] == DRAWS && counts[3] > 0,
	    "top-p 0.8 keeps the smallest prefix reaching 0.8");
	p.top_p = 0.5f;
	histogram(&p, logits, NULL, 0, counts);
	tap_is_int(counts[4], DRAWS, "top-p under the best probability keeps only it");

	/* min-p 0.1: keep p >= 0.0636: ids 4, 3, 2. */
	p = params(1);
	p.min_p = 0.1f;
	histogram(&p, logits, NULL, 0, counts);
	tap_ok(counts[0] == 0 && counts[1] == 0 && counts[5] == 0 && counts[2] > 0,
	    "min-p 0.1 drops ids under a tenth of the best");
	tap_near(counts[2] / (double)DRAWS, 0.0861 / (0.6364 + 0.2341 + 0.0861), 0.015,
	    "min-p renormalizes over what is left");

	/* Seeds. */
	p = params(0.8f);
	p.seed = 7;
	s = ktx_sampler_new(&p);
	s2 = ktx_sampler_new(&p);
	for (i = 0, same = 1; i < 200; i++)
		same &= ktx_sampler_sample(s, logits, NV, NULL, 0) == ktx_sampler_sample(s2, logits,
		    NV, NULL, 0);
	tap_ok(same, "the same seed draws the same 200 ids");
	ktx_sampler_free(s2);
	p.seed = 8;
	s2 = ktx_sampler_new(&p);
	for (i = 0, same = 1; i < 200; i++)
		same &= ktx_sampler_sample(s, logits, NV, NULL, 0) == ktx_sampler_sample(s2, logits,
		    NV, NULL, 0);
	tap_ok(!same, "another seed draws other ids");
	ktx_sampler_free(s);
	ktx_sampler_free(s2);
	return tap_done();
}
