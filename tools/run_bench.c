/*
 * run_bench.c - ktx-run --bench: times a prefill and batched decode steps
 * on the chosen compute path and prints one JSON object on stdout, the
 * contract bench/run-bench.sh and other tools read:
 *   prefill_tok_s     prompt tokens per second of one session's prefill
 *   decode_tok_s      tokens per second of all sessions' decode steps
 *   weight_bytes_per_token  bytes of weights one token's decode reads
 *                     (everything but the embedding, routed experts
 *                     scaled by used / total)
 *   threads, sessions, path, prompt_tokens, gen_tokens
 *   kernels           the kernel level computing each weight type present
 * The prompt is a fixed run of ids spread over the vocabulary, prefilled
 * once untimed before the timed prefill; the other sessions start from a
 * short prompt, so the decode step holds sessions of different lengths as
 * a service does.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/gguf.h"
#include "engine/ktx.h"
#include "engine/quant.h"
#include "kernels/cpu/cpu.h"
#include "tools/ktx-run.h"

/* Prompt length of the sessions after the first. */
#define SIDE_PROMPT 16

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The engine's thread count for -t 0: every online CPU. */
static int
default_threads(void)
{
#ifdef _OPENMP
	return omp_get_num_procs();
#else
	return 1;
#endif
}

/* Weight bytes a decoded token reads, and the kernel per weight type. */
static int
weights_of(const struct run_opts *o, uint32_t n_expert, uint32_t n_used, double *bytes,
    char *kernels, size_t klen)
{
	struct gguf_file *f = NULL;
	struct ktx_err err;
	bool seen[KTX_TYPE_COUNT_];
	size_t used = 0;
	int64_t i, nt;

	ktx_err_clear(&err);
	if (gguf_open(o->model, &f, &err) != 0) {
		fprintf(stderr, "ktx-run: %s: %s\n", o->model, err.msg);
		return -1;
	}
	memset(seen, 0, sizeof(seen));
	*bytes = 0;
	nt = gguf_tensor_count(f);
	for (i = 0; i < nt; i++) {
		const struct gguf_tensor *t = gguf_tensor_at(f, i);

		if (strcmp(t->name, "token_embd.weight") == 0)
			continue;
		if (strstr(t->name, "_exps.") != NULL && n_expert > 0)
			*bytes += (double)t->nbytes * n_used / n_expert;
		else
			*bytes += (double)t->nbytes;
		if ((unsigned)t->type < KTX_TYPE_COUNT_ && t->n_dims >= 2)
			seen[t->type] = true;
	}
	gguf_close(f);
	kernels[0] = '\0';
	for (i = 0; i < KTX_TYPE_COUNT_; i++) {
		int lv;

		if (!seen[i])
			continue;
		lv = ktx_cpu_kernel_level((uint32_t)i);
		used += (size_t)snprintf(kernels + used, used < klen ? klen - used : 0,
		    "%s\"%s\": \"%s\"", used ? ", " : "", ktx_type_name((uint32_t)i),
		    lv < 0 ? "none" : ktx_cpu_level_name(lv));
	}
	return used < klen ? 0 : -1;
}

int
run_bench(const struct run_opts *o)
{
	int path = o->path ? run_path_of(o->path) : KTX_PATH_FAST;
	size_t ns = (size_t)o->sessions, np = (size_t)o->prompt_tokens, i, k;
	struct ktx_model *m = NULL;
	struct ktx_session **s = NULL;
	struct ktx_model_info info;
	struct ktx_err err;
	int32_t *ids = NULL, *next = NULL;
	int *st = NULL;
	double t0, t_pre, t_dec, wbytes;
	char kernels[1024];
	int g, status = RUN_EXIT_FAIL;

	ktx_err_clear(&err);
	if (run_load_path(o, path, &m) != 0)
		goto out;
	ktx_model_get_info(m, &info);
	if (np + (size_t)o->gen_tokens > info.n_ctx) {
		fprintf(stderr, "ktx-run: %zu prompt + %d generated tokens exceed the context of "
		    "%u (--ctx)\n", np, o->gen_tokens, info.n_ctx);
		goto out;
	}
	if (weights_of(o, info.n_expert, info.n_expert_used, &wbytes, kernels,
	    sizeof(kernels)) != 0)
		goto out;
	s = calloc(ns, sizeof(*s));
	ids = malloc(np * sizeof(*ids));
	next = malloc(ns * sizeof(*next));
	st = malloc(ns * sizeof(*st));
	if (s == NULL || ids == NULL || next == NULL || st == NULL) {
		fprintf(stderr, "ktx-run: out of memory\n");
		goto out;
	}
	/* Ids spread over the vocabulary, never BOS-only: a fixed text. */
	for (k = 0; k < np; k++)
		ids[k] = (int32_t)((k * 7919u + 13u) % info.n_vocab);
	/* One untimed prefill of the prompt first, as llama-bench warms up:
	 * the timed runs see a resident service's steady state (the engine's
	 * scratch buffers already in memory), not their first page faults. */
	if (ktx_session_new(m, 0, &s[0], &err) != 0 ||
	    ktx_session_append(s[0], ids, np, NULL, NULL, &err) != 0)
		goto fail;
	ktx_session_free(s[0]);
	s[0] = NULL;
	for (i = 0; i < ns; i++)
		if (ktx_session_new(m, 0, &s[i], &err) != 0)
			goto fail;
	t0 = now_s();
	if (ktx_session_append(s[0], ids, np, NULL, NULL, &err) != 0)
		goto fail;
	t_pre = now_s() - t0;
	/* The others: a slice of the prompt, lengths differing by session. */
	for (i = 1; i < ns; i++) {
		size_t len = np < SIDE_PROMPT ? np : SIDE_PROMPT - i % 2;

		if (ktx_session_append(s[i], ids + (i * 3) % (np - len + 1), len, NULL, NULL,
		    &err) != 0)
			goto fail;
	}
	for (i = 0; i < ns; i++)
		next[i] = (int32_t)((i * 31u + 7u) % info.n_vocab);
	t0 = now_s();
	for (g = 0; g < o->gen_tokens; g++) {
		if (ktx_decode_step(s, next, ns, st, &err) != 0)
			goto fail;
		for (i = 0; i < ns; i++) {
			const float *l = ktx_session_logits(s[i]);
			uint32_t v, best = 0;

			if (st[i] != 0) {
				err.code = st[i];
				snprintf(err.msg, sizeof(err.msg), "session %zu failed", i);
				goto fail;
			}
			for (v = 1; v < info.n_vocab; v++)
				if (l[v] > l[best])
					best = v;
			next[i] = (int32_t)best;
		}
	}
	t_dec = now_s() - t0;
	printf("{\"model\": ");
	run_json_str(stdout, info.name);
	printf(", \"path\": \"%s\", \"load\": \"%s\", \"repacked_bytes\": %" PRIu64 ", \"threads\": %d, \"sessions\": %zu, \"prompt_tokens\": %zu, "
	    "\"gen_tokens\": %d, \"prefill_tok_s\": %.3f, \"decode_tok_s\": %.3f, "
	    "\"weight_bytes_per_token\": %.0f, \"cpu_level\": \"%s\", \"kernels\": {%s}}\n",
	    run_path_name(path), ktx_load_name(info.load), info.bytes_repacked, o->threads > 0 ? o->threads : default_threads(),
	    ns, np, o->gen_tokens, (double)np / t_pre,
	    (double)ns * o->gen_tokens / t_dec, wbytes, ktx_cpu_level_name(ktx_cpu_level()),
	    kernels);
	status = RUN_EXIT_OK;
	goto out;
fail:
	fprintf(stderr, "ktx-run: bench: %s\n", err.msg[0] ? err.msg : ktx_status_name(err.code));
out:
	for (i = 0; s != NULL && i < ns; i++)
		ktx_session_free(s[i]);
	free(s);
	free(ids);
	free(next);
	free(st);
	ktx_model_free(m);
	return status;
}
