/*
 * run_tokenize.c - ktx-run --tokenize: the ids of a file's text.
 *
 * Prints the ids of the file's whole content (no BOS added), comma-separated
 * on one line; --special parses special-token spellings. Scripts and the
 * oracle tests compare this line with reference ids.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/err.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "tools/ktx-run.h"

/* Reads all of path into a malloc'ed buffer (stdin for "-"). */
static int
read_file(const char *path, char **out, size_t *len)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (fp == NULL) {
		fprintf(stderr, "ktx-run: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			cap = cap ? 2 * cap : 65536;
			if ((nb = realloc(buf, cap)) == NULL) {
				fprintf(stderr, "ktx-run: out of memory reading %s\n", path);
				free(buf);
				if (fp != stdin)
					fclose(fp);
				return -1;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		fprintf(stderr, "ktx-run: cannot read %s: %s\n", path, strerror(errno));
		free(buf);
		if (fp != stdin)
			fclose(fp);
		return -1;
	}
	if (fp != stdin)
		fclose(fp);
	*out = buf;
	*len = n;
	return 0;
}

int
run_tokenize(const struct run_opts *o)
{
	struct ktx_err err;
	struct gguf_file *f = NULL;
	struct ktx_tokenizer *tok = NULL;
	int32_t *ids = NULL;
	size_t n_ids = 0, len = 0, i;
	char *text = NULL;
	int status = RUN_EXIT_FAIL;

	ktx_err_clear(&err);
	if (gguf_open(o->model, &f, &err) != KTX_OK ||
	    ktx_tokenizer_load(f, &tok, &err) != KTX_OK) {
		fprintf(stderr, "ktx-run: %s: %s\n", o->model, err.msg);
		goto done;
	}
	if (read_file(o->tokenize_file, &text, &len) != 0)
		goto done;
	if (ktx_tokenize(tok, text, len, o->special, &ids, &n_ids, &err) != KTX_OK) {
		fprintf(stderr, "ktx-run: %s: %s\n", o->tokenize_file, err.msg);
		goto done;
	}
	for (i = 0; i < n_ids; i++)
		printf(i ? ",%" PRId32 : "%" PRId32, ids[i]);
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ktx-run: writing the ids failed: %s\n", strerror(errno));
		goto done;
	}
	status = RUN_EXIT_OK;
done:
	free(ids);
	free(text);
	ktx_tokenizer_free(tok);
	gguf_close(f);
	return status;
}
