/*
 * cmd_list.c - the commands that ask ktxd something and print the answer:
 * status, ps, history, show, jobs, rm, cancel, result, wait.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client/ktxctl.h"

int
parse_id(const char *s, const char *what, uint64_t *id, struct cerr *e)
{
	char *end;

	errno = 0;
	if (s == NULL)
		return cerr_set(e, KTXCTL_EXIT_USAGE, "missing %s id", what);
	*id = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || *id == 0)
		return cerr_set(e, KTXCTL_EXIT_USAGE, "bad %s id \"%s\": expected a positive "
		    "number", what, s);
	return 0;
}

/* Prints the column header before the first item of a list, for people. */
static void
header(enum ktx_msg_type item)
{
	if (item == KTX_EV_JOB)
		printf("%-6s %-9s %4s %-10s %7s  %s\n", "JOB", "STATE", "POS", "OWNER", "AGE",
		    "PROMPT");
	else if (item == KTX_EV_CONVERSATION)
		printf("%-6s %5s  %-16s  %s\n", "ID", "TURNS", "UPDATED", "NAME OR TITLE");
}

/* Prints the heading of show: "conversation 12: name". */
static void
heading(const struct ktx_msg *m)
{
	const char *name = ktx_msg_get_str(m, KTX_F_NAME);

	if (name == NULL)
		name = ktx_msg_get_str(m, KTX_F_TITLE);
	printf("conversation %" PRIu64 "%s%s\n\n", ktx_msg_get_uint(m, KTX_F_CONV_ID, 0),
	    name != NULL ? ": " : "", name != NULL ? name : "");
}

/* Builds the request for op with its argument; usage errors for a bad one. */
static int
build(struct ktx_msg *m, const struct opts *o, enum ktx_msg_type op, const char *arg,
    struct cerr *e)
{
	uint64_t job;
	int rc;

	ktx_msg_init(m, op, 0);
	switch (op) {
	case KTX_OP_SHOW:
	case KTX_OP_RM:
		if (arg == NULL || arg[0] == '\0')
			return cerr_set(e, KTXCTL_EXIT_USAGE, "%s needs a conversation id or name",
			    ktx_msg_type_name(op));
		if (!ktx_utf8_valid(arg, strlen(arg)) || strlen(arg) > KTX_PROTO_NAME_MAX)
			return cerr_set(e, KTXCTL_EXIT_USAGE, "bad conversation \"%s\"", arg);
		ktx_msg_set_str(m, KTX_F_CONVERSATION, arg);
		break;
	case KTX_OP_CANCEL:
	case KTX_OP_RESULT:
	case KTX_OP_WAIT:
		rc = parse_id(arg, "job", &job, e);
		if (rc != 0)
			return rc;
		ktx_msg_set_uint(m, KTX_F_JOB, job);
		break;
	case KTX_OP_HISTORY:
	case KTX_OP_JOBS:
		if (o->all)
			ktx_msg_set_bool(m, KTX_F_ALL, 1);
		if (o->limit > 0)
			ktx_msg_set_uint(m, KTX_F_LIMIT, o->limit);
		break;
	default:
		break;
	}
	return 0;
}

/* Prints a job's result: its text on stdout; a failure becomes the exit status. */
static int
print_result(const struct opts *o, const struct ktx_msg *m, struct cerr *e)
{
	const char *state = ktx_msg_get_str(m, KTX_F_STATE);
	const char *text = ktx_msg_get_str(m, KTX_F_TEXT);

	if (!o->json && text != NULL && text[0] != '\0') {
		fputs(text, stdout);
		if (text[strlen(text) - 1] != '\n')
			putchar('\n');
	}
	if (strcmp(state, "done") == 0)
		return 0;
	if (strcmp(state, "failed") == 0 || strcmp(state, "canceled") == 0 ||
	    strcmp(state, "interrupted") == 0) {
		if (ktx_msg_has(m, KTX_F_CODE))
			return cerr_from_event(e, m);
		return cerr_set(e, strcmp(state, "canceled") == 0 ? KTXCTL_EXIT_CANCELED :
		    KTXCTL_EXIT_DAEMON, "job %" PRIu64 " %s", ktx_msg_get_uint(m, KTX_F_JOB, 0),
		    state);
	}
	return cerr_set(e, KTXCTL_EXIT_PENDING, "job %" PRIu64 " is %s, not finished",
	    ktx_msg_get_uint(m, KTX_F_JOB, 0), state);
}

int
cmd_list(struct conn *c, const struct opts *o, enum ktx_msg_type op, const char *arg,
    struct cerr *e)
{
	struct ktx_msg m;
	uint64_t id;
	int rc, items = 0;

	rc = build(&m, o, op, arg, e);
	if (rc == 0)
		rc = conn_send(c, &m, &id, e);
	while (rc == 0) {
		rc = conn_next(c, id, &m, e);
		if (rc != 0)
			break;
		if (o->json)
			render_json(stdout, &m);
		switch (m.type) {
		case KTX_EV_END:
		case KTX_EV_OK:
			ktx_msg_clear(&m);
			return 0;
		case KTX_EV_ERROR:
			rc = cerr_from_event(e, &m);
			break;
		case KTX_EV_RESULT:
			rc = print_result(o, &m, e);
			ktx_msg_clear(&m);
			return rc;
		case KTX_EV_CONVERSATION:
			if (op == KTX_OP_SHOW) {
				/* In show, the conversation is a heading, not a list item. */
				if (!o->json)
					heading(&m);
				break;
			}
			/* FALLTHROUGH */
		case KTX_EV_JOB:
			if (!o->json && items++ == 0)
				header(m.type);
			/* FALLTHROUGH */
		default:
			if (!o->json)
				render_item(stdout, &m);
			break;
		}
		ktx_msg_clear(&m);
	}
	return rc;
}
