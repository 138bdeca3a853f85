/*
 * tokenizer.h - DeepSeek's byte-level BPE, read from a GGUF vocabulary.
 *
 * The vocabulary (tokenizer.ggml.tokens, .token_type, .merges, the special
 * ids) comes from the model file; the pre-tokenizer named by
 * tokenizer.ggml.pre ("deepseek-v3", "deepseek-llm", "deepseek-coder") splits
 * text with PCRE2 before the merges run. Control and user-defined tokens are
 * found by their spelling: user-defined ones always, control ones only when
 * the caller asks for special-token parsing.
 *
 * A loaded tokenizer is read-only: ktx_tokenize and the lookups may be
 * called from several threads at once. A detokenizer is one stream's state
 * and belongs to one thread at a time.
 */
#ifndef KTX_ENGINE_TOKENIZER_H
#define KTX_ENGINE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

struct gguf_file;

/* Token types, numbered as in tokenizer.ggml.token_type. */
enum ktx_token_type {
	KTX_TOKEN_UNDEFINED = 0,
	KTX_TOKEN_NORMAL = 1,
	KTX_TOKEN_UNKNOWN = 2,
	KTX_TOKEN_CONTROL = 3,      /* BOS, EOS, <｜User｜>, ...: parsed on request */
	KTX_TOKEN_USER_DEFINED = 4, /* <think>, ...: always parsed, rendered verbatim */
	KTX_TOKEN_UNUSED = 5,
	KTX_TOKEN_BYTE = 6,
};

struct ktx_tokenizer; /* opaque, read-only once loaded */

/*
 * Builds a tokenizer from f's tokenizer.* metadata. Everything needed is
 * copied, so f may be closed afterwards. Fails with KTX_EUNSUPPORTED (naming
 * it) for a model other than "gpt2" or an unknown pre-tokenizer, KTX_EFORMAT
 * for inconsistent arrays or ids out of range.
 */
int ktx_tokenizer_load(const struct gguf_file *f, struct ktx_tokenizer **out,
    struct ktx_err *err);
void ktx_tokenizer_free(struct ktx_tokenizer *tok);

/*
 * Encodes len bytes of text (UTF-8; need not be NUL-terminated) into
 * *ids (allocated with malloc, the caller frees; NULL when *n_ids is 0).
 * No BOS is added: callers prepend ktx_token_bos() when
 * ktx_token_add_bos() says so. With parse_special, the spellings of control
 * tokens become those tokens; otherwise they are ordinary text. Bytes that are
 * not valid UTF-8 are never matched by the pre-tokenizer's classes and are
 * encoded as byte tokens, so any input encodes.
 */
int ktx_tokenize(const struct ktx_tokenizer *tok, const char *text, size_t len,
    bool parse_special, int32_t **ids, size_t *n_ids, struct ktx_err *err);

/* A byte range [off, off + len) of a text. */
struct ktx_span {
	size_t off, len;
};

/*
 * ktx_tokenize with special tokens parsed everywhere except inside the
 * n_plain ranges (sorted, not overlapping), where control-token spellings are
 * ordinary text (user-defined ones are still parsed, as always) and no
 * special token crosses a range's edge. For prompts built
 * from a template and untrusted text: the template's markers become special
 * tokens, a user's text cannot forge one, and the ids equal the plain
 * parse_special ones whenever the guarded text spells no control token.
 */
int ktx_tokenize_guarded(const struct ktx_tokenizer *tok, const char *text, size_t len,
    const struct ktx_span *plain, size_t n_plain, int32_t **ids, size_t *n_ids,
    struct ktx_err *err);

int32_t ktx_n_vocab(const struct ktx_tokenizer *tok);
int32_t ktx_token_bos(const struct ktx_tokenizer *tok); /* -1: none */
int32_t ktx_token_eos(const struct ktx_tokenizer *tok); /* -1: none */
int32_t ktx_token_pad(const struct ktx_tokenizer *tok); /* -1: none */
bool ktx_token_add_bos(const struct ktx_tokenizer *tok);
/* The pre-tokenizer's name as stored in the file ("deepseek-v3", ...). */
const char *ktx_tokenizer_pre(const struct ktx_tokenizer *tok);

/* True for ids that end a generation: EOS and the end-of-turn tokens the
 * vocabulary has (<｜end▁of▁sentence｜>, <|EOT|>). */
bool ktx_token_is_eog(const struct ktx_tokenizer *tok, int32_t id);

/* The vocabulary's spelling of id (byte-level form for normal tokens, e.g.
 * "Ġthe"), not NUL-terminated; NULL when id is out of range. */
const char *ktx_token_text(const struct ktx_tokenizer *tok, int32_t id, size_t *len);
enum ktx_token_type ktx_token_type(const struct ktx_tokenizer *tok, int32_t id);

/* The id whose spelling is exactly text[0..len) ("<｜Assistant｜>"), or -1. */
int32_t ktx_tokenizer_find(const struct ktx_tokenizer *tok, const char *text, size_t len);

/*
 * The bytes id stands for: normal tokens through the byte-level mapping,
 * control and user-defined tokens as their spelling. Writes up to cap bytes
 * to buf and the full length to *len (call again with a larger buffer when
 * *len > cap). KTX_ENOTFOUND for an id out of range.
 */
int ktx_token_bytes(const struct ktx_tokenizer *tok, int32_t id, char *buf, size_t cap,
    size_t *len, struct ktx_err *err);

/*
 * Streaming detokenizer: ids in, text out, never half a UTF-8 character.
 * Bytes of a character split across tokens are held back until it is
 * complete; bytes that cannot start or continue a valid character come out
 * as U+FFFD. The returned text is valid until the next call on d.
 */
struct ktx_detok; /* opaque */

/* Flags for ktx_detok_new and ktx_detokenize. */
#define KTX_DETOK_SKIP_CONTROL 0x1 /* control tokens (BOS, EOS, ...) render as nothing */

int ktx_detok_new(const struct ktx_tokenizer *tok, unsigned flags, struct ktx_detok **out,
    struct ktx_err *err);
void ktx_detok_free(struct ktx_detok *d);
/* Adds id; text and len receive the complete characters now available. */
int ktx_detok_push(struct ktx_detok *d, int32_t id, const char **text, size_t *len,
    struct ktx_err *err);
/* Ends the stream: whatever is held back comes out (as U+FFFD). */
void ktx_detok_flush(struct ktx_detok *d, const char **text, size_t *len);

/* Whole-sequence decoding with the same rules; *out is malloc'ed and
 * NUL-terminated (the caller frees). */
int ktx_detokenize(const struct ktx_tokenizer *tok, const int32_t *ids, size_t n_ids,
    unsigned flags, char **out, size_t *len, struct ktx_err *err);

#endif
