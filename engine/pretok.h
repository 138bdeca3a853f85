/*
 * pretok.h - the pre-tokenizers of DeepSeek's vocabularies (engine-internal).
 *
 * A pre-tokenizer cuts text into pieces before byte-level BPE runs on each
 * piece; BPE never merges across a cut. DeepSeek's are sequences of regex
 * splits: each regex in turn splits every piece from the previous step into
 * its matches and the text between them, all kept in order.
 */
#ifndef KTX_ENGINE_PRETOK_H
#define KTX_ENGINE_PRETOK_H

#include <stddef.h>

#include "engine/err.h"

struct ktx_pretok; /* compiled regexes; read-only, shareable between threads */

/* Receives each piece, in order; a non-zero return stops the split and is
 * returned by ktx_pretok_split. */
typedef int (*ktx_piece_fn)(void *ctx, const char *piece, size_t len, struct ktx_err *err);

/* Compiles the pre-tokenizer called name (not NUL-terminated, len bytes):
 * "deepseek-v3", "deepseek-llm" or "deepseek-coder"; KTX_EUNSUPPORTED
 * naming it otherwise. */
int ktx_pretok_new(const char *name, size_t len, struct ktx_pretok **out, struct ktx_err *err);
void ktx_pretok_free(struct ktx_pretok *p);
const char *ktx_pretok_name(const struct ktx_pretok *p);

/*
 * Calls fn for each piece of text[0..len), in order; the pieces cover the
 * text exactly. Any bytes are accepted: bytes that are not valid UTF-8 match
 * no class and end up in the gaps between matches. The split is depth first
 * (each match of one regex goes through the next regexes at once), so it
 * needs no memory proportional to the text.
 */
int ktx_pretok_split(const struct ktx_pretok *p, const char *text, size_t len, ktx_piece_fn fn,
    void *ctx, struct ktx_err *err);

#endif
