/*
 * detok.c - turning token ids back into text, whole or streamed.
 *
 * Each token's bytes are computed once at load (tok_load_decode): normal
 * tokens through the reverse byte-level mapping, control and user-defined
 * ones as their spelling (as llama.cpp renders them), unused ones as
 * nothing. A character often spans tokens (a CJK character or an emoji is
 * several byte symbols), so the streaming detokenizer holds back the bytes
 * of an unfinished character and lets only whole characters out; bytes that
 * can never form one become U+FFFD, one per maximal invalid subpart as
 * Unicode recommends (section 3.9, "U+FFFD Substitution of Maximal
 * Subparts").
 */
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"

/*
 * Classifies the bytes at s[0..n), n >= 1: returns the length of a complete
 * valid character, 0 when they are the valid start of one that needs more
 * bytes, or -k when the first k bytes are a maximal invalid subpart.
 * The ranges are those of Unicode Table 3-7 (well-formed UTF-8).
 */
static int
utf8_check(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c == 0xe0)
		need = 2, lo = 0xa0;
	else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
		need = 2;
	else if (c == 0xed)
		need = 2, hi = 0x9f;
	else if (c == 0xf0)
		need = 3, lo = 0x90;
	else if (c >= 0xf1 && c <= 0xf3)
		need = 3;
	else if (c == 0xf4)
		need = 3, hi = 0x8f;
	else
		return -1;
	for (i = 1; i <= need; i++) {
		unsigned char b;

		if ((size_t)i >= n)
			return 0;
		b = s[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return -i;
	}
	return need + 1;
}

/* Appends the bytes token id decodes to (at most 4 per character of its
 * spelling, so the caller reserves 4 * spelling length). Returns the count. */
static size_t
decode_one(const struct ktx_tokenizer *tok, int32_t id, char *out)
{
	const unsigned char *s = (const unsigned char *)tok_text(tok, id);
	size_t n = tok_text_len(tok, id), i = 0, o = 0;

	switch (tok->type[id]) {
	case KTX_TOKEN_NORMAL:
	case KTX_TOKEN_BYTE:
		break;
	case KTX_TOKEN_CONTROL:
	case KTX_TOKEN_USER_DEFINED:
	case KTX_TOKEN_UNKNOWN:
		memcpy(out, s, n);
		return n;
	default:
		return 0;
	}
	while (i < n) {
		int k = utf8_check(s + i, n - i);
		uint32_t cp;

		if (k <= 0) {
			/* Not UTF-8: no byte-level character; keep the byte. */
			out[o++] = (char)s[i++];
			continue;
		}
		if (k == 1)
			cp = s[i];
		else if (k == 2)
			cp = (uint32_t)(s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f);
		else
			cp = TOK_BYTE_CP_MAX; /* 3- and 4-byte characters are never byte symbols */
		if (cp < TOK_BYTE_CP_MAX && tok->byte_of_cp[cp] >= 0) {
			out[o++] = (char)tok->byte_of_cp[cp];
		} else {
			memcpy(out + o, s + i, (size_t)k);
			o += (size_t)k;
		}
		i += (size_t)k;
	}
	return o;
}

int
tok_load_decode(struct ktx_tokenizer *tok, struct ktx_err *err)
{
	size_t total = tok->toff[tok->n_vocab], o = 0;
	int32_t id;

	/* Decoding never makes a token longer than its spelling. */
	tok->doff = malloc(((size_t)tok->n_vocab + 1) * sizeof(*tok->doff));
	tok->dec = malloc(total ? total : 1);
	if (tok->doff == NULL || tok->dec == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the decode table");
	for (id = 0; id < tok->n_vocab; id++) {
		tok->doff[id] = (uint32_t)o;
		o += decode_one(tok, id, tok->dec + o);
	}
	tok->doff[tok->n_vocab] = (uint32_t)o;
	return KTX_OK;
}

int
ktx_token_bytes(const struct ktx_tokenizer *tok, int32_t id, char *buf, size_t cap, size_t *len,
    struct ktx_err *err)
{
	size_t n;

	if (id < 0 || id >= tok->n_vocab) {
		*len = 0;
		return ktx_err_set(err, KTX_ENOTFOUND,
		    "token id %d is not in the vocabulary (0..%d)",
		    id, tok->n_vocab - 1);
	}
	n = tok->doff[id + 1] - tok->doff[id];
	memcpy(buf, tok->dec + tok->doff[id], n < cap ? n : cap);
	*len = n;
	return KTX_OK;
}

/* ---- streaming ---------------------------------------------------------- */

struct ktx_detok {
	const struct ktx_tokenizer *tok;
	unsigned flags;
	unsigned char held[4]; /* the start of an unfinished character */
	size_t n_held;
	char *out;
	size_t cap;
};

int
ktx_detok_new(const struct ktx_tokenizer *tok, unsigned flags, struct ktx_detok **out,
    struct ktx_err *err)
{
	struct ktx_detok *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (d == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for a detokenizer");
	d->tok = tok;
	d->flags = flags;
	*out = d;
	return KTX_OK;
}

void
ktx_detok_free(struct ktx_detok *d)
{
	if (d == NULL)
		return;
	free(d->out);
	free(d);
}

/* Makes room for n bytes of output. */
static int
detok_reserve(struct ktx_detok *d, size_t n, struct ktx_err *err)
{
	char *p;

	if (n <= d->cap)
		return KTX_OK;
	if ((p = realloc(d->out, n)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory decoding a token");
	d->out = p;
	d->cap = n;
	return KTX_OK;
}

static const char replacement[3] = {(char)0xef, (char)0xbf, (char)0xbd}; /* U+FFFD */

/*
 * Moves the whole characters of s[0..n) to d->out at *o (which has room for
 * 3 bytes per input byte) and keeps an unfinished tail in d->held.
 */
static void
detok_scan(struct ktx_detok *d, const unsigned char *s, size_t n, size_t *o)
{
	size_t i = 0;

	while (i < n) {
		int k = utf8_check(s + i, n - i);

		if (k == 0) {
			memcpy(d->held, s + i, n - i);
			d->n_held = n - i;
			return;
		}
		if (k < 0) {
			memcpy(d->out + *o, replacement, 3);
			*o += 3;
			i += (size_t)-k;
			continue;
		}
		memcpy(d->out + *o, s + i, (size_t)k);
		*o += (size_t)k;
		i += (size_t)k;
	}
}

int
ktx_detok_push(struct ktx_detok *d, int32_t id, const char **text, size_t *len,
    struct ktx_err *err)
{
	const struct ktx_tokenizer *tok = d->tok;
	const unsigned char *b;
	size_t n, o = 0, held = d->n_held;
	unsigned char *joined;
	int rc;

	*text = "";
	*len = 0;
	if (id < 0 || id >= tok->n_vocab)
		return ktx_err_set(err, KTX_ENOTFOUND,
		    "token id %d is not in the vocabulary (0..%d)",
		    id, tok->n_vocab - 1);
	if ((d->flags & KTX_DETOK_SKIP_CONTROL) && tok->type[id] == KTX_TOKEN_CONTROL)
		return KTX_OK;
	b = (const unsigned char *)tok->dec + tok->doff[id];
	n = tok->doff[id + 1] - tok->doff[id];
	if (n == 0)
		return KTX_OK;
	/* Output room: 3 bytes per input byte (U+FFFD each at worst), and
	 * the held bytes joined in front of the token's bytes after it. */
	if ((rc = detok_reserve(d, 4 * (held + n), err)) != KTX_OK)
		return rc;
	joined = (unsigned char *)d->out + 3 * (held + n);
	memcpy(joined, d->held, held);
	memcpy(joined + held, b, n);
	d->n_held = 0;
	detok_scan(d, joined, held + n, &o);
	*text = d->out;
	*len = o;
	return KTX_OK;
}

void
ktx_detok_flush(struct ktx_detok *d, const char **text, size_t *len)
{
	/* What is held is the valid start of one character: one U+FFFD. */
	*text = d->n_held ? replacement : "";
	*len = d->n_held ? 3 : 0;
	d->n_held = 0;
}

int
ktx_detokenize(const struct ktx_tokenizer *tok, const int32_t *ids, size_t n_ids, unsigned flags,
    char **out, size_t *len, struct ktx_err *err)
{
	struct ktx_detok *d;
	char *buf = NULL;
	size_t n = 0, cap = 0, i;
	const char *t;
	size_t tl;
	int rc;

	*out = NULL;
	*len = 0;
	if ((rc = ktx_detok_new(tok, flags, &d, err)) != KTX_OK)
		return rc;
	for (i = 0; i <= n_ids; i++) {
		if (i < n_ids)
			rc = ktx_detok_push(d, ids[i], &t, &tl, err);
		else
			ktx_detok_flush(d, &t, &tl);
		if (rc != KTX_OK)
			break;
		if (n + tl + 1 > cap) {
			size_t nc = 2 * (n + tl + 1);
			char *nb = realloc(buf, nc);

			if (nb == NULL) {
				rc = ktx_err_set(err, KTX_ENOMEM,
				    "out of memory decoding %zu tokens", n_ids);
				break;
			}
			buf = nb;
			cap = nc;
		}
		memcpy(buf + n, t, tl);
		n += tl;
	}
	ktx_detok_free(d);
	if (rc != KTX_OK) {
		free(buf);
		return rc;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory decoding tokens");
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return KTX_OK;
}
