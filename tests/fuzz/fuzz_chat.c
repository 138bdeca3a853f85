/*
 * fuzz_chat.c - fuzz target for the chat templates and guarded tokenizing.
 *
 * Input layout: byte 0 picks the style (bits 0-1, modulo 3) and whether a
 * generation prompt is added (bit 2). The rest is messages separated by NUL
 * bytes; a message's first byte is its role (bits 0-1) and, with bit 2 on
 * an assistant turn, its text is "content\1name\1arguments\1name\1..." (tool
 * calls). The whole input is also given to the template detector.
 *
 * Checks: rendering fails only for tool calls or tool turns in the style
 * without them (deepseek-v2); the text starts with the BOS spelling and has
 * the length reported; the guarded tokenization succeeds exactly when
 * rendering does, decodes back to the text when that is valid UTF-8, and
 * equals tokenizing the text with special tokens parsed when no message
 * spells a control token.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "engine/tokenizer.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_util.h"

#define MSGS_MAX 32
#define CALLS_MAX 32
#define INPUT_MAX 8192
#define BOS "<｜begin▁of▁sentence｜>"

struct convo {
	struct ktx_chat_msg msgs[MSGS_MAX];
	struct ktx_chat_tool_call calls[CALLS_MAX];
	size_t n_msgs, n_calls;
};

/* Splits "content\1name\1args..." in place into the message's tool calls. */
static void
split_calls(struct convo *c, struct ktx_chat_msg *m, char *text)
{
	char *name, *args;

	m->tool_calls = &c->calls[c->n_calls];
	while ((name = strchr(text, '\1')) != NULL && c->n_calls < CALLS_MAX) {
		*name++ = '\0';
		if ((args = strchr(name, '\1')) != NULL)
			*args++ = '\0';
		c->calls[c->n_calls].type = "function";
		c->calls[c->n_calls].name = name;
		c->calls[c->n_calls].arguments = args != NULL ? args : "";
		c->n_calls++;
		m->n_tool_calls++;
		if (args == NULL)
			break;
		text = args;
	}
	if (m->n_tool_calls == 0)
		m->tool_calls = NULL;
}

/* Cuts buf[0..len) (NUL-terminated) into messages. */
static void
parse(struct convo *c, char *buf, size_t len)
{
	char *p = buf, *end = buf + len, *q;
	struct ktx_chat_msg *m;

	while (p < end && c->n_msgs < MSGS_MAX) {
		q = memchr(p, '\0', (size_t)(end - p));
		if (q == NULL)
			q = end;
		m = &c->msgs[c->n_msgs++];
		m->role = (enum ktx_chat_role)(*p & 3);
		m->content = p + 1 <= q ? p + 1 : "";
		if ((*p & 4) && m->role == KTX_ROLE_ASSISTANT)
			split_calls(c, m, p + 1);
		p = q + 1;
	}
}

/* True when some message's text spells one of tok's control tokens. */
static bool
spells_control(const struct ktx_tokenizer *tok, const struct convo *c)
{
	const char *s[1 + 2 * CALLS_MAX], *sp;
	size_t i, k, ns, n;
	int32_t id;

	for (i = 0; i < c->n_msgs; i++) {
		ns = 0;
		s[ns++] = c->msgs[i].content;
		for (k = 0; k < c->msgs[i].n_tool_calls; k++) {
			s[ns++] = c->msgs[i].tool_calls[k].name;
			s[ns++] = c->msgs[i].tool_calls[k].arguments;
		}
		for (id = 0; id < ktx_n_vocab(tok); id++) {
			if (ktx_token_type(tok, id) != KTX_TOKEN_CONTROL)
				continue;
			sp = ktx_token_text(tok, id, &n);
			for (k = 0; k < ns; k++)
				if (memmem(s[k], strlen(s[k]), sp, n) != NULL)
					return true;
		}
	}
	return false;
}

/* Tokenizes the conversation and checks the ids against the text. */
static void
check_tokens(const struct convo *c, enum ktx_chat_style style, bool gen, int render_rc,
    const char *text, size_t len)
{
	const struct ktx_tokenizer *tok = fuzz_vocab(0);
	int32_t *ids, *plain;
	size_t n, n_plain, dlen;
	struct ktx_err err;
	char *back;
	int rc;

	rc = ktx_chat_tokenize(tok, style, c->msgs, c->n_msgs, gen, &ids, &n, &err);
	assert((rc == 0) == (render_rc == 0));
	if (rc != 0)
		return;
	back = fuzz_detok_stream(tok, 0, ids, n, &dlen);
	if (fuzz_utf8_valid(text, len))
		assert(dlen == len && memcmp(back, text, len) == 0);
	free(back);
	if (!spells_control(tok, c)) {
		if (ktx_tokenize(tok, text, len, true, &plain, &n_plain, &err) != 0)
			abort();
		assert(n_plain == n && memcmp(plain, ids, n * sizeof(*ids)) == 0);
		free(plain);
	}
	free(ids);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum ktx_chat_style style, detected;
	struct convo c = {.n_msgs = 0};
	struct ktx_err err;
	bool gen, has_tools = false;
	size_t i, len;
	char *buf, *text;
	int rc;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	(void)ktx_chat_style_detect((const char *)data, size, &detected, &err);
	style = (enum ktx_chat_style)(data[0] % 4 % 3);
	gen = (data[0] & 4) != 0;
	if ((buf = malloc(size)) == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	parse(&c, buf, size - 1);
	for (i = 0; i < c.n_msgs; i++)
		has_tools |= c.msgs[i].n_tool_calls > 0 || c.msgs[i].role == KTX_ROLE_TOOL;
	rc = ktx_chat_render(style, c.msgs, c.n_msgs, gen, &text, &len, &err);
	if (rc != 0) {
		assert(rc == KTX_EINVAL && has_tools && style == KTX_CHAT_DEEPSEEK_V2);
		text = NULL;
		len = 0;
	} else {
		assert(strlen(text) == len);
		assert(strncmp(text, BOS, strlen(BOS)) == 0);
	}
	check_tokens(&c, style, gen, rc, text, len);
	free(text);
	free(buf);
	return 0;
}
