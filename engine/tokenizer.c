/*
 * tokenizer.c - loading a GGUF vocabulary: spellings, types, merges, the
 * special ids, and the tables encoding (encode.c) and decoding (detok.c)
 * look things up in; plus the plain lookups of tokenizer.h.
 *
 * Merges are kept as (left id, right id) -> (rank, merged id) in a hash
 * table, spellings as text -> id in another; the special tokens are indexed
 * by their first two bytes.
 */
#include "engine/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/pretok.h"
#include "engine/tokenizer_impl.h"

/* ---- the GPT-2 byte <-> character mapping ---------------------------- */

/*
 * Byte-level BPE spells every byte as one printable character: the bytes
 * '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves, the other 68
 * (controls, space, 0x7F..0xA0, 0xAD) become U+0100.. in byte order. This is
 * the published bytes_to_unicode() of GPT-2's encoder.py.
 */
static int
byte_is_self(int b)
{
	return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

void
tok_byte_map(uint32_t cp_of_byte[256], int16_t byte_of_cp[TOK_BYTE_CP_MAX])
{
	int b, n = 0;

	for (b = 0; b < TOK_BYTE_CP_MAX; b++)
		byte_of_cp[b] = -1;
	for (b = 0; b < 256; b++) {
		cp_of_byte[b] = byte_is_self(b) ? (uint32_t)b : (uint32_t)(256 + n++);
		byte_of_cp[cp_of_byte[b]] = (int16_t)b;
	}
}

/* Writes cp as UTF-8 into out (4 bytes room); returns the length. */
size_t
tok_utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ---- hash tables ------------------------------------------------------ */

/* The smallest power of two >= 2n (and >= 16). */
static size_t
table_size(size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	return cap;
}

/* Slot of text in the id table: the one holding it, or the empty one where
 * it would go. */
static size_t
find_slot(const struct ktx_tokenizer *tok, const char *s, size_t n)
{
	size_t i = (size_t)tok_hash_bytes(s, n) & tok->id_mask;

	for (;; i = (i + 1) & tok->id_mask) {
		int32_t id = tok->id_table[i];

		if (id < 0)
			return i;
		if (tok_text_len(tok, id) == n && memcmp(tok_text(tok, id), s, n) == 0)
			return i;
	}
}

int32_t
ktx_tokenizer_find(const struct ktx_tokenizer *tok, const char *text, size_t len)
{
	return tok->id_table[find_slot(tok, text, len)];
}

/* ---- loading ---------------------------------------------------------- */

/* Reads the numeric array key into a new int32 array of count elements. */
static int
read_i32_array(const struct gguf_file *f, const char *key, uint64_t count, int32_t **out,
    struct ktx_err *err)
{
	enum gguf_vtype et;
	uint64_t n, i;
	const unsigned char *p;
	int32_t *v;
	int rc;

	*out = NULL;
	if ((rc = gguf_get_arr(f, key, &et, &n, err)) != KTX_OK)
		return rc;
	if (n != count)
		return ktx_err_set(err, KTX_EFORMAT,
		    "%s has %llu entries, tokenizer.ggml.tokens %llu",
		    key, (unsigned long long)n, (unsigned long long)count);
	if (et != GGUF_VT_INT32 && et != GGUF_VT_UINT32)
		return ktx_err_set(err, KTX_EFORMAT, "%s holds %s, not int32", key,
		    gguf_vtype_name(et));
	p = gguf_arr_data(f, gguf_kv_find(f, key));
	if ((v = malloc((count ? count : 1) * sizeof(*v))) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory reading %s", key);
	for (i = 0; i < count; i++) {
		const unsigned char *q = p + 4 * i;

		v[i] = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
		    (uint32_t)q[3] << 24);
	}
	*out = v;
	return KTX_OK;
}

/* An optional special id: -1 when key is absent; out of range is an error. */
static int
read_special_id(const struct gguf_file *f, const char *key, int32_t n_vocab, int32_t *out,
    struct ktx_err *err)
{
	uint32_t v;
	int rc;

	*out = -1;
	rc = gguf_get_u32(f, key, &v, err);
	if (rc == KTX_ENOTFOUND) {
		ktx_err_clear(err);
		return KTX_OK;
	}
	if (rc != KTX_OK)
		return rc;
	if (v >= (uint32_t)n_vocab)
		return ktx_err_set(err, KTX_EFORMAT, "%s = %u is not below the vocabulary size %d",
		    key, v, n_vocab);
	*out = (int32_t)v;
	return KTX_OK;
}

/* Reads the BOS, EOS and padding ids (-1 where the file has none). */
static int
load_special_ids(struct ktx_tokenizer *tok, const struct gguf_file *f, struct ktx_err *err)
{
	int rc;

	if ((rc = read_special_id(f, "tokenizer.ggml.bos_token_id", tok->n_vocab, &tok->bos,
	    err)) != KTX_OK)
		return rc;
	if ((rc = read_special_id(f, "tokenizer.ggml.eos_token_id", tok->n_vocab, &tok->eos,
	    err)) != KTX_OK)
		return rc;
	return read_special_id(f, "tokenizer.ggml.padding_token_id", tok->n_vocab, &tok->pad, err);
}

/* Copies the token spellings into one buffer and builds the id table. */
static int
load_tokens(struct ktx_tokenizer *tok, const struct gguf_file *f, struct ktx_err *err)
{
	const char *key = "tokenizer.ggml.tokens";
	enum gguf_vtype et;
	uint64_t n, i, total = 0;
	int64_t kv;
	int rc;

	if ((rc = gguf_get_arr(f, key, &et, &n, err)) != KTX_OK)
		return rc == KTX_ENOTFOUND ?
		    ktx_err_set(err, KTX_EFORMAT, "the file has no vocabulary (%s)", key) : rc;
	if (et != GGUF_VT_STRING)
		return ktx_err_set(err, KTX_EFORMAT, "%s holds %s, not strings", key,
		    gguf_vtype_name(et));
	if (n == 0 || n > INT32_MAX)
		return ktx_err_set(err, KTX_EFORMAT, "%s has %llu tokens", key,
		    (unsigned long long)n);
	kv = gguf_kv_find(f, key);
	for (i = 0; i < n; i++)
		total += gguf_arr_str(f, kv, i).len;
	if (total > UINT32_MAX)
		return ktx_err_set(err, KTX_EFORMAT, "%s spells %llu bytes in all", key,
		    (unsigned long long)total);
	tok->n_vocab = (int32_t)n;
	tok->toff = malloc((n + 1) * sizeof(*tok->toff));
	tok->text = malloc(total ? total : 1);
	tok->id_mask = table_size(n) - 1;
	tok->id_table = malloc((tok->id_mask + 1) * sizeof(*tok->id_table));
	if (tok->toff == NULL || tok->text == NULL || tok->id_table == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for %llu tokens",
		    (unsigned long long)n);
	memset(tok->id_table, 0xff, (tok->id_mask + 1) * sizeof(*tok->id_table));
	total = 0;
	for (i = 0; i < n; i++) {
		struct gguf_str s = gguf_arr_str(f, kv, i);

		tok->toff[i] = (uint32_t)total;
		memcpy(tok->text + total, s.ptr, s.len);
		total += s.len;
	}
	tok->toff[n] = (uint32_t)total;
	/* A spelling that occurs twice maps to its last id, as in llama.cpp. */
	for (i = 0; i < n; i++) {
		int32_t id = (int32_t)i;

		tok->id_table[find_slot(tok, tok_text(tok, id), tok_text_len(tok, id))] = id;
	}
	return KTX_OK;
}

/* Reads the token types (all NORMAL when the file has none). */
static int
load_types(struct ktx_tokenizer *tok, const struct gguf_file *f, struct ktx_err *err)
{
	int32_t *t = NULL, i;
	int rc;

	if ((tok->type = malloc((size_t)tok->n_vocab)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for token types");
	if (gguf_kv_find(f, "tokenizer.ggml.token_type") < 0) {
		memset(tok->type, KTX_TOKEN_NORMAL, (size_t)tok->n_vocab);
		return KTX_OK;
	}
	rc = read_i32_array(f, "tokenizer.ggml.token_type", (uint64_t)tok->n_vocab, &t, err);
	if (rc != KTX_OK)
		return rc;
	for (i = 0; i < tok->n_vocab; i++) {
		if (t[i] < KTX_TOKEN_UNDEFINED || t[i] > KTX_TOKEN_BYTE) {
			rc = ktx_err_set(err, KTX_EFORMAT, "token %d has type %d (types are 0..6)",
			    i, t[i]);
			break;
		}
		tok->type[i] = (uint8_t)t[i];
	}
	free(t);
	return rc;
}

/* Maps each byte to the id of its byte symbol (-1 when the vocabulary
 * lacks it: such a byte cannot be encoded) and back. */
static void
load_bytes(struct ktx_tokenizer *tok)
{
	int b;

	tok_byte_map(tok->cp_of_byte, tok->byte_of_cp);
	for (b = 0; b < 256; b++) {
		char u[4];
		size_t n = tok_utf8_put(tok->cp_of_byte[b], u);

		tok->byte_id[b] = ktx_tokenizer_find(tok, u, n);
	}
}

/* Parses the merges "A B" in rank order into the merge table. Merges whose
 * parts or result are not tokens can never fire and are left out. */
static int
load_merges(struct ktx_tokenizer *tok, const struct gguf_file *f, struct ktx_err *err)
{
	const char *key = "tokenizer.ggml.merges";
	enum gguf_vtype et;
	uint64_t n, i;
	int64_t kv;
	char *buf = NULL;
	size_t bufcap = 0;
	int rc;

	if ((rc = gguf_get_arr(f, key, &et, &n, err)) != KTX_OK)
		return rc == KTX_ENOTFOUND ?
		    ktx_err_set(err, KTX_EFORMAT, "the vocabulary has no %s", key) : rc;
	if (et != GGUF_VT_STRING)
		return ktx_err_set(err, KTX_EFORMAT, "%s holds %s, not strings", key,
		    gguf_vtype_name(et));
	if (n > INT32_MAX)
		return ktx_err_set(err, KTX_EFORMAT, "%s has %llu entries", key,
		    (unsigned long long)n);
	kv = gguf_kv_find(f, key);
	tok->merge_mask = table_size(n) - 1;
	tok->merge_table = malloc((tok->merge_mask + 1) * sizeof(*tok->merge_table));
	if (tok->merge_table == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for %llu merges",
		    (unsigned long long)n);
	for (i = 0; i <= tok->merge_mask; i++)
		tok->merge_table[i].rank = -1;
	for (i = 0; i < n; i++) {
		struct gguf_str s = gguf_arr_str(f, kv, i);
		const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
		int32_t l, r, m;
		size_t nl, nr, slot;
		uint64_t keyv;

		/* The separator is the first space after the first byte
		 * (llama.cpp looks from index 1 too). */
		if (sp == NULL) {
			rc = ktx_err_set(err, KTX_EFORMAT,
			    "%s[%llu] has no space between its parts",
			    key, (unsigned long long)i);
			break;
		}
		nl = (size_t)(sp - s.ptr);
		nr = s.len - nl - 1;
		l = ktx_tokenizer_find(tok, s.ptr, nl);
		r = ktx_tokenizer_find(tok, sp + 1, nr);
		if (l < 0 || r < 0)
			continue;
		if (nl + nr > bufcap) {
			char *nb = realloc(buf, nl + nr);

			if (nb == NULL) {
				rc = ktx_err_set(err, KTX_ENOMEM, "out of memory reading merges");
				break;
			}
			buf = nb;
			bufcap = nl + nr;
		}
		memcpy(buf, s.ptr, nl);
		memcpy(buf + nl, sp + 1, nr);
		if ((m = ktx_tokenizer_find(tok, buf, nl + nr)) < 0)
			continue;
		keyv = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
		slot = (size_t)tok_hash_u64(keyv) & tok->merge_mask;
		while (tok->merge_table[slot].rank >= 0 && tok->merge_table[slot].key != keyv)
			slot = (slot + 1) & tok->merge_mask;
		if (tok->merge_table[slot].rank >= 0)
			continue; /* a repeated pair keeps its first (best) rank */
		tok->merge_table[slot].key = keyv;
		tok->merge_table[slot].rank = (int32_t)i;
		tok->merge_table[slot].id = m;
	}
	free(buf);
	return rc;
}

/* Whether tokens of this type are matched by their spelling in text. */
static bool
type_is_special(uint8_t t)
{
	return t == KTX_TOKEN_CONTROL || t == KTX_TOKEN_USER_DEFINED || t == KTX_TOKEN_UNKNOWN;
}

/* An entry of the special index while it is sorted. */
struct sp_sort {
	uint16_t key;
	uint32_t len;
	int32_t id;
};

/* Sort order of the special index: by first two bytes, longest first. */
static int
cmp_special(const void *a, const void *b)
{
	const struct sp_sort *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Indexes the special tokens by their first two bytes (longest first within
 * a bucket) so the scan of the text tries only the few that can match;
 * one-byte specials go to a table of their own.
 */
static int
load_specials(struct ktx_tokenizer *tok, struct ktx_err *err)
{
	struct sp_sort *sorted;
	int32_t i, n = 0;
	size_t k;

	for (k = 0; k < 256; k++)
		tok->sp_single[k] = -1;
	for (i = 0; i < tok->n_vocab; i++) {
		size_t len = tok_text_len(tok, i);

		if (!type_is_special(tok->type[i]) || len == 0)
			continue;
		tok->sp_first[(unsigned char)tok_text(tok, i)[0]] = 1;
		if (len == 1)
			tok->sp_single[(unsigned char)tok_text(tok, i)[0]] = i;
		else
			n++;
	}
	tok->sp_ids = malloc((size_t)(n ? n : 1) * sizeof(*tok->sp_ids));
	tok->sp_start = calloc(65536 + 1, sizeof(*tok->sp_start));
	sorted = malloc((size_t)(n ? n : 1) * sizeof(*sorted));
	if (tok->sp_ids == NULL || tok->sp_start == NULL || sorted == NULL) {
		free(sorted);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory indexing special tokens");
	}
	n = 0;
	for (i = 0; i < tok->n_vocab; i++) {
		if (type_is_special(tok->type[i]) && tok_text_len(tok, i) >= 2) {
			sorted[n].key = tok_key2(tok_text(tok, i));
			sorted[n].len = (uint32_t)tok_text_len(tok, i);
			sorted[n].id = i;
			n++;
		}
	}
	qsort(sorted, (size_t)n, sizeof(*sorted), cmp_special);
	for (i = 0; i < n; i++) {
		tok->sp_ids[i] = sorted[i].id;
		tok->sp_start[sorted[i].key + 1]++;
	}
	free(sorted);
	for (k = 0; k < 65536; k++)
		tok->sp_start[k + 1] += tok->sp_start[k];
	return KTX_OK;
}

/* Marks the end-of-generation ids: EOS and the end-of-turn spellings. */
static void
load_eog(struct ktx_tokenizer *tok)
{
	static const char *const names[] = {"<｜end▁of▁sentence｜>", "<|EOT|>"};
	size_t i;

	if (tok->eos >= 0)
		tok->eog[tok->n_eog++] = tok->eos;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int32_t id = ktx_tokenizer_find(tok, names[i], strlen(names[i]));

		if (id >= 0 && id != tok->eos)
			tok->eog[tok->n_eog++] = id;
	}
}

int
ktx_tokenizer_load(const struct gguf_file *f, struct ktx_tokenizer **out, struct ktx_err *err)
{
	struct ktx_tokenizer *tok;
	struct gguf_str model, pre;
	int rc;

	*out = NULL;
	if ((rc = gguf_get_str(f, "tokenizer.ggml.model", &model, err)) != KTX_OK)
		return rc == KTX_ENOTFOUND ? ktx_err_set(err, KTX_EFORMAT,
		    "the file has no tokenizer (tokenizer.ggml.model is missing)") : rc;
	if (model.len != 4 || memcmp(model.ptr, "gpt2", 4) != 0)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    "tokenizer model \"%.*s\" is not supported (ktx reads \"gpt2\" BPE)",
		    (int)(model.len > 64 ? 64 : model.len), model.ptr);
	if ((rc = gguf_get_str(f, "tokenizer.ggml.pre", &pre, err)) != KTX_OK)
		return rc == KTX_ENOTFOUND ? ktx_err_set(err, KTX_EUNSUPPORTED,
		    "the vocabulary names no pre-tokenizer (tokenizer.ggml.pre)") : rc;
	if ((tok = calloc(1, sizeof(*tok))) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory loading the tokenizer");
	if ((rc = ktx_pretok_new(pre.ptr, pre.len, &tok->pre, err)) != KTX_OK ||
	    (rc = load_tokens(tok, f, err)) != KTX_OK ||
	    (rc = load_types(tok, f, err)) != KTX_OK)
		goto fail;
	load_bytes(tok);
	if ((rc = load_merges(tok, f, err)) != KTX_OK ||
	    (rc = load_specials(tok, err)) != KTX_OK ||
	    (rc = tok_load_decode(tok, err)) != KTX_OK ||
	    (rc = load_special_ids(tok, f, err)) != KTX_OK)
		goto fail;
	rc = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &tok->add_bos, err);
	if (rc == KTX_ENOTFOUND) {
		ktx_err_clear(err);
		tok->add_bos = false;
	} else if (rc != KTX_OK) {
		goto fail;
	}
	load_eog(tok);
	*out = tok;
	return KTX_OK;
fail:
	ktx_tokenizer_free(tok);
	return rc;
}

void
ktx_tokenizer_free(struct ktx_tokenizer *tok)
{
	if (tok == NULL)
		return;
	ktx_pretok_free(tok->pre);
	free(tok->text);
	free(tok->toff);
	free(tok->dec);
	free(tok->doff);
	free(tok->type);
	free(tok->id_table);
	free(tok->merge_table);
	free(tok->sp_ids);
	free(tok->sp_start);
	free(tok);
}

/* ---- lookups ---------------------------------------------------------- */

int32_t
ktx_n_vocab(const struct ktx_tokenizer *tok)
{
	return tok->n_vocab;
}

int32_t
ktx_token_bos(const struct ktx_tokenizer *tok)
{
	return tok->bos;
}

int32_t
ktx_token_eos(const struct ktx_tokenizer *tok)
{
	return tok->eos;
}

int32_t
ktx_token_pad(const struct ktx_tokenizer *tok)
{
	return tok->pad;
}

bool
ktx_token_add_bos(const struct ktx_tokenizer *tok)
{
	return tok->add_bos;
}

const char *
ktx_tokenizer_pre(const struct ktx_tokenizer *tok)
{
	return ktx_pretok_name(tok->pre);
}

bool
ktx_token_is_eog(const struct ktx_tokenizer *tok, int32_t id)
{
	int i;

	for (i = 0; i < tok->n_eog; i++) {
		if (tok->eog[i] == id)
			return true;
	}
	return false;
}

const char *
ktx_token_text(const struct ktx_tokenizer *tok, int32_t id, size_t *len)
{
	if (id < 0 || id >= tok->n_vocab) {
		*len = 0;
		return NULL;
	}
	*len = tok_text_len(tok, id);
	return tok_text(tok, id);
}

enum ktx_token_type
ktx_token_type(const struct ktx_tokenizer *tok, int32_t id)
{
	if (id < 0 || id >= tok->n_vocab)
		return KTX_TOKEN_UNDEFINED;
	return (enum ktx_token_type)tok->type[id];
}
