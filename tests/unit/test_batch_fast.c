/*
 * test_batch_fast.c - batched decode on the fast path gives each session
 * exactly what decoding it alone gives: the same greedy ids and the same
 * logits bits, on every oracle model ($KTX_ORACLE), with sessions of
 * different lengths in one step (issue 7).
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ktx.h"
#include "tests/tap.h"

#define NS 3
#define STEPS 8

static int32_t
argmax(const float *l, uint32_t nv)
{
	uint32_t v, best = 0;

	for (v = 1; v < nv; v++)
		if (l[v] > l[best])
			best = v;
	return (int32_t)best;
}

/* Prompt i: a few ids spread over the vocabulary, 5 + 7 i tokens long. */
static size_t
prompt_of(int i, uint32_t nv, int32_t *ids)
{
	size_t k, n = 5 + 7 * (size_t)i;

	for (k = 0; k < n; k++)
		ids[k] = (int32_t)((k * 131 + (size_t)i * 977 + 11) % nv);
	return n;
}

/* Greedy ids and final logits of NS sessions, stepped together or each
 * alone. */
static int
decode(struct ktx_model *m, uint32_t nv, bool together, int32_t ids[NS][STEPS], float *last)
{
	struct ktx_session *s[NS] = {NULL};
	struct ktx_err err;
	int32_t prompt[32], next[NS];
	int st[NS], i, g, rc = -1;

	for (i = 0; i < NS; i++) {
		size_t n = prompt_of(i, nv, prompt);

		if (ktx_session_new(m, 0, &s[i], &err) != 0 ||
		    ktx_session_append(s[i], prompt, n, NULL, NULL, &err) != 0)
			goto out;
		next[i] = argmax(ktx_session_logits(s[i]), nv);
	}
	for (g = 0; g < STEPS; g++) {
		for (i = 0; i < NS; i++)
			ids[i][g] = next[i];
		if (together) {
			if (ktx_decode_step(s, next, NS, st, &err) != 0)
				goto out;
		} else {
			for (i = 0; i < NS; i++)
				if (ktx_decode_step(&s[i], &next[i], 1, &st[i], &err) != 0)
					goto out;
		}
		for (i = 0; i < NS; i++) {
			if (st[i] != 0)
				goto out;
			next[i] = argmax(ktx_session_logits(s[i]), nv);
		}
	}
	for (i = 0; i < NS; i++)
		memcpy(last + (size_t)i * nv, ktx_session_logits(s[i]), nv * sizeof(float));
	rc = 0;
out:
	for (i = 0; i < NS; i++)
		ktx_session_free(s[i]);
	return rc;
}

static void
test_model(const char *path, const char *name)
{
	struct ktx_model_params mp;
	struct ktx_model_info info;
	struct ktx_model *m;
	struct ktx_err err;
	int32_t alone[NS][STEPS], together[NS][STEPS];
	float *la, *lt;

	ktx_model_params_default(&mp);
	mp.path = path;
	mp.n_threads = 2;
	mp.compute = KTX_PATH_FAST;
	if (!tap_ok(ktx_model_load(&mp, &m, &err) == 0, "%s: loads on the fast path", name))
		return;
	ktx_model_get_info(m, &info);
	la = malloc((size_t)NS * info.n_vocab * sizeof(float));
	lt = malloc((size_t)NS * info.n_vocab * sizeof(float));
	if (tap_ok(la != NULL && lt != NULL && decode(m, info.n_vocab, false, alone, la) == 0 &&
	    decode(m, info.n_vocab, true, together, lt) == 0, "%s: decodes alone and batched",
	    name)) {
		tap_ok(memcmp(alone, together, sizeof(alone)) == 0,
		    "%s: batched greedy ids equal each session's alone", name);
		tap_ok(memcmp(la, lt, (size_t)NS * info.n_vocab * sizeof(float)) == 0,
		    "%s: batched logits are bit-identical", name);
	}
	free(la);
	free(lt);
	ktx_model_free(m);
}

int
main(void)
{
	const char *oracle = getenv("KTX_ORACLE");
	char dir[4096], path[4096 + 256];
	struct dirent **list;
	int n, i, found = 0;

	if (!tap_ok(oracle != NULL, "KTX_ORACLE is set"))
		return tap_done();
	snprintf(dir, sizeof(dir), "%s/models", oracle);
	n = scandir(dir, &list, NULL, alphasort);
	for (i = 0; i < n; i++) {
		size_t len = strlen(list[i]->d_name);

		if (len > 5 && strcmp(list[i]->d_name + len - 5, ".gguf") == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
			test_model(path, list[i]->d_name);
			found++;
		}
		free(list[i]);
	}
	free(list);
	tap_diag("%d oracle models, %d sessions, %d steps each", found, NS, STEPS);
	tap_ok(found >= 6, "found the oracle models (%d)", found);
	return tap_done();
}
