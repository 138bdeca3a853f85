/*
 * test_session.c - sessions on an oracle model ($KTX_ORACLE): a prompt fed
 * in turns and decode steps gives the logits of one whole pass; batched
 * decode equals sessions stepped apart; truncation, cancellation, the
 * context limit and bad ids leave a session usable.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ktx.h"
#include "tests/tap.h"

#define NV 4020
/* A prompt longer than two prefill chunks. */
#define LONG_PROMPT 1100

/* p_short of prompts.json. */
static const int32_t prompt[25] = {668, 642, 1190, 288, 1069, 77, 282, 1873, 594, 392, 1146, 1057,
    267,
    844, 3613, 280, 517, 11, 1536, 433, 2629, 82, 1556, 2677, 13};

static double
maxdiff(const float *a, const float *b, size_t n)
{
	double d = 0;
	size_t i;

	if (a == NULL || b == NULL)
		return INFINITY;
	for (i = 0; i < n; i++)
		if (fabs((double)a[i] - b[i]) > d)
			d = fabs((double)a[i] - b[i]);
	return d;
}

static int polls;

static bool
cancel_after_one(void *ctx)
{
	(void)ctx;
	return ++polls >= 1;
}

static void
test_model(const char *path, enum ktx_attn_path attn)
{
	const char *pname = attn == KTX_ATTN_NAIVE ? "naive" : "absorbed";
	struct ktx_model_params mp;
	struct ktx_model *m;
	struct ktx_session *a, *b, *c, *two[2];
	struct ktx_err err;
	static float all[25 * NV], first[NV];
	int32_t toks[2], *many;
	int status[2], i;
	double worst;

	ktx_model_params_default(&mp);
	mp.path = path;
	mp.n_threads = 1;
	mp.attn = attn;
	if (!tap_ok(ktx_model_load(&mp, &m, &err) == 0, "%s: loads", pname)) {
		tap_diag("%s", err.msg);
		return;
	}
	ktx_session_new(m, 0, &a, &err);
	tap_is_int(ktx_session_eval_all(a, prompt, 25, all, &err), 0, "eval_all of 25 tokens");
	tap_ok(maxdiff(ktx_session_logits(a), all + 24 * NV, NV) == 0,
	    "session logits are the last row");

	/* Turns: 10 tokens, then 10 more, then decode steps one by one. */
	ktx_session_new(m, 0, &b, &err);
	tap_ok(ktx_session_logits(b) == NULL, "a fresh session has no logits");
	ktx_session_append(b, prompt, 10, NULL, NULL, &err);
	worst = maxdiff(ktx_session_logits(b), all + 9 * NV, NV);
	ktx_session_append(b, prompt + 10, 10, NULL, NULL, &err);
	if (maxdiff(ktx_session_logits(b), all + 19 * NV, NV) > worst)
		worst = maxdiff(ktx_session_logits(b), all + 19 * NV, NV);
	for (i = 20; i < 25; i++) {
		toks[0] = prompt[i];
		if (ktx_decode_step(&b, toks, 1, status, &err) != 0 || status[0] != 0)
			worst = INFINITY;
		if (maxdiff(ktx_session_logits(b), all + (size_t)i * NV, NV) > worst)
			worst = maxdiff(ktx_session_logits(b), all + (size_t)i * NV, NV);
	}
	if (!tap_ok(worst <= 1e-5, "%s: turns and decode steps match one pass", pname))
		tap_diag("max |difference| %g", worst);
	tap_is_int(ktx_session_n_past(b), 25, "25 tokens held");
	tap_ok(memcmp(ktx_session_tokens(b), prompt, sizeof(prompt)) == 0,
	    "the history is the prompt");

	/* Truncate to 12 and append the rest again. */
	tap_is_int(ktx_session_truncate(b, 12, &err), 0, "truncate to 12");
	tap_ok(ktx_session_logits(b) == NULL, "truncation drops the stale logits");
	ktx_session_append(b, prompt + 12, 13, NULL, NULL, &err);
	tap_ok(maxdiff(ktx_session_logits(b), all + 24 * NV, NV) <= 1e-5,
	    "re-appending after truncate");
	tap_is_int(ktx_session_truncate(b, 26, &err), KTX_ERANGE, "cannot truncate past the end");

	/* Batched decode of two sessions at different lengths. */
	ktx_session_new(m, 0, &c, &err);
	ktx_session_append(c, prompt, 5, NULL, NULL, &err);
	ktx_session_truncate(b, 20, &err);
	ktx_session_append(b, prompt + 20, 1, NULL, NULL, &err); /* b at 21 */
	two[0] = b;
	two[1] = c;
	toks[0] = prompt[21];
	toks[1] = prompt[5];
	tap_is_int(ktx_decode_step(two, toks, 2, status, &err), 0, "batched decode step");
	tap_ok(status[0] == 0 && status[1] == 0, "both sessions stepped");
	tap_ok(maxdiff(ktx_session_logits(b), all + 21 * NV, NV) <= 1e-5,
	    "batched: first session's logits");
	tap_ok(maxdiff(ktx_session_logits(c), all + 5 * NV, NV) <= 1e-5,
	    "batched: second session's logits");
	two[1] = b;
	tap_is_int(ktx_decode_step(two, toks, 2, status, &err), KTX_EINVAL,
	    "a session listed twice is refused");

	/* Context limit: a session of 8. */
	ktx_session_free(c);
	tap_is_int(ktx_session_new(m, 8, &c, &err), 0, "a session of 8 tokens");
	tap_is_int(ktx_session_append(c, prompt, 9, NULL, NULL, &err), KTX_ERANGE,
	    "9 tokens do not fit in 8");
	tap_ok(strstr(err.msg, "limit of 8") != NULL, "the error names the limit: %s", err.msg);
	tap_is_int(ktx_session_n_past(c), 0, "nothing was appended");
	ktx_session_append(c, prompt, 8, NULL, NULL, &err);
	memcpy(first, ktx_session_logits(c), sizeof(first));
	two[0] = c;
	two[1] = b;
	toks[0] = 1;
	toks[1] = prompt[22];
	tap_is_int(ktx_decode_step(two, toks, 2, status, &err), 0, "a step with one full session");
	tap_ok(status[0] == KTX_ERANGE && status[1] == 0, "the full one fails alone");
	tap_ok(maxdiff(ktx_session_logits(c), first, NV) == 0 && ktx_session_n_past(c) == 8,
	    "the full session is untouched");
	tap_ok(maxdiff(ktx_session_logits(b), all + 22 * NV, NV) <= 1e-5, "the other one stepped");

	/* Bad ids. */
	toks[0] = NV;
	tap_is_int(ktx_session_append(b, toks, 1, NULL, NULL, &err), KTX_EINVAL,
	    "an id past the vocabulary is refused");
	toks[0] = -1;
	tap_is_int(ktx_session_append(b, toks, 1, NULL, NULL, &err), KTX_EINVAL,
	    "a negative id is refused");
	tap_is_int(ktx_session_n_past(b), 23, "the session is unchanged");

	/* Cancellation between prefill chunks (of 512 tokens: this is three). */
	many = malloc(LONG_PROMPT * sizeof(*many));
	for (i = 0; i < LONG_PROMPT; i++)
		many[i] = prompt[i % 25];
	ktx_session_free(c);
	ktx_session_new(m, 0, &c, &err);
	polls = 0;
	tap_is_int(ktx_session_append(c, many, LONG_PROMPT, cancel_after_one, NULL, &err),
	    KTX_ECANCELED, "a cancelled prefill says so");
	tap_ok(ktx_session_n_past(c) > 0 && ktx_session_n_past(c) < LONG_PROMPT &&
	    ktx_session_logits(c) != NULL,
	    "it keeps the chunks done (%u tokens) and their logits", ktx_session_n_past(c));
	free(many);

	ktx_session_free(a);
	ktx_session_free(b);
	ktx_session_free(c);
	ktx_model_free(m);
}

int
main(void)
{
	const char *oracle = getenv("KTX_ORACLE");
	char path[4096];

	if (oracle == NULL) {
		tap_ok(0, "KTX_ORACLE is set");
		return tap_done();
	}
	snprintf(path, sizeof(path), "%s/models/v3-f32.gguf", oracle);
	test_model(path, KTX_ATTN_ABSORBED);
	test_model(path, KTX_ATTN_NAIVE);
	return tap_done();
}
