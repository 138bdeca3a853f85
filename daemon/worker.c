/*
 * worker.c - the engine thread behind worker.h.
 *
 * Shared state (the job handed over, the cancel flag, the event list) sits
 * behind one mutex; the thread sleeps on a condition variable between jobs.
 * The loop thread never waits for the worker except in worker_free.
 */
#include "config.h"

#include "daemon/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Most conversations to forget that may wait for the next job. */
#define FORGET_MAX 64

struct worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uv_async_t *async;
	struct gen_params params;
	char *model;
	/* under mu */
	bool quit, have_job;
	struct worker_job job;   /* deep copy */
	struct worker_ev *end_ev; /* its end, allocated up front so it always goes out */
	struct gen_turn *turns;
	struct job_options opt;
	int64_t forget[FORGET_MAX];
	size_t n_forget;
	struct worker_ev *head, *tail;
	/* read by the engine between steps */
	atomic_llong running;    /* id of the job being generated, 0: none */
	atomic_bool cancel;
};

/* Queues an event for the loop and wakes it. */
static void
post(struct worker *w, struct worker_ev *ev)
{
	pthread_mutex_lock(&w->mu);
	ev->next = NULL;
	if (w->tail != NULL)
		w->tail->next = ev;
	else
		w->head = ev;
	w->tail = ev;
	pthread_mutex_unlock(&w->mu);
	uv_async_send(w->async);
}

/* A new event with a copy of text (which may be NULL); NULL when out of memory. */
static struct worker_ev *
ev_new(enum worker_ev_type type, int64_t job, const char *text, size_t len)
{
	struct worker_ev *ev = calloc(1, sizeof(*ev));

	if (ev == NULL)
		return NULL;
	ev->type = type;
	ev->job = job;
	if (text != NULL) {
		if ((ev->text = malloc(len + 1)) == NULL) {
			free(ev);
			return NULL;
		}
		memcpy(ev->text, text, len);
		ev->text[len] = '\0';
		ev->len = len;
	}
	return ev;
}

void
worker_ev_free(struct worker_ev *ev)
{
	if (ev == NULL)
		return;
	free(ev->text);
	free(ev);
}

static void
on_progress(void *ctx, double fraction, const char *what)
{
	struct worker *w = ctx;
	struct worker_ev *ev = ev_new(WEV_PROGRESS, 0, what, what ? strlen(what) : 0);

	if (ev == NULL)
		return;
	ev->fraction = fraction;
	post(w, ev);
}

static bool
should_stop(void *ctx)
{
	struct worker *w = ctx;

	return atomic_load(&w->cancel);
}

static int
on_text(void *ctx, const char *text, size_t len)
{
	struct worker *w = ctx;
	struct worker_ev *ev = ev_new(WEV_TEXT, atomic_load(&w->running), text, len);

	if (ev == NULL)
		return -1;
	post(w, ev);
	return 0;
}

/* Frees the deep copy of the current job (under mu or when the thread is gone). */
static void
job_clear(struct worker *w)
{
	size_t i;

	for (i = 0; w->turns != NULL && i < w->job.req.n_turns; i++)
		free((char *)w->turns[i].content);
	free(w->turns);
	worker_ev_free(w->end_ev);
	w->end_ev = NULL;
	w->turns = NULL;
	memset(&w->job, 0, sizeof(w->job));
	w->have_job = false;
}

/* Runs one job; returns its end event. */
static struct worker_ev *
run_job(struct worker *w, struct gen *g)
{
	struct worker_ev *ev = w->end_ev;
	struct ktx_err err;
	enum gen_end end = GEN_END_CANCELED;
	struct job_stats stats;
	char *answer = NULL;
	int rc;

	ktx_err_clear(&err);
	memset(&stats, 0, sizeof(stats));
	rc = gen_run(g, &w->job.req, on_text, should_stop, w, &answer, &end, &stats, &err);
	w->end_ev = NULL;
	ev->stats = stats;
	ev->end = end;
	if (rc != 0) {
		ev->state = JOB_FAILED;
		ev->code = rc;
		ev->text = strdup(err.msg[0] ? err.msg : ktx_status_name(rc));
		free(answer);
	} else {
		ev->state = end == GEN_END_CANCELED ? JOB_CANCELED : JOB_DONE;
		ev->text = answer;
	}
	return ev;
}

static void *
thread_main(void *arg)
{
	struct worker *w = arg;
	struct worker_ev *ev;
	struct ktx_err err;
	struct gen *g = NULL;
	int64_t forget[FORGET_MAX];
	size_t i, n_forget;
	int rc;

	ktx_err_clear(&err);
	w->params.progress = on_progress;
	w->params.progress_ctx = w;
	rc = gen_load(&w->params, &g, &err);
	if (rc != 0) {
		if ((ev = ev_new(WEV_FAILED, 0, err.msg, strlen(err.msg))) != NULL)
			post(w, ev);
		return NULL;
	}
	if ((ev = ev_new(WEV_LOADED, 0, NULL, 0)) != NULL) {
		gen_get_info(g, &ev->info);
		post(w, ev);
	}
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->quit && !w->have_job && w->n_forget == 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		n_forget = w->n_forget;
		memcpy(forget, w->forget, n_forget * sizeof(*forget));
		w->n_forget = 0;
		pthread_mutex_unlock(&w->mu);
		for (i = 0; i < n_forget; i++)
			gen_forget(g, forget[i]);
		pthread_mutex_lock(&w->mu);
		if (!w->have_job)
			continue;
		pthread_mutex_unlock(&w->mu);
		ev = run_job(w, g);
		/* Let go of the job before the loop hears of its end: it may hand
		 * over the next one as soon as it does. */
		pthread_mutex_lock(&w->mu);
		job_clear(w);
		atomic_store(&w->running, 0);
		pthread_mutex_unlock(&w->mu);
		post(w, ev);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	gen_free(g);
	return NULL;
}

int
worker_new(const struct gen_params *p, uv_async_t *async, struct worker **out,
    struct ktx_err *err)
{
	struct worker *w;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL || (w->model = strdup(p->model)) == NULL) {
		free(w);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory starting the worker");
	}
	w->params = *p;
	w->params.model = w->model;
	w->async = async;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w->model);
		free(w);
		return ktx_err_set(err, KTX_ENOMEM, "cannot start the worker thread");
	}
	*out = w;
	return 0;
}

void
worker_free(struct worker *w)
{
	struct worker_ev *ev;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	atomic_store(&w->cancel, true);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	job_clear(w);
	while ((ev = worker_take(w)) != NULL) {
		while (ev != NULL) {
			struct worker_ev *next = ev->next;

			worker_ev_free(ev);
			ev = next;
		}
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->model);
	free(w);
}

int
worker_start(struct worker *w, const struct worker_job *j, struct ktx_err *err)
{
	struct worker_ev *end_ev;
	struct gen_turn *turns;
	size_t i;

	if ((end_ev = ev_new(WEV_END, j->id, NULL, 0)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory handing a job over");
	if ((turns = calloc(j->req.n_turns ? j->req.n_turns : 1, sizeof(*turns))) == NULL) {
		worker_ev_free(end_ev);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory handing a job over");
	}
	for (i = 0; i < j->req.n_turns; i++) {
		turns[i].assistant = j->req.turns[i].assistant;
		if ((turns[i].content = strdup(j->req.turns[i].content)) == NULL) {
			while (i-- > 0)
				free((char *)turns[i].content);
			free(turns);
			worker_ev_free(end_ev);
			return ktx_err_set(err, KTX_ENOMEM, "out of memory handing a job over");
		}
	}
	pthread_mutex_lock(&w->mu);
	w->job = *j;
	w->opt = *j->req.opt;
	w->job.req.opt = &w->opt;
	w->job.req.turns = turns;
	w->turns = turns;
	w->end_ev = end_ev;
	w->have_job = true;
	atomic_store(&w->cancel, false);
	atomic_store(&w->running, j->id);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void
worker_cancel(struct worker *w, int64_t job)
{
	if (atomic_load(&w->running) == job)
		atomic_store(&w->cancel, true);
}

void
worker_forget(struct worker *w, int64_t conversation)
{
	pthread_mutex_lock(&w->mu);
	if (w->n_forget < FORGET_MAX)
		w->forget[w->n_forget++] = conversation;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

struct worker_ev *
worker_take(struct worker *w)
{
	struct worker_ev *ev;

	pthread_mutex_lock(&w->mu);
	ev = w->head;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->mu);
	return ev;
}
