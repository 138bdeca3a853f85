/*
 * input.c - prompts from stdin: the whole of it for ask, one message at a
 * time for chat. Any text goes; it is checked to be UTF-8 without NUL bytes
 * and within ktxd's limit before it is sent.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/ktxctl.h"

int
input_check(const char *p, size_t len, uint32_t max, struct cerr *e)
{
	if (len == 0)
		return cerr_set(e, KTXCTL_EXIT_USAGE, "the prompt is empty");
	if (len > max)
		return cerr_set(e, KTXCTL_EXIT_TOO_LARGE, "the prompt has %zu bytes, over ktxd's "
		    "limit of %u bytes", len, (unsigned)max);
	if (memchr(p, '\0', len) != NULL)
		return cerr_set(e, KTXCTL_EXIT_USAGE, "the prompt contains a NUL byte");
	if (!ktx_utf8_valid(p, len))
		return cerr_set(e, KTXCTL_EXIT_USAGE, "the prompt is not valid UTF-8 text");
	return 0;
}

int
input_read_all(FILE *in, uint32_t max, char **out, struct cerr *e)
{
	size_t len = 0, cap = 0, n;
	char *buf = NULL, *nb;

	*out = NULL;
	for (;;) {
		if (cap - len < 4096 + 1) {
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				return cerr_set(e, KTXCTL_EXIT_USAGE, "out of memory reading the prompt");
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, in);
		len += n;
		if (len > max) {
			free(buf);
			return cerr_set(e, KTXCTL_EXIT_TOO_LARGE, "the prompt on standard input is "
			    "over ktxd's limit of %u bytes", (unsigned)max);
		}
		if (n == 0)
			break;
	}
	if (ferror(in)) {
		free(buf);
		return cerr_set(e, KTXCTL_EXIT_USAGE, "reading the prompt from standard input: %s",
		    strerror(errno));
	}
	buf[len] = '\0';
	if (input_check(buf, len, max, e) != 0) {
		free(buf);
		return e->exit;
	}
	*out = buf;
	return 0;
}

int
input_read_message(FILE *in, char **out, struct cerr *e)
{
	char *line = NULL, *msg = NULL, *nm;
	size_t cap = 0, len = 0;
	ssize_t n;

	*out = NULL;
	while ((n = getline(&line, &cap, in)) >= 0) {
		size_t l = (size_t)n;

		if (l > 0 && line[l - 1] == '\n')
			l--;
		if (l == 0 || (l == 1 && line[0] == '.')) {
			if (len == 0)
				continue; /* nothing typed yet */
			break;
		}
		nm = realloc(msg, len + l + 2);
		if (nm == NULL) {
			free(line);
			free(msg);
			cerr_set(e, KTXCTL_EXIT_USAGE, "out of memory reading a message");
			return -1;
		}
		msg = nm;
		if (len > 0)
			msg[len++] = '\n';
		memcpy(msg + len, line, l);
		len += l;
		msg[len] = '\0';
	}
	free(line);
	if (msg == NULL)
		return 0;
	*out = msg;
	return 1;
}
