/*
 * chat.c - DeepSeek's chat templates as C: conversation in, prompt text out.
 *
 * Each renderer follows its Jinja template statement by statement,
 * including the templates' own quirks, because the model was trained on
 * exactly that text: the R1 and V3 templates never reset their "first tool
 * call" and "first tool output" flags, V3's template closes a tool-call turn
 * only after a second call, and a user turn after tool outputs does not
 * close them. The templates are the tokenizer_config.json chat_template of
 * deepseek-ai/DeepSeek-R1 (as stored in the oracle's deepseek-v3.gguf),
 * deepseek-ai/DeepSeek-V3 (original release) and DeepSeek-V2-Chat (as
 * quoted in llama.cpp tests/test-chat-template.cpp).
 */
#include "engine/chat.h"

#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

#define BOS "<｜begin▁of▁sentence｜>"
#define EOS "<｜end▁of▁sentence｜>"
#define USER "<｜User｜>"
#define ASSISTANT "<｜Assistant｜>"
#define CALLS_BEGIN "<｜tool▁calls▁begin｜>"
#define CALLS_END "<｜tool▁calls▁end｜>"
#define CALL_BEGIN "<｜tool▁call▁begin｜>"
#define CALL_END "<｜tool▁call▁end｜>"
#define SEP "<｜tool▁sep｜>"
#define OUTPUTS_BEGIN "<｜tool▁outputs▁begin｜>"
#define OUTPUTS_END "<｜tool▁outputs▁end｜>"
#define OUTPUT_BEGIN "<｜tool▁output▁begin｜>"
#define OUTPUT_END "<｜tool▁output▁end｜>"

static const char *const style_names[] = {
	[KTX_CHAT_DEEPSEEK_R1] = "deepseek-r1",
	[KTX_CHAT_DEEPSEEK_V3] = "deepseek-v3",
	[KTX_CHAT_DEEPSEEK_V2] = "deepseek-v2",
};

const char *
ktx_chat_style_name(enum ktx_chat_style style)
{
	if ((unsigned)style >= sizeof(style_names) / sizeof(style_names[0]))
		return "unknown";
	return style_names[style];
}

int
ktx_chat_style_from_name(const char *name, enum ktx_chat_style *out, struct ktx_err *err)
{
	size_t i;

	for (i = 0; i < sizeof(style_names) / sizeof(style_names[0]); i++) {
		if (strcmp(name, style_names[i]) == 0) {
			*out = (enum ktx_chat_style)i;
			return KTX_OK;
		}
	}
	return ktx_err_set(err, KTX_ENOTFOUND,
	    "no chat template \"%s\" (ktx has deepseek-r1, deepseek-v3, deepseek-v2)", name);
}

/* Whether needle occurs in hay[0..len). */
static int
contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= len; i++) {
		if (memcmp(hay + i, needle, n) == 0)
			return 1;
	}
	return 0;
}

int
ktx_chat_style_detect(const char *tmpl, size_t len, enum ktx_chat_style *out,
    struct ktx_err *err)
{
	/* V2-Chat's template is the one that says "Assistant: " (the test
	 * llama.cpp uses too); R1's is the one that opens the answer with a
	 * thinking section. */
	if (contains(tmpl, len, "'Assistant: ' + message['content'] + eos_token")) {
		*out = KTX_CHAT_DEEPSEEK_V2;
		return KTX_OK;
	}
	if (contains(tmpl, len, USER) && contains(tmpl, len, ASSISTANT)) {
		*out = contains(tmpl, len, ASSISTANT "<think>") ?
		    KTX_CHAT_DEEPSEEK_R1 : KTX_CHAT_DEEPSEEK_V3;
		return KTX_OK;
	}
	return ktx_err_set(err, KTX_EUNSUPPORTED,
	    "the model's chat template is not one of DeepSeek's (deepseek-r1, deepseek-v3, "
	    "deepseek-v2); name one explicitly");
}

/* Whether the string array kv holds s. */
static int
vocab_has(const struct gguf_file *f, int64_t kv, uint64_t n, const char *s)
{
	size_t len = strlen(s);
	uint64_t i;

	for (i = 0; i < n; i++) {
		struct gguf_str t = gguf_arr_str(f, kv, i);

		if (t.len == len && memcmp(t.ptr, s, len) == 0)
			return 1;
	}
	return 0;
}

int
ktx_chat_style_from_gguf(const struct gguf_file *f, enum ktx_chat_style *out,
    struct ktx_err *err)
{
	struct gguf_str t;
	enum gguf_vtype et;
	uint64_t n;
	int64_t kv;
	int rc;

	rc = gguf_get_str(f, "tokenizer.chat_template", &t, err);
	if (rc == KTX_OK)
		return ktx_chat_style_detect(t.ptr, t.len, out, err);
	if (rc != KTX_ENOTFOUND)
		return rc;
	ktx_err_clear(err);
	/* No template: judge by the turn markers the vocabulary has. */
	if ((rc = gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n, err)) != KTX_OK)
		return rc;
	if (et != GGUF_VT_STRING)
		return ktx_err_set(err, KTX_EFORMAT, "tokenizer.ggml.tokens holds %s, not strings",
		    gguf_vtype_name(et));
	kv = gguf_kv_find(f, "tokenizer.ggml.tokens");
	if (!vocab_has(f, kv, n, USER))
		*out = KTX_CHAT_DEEPSEEK_V2;
	else if (vocab_has(f, kv, n, "<think>"))
		*out = KTX_CHAT_DEEPSEEK_R1;
	else
		*out = KTX_CHAT_DEEPSEEK_V3;
	return KTX_OK;
}

/* ---- rendering ---------------------------------------------------------- */

/* The text being built, and where the messages' own text lies in it; a
 * failed allocation sticks and is reported once. */
struct sbuf {
	char *p;
	size_t n, cap;
	int failed;
	struct ktx_span *spans;
	size_t n_spans, cap_spans;
};

static void
sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

/* Adds text that came from a message (not from the template), noting its
 * range (merged with the previous one when they touch). */
static void
sb_content(struct sbuf *b, const char *s)
{
	size_t start = b->n, len = strlen(s);

	sb_addn(b, s, len);
	if (b->failed || len == 0)
		return;
	if (b->n_spans > 0
	    && b->spans[b->n_spans - 1].off + b->spans[b->n_spans - 1].len == start) {
		b->spans[b->n_spans - 1].len += len;
		return;
	}
	if (b->n_spans == b->cap_spans) {
		size_t cap = b->cap_spans ? 2 * b->cap_spans : 16;
		struct ktx_span *sp = realloc(b->spans, cap * sizeof(*sp));

		if (sp == NULL) {
			b->failed = 1;
			return;
		}
		b->spans = sp;
		b->cap_spans = cap;
	}
	b->spans[b->n_spans].off = start;
	b->spans[b->n_spans].len = len;
	b->n_spans++;
}

/* A message's content; the templates would fail on none, ktx renders "". */
static const char *
content(const struct ktx_chat_msg *m)
{
	return m->content ? m->content : "";
}

/* BOS, then every system prompt, joined by a blank line (R1 and V3). */
static void
render_system(struct sbuf *b, const struct ktx_chat_msg *msgs, size_t n)
{
	size_t i;
	int first = 1;

	sb_add(b, BOS);
	for (i = 0; i < n; i++) {
		if (msgs[i].role != KTX_ROLE_SYSTEM)
			continue;
		if (!first)
			sb_add(b, "\n\n");
		sb_content(b, content(&msgs[i]));
		first = 0;
	}
}

/* One call: type, separator, name, then the arguments in a json fence. */
static void
render_call(struct sbuf *b, const struct ktx_chat_tool_call *c)
{
	sb_add(b, CALL_BEGIN);
	sb_content(b, c->type ? c->type : "function");
	sb_add(b, SEP);
	sb_content(b, c->name ? c->name : "");
	sb_add(b, "\n```json\n");
	sb_content(b, c->arguments ? c->arguments : "");
	sb_add(b, "\n```" CALL_END);
}

/* The text after the last "</think>" (R1 drops earlier turns' thinking). */
static const char *
after_thinking(const char *s)
{
	const char *p, *last = s;

	for (p = strstr(s, "</think>"); p != NULL; p = strstr(p + 1, "</think>"))
		last = p + strlen("</think>");
	return last;
}

/* DeepSeek-R1's template. */
static void
render_r1(struct sbuf *b, const struct ktx_chat_msg *msgs, size_t n, bool gen)
{
	int is_first = 0, is_tool = 0, is_output_first = 1;
	size_t i, j;

	render_system(b, msgs, n);
	for (i = 0; i < n; i++) {
		const struct ktx_chat_msg *m = &msgs[i];

		switch (m->role) {
		case KTX_ROLE_USER:
			is_tool = 0;
			sb_add(b, USER);
			sb_content(b, content(m));
			break;
		case KTX_ROLE_ASSISTANT:
			if (m->n_tool_calls > 0) {
				is_tool = 0;
				for (j = 0; j < m->n_tool_calls; j++) {
					if (!is_first) {
						sb_add(b, ASSISTANT);
						sb_content(b, content(m));
						sb_add(b, CALLS_BEGIN);
						is_first = 1;
					} else {
						sb_add(b, "\n");
					}
					render_call(b, &m->tool_calls[j]);
				}
				sb_add(b, CALLS_END EOS);
			} else if (is_tool) {
				sb_add(b, OUTPUTS_END);
				sb_content(b, content(m));
				sb_add(b, EOS);
				is_tool = 0;
			} else {
				sb_add(b, ASSISTANT);
				sb_content(b, after_thinking(content(m)));
				sb_add(b, EOS);
			}
			break;
		case KTX_ROLE_TOOL:
			is_tool = 1;
			sb_add(b, is_output_first ? OUTPUTS_BEGIN OUTPUT_BEGIN : OUTPUT_BEGIN);
			is_output_first = 0;
			sb_content(b, content(m));
			sb_add(b, OUTPUT_END);
			break;
		case KTX_ROLE_SYSTEM:
			break;
		}
	}
	if (is_tool)
		sb_add(b, OUTPUTS_END);
	if (gen && !is_tool)
		sb_add(b, ASSISTANT "<think>\n");
}

/* DeepSeek-V3's original template. */
static void
render_v3(struct sbuf *b, const struct ktx_chat_msg *msgs, size_t n, bool gen)
{
	int is_first = 0, is_tool = 0, is_output_first = 1;
	size_t i, j;

	render_system(b, msgs, n);
	for (i = 0; i < n; i++) {
		const struct ktx_chat_msg *m = &msgs[i];

		switch (m->role) {
		case KTX_ROLE_USER:
			is_tool = 0;
			sb_add(b, USER);
			sb_content(b, content(m));
			break;
		case KTX_ROLE_ASSISTANT:
			if (m->content == NULL) {
				/* Tool calls are rendered only for a turn
				 * without content, as in the template. */
				is_tool = 0;
				for (j = 0; j < m->n_tool_calls; j++) {
					if (!is_first) {
						sb_add(b, ASSISTANT CALLS_BEGIN);
						render_call(b, &m->tool_calls[j]);
						is_first = 1;
					} else {
						sb_add(b, "\n");
						render_call(b, &m->tool_calls[j]);
						sb_add(b, CALLS_END EOS);
					}
				}
			} else if (is_tool) {
				sb_add(b, OUTPUTS_END);
				sb_content(b, m->content);
				sb_add(b, EOS);
				is_tool = 0;
			} else {
				sb_add(b, ASSISTANT);
				sb_content(b, m->content);
				sb_add(b, EOS);
			}
			break;
		case KTX_ROLE_TOOL:
			is_tool = 1;
			sb_add(b, is_output_first ? OUTPUTS_BEGIN OUTPUT_BEGIN : "\n" OUTPUT_BEGIN);
			is_output_first = 0;
			sb_content(b, content(m));
			sb_add(b, OUTPUT_END);
			break;
		case KTX_ROLE_SYSTEM:
			break;
		}
	}
	if (is_tool)
		sb_add(b, OUTPUTS_END);
	if (gen && !is_tool)
		sb_add(b, ASSISTANT);
}

/* DeepSeek-V2-Chat's template: plain "User:"/"Assistant:" turns. */
static void
render_v2(struct sbuf *b, const struct ktx_chat_msg *msgs, size_t n, bool gen)
{
	size_t i;

	sb_add(b, BOS);
	for (i = 0; i < n; i++) {
		const struct ktx_chat_msg *m = &msgs[i];

		if (m->role == KTX_ROLE_USER) {
			sb_add(b, "User: ");
			sb_content(b, content(m));
			sb_add(b, "\n\n");
		} else if (m->role == KTX_ROLE_ASSISTANT) {
			sb_add(b, "Assistant: ");
			sb_content(b, content(m));
			sb_add(b, EOS);
		} else if (m->role == KTX_ROLE_SYSTEM) {
			sb_content(b, content(m));
			sb_add(b, "\n\n");
		}
	}
	if (gen)
		sb_add(b, "Assistant:");
}

/* Checks the messages and renders them into b. */
static int
render(enum ktx_chat_style style, const struct ktx_chat_msg *msgs, size_t n,
    bool add_generation_prompt, struct sbuf *b, struct ktx_err *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned)msgs[i].role > KTX_ROLE_TOOL)
			return ktx_err_set(err, KTX_EINVAL, "message %zu has no valid role", i);
		if (msgs[i].n_tool_calls > 0 &&
		    (msgs[i].role != KTX_ROLE_ASSISTANT || msgs[i].tool_calls == NULL))
			return ktx_err_set(err, KTX_EINVAL,
			    "message %zu: only an assistant turn carries tool calls", i);
		if (style == KTX_CHAT_DEEPSEEK_V2 &&
		    (msgs[i].role == KTX_ROLE_TOOL || msgs[i].n_tool_calls > 0))
			return ktx_err_set(err, KTX_EINVAL,
			    "message %zu: the deepseek-v2 chat format has no tool calls", i);
	}
	switch (style) {
	case KTX_CHAT_DEEPSEEK_R1:
		render_r1(b, msgs, n, add_generation_prompt);
		break;
	case KTX_CHAT_DEEPSEEK_V3:
		render_v3(b, msgs, n, add_generation_prompt);
		break;
	case KTX_CHAT_DEEPSEEK_V2:
		render_v2(b, msgs, n, add_generation_prompt);
		break;
	default:
		return ktx_err_set(err, KTX_EINVAL, "chat style %d does not exist", (int)style);
	}
	if (b->failed)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory rendering %zu messages", n);
	/* Every format starts with the BOS spelling, so b->p is never NULL here. */
	return KTX_OK;
}

int
ktx_chat_render(enum ktx_chat_style style, const struct ktx_chat_msg *msgs, size_t n,
    bool add_generation_prompt, char **out, size_t *len, struct ktx_err *err)
{
	struct sbuf b = {0};
	int rc;

	*out = NULL;
	*len = 0;
	rc = render(style, msgs, n, add_generation_prompt, &b, err);
	free(b.spans);
	if (rc != KTX_OK) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*len = b.n;
	return KTX_OK;
}

int
ktx_chat_tokenize(const struct ktx_tokenizer *tok, enum ktx_chat_style style,
    const struct ktx_chat_msg *msgs, size_t n, bool add_generation_prompt, int32_t **ids,
    size_t *n_ids, struct ktx_err *err)
{
	struct sbuf b = {0};
	int rc;

	*ids = NULL;
	*n_ids = 0;
	rc = render(style, msgs, n, add_generation_prompt, &b, err);
	if (rc == KTX_OK)
		rc = ktx_tokenize_guarded(tok, b.p, b.n, b.spans, b.n_spans, ids, n_ids, err);
	free(b.p);
	free(b.spans);
	return rc;
}
