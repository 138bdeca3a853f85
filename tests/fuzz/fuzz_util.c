/*
 * fuzz_util.c - the vocabularies, UTF-8 check and streaming decode shared
 * by fuzz_tokenize and fuzz_chat.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

#ifndef KTX_FUZZ_DATA
#define KTX_FUZZ_DATA "tests/fuzz/data"
#endif

static const char *const vocab_files[FUZZ_N_VOCAB] = {
	"tiny-vocab.gguf", "tiny-vocab-llm.gguf", "tiny-vocab-coder.gguf",
};

static struct ktx_tokenizer *vocabs[FUZZ_N_VOCAB];

const struct ktx_tokenizer *
fuzz_vocab(int i)
{
	char path[4096];
	struct gguf_file *f;
	struct ktx_err err;
	const char *src;

	if (vocabs[i] != NULL)
		return vocabs[i];
	/* make check says where the source tree is; a libFuzzer run started
	 * by hand finds it through the path compiled in. */
	src = getenv("KTX_SRCDIR");
	if (src != NULL)
		snprintf(path, sizeof(path), "%s/tests/fuzz/data/%s", src, vocab_files[i]);
	else
		snprintf(path, sizeof(path), "%s/%s", KTX_FUZZ_DATA, vocab_files[i]);
	if (gguf_open(path, &f, &err) != 0 || ktx_tokenizer_load(f, &vocabs[i], &err) != 0) {
		fprintf(stderr, "fuzz: cannot load %s: %s\n", path, err.msg);
		abort();
	}
	gguf_close(f);
	return vocabs[i];
}

bool
fuzz_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;
	uint32_t cp, min;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			len = 2, cp = p[i] & 0x1f, min = 0x80;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			len = 3, cp = p[i] & 0x0f, min = 0x800;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			len = 4, cp = p[i] & 0x07, min = 0x10000;
		else
			return false;
		if (n - i < len)
			return false;
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

char *
fuzz_detok_stream(const struct ktx_tokenizer *tok, unsigned flags, const int32_t *ids, size_t n,
    size_t *len)
{
	struct ktx_detok *d;
	struct ktx_err err;
	const char *piece;
	size_t i, plen, cap = 64;
	char *out, *nb;

	*len = 0;
	if ((out = malloc(cap)) == NULL || ktx_detok_new(tok, flags, &d, &err) != 0)
		abort();
	for (i = 0; i <= n; i++) {
		if (i < n) {
			if (ktx_detok_push(d, ids[i], &piece, &plen, &err) != 0)
				abort();
		} else {
			ktx_detok_flush(d, &piece, &plen);
		}
		if (*len + plen > cap) {
			while (*len + plen > cap)
				cap *= 2;
			if ((nb = realloc(out, cap)) == NULL)
				abort();
			out = nb;
		}
		if (plen > 0)
			memcpy(out + *len, piece, plen);
		*len += plen;
	}
	ktx_detok_free(d);
	return out;
}
