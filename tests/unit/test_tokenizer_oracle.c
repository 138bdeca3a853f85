/*
 * test_tokenizer_oracle.c - every tokenizer case of the oracle, in one
 * process: each vocabulary is loaded once and its .jsonl cases are encoded
 * and compared with the ids Hugging Face and llama.cpp agree on. One TAP line
 * per case file and category (failures print the text and both id lists),
 * then a decode round trip through the streaming detokenizer, one tokenizer
 * shared by several threads, and a timing of 1 MiB of mixed text reported as
 * a diagnostic (never asserted).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "tests/tap.h"
#include "tests/unit/jsonl.h"

struct case_file {
	const char *cases, *vocab;
	size_t n_expected;
};

static const struct case_file case_files[] = {
	{"tokenizer/tokenizer-cases.jsonl", "tokenizer/deepseek-v3.gguf", 438},
	{"tokenizer/deepseek-v3-cut-cases.jsonl", "tokenizer/deepseek-v3-cut.gguf", 74},
	{"tokenizer/vocab-deepseek-llm/cases.jsonl",
	    "tokenizer/vocab-deepseek-llm/ggml-vocab-deepseek-llm.gguf", 46},
	{"tokenizer/vocab-deepseek-coder/cases.jsonl",
	    "tokenizer/vocab-deepseek-coder/ggml-vocab-deepseek-coder.gguf", 46},
};

#define MAX_CATEGORIES 64

struct category {
	char name[64];
	int pass, total;
};

static const char *oracle;

/* Loads the vocabulary at oracle-relative path rel. */
static struct ktx_tokenizer *
load(const char *rel)
{
	char path[4096];
	struct gguf_file *f;
	struct ktx_tokenizer *tok = NULL;
	struct ktx_err err;

	snprintf(path, sizeof(path), "%s/%s", oracle, rel);
	if (gguf_open(path, &f, &err) != KTX_OK) {
		tap_diag("%s: %s", path, err.msg);
		return NULL;
	}
	if (ktx_tokenizer_load(f, &tok, &err) != KTX_OK)
		tap_diag("%s: %s", path, err.msg);
	gguf_close(f);
	return tok;
}

/* Prints text as a C-ish literal in a diagnostic. */
static void
diag_text(const char *what, const char *s, size_t n)
{
	char buf[600];
	size_t i, o = 0;

	for (i = 0; i < n && o + 8 < sizeof(buf); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\n");
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	tap_diag("%s \"%s\"%s", what, buf, i < n ? "..." : "");
}

static void
diag_ids(const char *what, const int32_t *ids, size_t n)
{
	char buf[600];
	size_t i, o = 0;

	for (i = 0; i < n && o + 16 < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, i ? ",%d" : "%d", ids[i]);
	tap_diag("%s [%s%s] (%zu ids)", what, buf, i < n ? ",..." : "", n);
}

/* Decodes ids one at a time; 1 when every chunk is whole UTF-8 (no
 * U+FFFD, since the texts are valid) and the chunks add up to text. */
static int
stream_round_trip(const struct ktx_tokenizer *tok, const int32_t *ids, size_t n,
    const char *text, size_t len)
{
	struct ktx_detok *d;
	struct ktx_err err;
	const char *t;
	size_t tl, i, o = 0;
	int ok = 1;

	if (ktx_detok_new(tok, 0, &d, &err) != KTX_OK)
		return 0;
	for (i = 0; i <= n && ok; i++) {
		if (i < n) {
			if (ktx_detok_push(d, ids[i], &t, &tl, &err) != KTX_OK) {
				ok = 0;
				break;
			}
		} else {
			ktx_detok_flush(d, &t, &tl);
		}
		if (o + tl > len || memcmp(text + o, t, tl) != 0)
			ok = 0;
		o += tl;
	}
	ktx_detok_free(d);
	return ok && o == len;
}

/* Runs one case file: a line per category, the case count, the round trip. */
static void
run_file(const struct case_file *cf)
{
	struct category cats[MAX_CATEGORIES];
	int n_cats = 0, c, round_ok = 0, n_cases = 0, bad_lines = 0;
	struct ktx_tokenizer *tok;
	char path[4096], *buf, *line, *next;
	size_t len;

	tok = load(cf->vocab);
	if (!tap_ok(tok != NULL, "%s: load %s", cf->cases, cf->vocab))
		return;
	snprintf(path, sizeof(path), "%s/%s", oracle, cf->cases);
	if ((buf = read_whole(path, &len)) == NULL) {
		tap_ok(0, "%s: read", cf->cases);
		ktx_tokenizer_free(tok);
		return;
	}
	for (line = buf; line < buf + len && *line; line = next) {
		struct jv *v;
		const struct jv *text, *special, *ids, *cat;
		const char *cname;
		int32_t *got = NULL, *want = NULL;
		size_t n_got = 0, i;
		struct ktx_err err;
		int ok;

		next = strchr(line, '\n');
		next = next ? next + 1 : buf + len;
		if (next - line <= 1)
			continue;
		v = jparse(line, (size_t)(next - line));
		text = jget(v, "text");
		special = jget(v, "special");
		ids = jget(v, "ids");
		cat = jget(v, "category");
		if (!text || text->t != J_STR || !special || special->t != J_BOOL || !ids ||
		    ids->t != J_ARR) {
			bad_lines++;
			jfree(v);
			continue;
		}
		n_cases++;
		cname = cat && cat->t == J_STR ? cat->s : "all";
		for (c = 0; c < n_cats && strcmp(cats[c].name, cname) != 0; c++)
			;
		if (c == n_cats && n_cats < MAX_CATEGORIES) {
			snprintf(cats[c].name, sizeof(cats[c].name), "%s", cname);
			cats[c].pass = cats[c].total = 0;
			n_cats++;
		}
		want = malloc((ids->n ? ids->n : 1) * sizeof(*want));
		for (i = 0; want && i < ids->n; i++)
			want[i] = (int32_t)ids->items[i].num;
		ok = want && ktx_tokenize(tok, text->s, text->slen, special->b, &got, &n_got,
		    &err) == KTX_OK;
		ok = ok && n_got == ids->n &&
		    (n_got == 0 || memcmp(got, want, n_got * sizeof(*got)) == 0);
		if (c < n_cats) {
			cats[c].total++;
			cats[c].pass += ok;
		}
		if (!ok) {
			tap_diag("%s, %s: wrong ids", cf->cases, cname);
			diag_text("  text", text->s, text->slen);
			diag_ids("  got ", got, n_got);
			diag_ids("  want", want, ids->n);
		}
		round_ok += ok && stream_round_trip(tok, got, n_got, text->s, text->slen);
		free(got);
		free(want);
		jfree(v);
	}
	for (c = 0; c < n_cats; c++) {
		tap_ok(cats[c].pass == cats[c].total, "%s %s: %d/%d cases give the oracle's ids",
		    cf->cases, cats[c].name, cats[c].pass, cats[c].total);
	}
	tap_ok(bad_lines == 0 && (size_t)n_cases == cf->n_expected,
	    "%s: %d cases read (%zu expected)", cf->cases, n_cases, cf->n_expected);
	tap_ok(round_ok == n_cases, "%s: %d/%d decode back to their text, token by token, "
	    "never half a character", cf->cases, round_ok, n_cases);
	free(buf);
	ktx_tokenizer_free(tok);
}

/* 1 MiB of mixed text: English, code, CJK, emoji, digits, whitespace. */
static char *
mixed_text(size_t *len)
{
	static const char *const parts[] = {
		"The quick brown fox jumps over the lazy dog; it's 2024 and we're testing.\n",
		"def fib(n):\n    if n < 2:\n        return n\n"
		"    return fib(n - 1) + fib(n - 2)\n\n",
		"int main(void) { for (int i = 0; i < 10; i++) printf(\"%d\\n\", i); return 0; }\n",
		"深度求索公司开发的智能助手，你好！我们今天讨论分词器的速度。\n",
		"日本語のテキストも少し入れます。カタカナとひらがな。한국어 문장도 있습니다.\n",
		"Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷 — ñandú, Ærøskøbing, Straße.\n",
		"Numbers: 3.14159 2718281828 1,000,000 0xFF 1e-9 $42.50 (±0.5%)\n",
		"    \t  spaces   and\ttabs  \r\n<div class=\"x\">&amp;</div>\n",
	};
	size_t cap = (1u << 20) + 256, n = 0;
	uint32_t r = 12345;
	char *s = malloc(cap);

	if (s == NULL)
		return NULL;
	while (n < (1u << 20)) {
		const char *p;
		size_t pl;

		r = r * 1103515245u + 12345u;
		p = parts[(r >> 16) % (sizeof(parts) / sizeof(parts[0]))];
		pl = strlen(p);
		if (n + pl > cap)
			break;
		memcpy(s + n, p, pl);
		n += pl;
	}
	*len = n;
	return s;
}

/* One thread's share of the shared-tokenizer check. */
struct job {
	const struct ktx_tokenizer *tok;
	const char *text;
	size_t len, n;
	int32_t *ids;
	int rc;
};

static void *
job_run(void *arg)
{
	struct job *j = arg;

	j->rc = ktx_tokenize(j->tok, j->text, j->len, false, &j->ids, &j->n, NULL);
	return NULL;
}

/* Several threads encode with one tokenizer at once and get the serial ids. */
static void
shared(const struct ktx_tokenizer *tok, const char *text, size_t len, const int32_t *want,
    size_t n_want)
{
	struct job jobs[3];
	pthread_t th[3];
	int i, ok = 1;

	for (i = 0; i < 3; i++) {
		jobs[i] = (struct job){tok, text, len, 0, NULL, -1};
		if (pthread_create(&th[i], NULL, job_run, &jobs[i]) != 0)
			jobs[i].rc = -2;
	}
	for (i = 0; i < 3; i++) {
		if (jobs[i].rc != -2)
			pthread_join(th[i], NULL);
		ok &= jobs[i].rc == KTX_OK && jobs[i].n == n_want &&
		    memcmp(jobs[i].ids, want, n_want * sizeof(*want)) == 0;
		free(jobs[i].ids);
	}
	tap_ok(ok, "three threads sharing one tokenizer get the same ids as one");
}

static void
speed(void)
{
	struct ktx_tokenizer *tok = load("tokenizer/deepseek-v3.gguf");
	struct timespec a, b;
	struct ktx_err err;
	int32_t *ids = NULL;
	size_t len = 0, n = 0, dlen = 0;
	char *text = mixed_text(&len), *back = NULL;
	double ms;
	int rc;

	if (tok == NULL || text == NULL) {
		tap_ok(0, "1 MiB of mixed text: setup");
		goto done;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	rc = ktx_tokenize(tok, text, len, false, &ids, &n, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	tap_ok(rc == KTX_OK && ktx_detokenize(tok, ids, n, 0, &back, &dlen, &err) == KTX_OK &&
	    dlen == len && memcmp(back, text, len) == 0,
	    "1 MiB of mixed text encodes and decodes back to itself");
	tap_diag("encoding %zu bytes of mixed text took %.1f ms (%zu tokens, %.2f MB/s)",
	    len, ms, n, (double)len / 1e3 / ms);
	if (rc == KTX_OK)
		shared(tok, text, len, ids, n);
done:
	free(back);
	free(ids);
	free(text);
	ktx_tokenizer_free(tok);
}

int
main(void)
{
	size_t i;

	oracle = getenv("KTX_ORACLE");
	if (!tap_ok(oracle != NULL, "KTX_ORACLE names the oracle folder"))
		return tap_done();
	for (i = 0; i < sizeof(case_files) / sizeof(case_files[0]); i++)
		run_file(&case_files[i]);
	speed();
	return tap_done();
}
