/*
 * export.c - ktx-demo-export: turns train.py's dump of the demo model into
 * a GGUF with ktx's own writer and quantizer.
 *
 * usage: ktx-demo-export DUMPDIR VOCAB.gguf OUT.gguf
 *
 * DUMPDIR/model.txt lists, in file order, what the GGUF holds:
 *   kv KEY TYPE VALUE          TYPE str, u32, f32 or bool (VALUE 0/1); a str
 *                              value is the rest of the line
 *   copy PREFIX                every key of VOCAB.gguf starting with PREFIX
 *   tensor NAME TYPE NE0 [NE1 [NE2 [NE3]]]   TYPE f32 or q8_0; ggml order
 * and DUMPDIR/tensors.f32 holds the tensors' float32 values back to back in
 * the same order. Lines starting with '#' are comments. Only maintainers
 * run this (see tools/train-demo/README.md); it is built so it cannot rot.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/gguf.h"
#include "engine/quant.h"

#define LINE_MAX_LEN 4096
/* Bound on one tensor's elements (the demo model's largest has ~1M). */
#define TENSOR_MAX_ELEMS ((int64_t)1 << 28)

struct exporter {
	struct gguf_writer *w;
	struct gguf_file *vocab;
	FILE *data;          /* tensors.f32 */
	const char *list;    /* model.txt, for messages */
	unsigned lineno;
	int64_t n_tensors;
};

/* Parses a whole decimal number in [lo, hi]. */
static bool
parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Adds one "kv KEY TYPE VALUE" line (rest points after "kv "). */
static int
add_kv(struct exporter *x, char *rest, struct ktx_err *err)
{
	char *key = strtok(rest, " "), *type = strtok(NULL, " "), *val = strtok(NULL, "");
	char *end;
	int64_t v;
	float f;

	if (key == NULL || type == NULL || val == NULL)
		return ktx_err_set(err, KTX_EFORMAT, "%s:%u: want 'kv KEY TYPE VALUE'", x->list, x->lineno);
	if (strcmp(type, "str") == 0)
		return gguf_writer_add_str(x->w, key, val, strlen(val), err);
	if (strcmp(type, "u32") == 0) {
		if (!parse_i64(val, 0, UINT32_MAX, &v))
			return ktx_err_set(err, KTX_EFORMAT, "%s:%u: bad u32 '%s'", x->list, x->lineno, val);
		return gguf_writer_add_u32(x->w, key, (uint32_t)v, err);
	}
	if (strcmp(type, "bool") == 0) {
		if (!parse_i64(val, 0, 1, &v))
			return ktx_err_set(err, KTX_EFORMAT, "%s:%u: bad bool '%s'", x->list, x->lineno, val);
		return gguf_writer_add_bool(x->w, key, v != 0, err);
	}
	if (strcmp(type, "f32") == 0) {
		errno = 0;
		f = strtof(val, &end);
		if (errno != 0 || end == val || *end != '\0')
			return ktx_err_set(err, KTX_EFORMAT, "%s:%u: bad f32 '%s'", x->list, x->lineno, val);
		return gguf_writer_add_f32(x->w, key, f, err);
	}
	return ktx_err_set(err, KTX_EFORMAT, "%s:%u: unknown value type '%s'", x->list, x->lineno, type);
}

/* Adds one "tensor NAME TYPE NE..." line: reads its floats and quantizes them. */
static int
add_tensor(struct exporter *x, char *rest, struct ktx_err *err)
{
	char *name = strtok(rest, " "), *type = strtok(NULL, " "), *tok;
	int64_t ne[GGUF_MAX_DIMS] = {1, 1, 1, 1}, n = 1;
	enum ktx_type t;
	uint32_t n_dims = 0;
	uint64_t nbytes;
	float *src = NULL;
	void *dst = NULL;
	int rc;

	if (name == NULL || type == NULL)
		return ktx_err_set(err, KTX_EFORMAT, "%s:%u: want 'tensor NAME TYPE NE...'", x->list, x->lineno);
	if (strcmp(type, "f32") == 0)
		t = KTX_TYPE_F32;
	else if (strcmp(type, "q8_0") == 0)
		t = KTX_TYPE_Q8_0;
	else
		return ktx_err_set(err, KTX_EFORMAT, "%s:%u: tensor type '%s' (want f32 or q8_0)",
		    x->list, x->lineno, type);
	while ((tok = strtok(NULL, " ")) != NULL) {
		if (n_dims == GGUF_MAX_DIMS || !parse_i64(tok, 1, TENSOR_MAX_ELEMS, &ne[n_dims]))
			return ktx_err_set(err, KTX_EFORMAT, "%s:%u: bad shape of %s", x->list, x->lineno, name);
		n *= ne[n_dims++];
		if (n > TENSOR_MAX_ELEMS)
			return ktx_err_set(err, KTX_ERANGE, "%s:%u: %s is too large", x->list, x->lineno, name);
	}
	if (n_dims == 0)
		return ktx_err_set(err, KTX_EFORMAT, "%s:%u: %s has no shape", x->list, x->lineno, name);
	nbytes = ktx_type_row_bytes(t, n);
	if (nbytes == 0 || ktx_type_row_bytes(t, ne[0]) == 0)
		return ktx_err_set(err, KTX_EFORMAT, "%s:%u: rows of %s (%" PRId64 ") are not whole %s blocks",
		    x->list, x->lineno, name, ne[0], type);
	src = malloc((size_t)n * sizeof(*src));
	dst = malloc(nbytes);
	if (src == NULL || dst == NULL) {
		rc = ktx_err_set(err, KTX_ENOMEM, "out of memory for %s", name);
		goto out;
	}
	if (fread(src, sizeof(*src), (size_t)n, x->data) != (size_t)n) {
		rc = ktx_err_set(err, KTX_EFORMAT, "tensors.f32 ends before %s", name);
		goto out;
	}
	if ((rc = ktx_quantize(t, src, dst, n, err)) != 0)
		goto out;
	rc = gguf_writer_add_tensor(x->w, name, t, n_dims, ne, dst, NULL, NULL, err);
	x->n_tensors++;
out:
	free(src);
	free(dst);
	return rc;
}

/* Runs model.txt line by line. */
static int
export_list(struct exporter *x, FILE *list, struct ktx_err *err)
{
	char line[LINE_MAX_LEN];
	size_t len;
	int rc;

	while (fgets(line, sizeof(line), list) != NULL) {
		x->lineno++;
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(list))
			return ktx_err_set(err, KTX_EFORMAT, "%s:%u: line too long", x->list, x->lineno);
		if (len == 0 || line[0] == '#')
			continue;
		if (strncmp(line, "kv ", 3) == 0)
			rc = add_kv(x, line + 3, err);
		else if (strncmp(line, "tensor ", 7) == 0)
			rc = add_tensor(x, line + 7, err);
		else if (strncmp(line, "copy ", 5) == 0)
			rc = gguf_writer_copy_kv(x->w, x->vocab, line + 5, err);
		else
			rc = ktx_err_set(err, KTX_EFORMAT, "%s:%u: unknown line '%.40s'", x->list, x->lineno, line);
		if (rc != 0)
			return rc;
	}
	if (ferror(list))
		return ktx_err_set(err, KTX_EIO, "reading %s: %s", x->list, strerror(errno));
	if (fgetc(x->data) != EOF)
		return ktx_err_set(err, KTX_EFORMAT, "tensors.f32 holds more data than model.txt lists");
	return 0;
}

/* Checks that the tokenizer copied from the vocabulary fits the model. */
static int
check_vocab(struct exporter *x, struct ktx_err *err)
{
	enum gguf_vtype et;
	uint64_t n_tokens;
	uint32_t n_vocab;
	int rc;

	if ((rc = gguf_get_arr(x->vocab, "tokenizer.ggml.tokens", &et, &n_tokens, err)) != 0)
		return rc;
	if ((rc = gguf_get_u32(x->vocab, "deepseek2.vocab_size", &n_vocab, err)) != 0)
		return rc;
	if (n_tokens != n_vocab)
		return ktx_err_set(err, KTX_EFORMAT, "the vocabulary has %" PRIu64 " tokens but says %u",
		    n_tokens, n_vocab);
	return 0;
}

int
main(int argc, char **argv)
{
	struct exporter x = {.list = "model.txt"};
	struct ktx_err err = {0};
	char path[4096];
	FILE *list = NULL;
	int rc = 1;

	if (argc != 4) {
		fputs("usage: ktx-demo-export DUMPDIR VOCAB.gguf OUT.gguf\n", stderr);
		return 2;
	}
	if (gguf_open(argv[2], &x.vocab, &err) != 0 || check_vocab(&x, &err) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/model.txt", argv[1]);
	if ((list = fopen(path, "r")) == NULL) {
		ktx_err_set(&err, KTX_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/tensors.f32", argv[1]);
	if ((x.data = fopen(path, "rb")) == NULL) {
		ktx_err_set(&err, KTX_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((x.w = gguf_writer_new()) == NULL) {
		ktx_err_set(&err, KTX_ENOMEM, "out of memory");
		goto fail;
	}
	if (export_list(&x, list, &err) != 0 || gguf_writer_write(x.w, argv[3], &err) != 0)
		goto fail;
	printf("ktx-demo-export: %" PRId64 " tensors -> %s\n", x.n_tensors, argv[3]);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "ktx-demo-export: %s\n", err.msg);
out:
	if (list != NULL)
		fclose(list);
	if (x.data != NULL)
		fclose(x.data);
	gguf_writer_free(x.w);
	gguf_close(x.vocab);
	return rc;
}
