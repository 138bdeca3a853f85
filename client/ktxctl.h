/*
 * ktxctl.h - what the parts of ktxctl share: exit statuses, the error
 * carrier, the connection to ktxd, the options and the commands.
 */
#ifndef KTX_CLIENT_KTXCTL_H
#define KTX_CLIENT_KTXCTL_H

#include <stdint.h>
#include <stdio.h>

#include "proto/proto.h"

#define KTXCTL_DEFAULT_SOCKET "/run/ktx/ktxd.sock"

/* Exit statuses: a contract documented in ktxctl(1) and --help. */
enum {
	KTXCTL_EXIT_OK = 0,
	KTXCTL_EXIT_DAEMON = 1,    /* ktxd reported an error not listed below */
	KTXCTL_EXIT_USAGE = 2,     /* bad command line or unusable input */
	KTXCTL_EXIT_CONNECT = 3,   /* cannot connect to ktxd */
	KTXCTL_EXIT_BUSY = 4,      /* the queue is full */
	KTXCTL_EXIT_CANCELED = 5,  /* the job was canceled */
	KTXCTL_EXIT_NOT_FOUND = 6, /* no such conversation or job */
	KTXCTL_EXIT_FORBIDDEN = 7, /* another user's conversation or job */
	KTXCTL_EXIT_TOO_LARGE = 8, /* prompt over the limit, or context full */
	KTXCTL_EXIT_PROTOCOL = 9,  /* ktxd hung up or spoke nonsense */
	KTXCTL_EXIT_PENDING = 10,  /* the job has not finished */
};

/* An error on its way to main(): the exit status and the sentence for stderr. */
struct cerr {
	int exit;
	char msg[768];
};

int cerr_set(struct cerr *e, int exit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The exit status for a protocol error code. */
int exit_of_code(int code);

/* Fills e from an error event (or a failed job's result) and returns its exit status. */
int cerr_from_event(struct cerr *e, const struct ktx_msg *ev);

/* ---- the connection (conn.c) ---- */
struct conn;

/* Connects to the socket at path and says hello; names the cause on failure. */
int conn_open(const char *path, struct conn **out, struct cerr *e);
void conn_close(struct conn *c);
/* The prompt limit ktxd announced. */
uint32_t conn_prompt_max(const struct conn *c);
/* Gives req a fresh id, sends it and returns the id in *id. */
int conn_send(struct conn *c, struct ktx_msg *req, uint64_t *id, struct cerr *e);
/* Reads the next event answering request id (m must be cleared by the caller). */
int conn_next(struct conn *c, uint64_t id, struct ktx_msg *m, struct cerr *e);

/* ---- options and commands ---- */
struct opts {
	const char *socket;
	int json;              /* one JSON object per event line */
	int verbose;           /* queue positions and statistics on stderr */
	const char *conversation;
	uint64_t max_tokens;   /* 0: the server's default */
	double temperature;    /* < 0: the server's default */
	double top_p;          /* < 0: the server's default */
	int have_seed;
	uint64_t seed;
	int detach;
	int all;
	uint64_t limit;        /* 0: no limit */
};

/* ---- output (render.c) ---- */
/* Prints ev as one JSON line on f. */
void render_json(FILE *f, const struct ktx_msg *ev);
/* Prints a list item (job, conversation, turn, usage, status) for humans. */
void render_item(FILE *f, const struct ktx_msg *ev);

/* ---- input (input.c) ---- */
/* Reads all of stdin as a prompt of at most max bytes (malloc'd). */
int input_read_all(FILE *in, uint32_t max, char **out, struct cerr *e);
/* Checks a prompt before it is sent: not empty, UTF-8, within max. */
int input_check(const char *p, size_t len, uint32_t max, struct cerr *e);
/* Reads one chat message: lines up to an empty line or ".", or EOF.
 * Returns 1 with *out set (malloc'd), 0 at EOF with nothing typed, -1 on error. */
int input_read_message(FILE *in, char **out, struct cerr *e);

/* ---- commands (cmd_*.c): each returns an exit status ---- */
int cmd_ask(struct conn *c, const struct opts *o, const char *prompt, int detached_submit,
    struct cerr *e);
int cmd_chat(struct conn *c, const struct opts *o, struct cerr *e);
int cmd_list(struct conn *c, const struct opts *o, enum ktx_msg_type op, const char *arg,
    struct cerr *e);

/* Parses a job id argument ("17"); usage error otherwise. */
int parse_id(const char *s, const char *what, uint64_t *id, struct cerr *e);

#endif
