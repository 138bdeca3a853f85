/*
 * run_generate.c - ktx-run's modes that run the model: --logits and
 * --greedy on given token ids (the contracts the oracle tests check), -p
 * text generation streamed to stdout, and --perplexity over a text file.
 *
 * All go through engine/ktx.h like the daemon does; timings go to stderr so
 * stdout stays the result.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/chat.h"
#include "engine/gguf.h"
#include "engine/ktx.h"
#include "engine/tokenizer.h"
#include "tools/ktx-run.h"

/* The most ids a --tokens list may hold. */
#define MAX_IDS (1u << 24)

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
print_err(const char *what, const struct ktx_err *err)
{
	fprintf(stderr, "ktx-run: %s: %s\n", what,
	    err->msg[0] ? err->msg : ktx_status_name(err->code));
}

/* Loads o->model with the engine knobs of the command line. */
static int
load(const struct run_opts *o, struct ktx_model **m)
{
	return run_load_path(o, o->path != NULL ? run_path_of(o->path) : KTX_PATH_FAST, m);
}

int
run_parse_ids(const char *s, int32_t **out, size_t *n)
{
	size_t cap = 16, k = 0;
	int32_t *ids = malloc(cap * sizeof(*ids));
	const char *p = s;

	if (ids == NULL)
		return -1;
	for (;;) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(p, &end, 10);
		if (end == p || errno != 0 || v < 0 || v > INT32_MAX || (*end != ',' &&
		    *end != '\0')) {
			fprintf(stderr, "ktx-run: bad token list at '%s' (want ids like 1,2,3)\n",
			    p);
			free(ids);
			return -1;
		}
		if (k == cap) {
			int32_t *nb = cap < MAX_IDS ? realloc(ids, 2 * cap * sizeof(*ids)) : NULL;

			if (nb == NULL) {
				fprintf(stderr, "ktx-run: too many token ids\n");
				free(ids);
				return -1;
			}
			ids = nb;
			cap *= 2;
		}
		ids[k++] = (int32_t)v;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	*out = ids;
	*n = k;
	return 0;
}

/* Opens a session long enough for n tokens (the default length, or more). */
static int
open_session(const struct run_opts *o, struct ktx_model *m, size_t n, struct ktx_session **s)
{
	struct ktx_model_info info;
	struct ktx_err err;
	uint32_t n_ctx = 0;

	ktx_err_clear(&err);
	ktx_model_get_info(m, &info);
	if (o->ctx == 0 && n > info.n_ctx)
		n_ctx = n < info.n_ctx_train ? (uint32_t)n : info.n_ctx_train;
	if (ktx_session_new(m, n_ctx, s, &err) != 0) {
		print_err("session", &err);
		return -1;
	}
	return 0;
}

int
run_logits(const struct run_opts *o)
{
	struct ktx_model *m = NULL;
	struct ktx_session *s = NULL;
	struct ktx_model_info info;
	struct ktx_err err;
	int32_t *ids = NULL;
	float *logits = NULL;
	size_t n = 0;
	FILE *fp = NULL;
	int status = RUN_EXIT_FAIL;

	ktx_err_clear(&err);
	if (run_parse_ids(o->tokens, &ids, &n) != 0 || load(o, &m) != 0 || open_session(o, m, n,
	    &s) != 0)
		goto out;
	ktx_model_get_info(m, &info);
	logits = malloc(n * info.n_vocab * sizeof(float));
	if (logits == NULL) {
		fprintf(stderr, "ktx-run: out of memory for %zu rows of logits\n", n);
		goto out;
	}
	if (ktx_session_eval_all(s, ids, n, logits, &err) != 0) {
		print_err("evaluating", &err);
		goto out;
	}
	/* float32 little-endian, which is what x86 and aarch64 hold. */
	fp = fopen(o->logits_out, "wb");
	if (fp == NULL || fwrite(logits, sizeof(float) * info.n_vocab, n, fp) != n ||
	    fclose(fp) != 0) {
		fp = NULL;
		fprintf(stderr, "ktx-run: cannot write %s: %s\n", o->logits_out, strerror(errno));
		goto out;
	}
	status = RUN_EXIT_OK;
out:
	ktx_session_free(s);
	ktx_model_free(m);
	free(ids);
	free(logits);
	return status;
}

int
run_greedy(const struct run_opts *o)
{
	struct ktx_model *m = NULL;
	struct ktx_session *s = NULL;
	struct ktx_model_info info;
	struct ktx_err err;
	int32_t *ids = NULL, next;
	size_t n = 0;
	int i, st, status = RUN_EXIT_FAIL;

	ktx_err_clear(&err);
	if (run_parse_ids(o->tokens, &ids, &n) != 0 || load(o, &m) != 0 ||
	    open_session(o, m, n + (size_t)o->greedy, &s) != 0)
		goto out;
	ktx_model_get_info(m, &info);
	if (ktx_session_append(s, ids, n, NULL, NULL, &err) != 0) {
		print_err("prefill", &err);
		goto out;
	}
	for (i = 0; i < o->greedy; i++) {
		const float *l = ktx_session_logits(s);
		uint32_t v, best = 0;

		for (v = 1; v < info.n_vocab; v++)
			if (l[v] > l[best])
				best = v;
		next = (int32_t)best;
		printf("%s%d", i ? "," : "", next);
		if (i + 1 == o->greedy)
			break;
		if (ktx_decode_step(&s, &next, 1, &st, &err) != 0 || st != 0) {
			putchar('\n');
			if (st != 0)
				err.code = st;
			print_err("decode", &err);
			goto out;
		}
	}
	putchar('\n');
	status = RUN_EXIT_OK;
out:
	ktx_session_free(s);
	ktx_model_free(m);
	free(ids);
	return status;
}

/* The prompt's ids: chat-rendered (the template brings its own BOS) or
 * plain text with the vocabulary's BOS. */
static int
prompt_ids(const struct run_opts *o, struct ktx_model *m, int32_t **ids, size_t *n)
{
	const struct ktx_tokenizer *tok = ktx_model_tokenizer(m);
	struct gguf_file *f = NULL;
	enum ktx_chat_style style;
	struct ktx_chat_msg msg;
	struct ktx_err err;
	int32_t *t = NULL;
	char *text = NULL;
	size_t len, nt = 0;
	bool bos;
	int rc = -1;

	ktx_err_clear(&err);
	if (tok == NULL) {
		fprintf(stderr, "ktx-run: %s has no tokenizer; use --tokens\n", o->model);
		return -1;
	}
	if (o->chat) {
		memset(&msg, 0, sizeof(msg));
		msg.role = KTX_ROLE_USER;
		msg.content = o->prompt;
		if (gguf_open(o->model, &f, &err) != 0 || ktx_chat_style_from_gguf(f, &style,
		    &err) != 0 ||
		    ktx_chat_render(style, &msg, 1, true, &text, &len, &err) != 0 ||
		    ktx_tokenize(tok, text, len, true, &t, &nt, &err) != 0) {
			print_err("chat prompt", &err);
			goto out;
		}
		bos = false;
	} else {
		if (ktx_tokenize(tok, o->prompt, strlen(o->prompt), o->special, &t, &nt,
		    &err) != 0) {
			print_err("prompt", &err);
			goto out;
		}
		bos = ktx_token_add_bos(tok) && ktx_token_bos(tok) >= 0;
	}
	*ids = malloc((nt + 1) * sizeof(**ids));
	if (*ids == NULL) {
		fprintf(stderr, "ktx-run: out of memory\n");
		goto out;
	}
	*n = 0;
	if (bos)
		(*ids)[(*n)++] = ktx_token_bos(tok);
	if (nt > 0)
		memcpy(*ids + *n, t, nt * sizeof(*t));
	*n += nt;
	rc = 0;
out:
	gguf_close(f);
	free(text);
	free(t);
	return rc;
}

/* Prints id's text as soon as it forms whole characters. */
static int
emit(struct ktx_detok *d, int32_t id)
{
	struct ktx_err err;
	const char *text;
	size_t len;

	if (ktx_detok_push(d, id, &text, &len, &err) != 0) {
		print_err("detokenizing", &err);
		return -1;
	}
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	return 0;
}

int
run_generate(const struct run_opts *o)
{
	struct ktx_sampler_params sp;
	struct ktx_model *m = NULL;
	struct ktx_session *s = NULL;
	struct ktx_sampler *smp = NULL;
	struct ktx_detok *d = NULL;
	struct ktx_model_info info;
	struct ktx_err err;
	int32_t *ids = NULL, next;
	size_t n = 0;
	double t0, t1, t2;
	const char *text;
	size_t len;
	int i, st, n_gen = 0, n_steps = 0, status = RUN_EXIT_FAIL;

	ktx_err_clear(&err);
	if (load(o, &m) != 0 || prompt_ids(o, m, &ids, &n) != 0 ||
	    open_session(o, m, n + (size_t)o->n_predict, &s) != 0)
		goto out;
	ktx_model_get_info(m, &info);
	ktx_sampler_params_default(&sp);
	sp.temperature = o->temp;
	sp.top_k = o->top_k;
	sp.top_p = o->top_p;
	sp.min_p = o->min_p;
	sp.repeat_penalty = o->repeat_penalty;
	sp.seed = o->seed_set ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	smp = ktx_sampler_new(&sp);
	if (smp == NULL || ktx_detok_new(ktx_model_tokenizer(m), KTX_DETOK_SKIP_CONTROL, &d,
	    &err) != 0) {
		fprintf(stderr, "ktx-run: out of memory\n");
		goto out;
	}
	t0 = now_s();
	if (n > 0 && ktx_session_append(s, ids, n, NULL, NULL, &err) != 0) {
		print_err("prefill", &err);
		goto out;
	}
	t1 = now_s();
	for (i = 0; i < o->n_predict && n > 0; i++) {
		next = ktx_sampler_sample(smp, ktx_session_logits(s), info.n_vocab,
		    ktx_session_tokens(s), ktx_session_n_past(s));
		if (next < 0) {
			fprintf(stderr, "\nktx-run: out of memory while sampling\n");
			goto out;
		}
		if (ktx_model_is_eog(m, next))
			break;
		if (emit(d, next) != 0)
			goto out;
		n_gen++;
		if (i + 1 == o->n_predict)
			break;
		if (ktx_decode_step(&s, &next, 1, &st, &err) != 0 || st != 0) {
			if (st != 0)
				err.code = st;
			fputc('\n', stdout);
			print_err("decode", &err);
			goto out;
		}
		n_steps++;
	}
	t2 = now_s();
	ktx_detok_flush(d, &text, &len);
	fwrite(text, 1, len, stdout);
	putchar('\n');
	/* Decode time covers the steps and the sampling between them. */
	fprintf(stderr, "ktx-run: prefill %zu tokens in %.3f s (%.2f tokens/s), "
	    "decode %d steps in %.3f s (%.2f tokens/s)\n", n, t1 - t0,
	    t1 > t0 ? (double)n / (t1 - t0) : 0.0, n_steps, t2 - t1,
	    t2 > t1 ? (double)n_steps / (t2 - t1) : 0.0);
	status = RUN_EXIT_OK;
out:
	ktx_detok_free(d);
	ktx_sampler_free(smp);
	ktx_session_free(s);
	ktx_model_free(m);
	free(ids);
	return status;
}

char *
run_slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL, *nb;
	size_t cap = 0, got;

	*len = 0;
	if (fp == NULL)
		return NULL;
	do {
		if (*len + 1 >= cap) {
			cap = cap ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + *len, 1, cap - *len - 1, fp);
		*len += got;
	} while (got > 0);
	if (ferror(fp)) {
		free(buf);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	buf[*len] = '\0';
	return buf;
}

/* -log p(next) from one row of logits. */
static double
nll_of(const float *l, uint32_t n_vocab, int32_t next)
{
	double max = l[0], sum = 0;
	uint32_t v;

	for (v = 1; v < n_vocab; v++)
		if (l[v] > max)
			max = l[v];
	for (v = 0; v < n_vocab; v++)
		sum += exp(l[v] - max);
	return max + log(sum) - l[next];
}

/*
 * Perplexity: the text's tokens in windows of the context length, each
 * evaluated from an emptied session (after a BOS when the vocabulary wants
 * one) in pieces of PPL_PIECE tokens, so the logits buffer stays small for
 * large vocabularies. Every token but a window's first is predicted from
 * the tokens before it in its window. Prints "perplexity P over N tokens".
 */
#define PPL_PIECE 64

int
run_perplexity(const struct run_opts *o)
{
	struct ktx_model *m = NULL;
	struct ktx_session *s = NULL;
	struct ktx_model_info info;
	struct ktx_err err;
	const struct ktx_tokenizer *tok;
	int32_t *ids = NULL, *win = NULL;
	float *logits = NULL;
	char *text = NULL;
	size_t len, n = 0, at, w, j, k, piece, cnt = 0, bos;
	double nll = 0, t0;
	int status = RUN_EXIT_FAIL;

	ktx_err_clear(&err);
	if ((text = run_slurp(o->perplexity_file, &len)) == NULL) {
		fprintf(stderr, "ktx-run: cannot read %s: %s\n", o->perplexity_file,
		    strerror(errno));
		goto out;
	}
	if (load(o, &m) != 0)
		goto out;
	ktx_model_get_info(m, &info);
	if ((tok = ktx_model_tokenizer(m)) == NULL) {
		fprintf(stderr, "ktx-run: %s has no tokenizer\n", o->model);
		goto out;
	}
	if (ktx_tokenize(tok, text, len, false, &ids, &n, &err) != 0) {
		print_err(o->perplexity_file, &err);
		goto out;
	}
	bos = ktx_token_add_bos(tok) && ktx_token_bos(tok) >= 0;
	if (info.n_ctx < 2 + bos) {
		fprintf(stderr, "ktx-run: a context of %u tokens is too short for perplexity\n",
		    info.n_ctx);
		goto out;
	}
	win = malloc(info.n_ctx * sizeof(*win));
	logits = malloc((size_t)PPL_PIECE * info.n_vocab * sizeof(float));
	if (win == NULL || logits == NULL || ktx_session_new(m, 0, &s, &err) != 0) {
		fprintf(stderr, "ktx-run: out of memory\n");
		goto out;
	}
	t0 = now_s();
	for (at = 0; at + 1 < n; at += w) {
		w = n - at < info.n_ctx - bos ? n - at : info.n_ctx - bos;
		if (bos)
			win[0] = ktx_token_bos(tok);
		memcpy(win + bos, ids + at, w * sizeof(*win));
		ktx_session_truncate(s, 0, &err);
		for (j = 0; j < w + bos; j += piece) {
			piece = w + bos - j < PPL_PIECE ? w + bos - j : PPL_PIECE;
			if (ktx_session_eval_all(s, win + j, piece, logits, &err) != 0) {
				print_err("evaluating", &err);
				goto out;
			}
			/* Row k predicts win[j + k + 1]. */
			for (k = 0; k < piece && j + k + 1 < w + bos; k++) {
				nll += nll_of(logits + k * info.n_vocab, info.n_vocab,
				    win[j + k + 1]);
				cnt++;
			}
		}
	}
	if (cnt == 0) {
		fprintf(stderr, "ktx-run: %s has fewer than two tokens\n", o->perplexity_file);
		goto out;
	}
	printf("perplexity %.4f over %zu tokens\n", exp(nll / (double)cnt), cnt);
	fprintf(stderr, "ktx-run: %zu tokens in %.3f s\n", n, now_s() - t0);
	status = RUN_EXIT_OK;
out:
	ktx_session_free(s);
	ktx_model_free(m);
	free(text);
	free(ids);
	free(win);
	free(logits);
	return status;
}
