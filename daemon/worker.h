/*
 * worker.h - the thread that owns the engine.
 *
 * The loop thread hands it jobs (worker_start), as many at once as it wants
 * generated together (continuous batching: a new job joins the running batch
 * between decode steps), and may cancel any of them (worker_cancel); the
 * worker loads the model first and reports progress, each piece of text and
 * the end of each job as events, waking the loop through a uv_async_t. The
 * loop drains them with worker_take.
 */
#ifndef KTX_DAEMON_WORKER_H
#define KTX_DAEMON_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "daemon/gen.h"
#include "daemon/store.h"

struct worker;

enum worker_ev_type {
	WEV_PROGRESS, /* fraction, text: loading */
	WEV_LOADED,   /* info */
	WEV_FAILED,   /* text: the model could not be loaded */
	WEV_TEXT,     /* job, text: a piece of the answer */
	WEV_END,      /* job, state, text (answer or error), stats, end, code */
};

struct worker_ev {
	enum worker_ev_type type;
	int64_t job;
	double fraction;
	char *text;            /* owned by the event */
	size_t len;
	enum job_state state;  /* WEV_END: done, failed or canceled */
	enum gen_end end;
	int code;              /* WEV_END failed: the engine's KTX_E* */
	struct job_stats stats;
	struct gen_info info;
	struct worker_ev *next;
};

/* One job as handed to the worker; the worker copies what it keeps. */
struct worker_job {
	int64_t id;
	struct gen_request req;
};

/* Starts the thread, which loads the model at once; events wake async. */
int worker_new(const struct gen_params *p, uv_async_t *async, struct worker **out,
    struct ktx_err *err);
/* Cancels every job, stops the thread and frees everything (blocks for the join). */
void worker_free(struct worker *w);
/* Hands a job over; it joins the running batch between two decode steps. */
int worker_start(struct worker *w, const struct worker_job *j, struct ktx_err *err);
/* Asks job to stop at its next check (between steps); a no-op for an unknown id. */
void worker_cancel(struct worker *w, int64_t job);
/* Drops a conversation's cached session before its next job. */
void worker_forget(struct worker *w, int64_t conversation);
/* Takes all pending events (oldest first); free each with worker_ev_free. */
struct worker_ev *worker_take(struct worker *w);
void worker_ev_free(struct worker_ev *ev);

#endif
