/*
 * cmd_ask.c - ask, submit and chat: send a prompt, stream the answer.
 *
 * Tokens go to stdout as their events arrive (flushed each time), so a
 * pipe sees the answer grow; queue positions and statistics go to stderr
 * with --verbose; --json prints every event as a line instead.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/ktxctl.h"

/* Builds the ask or submit request from the options. */
static void
build(struct ktx_msg *m, const struct opts *o, const char *prompt, const char *conversation,
    int submit)
{
	ktx_msg_init(m, submit ? KTX_OP_SUBMIT : KTX_OP_ASK, 0);
	ktx_msg_set_str(m, KTX_F_PROMPT, prompt);
	if (conversation != NULL)
		ktx_msg_set_str(m, KTX_F_CONVERSATION, conversation);
	if (o->max_tokens > 0)
		ktx_msg_set_uint(m, KTX_F_MAX_TOKENS, o->max_tokens);
	if (o->temperature >= 0)
		ktx_msg_set_float(m, KTX_F_TEMPERATURE, o->temperature);
	if (o->top_p >= 0)
		ktx_msg_set_float(m, KTX_F_TOP_P, o->top_p);
	if (o->have_seed)
		ktx_msg_set_uint(m, KTX_F_SEED, o->seed);
	if (o->detach && !submit)
		ktx_msg_set_bool(m, KTX_F_DETACHED, 1);
}

/* Prints the statistics of a done event on stderr. */
static void
print_stats(const struct ktx_msg *ev)
{
	fprintf(stderr, "ktxctl: job %" PRIu64 ", conversation %" PRIu64 ": %" PRIu64
	    " prompt tokens (%.1f tok/s), %" PRIu64 " generated (%.1f tok/s)%s%s\n",
	    ktx_msg_get_uint(ev, KTX_F_JOB, 0), ktx_msg_get_uint(ev, KTX_F_CONV_ID, 0),
	    ktx_msg_get_uint(ev, KTX_F_PROMPT_TOKENS, 0),
	    ktx_msg_get_float(ev, KTX_F_PREFILL_TPS, 0),
	    ktx_msg_get_uint(ev, KTX_F_GEN_TOKENS, 0),
	    ktx_msg_get_float(ev, KTX_F_DECODE_TPS, 0),
	    ktx_msg_has(ev, KTX_F_REASON) ? ", stopped by " : "",
	    ktx_msg_has(ev, KTX_F_REASON) ? ktx_msg_get_str(ev, KTX_F_REASON) : "");
}

/*
 * Sends one prompt and handles its events until the terminal one. The
 * conversation id of a finished answer lands in *conv_id when not NULL.
 */
static int
run_prompt(struct conn *c, const struct opts *o, const char *prompt, const char *conversation,
    int submit, uint64_t *conv_id, struct cerr *e)
{
	struct ktx_msg m;
	uint64_t id;
	int rc, at_bol = 1;
	const char *t;

	rc = input_check(prompt, strlen(prompt), conn_prompt_max(c), e);
	if (rc != 0)
		return rc;
	build(&m, o, prompt, conversation, submit);
	rc = conn_send(c, &m, &id, e);
	if (rc != 0)
		return rc;
	for (;;) {
		rc = conn_next(c, id, &m, e);
		if (rc != 0)
			break;
		if (o->json)
			render_json(stdout, &m);
		switch (m.type) {
		case KTX_EV_QUEUED:
			if (o->verbose)
				fprintf(stderr, "ktxctl: job %" PRIu64 " waits at position %" PRIu64 "\n",
				    ktx_msg_get_uint(&m, KTX_F_JOB, 0),
				    ktx_msg_get_uint(&m, KTX_F_POSITION, 0));
			break;
		case KTX_EV_STARTED:
			if (o->verbose)
				fprintf(stderr, "ktxctl: job %" PRIu64 " started\n",
				    ktx_msg_get_uint(&m, KTX_F_JOB, 0));
			break;
		case KTX_EV_TOKEN:
			if (o->json)
				break;
			t = ktx_msg_get_str(&m, KTX_F_TEXT);
			if (t[0] != '\0') {
				fputs(t, stdout);
				fflush(stdout);
				at_bol = t[strlen(t) - 1] == '\n';
			}
			break;
		case KTX_EV_DONE:
			if (!o->json && !at_bol)
				putchar('\n');
			if (o->verbose)
				print_stats(&m);
			if (conv_id != NULL)
				*conv_id = ktx_msg_get_uint(&m, KTX_F_CONV_ID, 0);
			ktx_msg_clear(&m);
			return 0;
		case KTX_EV_ACCEPTED:
			if (!o->json)
				printf("%" PRIu64 "\n", ktx_msg_get_uint(&m, KTX_F_JOB, 0));
			if (o->verbose && ktx_msg_has(&m, KTX_F_POSITION))
				fprintf(stderr, "ktxctl: job %" PRIu64 " waits at position %" PRIu64 "\n",
				    ktx_msg_get_uint(&m, KTX_F_JOB, 0),
				    ktx_msg_get_uint(&m, KTX_F_POSITION, 0));
			ktx_msg_clear(&m);
			return 0;
		case KTX_EV_ERROR:
			if (!o->json && !at_bol)
				putchar('\n');
			rc = cerr_from_event(e, &m);
			ktx_msg_clear(&m);
			return rc;
		default:
			break; /* nothing else answers ask */
		}
		ktx_msg_clear(&m);
	}
	if (!o->json && !at_bol)
		putchar('\n');
	return rc;
}

int
cmd_ask(struct conn *c, const struct opts *o, const char *prompt, int submit, struct cerr *e)
{
	return run_prompt(c, o, prompt, o->conversation, submit, NULL, e);
}

int
cmd_chat(struct conn *c, const struct opts *o, struct cerr *e)
{
	char conv[32], *msg;
	const char *cur = o->conversation;
	int tty = isatty(STDIN_FILENO), rc;
	uint64_t conv_id = 0;

	if (tty)
		fprintf(stderr, "ktxctl chat: end a message with an empty line or a line "
		    "holding only \".\"; Ctrl-D quits.\n");
	for (;;) {
		if (tty) {
			fputs(">>> ", stderr);
			fflush(stderr);
		}
		rc = input_read_message(stdin, &msg, e);
		if (rc < 0)
			return e->exit;
		if (rc == 0)
			return 0;
		conv_id = 0;
		rc = run_prompt(c, o, msg, cur, 0, &conv_id, e);
		free(msg);
		if (rc == KTXCTL_EXIT_PROTOCOL || rc == KTXCTL_EXIT_CONNECT)
			return rc;
		if (rc != 0)
			fprintf(stderr, "ktxctl: %s\n", e->msg);
		else if (conv_id != 0) {
			/* Later messages continue this conversation. */
			snprintf(conv, sizeof(conv), "%" PRIu64, conv_id);
			cur = conv;
		}
		if (!o->json)
			putchar('\n');
		fflush(stdout);
	}
}
