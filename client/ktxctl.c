/*
 * ktxctl.c - the ktx client: command-line parsing and dispatch.
 *
 * ktxctl talks to ktxd over its Unix socket (proto/) and prints what comes
 * back. The commands, options and exit statuses are a contract for scripts
 * and are documented in ktxctl(1); usage_text below is its SYNOPSIS.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/ktxctl.h"

static const char usage_text[] =
    "usage: ktxctl [--socket PATH] [--json] [-v] ask [-c | --conversation REF] [-n N]\n"
    "              [--temperature T] [--top-p P] [--seed S] [--detach] [PROMPT ... | -]\n"
    "       ktxctl [--socket PATH] [--json] [-v] submit [-c | --conversation REF] [-n N]\n"
    "              [--temperature T] [--top-p P] [--seed S] [PROMPT ... | -]\n"
    "       ktxctl [--socket PATH] [--json] [-v] chat [-c | --conversation REF] [-n N]\n"
    "              [--temperature T] [--top-p P] [--seed S]\n"
    "       ktxctl [--socket PATH] [--json] history [--all] [--limit N]\n"
    "       ktxctl [--socket PATH] [--json] show REF\n"
    "       ktxctl [--socket PATH] [--json] rm REF\n"
    "       ktxctl [--socket PATH] [--json] jobs [--all] [--limit N]\n"
    "       ktxctl [--socket PATH] [--json] result | wait | cancel JOB\n"
    "       ktxctl [--socket PATH] [--json] status | ps | queue | ping\n"
    "\n"
    "  ask        stream the answer to PROMPT (the arguments, or stdin if none or -)\n"
    "  submit     queue PROMPT as a detached job and print its id\n"
    "  chat       interactive conversation; a message ends with an empty line or a\n"
    "             line holding only \".\"; end of input quits\n"
    "  history    list your conversations       show REF  print one conversation\n"
    "  rm REF     delete a conversation         jobs      list your jobs\n"
    "  result JOB print a job's answer          wait JOB  wait for a job, print it\n"
    "  cancel JOB cancel a job                  status    the daemon and its model\n"
    "  ps, queue  running and waiting jobs      ping      check that ktxd answers\n"
    "\n"
    "  -s, --socket PATH       ktxd's socket (default: $KTX_SOCKET, else\n"
    "                          " KTXCTL_DEFAULT_SOCKET ")\n"
    "  -j, --json              print each event as one JSON object per line\n"
    "  -v, --verbose           queue position and statistics on stderr\n"
    "  -c, --last              continue your last conversation\n"
    "      --conversation REF  continue conversation REF (an id or a name; a new\n"
    "                          name starts a conversation of that name)\n"
    "  -n, --max-tokens N      generate at most N tokens\n"
    "      --temperature T     sampling temperature (0 = greedy)\n"
    "      --top-p P           nucleus sampling threshold, 0..1\n"
    "      --seed S            random seed\n"
    "      --detach            keep the job running if ktxctl goes away\n"
    "      --all               every user's (root and the admin group)\n"
    "      --limit N           the newest N only\n"
    "  -h, --help              this text\n"
    "  -V, --version           the version\n"
    "\n"
    "Exit status: 0 success, 1 other error from ktxd, 2 bad usage or input,\n"
    "3 cannot connect to ktxd, 4 busy, 5 canceled, 6 not found, 7 forbidden,\n"
    "8 prompt too large or context full, 9 protocol error or ktxd hung up,\n"
    "10 job not finished.\n";

enum {
	OPT_CONVERSATION = 256, OPT_TEMPERATURE, OPT_TOP_P, OPT_SEED, OPT_DETACH, OPT_ALL,
	OPT_LIMIT,
};

static const struct option long_options[] = {
	{"socket", required_argument, NULL, 's'},
	{"json", no_argument, NULL, 'j'},
	{"verbose", no_argument, NULL, 'v'},
	{"last", no_argument, NULL, 'c'},
	{"conversation", required_argument, NULL, OPT_CONVERSATION},
	{"max-tokens", required_argument, NULL, 'n'},
	{"temperature", required_argument, NULL, OPT_TEMPERATURE},
	{"top-p", required_argument, NULL, OPT_TOP_P},
	{"seed", required_argument, NULL, OPT_SEED},
	{"detach", no_argument, NULL, OPT_DETACH},
	{"all", no_argument, NULL, OPT_ALL},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* The commands, their request and what they accept. */
enum { ARG_NONE, ARG_ONE, ARG_PROMPT };
#define F_GEN 1   /* generation options */
#define F_LIST 2  /* --all, --limit */
#define F_DETACH 4

static const struct command {
	const char *name;
	enum ktx_msg_type op;
	int args;
	int flags;
} commands[] = {
	{ "ask", KTX_OP_ASK, ARG_PROMPT, F_GEN | F_DETACH },
	{ "submit", KTX_OP_SUBMIT, ARG_PROMPT, F_GEN },
	{ "chat", KTX_OP_ASK, ARG_NONE, F_GEN },
	{ "history", KTX_OP_HISTORY, ARG_NONE, F_LIST },
	{ "show", KTX_OP_SHOW, ARG_ONE, 0 },
	{ "rm", KTX_OP_RM, ARG_ONE, 0 },
	{ "jobs", KTX_OP_JOBS, ARG_NONE, F_LIST },
	{ "result", KTX_OP_RESULT, ARG_ONE, 0 },
	{ "wait", KTX_OP_WAIT, ARG_ONE, 0 },
	{ "cancel", KTX_OP_CANCEL, ARG_ONE, 0 },
	{ "status", KTX_OP_STATUS, ARG_NONE, 0 },
	{ "ps", KTX_OP_PS, ARG_NONE, 0 },
	{ "queue", KTX_OP_PS, ARG_NONE, 0 },
	{ "ping", KTX_OP_PING, ARG_NONE, 0 },
};

/* Prints "ktxctl: msg" and returns the exit status. */
static int
report(const struct cerr *e)
{
	fprintf(stderr, "ktxctl: %s\n", e->msg);
	if (e->exit == KTXCTL_EXIT_USAGE)
		fprintf(stderr, "Try 'ktxctl --help'.\n");
	return e->exit;
}

/* Parses a non-negative integer option. */
static int
parse_u64(const char *s, const char *opt, uint64_t *v, struct cerr *e)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0)
		return cerr_set(e, KTXCTL_EXIT_USAGE, "%s wants a non-negative integer, not \"%s\"",
		    opt, s);
	return 0;
}

/* Parses a number option within [lo, hi]. */
static int
parse_num(const char *s, const char *opt, double lo, double hi, double *v, struct cerr *e)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !(*v >= lo && *v <= hi))
		return cerr_set(e, KTXCTL_EXIT_USAGE, "%s wants a number from %g to %g, not \"%s\"",
		    opt, lo, hi, s);
	return 0;
}

/* Joins argv[0..argc) with spaces into a prompt. */
static char *
join(int argc, char **argv)
{
	size_t n = 1;
	char *p;
	int i;

	for (i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	p = malloc(n);
	if (p == NULL)
		return NULL;
	p[0] = '\0';
	for (i = 0; i < argc; i++) {
		if (i > 0)
			strcat(p, " ");
		strcat(p, argv[i]);
	}
	return p;
}

/* Parses the options into o; usage errors name the option. */
static int
parse_options(int argc, char **argv, struct opts *o, int *used, struct cerr *e)
{
	uint64_t u;
	int ch, rc = 0;

	*used = 0;
	while (rc == 0 && (ch = getopt_long(argc, argv, "s:jvcn:hV", long_options, NULL)) != -1) {
		switch (ch) {
		case 's': o->socket = optarg; break;
		case 'j': o->json = 1; break;
		case 'v': o->verbose = 1; break;
		case 'c': o->conversation = "last"; *used |= F_GEN; break;
		case OPT_CONVERSATION:
			if (optarg[0] == '\0')
				return cerr_set(e, KTXCTL_EXIT_USAGE, "--conversation wants an id or a name");
			o->conversation = optarg;
			*used |= F_GEN;
			break;
		case 'n':
			rc = parse_u64(optarg, "--max-tokens", &o->max_tokens, e);
			if (rc == 0 && o->max_tokens == 0)
				rc = cerr_set(e, KTXCTL_EXIT_USAGE, "--max-tokens must be at least 1");
			*used |= F_GEN;
			break;
		case OPT_TEMPERATURE:
			rc = parse_num(optarg, "--temperature", 0, 100, &o->temperature, e);
			*used |= F_GEN;
			break;
		case OPT_TOP_P:
			rc = parse_num(optarg, "--top-p", 0, 1, &o->top_p, e);
			*used |= F_GEN;
			break;
		case OPT_SEED:
			rc = parse_u64(optarg, "--seed", &o->seed, e);
			o->have_seed = 1;
			*used |= F_GEN;
			break;
		case OPT_DETACH: o->detach = 1; *used |= F_DETACH; break;
		case OPT_ALL: o->all = 1; *used |= F_LIST; break;
		case OPT_LIMIT:
			rc = parse_u64(optarg, "--limit", &u, e);
			o->limit = u;
			*used |= F_LIST;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("ktxctl %s (protocol %d)\n", PACKAGE_VERSION, KTX_PROTO_VERSION);
			exit(0);
		default:
			return cerr_set(e, KTXCTL_EXIT_USAGE, "unknown or incomplete option");
		}
	}
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o = { .temperature = -1, .top_p = -1 };
	const struct command *cmd = NULL;
	struct conn *c = NULL;
	struct cerr e;
	char *prompt = NULL;
	size_t i;
	int used, nargs, rc;

	e.exit = 0;
	e.msg[0] = '\0';
	if (parse_options(argc, argv, &o, &used, &e) != 0)
		return report(&e);
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return KTXCTL_EXIT_USAGE;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		cerr_set(&e, KTXCTL_EXIT_USAGE, "unknown command \"%s\"", argv[optind]);
		return report(&e);
	}
	if (used & ~cmd->flags) {
		cerr_set(&e, KTXCTL_EXIT_USAGE, "an option given does not apply to %s", cmd->name);
		return report(&e);
	}
	nargs = argc - optind - 1;
	if ((cmd->args == ARG_NONE && nargs != 0) || (cmd->args == ARG_ONE && nargs != 1)) {
		cerr_set(&e, KTXCTL_EXIT_USAGE, "%s takes %s", cmd->name,
		    cmd->args == ARG_NONE ? "no arguments" : "exactly one argument");
		return report(&e);
	}
	if (o.socket == NULL)
		o.socket = getenv("KTX_SOCKET");
	if (o.socket == NULL || o.socket[0] == '\0')
		o.socket = KTXCTL_DEFAULT_SOCKET;

	if (conn_open(o.socket, &c, &e) != 0)
		return report(&e);
	if (cmd->args == ARG_PROMPT) {
		if (nargs == 0 || (nargs == 1 && strcmp(argv[optind + 1], "-") == 0)) {
			if (isatty(STDIN_FILENO))
				fputs("ktxctl: reading the prompt from the terminal; end it with "
				    "Ctrl-D\n", stderr);
			rc = input_read_all(stdin, conn_prompt_max(c), &prompt, &e);
		}
		else if ((prompt = join(nargs, argv + optind + 1)) == NULL)
			rc = cerr_set(&e, KTXCTL_EXIT_USAGE, "out of memory");
		else
			rc = 0;
		if (rc == 0)
			rc = cmd_ask(c, &o, prompt, cmd->op == KTX_OP_SUBMIT, &e);
		free(prompt);
	} else if (strcmp(cmd->name, "chat") == 0)
		rc = cmd_chat(c, &o, &e);
	else
		rc = cmd_list(c, &o, cmd->op, nargs ? argv[optind + 1] : NULL, &e);
	conn_close(c);
	if (fflush(stdout) != 0 && rc == 0)
		rc = cerr_set(&e, KTXCTL_EXIT_USAGE, "writing to standard output failed");
	return rc != 0 ? report(&e) : 0;
}
