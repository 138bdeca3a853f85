/*
 * fuzz_tokenize.c - fuzz target for the tokenizer and detokenizer.
 *
 * The input is text. It is tokenized with every tiny vocabulary (one per
 * pre-tokenizer) with and without special-token parsing, and once with the
 * middle third guarded; every id must be in range. The ids are decoded
 * through the streaming detokenizer: the bytes of valid UTF-8 input must
 * come back exactly, any other input must come back as valid UTF-8, and the
 * whole-sequence decoder must agree with the stream.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_util.h"

/* Longest input tried: BPE is quadratic in a piece's length. */
#define TEXT_MAX 8192

/* Checks ids against the vocabulary and decodes them back. */
static void
check_ids(const struct ktx_tokenizer *tok, const int32_t *ids, size_t n, const char *text,
    size_t len, bool valid)
{
	struct ktx_err err;
	size_t i, slen, wlen;
	char *s, *w;

	for (i = 0; i < n; i++)
		assert(ids[i] >= 0 && ids[i] < ktx_n_vocab(tok));
	s = fuzz_detok_stream(tok, 0, ids, n, &slen);
	if (valid)
		assert(slen == len && memcmp(s, text, len) == 0);
	else
		assert(fuzz_utf8_valid(s, slen));
	if (ktx_detokenize(tok, ids, n, 0, &w, &wlen, &err) != 0)
		abort();
	assert(wlen == slen && memcmp(w, s, slen) == 0 && w[wlen] == '\0');
	free(w);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const struct ktx_tokenizer *tok;
	struct ktx_span mid;
	struct ktx_err err;
	int32_t *ids;
	size_t n;
	bool valid;
	int v, special;

	if (size > TEXT_MAX)
		return 0;
	valid = fuzz_utf8_valid(text, size);
	for (v = 0; v < FUZZ_N_VOCAB; v++) {
		tok = fuzz_vocab(v);
		for (special = 0; special <= 1; special++) {
			/* Any bytes encode: a failure here is a bug. */
			if (ktx_tokenize(tok, text, size, special, &ids, &n, &err) != 0)
				abort();
			assert((n == 0) == (size == 0));
			check_ids(tok, ids, n, text, size, valid);
			free(ids);
		}
		mid.off = size / 3;
		mid.len = size / 3;
		if (ktx_tokenize_guarded(tok, text, size, &mid, 1, &ids, &n, &err) != 0)
			abort();
		check_ids(tok, ids, n, text, size, valid);
		free(ids);
	}
	return 0;
}
