/*
 * run_kl.c - ktx-run --kl-divergence: the quality guard. Runs the same
 * tokens through two compute paths of one model (--path, default fast,
 * against --kl-base, default ref), or one path against stored logits
 * (--kl-reference), and prints one JSON object: mean and max KL(base ||
 * path) per position, top-1 agreement, how many positions disagree where
 * the base's top-1/top-2 margin exceeds --kl-margin (1e-3), and each side's
 * perplexity on the tokens.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ktx.h"
#include "engine/tokenizer.h"
#include "tools/ktx-run.h"

/* Positions evaluated per call: bounds the logits buffers. */
#define KL_PIECE 64
/* Base margins above this must keep their top-1 (issue 7). */
#define KL_MARGIN 1e-3

struct kl_sums {
	double sum_kl, max_kl, nll, nll_base;
	size_t n, top1, n_pred, n_margin, bad;
	long long first_bad;
};

int
run_path_of(const char *name)
{
	if (strcmp(name, "fast") == 0)
		return KTX_PATH_FAST;
	if (strcmp(name, "ref") == 0)
		return KTX_PATH_REF;
	return -1;
}

const char *
run_path_name(int p)
{
	return p == KTX_PATH_REF ? "ref" : "fast";
}

int
run_load_path(const struct run_opts *o, int path, struct ktx_model **m)
{
	struct ktx_model_params p;
	struct ktx_err err;

	ktx_err_clear(&err);
	ktx_model_params_default(&p);
	p.path = o->model;
	p.n_threads = o->threads;
	p.n_expert_used = (uint32_t)o->n_expert_used;
	p.n_ctx = (uint32_t)o->ctx;
	p.attn = o->attn != NULL && strcmp(o->attn, "naive") == 0 ? KTX_ATTN_NAIVE :
	    KTX_ATTN_ABSORBED;
	p.compute = (enum ktx_path)path;
	if (o->act_residual >= 0)
		p.act_residual = (unsigned)o->act_residual;
	if (o->cache_type >= 0)
		p.cache_type = (enum ktx_cache_type)o->cache_type;
	if (o->load >= 0)
		p.load = (enum ktx_load)o->load;
	p.no_repack = o->no_repack;
	if (ktx_model_load(&p, m, &err) != 0) {
		fprintf(stderr, "ktx-run: %s: %s\n", o->model, err.msg);
		return -1;
	}
	return 0;
}

/* log-softmax of a row of logits, in double. */
static void
log_softmax(const float *l, uint32_t nv, double *out)
{
	double max = l[0], sum = 0, lse;
	uint32_t v;

	for (v = 1; v < nv; v++)
		if (l[v] > max)
			max = l[v];
	for (v = 0; v < nv; v++)
		sum += exp((double)l[v] - max);
	lse = max + log(sum);
	for (v = 0; v < nv; v++)
		out[v] = (double)l[v] - lse;
}

/* Adds one position: KL(base || got), top-1 and, when next >= 0, the
 * log-likelihood of the next token under each. lb, lg: nv doubles. */
static void
add_row(struct kl_sums *st, const float *got, const float *base, uint32_t nv, int32_t next,
    long long pos, double *lb, double *lg)
{
	uint32_t v, tb = 0, tg = 0, t2 = nv > 1 ? 1 : 0;
	double kl = 0;

	log_softmax(base, nv, lb);
	log_softmax(got, nv, lg);
	for (v = 0; v < nv; v++)
		kl += exp(lb[v]) * (lb[v] - lg[v]);
	if (kl < 0)
		kl = 0;
	for (v = 1; v < nv; v++) {
		if (got[v] > got[tg])
			tg = v;
		if (base[v] > base[tb])
			tb = v;
	}
	if (tb == t2)
		t2 = 0;
	for (v = 0; v < nv; v++)
		if (v != tb && base[v] > base[t2])
			t2 = v;
	st->sum_kl += kl;
	if (kl > st->max_kl)
		st->max_kl = kl;
	st->n++;
	st->top1 += tb == tg;
	if ((double)base[tb] - (double)base[t2] > KL_MARGIN) {
		st->n_margin++;
		if (tb != tg) {
			if (st->bad == 0)
				st->first_bad = pos;
			st->bad++;
		}
	}
	if (next >= 0) {
		st->nll -= lg[next];
		st->nll_base -= lb[next];
		st->n_pred++;
	}
}

/* The ids to run: --tokens as given, or FILE's text after a BOS when the
 * vocabulary wants one. */
static int
kl_ids(const struct run_opts *o, const struct ktx_model *m, int32_t **ids, size_t *n)
{
	const struct ktx_tokenizer *tok = ktx_model_tokenizer(m);
	struct ktx_err err;
	int32_t *t = NULL;
	char *text;
	size_t len, nt = 0, bos;

	if (o->tokens != NULL)
		return run_parse_ids(o->tokens, ids, n);
	if ((text = run_slurp(o->kl_file, &len)) == NULL) {
		fprintf(stderr, "ktx-run: cannot read %s: %s\n", o->kl_file, strerror(errno));
		return -1;
	}
	ktx_err_clear(&err);
	if (tok == NULL || ktx_tokenize(tok, text, len, false, &t, &nt, &err) != 0) {
		fprintf(stderr, "ktx-run: %s: %s\n", o->kl_file,
		    tok == NULL ? "the model has no tokenizer" : err.msg);
		free(text);
		return -1;
	}
	free(text);
	bos = ktx_token_add_bos(tok) && ktx_token_bos(tok) >= 0;
	*ids = malloc((nt + 1) * sizeof(**ids));
	if (*ids == NULL) {
		free(t);
		fprintf(stderr, "ktx-run: out of memory\n");
		return -1;
	}
	if (bos)
		(*ids)[0] = ktx_token_bos(tok);
	if (nt > 0)
		memcpy(*ids + bos, t, nt * sizeof(*t));
	*n = nt + bos;
	free(t);
	return 0;
}

void
run_json_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

/* Reads n rows of nv float32 logits; the file must hold exactly that. */
static float *
read_logits(const char *path, size_t n, uint32_t nv)
{
	size_t len;
	char *buf = run_slurp(path, &len);

	if (buf == NULL) {
		fprintf(stderr, "ktx-run: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (len != n * nv * sizeof(float)) {
		fprintf(stderr, "ktx-run: %s holds %zu bytes, want %zu tokens x %u logits\n", path,
		    len, n, nv);
		free(buf);
		return NULL;
	}
	return (float *)(void *)buf;
}

int
run_kl(const struct run_opts *o)
{
	enum ktx_path tp = o->path ? (enum ktx_path)run_path_of(o->path) : KTX_PATH_FAST;
	enum ktx_path bp = o->kl_base ? (enum ktx_path)run_path_of(o->kl_base) : KTX_PATH_REF;
	struct ktx_model *m = NULL, *mb = NULL;
	struct ktx_session *s = NULL, *sb = NULL;
	struct ktx_model_info info;
	struct ktx_err err;
	struct kl_sums st;
	int32_t *ids = NULL;
	float *lt = NULL, *lbase = NULL, *stored = NULL;
	double *d1 = NULL, *d2 = NULL;
	size_t n = 0, at, w, j, k, piece;
	int status = RUN_EXIT_FAIL;

	memset(&st, 0, sizeof(st));
	st.first_bad = -1;
	ktx_err_clear(&err);
	if (run_load_path(o, tp, &m) != 0 || kl_ids(o, m, &ids, &n) != 0)
		goto out;
	ktx_model_get_info(m, &info);
	if (n == 0) {
		fprintf(stderr, "ktx-run: no tokens to compare\n");
		goto out;
	}
	if (o->kl_reference != NULL) {
		if (n > info.n_ctx) {
			fprintf(stderr, "ktx-run: %zu tokens exceed the context of %u; stored "
			    "logits must come from one window (--ctx)\n", n, info.n_ctx);
			goto out;
		}
		if ((stored = read_logits(o->kl_reference, n, info.n_vocab)) == NULL)
			goto out;
	} else if (run_load_path(o, bp, &mb) != 0) {
		goto out;
	}
	lt = malloc((size_t)KL_PIECE * info.n_vocab * sizeof(float));
	lbase = malloc((size_t)KL_PIECE * info.n_vocab * sizeof(float));
	d1 = malloc(info.n_vocab * sizeof(double));
	d2 = malloc(info.n_vocab * sizeof(double));
	if (lt == NULL || lbase == NULL || d1 == NULL || d2 == NULL ||
	    ktx_session_new(m, 0, &s, &err) != 0 || (mb != NULL && ktx_session_new(mb, 0, &sb,
	    &err) != 0)) {
		fprintf(stderr, "ktx-run: out of memory\n");
		goto out;
	}
	/* Windows of the context length, each from an empty session. */
	for (at = 0; at < n; at += w) {
		w = n - at < info.n_ctx ? n - at : info.n_ctx;
		ktx_session_truncate(s, 0, &err);
		if (sb != NULL)
			ktx_session_truncate(sb, 0, &err);
		for (j = 0; j < w; j += piece) {
			const float *base = lbase;

			piece = w - j < KL_PIECE ? w - j : KL_PIECE;
			if (ktx_session_eval_all(s, ids + at + j, piece, lt, &err) != 0 ||
			    (sb != NULL && ktx_session_eval_all(sb, ids + at + j, piece, lbase,
			    &err) != 0)) {
				fprintf(stderr, "ktx-run: evaluating: %s\n", err.msg);
				goto out;
			}
			if (stored != NULL)
				base = stored + (at + j) * info.n_vocab;
			for (k = 0; k < piece; k++)
				add_row(&st, lt + k * info.n_vocab, base + k * info.n_vocab,
				    info.n_vocab, j + k + 1 < w ? ids[at + j + k + 1] : -1,
				    (long long)(at + j + k), d1, d2);
		}
	}
	printf("{\"model\": ");
	run_json_str(stdout, info.name);
	printf(", \"path\": \"%s\", \"base\": \"%s\", \"positions\": %zu, "
	    "\"mean_kl\": %.6e, \"max_kl\": %.6e, \"top1\": %.6f, \"top1_same\": %zu, "
	    "\"margin\": %g, \"margin_positions\": %zu, \"top1_bad\": %zu, "
	    "\"first_top1_bad\": %lld, ", run_path_name(tp),
	    stored != NULL ? "file" : run_path_name(bp), st.n, st.sum_kl / (double)st.n, st.max_kl,
	    (double)st.top1 / (double)st.n, st.top1, KL_MARGIN, st.n_margin, st.bad,
	    st.first_bad);
	if (st.n_pred > 0)
		printf("\"predicted\": %zu, \"ppl\": %.6f, \"ppl_base\": %.6f}\n", st.n_pred,
		    exp(st.nll / (double)st.n_pred), exp(st.nll_base / (double)st.n_pred));
	else
		printf("\"predicted\": 0, \"ppl\": null, \"ppl_base\": null}\n");
	status = RUN_EXIT_OK;
out:
	ktx_session_free(s);
	ktx_session_free(sb);
	ktx_model_free(m);
	ktx_model_free(mb);
	free(ids);
	free(lt);
	free(lbase);
	free(stored);
	free(d1);
	free(d2);
	return status;
}
