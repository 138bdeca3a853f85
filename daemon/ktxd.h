/*
 * ktxd.h - the daemon's insides shared by its loop-thread files: the server,
 * its connections and its live jobs.
 *
 * Everything here is owned by the loop thread; only worker.h crosses to the
 * engine thread. server.c: listening, signals, systemd; conn.c: one client's
 * bytes and frames; ops.c: what each request does; jobs.c: a job's life
 * from queue to answer.
 */
#ifndef KTX_DAEMON_KTXD_H
#define KTX_DAEMON_KTXD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "daemon/conf.h"
#include "daemon/gen.h"
#include "daemon/sched.h"
#include "daemon/store.h"
#include "daemon/worker.h"
#include "proto/proto.h"

/* Bytes of a token stream a client may leave unread before its connection
 * is dropped (which cancels its interactive job). Answers to requests
 * (show, history) are not bounded by it: their size is the request's. */
#define CONN_WRITE_MAX (4u << 20)
/* Bytes of unfinished request frames one user may have buffered over all
 * their connections (or two frames of max_frame_bytes, if more). */
#define USER_BUFFERED_MAX (64u << 20)
/* Connections at once, all users, and per user. */
#define CONN_MAX 8192
#define CONN_PER_USER 1024
/* Finished jobs whose speed status averages. */
#define RECENT_JOBS 16

struct server;

struct conn {
	uv_pipe_t pipe;
	struct server *srv;
	struct conn *prev, *next;
	uid_t uid;
	pid_t pid;
	bool admin;
	bool hello;
	bool closing;
	bool stalled;          /* stopped reading or broken: the reaper closes it */
	struct ktx_frame_reader *reader;
	size_t out_bytes;      /* written but not yet flushed */
	size_t in_bytes;       /* of an unfinished request frame, buffered */
};

/* A job that is waiting or running (finished jobs live only in the store). */
struct job {
	int64_t id;
	uint32_t uid;
	bool detached;
	int64_t conversation;
	int64_t created_ms;
	int64_t started_ms;    /* 0 while waiting */
	struct conn *conn;     /* where its events go; NULL: nobody is listening */
	uint64_t req;          /* the request id of its ask */
	char *title;
	struct job *prev, *next;
};

/* A client waiting for a job's result ("wait"). */
struct waiter {
	struct conn *conn;
	uint64_t req;
	int64_t job;
	struct waiter *next;
};

enum server_state { SRV_LOADING, SRV_READY, SRV_STOPPING };

struct server {
	uv_loop_t *loop;
	struct ktxd_config *cfg;
	uv_pipe_t listener;
	bool activated;        /* the socket came from systemd */
	uv_signal_t sigterm, sigint;
	uv_async_t wake;
	uv_timer_t tick;
	uv_idle_t reaper;      /* closes stalled connections outside any callback chain */
	struct store *store;
	struct sched *sched;
	struct worker *worker;
	gid_t admin_gid;
	bool have_admin_gid;
	struct ktx_proto_limits limits;
	enum server_state state;
	bool load_failed;      /* the worker thread has ended */
	double progress;
	char progress_what[128];
	struct gen_info info;
	int64_t started_ms;
	uint64_t watchdog_usec;
	uint64_t last_watchdog_ms;
	struct conn *conns;
	unsigned n_conns;
	struct job *jobs;
	unsigned n_running;    /* jobs on the worker (started_ms != 0), at most batch_max */
	bool stop_requeue;     /* the running jobs are being stopped for shutdown */
	struct waiter *waiters;
	double recent_tps[RECENT_JOBS];
	unsigned n_recent;
	char last_status[256];  /* the last STATUS= sent, and when */
	int64_t last_status_ms;
	int exit_code;
};

/* server.c */
int server_start(struct server *srv, uv_loop_t *loop, struct ktxd_config *cfg,
    struct ktx_err *err);
void server_stop(struct server *srv, int exit_code);
void server_notify_status(struct server *srv);
/* Frees what server_start made once the loop has ended; closes the store. */
void server_free(struct server *srv);

/* conn.c */
void conn_accept(struct server *srv);
/* Queues m on c (nothing once c is closing). */
void conn_send(struct conn *c, const struct ktx_msg *m);
/*
 * Closes c at once, without flushing, on the next loop turn: never from
 * inside a caller that may be walking the lists closing a connection changes.
 */
void conn_abort(struct conn *c);
void conn_error(struct conn *c, uint64_t req, int code, int64_t job, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void conn_close(struct conn *c);

/* ops.c */
void ops_handle(struct conn *c, struct ktx_msg *m);
int ops_code_of(int ktx_status);

/* jobs.c */
/* How many of uid's jobs are running. */
unsigned jobs_running_of(const struct server *srv, uint32_t uid);
void jobs_submit(struct conn *c, const struct ktx_msg *m, bool detached);
int jobs_cancel(struct server *srv, int64_t id, const char *why);
void jobs_conn_gone(struct conn *c);
void jobs_on_events(uv_async_t *async);
void jobs_dispatch(struct server *srv);
struct job *jobs_find(struct server *srv, int64_t id);
void jobs_add_waiter(struct conn *c, uint64_t req, int64_t job);
void jobs_send_result(struct conn *c, uint64_t req, const struct store_job *j);
/* Stopping: waiting interactive jobs end as interrupted; detached ones are
 * dropped from memory but stay queued in the store for the next start. */
void jobs_shutdown(struct server *srv);
void jobs_free_all(struct server *srv);
double jobs_recent_tps(const struct server *srv);
/* The first line of a prompt, cut at a character boundary (malloc'ed; NULL: no memory). */
char *jobs_title(const char *text);

#endif
