/*
 * tokenizer_impl.h - the inside of struct ktx_tokenizer, shared by
 * tokenizer.c (loading), encode.c (encoding) and detok.c (decoding).
 * Engine-internal.
 */
#ifndef KTX_ENGINE_TOKENIZER_IMPL_H
#define KTX_ENGINE_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

struct ktx_pretok;

/* Byte-level characters run from U+0000 to U+0143 (256 + 68 - 1). */
#define TOK_BYTE_CP_MAX 0x144

/* A merge: the pair (left id << 32 | right id), its rank (its line in
 * tokenizer.ggml.merges; -1 marks an empty slot) and the merged token. */
struct tok_merge {
	uint64_t key;
	int32_t rank, id;
};

struct ktx_tokenizer {
	int32_t n_vocab;
	char *text;          /* every spelling, back to back */
	uint32_t *toff;      /* [n_vocab + 1] offsets into text */
	char *dec;           /* the bytes each token decodes to, back to back */
	uint32_t *doff;      /* [n_vocab + 1] offsets into dec */
	uint8_t *type;       /* [n_vocab] enum ktx_token_type */
	int32_t *id_table;   /* spelling -> id, open addressing, -1 empty */
	size_t id_mask;
	struct tok_merge *merge_table; /* open addressing */
	size_t merge_mask;
	int32_t byte_id[256];          /* byte -> its byte symbol's id, or -1 */
	uint32_t cp_of_byte[256];
	int16_t byte_of_cp[TOK_BYTE_CP_MAX]; /* -1: not a byte-level character */
	/* Special tokens by their first two bytes: sp_ids[sp_start[k] ..
	 * sp_start[k + 1]) are those starting with k, longest first. */
	int32_t *sp_ids;
	uint32_t *sp_start;  /* [65537] */
	int32_t sp_single[256]; /* one-byte specials */
	uint8_t sp_first[256];  /* 1: some special starts with this byte */
	int32_t bos, eos, pad;
	bool add_bos;
	int32_t eog[3];
	int n_eog;
	struct ktx_pretok *pre;
};

static inline const char *
tok_text(const struct ktx_tokenizer *tok, int32_t id)
{
	return tok->text + tok->toff[id];
}

static inline size_t
tok_text_len(const struct ktx_tokenizer *tok, int32_t id)
{
	return tok->toff[id + 1] - tok->toff[id];
}

/* A hash of n bytes (FNV-1a, its high bits folded in). */
static inline uint64_t
tok_hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

/* A hash of a 64-bit key (the finaliser of MurmurHash3). */
static inline uint64_t
tok_hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* The bucket of the special-token index for text starting with s[0..1]. */
static inline uint16_t
tok_key2(const char *s)
{
	return (uint16_t)((unsigned char)s[0] << 8 | (unsigned char)s[1]);
}

/* Fills GPT-2's byte <-> character tables (tokenizer.c). */
void tok_byte_map(uint32_t cp_of_byte[256], int16_t byte_of_cp[TOK_BYTE_CP_MAX]);
/* Writes cp as UTF-8 (up to 4 bytes); returns the length (tokenizer.c). */
size_t tok_utf8_put(uint32_t cp, char *out);
/* Builds tok->dec/doff from the spellings and types (detok.c). */
int tok_load_decode(struct ktx_tokenizer *tok, struct ktx_err *err);

#endif
