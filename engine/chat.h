/*
 * chat.h - DeepSeek's conversation formats, rendered to prompt text.
 *
 * Not a Jinja engine: a C renderer for each format DeepSeek shipped, giving
 * byte for byte what the model's own template gives (checked against the
 * real templates' output in tests/oracle/test_chat_template.py):
 *   deepseek-r1  R1's template (also in V3-0324 era files): system prompts
 *                joined by a blank line, <｜User｜>/<｜Assistant｜> turns, the
 *                thinking of earlier assistant turns (everything up to the
 *                last </think>) dropped, generation prompt
 *                "<｜Assistant｜><think>\n";
 *   deepseek-v3  V3's original template: the same turns, thinking kept,
 *                generation prompt "<｜Assistant｜>";
 *   deepseek-v2  V2-Chat's "User: ...\n\nAssistant: ...<｜end▁of▁sentence｜>".
 * The text starts with the BOS spelling, so it is tokenized with special
 * tokens parsed and without adding another BOS.
 */
#ifndef KTX_ENGINE_CHAT_H
#define KTX_ENGINE_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

struct gguf_file;

enum ktx_chat_style {
	KTX_CHAT_DEEPSEEK_R1,
	KTX_CHAT_DEEPSEEK_V3,
	KTX_CHAT_DEEPSEEK_V2,
};

enum ktx_chat_role {
	KTX_ROLE_SYSTEM,
	KTX_ROLE_USER,
	KTX_ROLE_ASSISTANT,
	KTX_ROLE_TOOL, /* a tool's output, answering the previous tool calls */
};

/* One call an assistant turn asks for (R1 and V3 formats only). */
struct ktx_chat_tool_call {
	const char *type;      /* "function" */
	const char *name;
	const char *arguments; /* JSON text, rendered as is */
};

struct ktx_chat_msg {
	enum ktx_chat_role role;
	const char *content;   /* NUL-terminated UTF-8; NULL: none (rendered as "") */
	const struct ktx_chat_tool_call *tool_calls; /* assistant only; NULL: none */
	size_t n_tool_calls;
};

/* "deepseek-r1", "deepseek-v3", "deepseek-v2". */
const char *ktx_chat_style_name(enum ktx_chat_style style);
/* The style called name; KTX_ENOTFOUND (listing the names) otherwise. */
int ktx_chat_style_from_name(const char *name, enum ktx_chat_style *out, struct ktx_err *err);
/*
 * The style a Jinja template text implements, recognised by the strings
 * that tell DeepSeek's templates apart; KTX_EUNSUPPORTED when it is none of
 * them.
 */
int ktx_chat_style_detect(const char *tmpl, size_t len, enum ktx_chat_style *out,
    struct ktx_err *err);
/* The style of a model file's tokenizer.chat_template; a file without one
 * gets deepseek-r1 when its vocabulary has <think>, deepseek-v3 otherwise. */
int ktx_chat_style_from_gguf(const struct gguf_file *f, enum ktx_chat_style *out,
    struct ktx_err *err);

/*
 * Renders n messages; with add_generation_prompt the text ends where the
 * assistant's answer begins. *out is malloc'ed and NUL-terminated (the caller
 * frees), *len its length. KTX_EINVAL for a role out of range or tool calls
 * in a style that has none.
 */
int ktx_chat_render(enum ktx_chat_style style, const struct ktx_chat_msg *msgs, size_t n,
    bool add_generation_prompt, char **out, size_t *len, struct ktx_err *err);

struct ktx_tokenizer;

/*
 * Renders as ktx_chat_render, then tokenizes with the template's markers as
 * special tokens and the messages' own text guarded (ktx_tokenize_guarded):
 * a message that spells "<｜Assistant｜>" gets the text, not the marker. The
 * ids equal those of tokenizing the rendered text with special tokens parsed
 * whenever no message spells a control token. *ids is malloc'ed.
 */
int ktx_chat_tokenize(const struct ktx_tokenizer *tok, enum ktx_chat_style style,
    const struct ktx_chat_msg *msgs, size_t n, bool add_generation_prompt, int32_t **ids,
    size_t *n_ids, struct ktx_err *err);

#endif
