/*
 * worker.c - the engine thread behind worker.h.
 *
 * Shared state (the jobs handed over, their cancel flags, the event list)
 * sits behind one mutex; the thread sleeps on a condition variable while it
 * has no job. The loop thread never waits for the worker except in
 * worker_free.
 *
 * Continuous batching: the thread keeps every job it was handed in one
 * batch. Each round it takes in new jobs, ends the cancelled ones, runs one
 * prefill chunk of the oldest job still prefilling, then one decode step of
 * all prefilled jobs together; so a new job joins between steps and a long
 * prompt delays the others' next token by one chunk at most.
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

/* A job handed to the worker, from worker_start until its end is posted. */
struct slot {
	struct worker *w;
	int64_t id;
	struct gen_request req;  /* deep copy */
	struct gen_turn *turns;
	struct job_options opt;
	struct worker_ev *end_ev; /* allocated up front so the end always goes out */
	atomic_bool cancel;
	bool begun;              /* taken in by the thread */
	struct gen_job *gj;
	struct slot *next;
};

struct worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uv_async_t *async;
	struct gen_params params;
	char *model;
	/* under mu */
	bool quit;
	struct slot *slots;      /* newest first */
	size_t n_new;            /* slots not yet begun */
	int64_t forget[FORGET_MAX];
	size_t n_forget;
	struct worker_ev *head, *tail;
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

static int
on_text(void *ctx, const char *text, size_t len)
{
	struct slot *sl = ctx;
	struct worker_ev *ev = ev_new(WEV_TEXT, sl->id, text, len);

	if (ev == NULL)
		return -1;
	post(sl->w, ev);
	return 0;
}

static void
slot_free(struct slot *sl)
{
	size_t i;

	for (i = 0; sl->turns != NULL && i < sl->req.n_turns; i++)
		free((char *)sl->turns[i].content);
	free(sl->turns);
	worker_ev_free(sl->end_ev);
	free(sl);
}

/* Fills sl's end event from the result of its generation. */
static struct worker_ev *
end_event(struct slot *sl, int rc, const struct ktx_err *err, char *answer, enum gen_end end,
    const struct job_stats *stats)
{
	struct worker_ev *ev = sl->end_ev;

	sl->end_ev = NULL;
	ev->stats = *stats;
	ev->end = end;
	if (rc != 0) {
		ev->state = JOB_FAILED;
		ev->code = rc;
		ev->text = strdup(err->msg[0] ? err->msg : ktx_status_name(rc));
		free(answer);
	} else {
		ev->state = end == GEN_END_CANCELED ? JOB_CANCELED : JOB_DONE;
		ev->text = answer;
	}
	return ev;
}

/* Ends sl: takes it off the list, then tells the loop (which may hand over the next job). */
static void
slot_end(struct worker *w, struct gen *g, struct slot *sl, bool canceled, int rc,
    const struct ktx_err *failed)
{
	struct slot **p;
	struct worker_ev *ev;
	struct job_stats stats;
	struct ktx_err err;
	enum gen_end end = GEN_END_CANCELED;
	char *answer = NULL;

	ktx_err_clear(&err);
	memset(&stats, 0, sizeof(stats));
	if (sl->gj != NULL)
		rc = gen_job_finish(g, sl->gj, canceled, &answer, &end, &stats, &err);
	else if (failed != NULL)
		err = *failed;
	ev = end_event(sl, rc, &err, answer, end, &stats);
	pthread_mutex_lock(&w->mu);
	for (p = &w->slots; *p != sl; p = &(*p)->next)
		;
	*p = sl->next;
	pthread_mutex_unlock(&w->mu);
	slot_free(sl);
	post(w, ev);
}

/* The newest slot; the loop thread may prepend at any time, so under mu.
 * Only the engine thread unlinks slots, so it walks on from there unlocked. */
static struct slot *
first_slot(struct worker *w)
{
	struct slot *sl;

	pthread_mutex_lock(&w->mu);
	sl = w->slots;
	pthread_mutex_unlock(&w->mu);
	return sl;
}

/* One round of the batch over the begun slots; false when none is left. */
static bool
round_once(struct worker *w, struct gen *g, struct gen_job **batch)
{
	struct slot *sl, *next, *oldest = NULL;
	bool decoding = false;
	size_t n = 0;

	for (sl = first_slot(w); sl != NULL; sl = next) {
		next = sl->next;
		if (!sl->begun)
			continue;
		if (atomic_load(&sl->cancel)) {
			slot_end(w, g, sl, true, 0, NULL);
			continue;
		}
		if (gen_job_prefilling(sl->gj))
			oldest = sl;
		else if (!gen_job_ended(sl->gj))
			decoding = true;
	}
	if (oldest != NULL)
		gen_job_prefill(oldest->gj, decoding);
	for (sl = first_slot(w); sl != NULL; sl = sl->next)
		if (sl->begun && !gen_job_ended(sl->gj) && !gen_job_prefilling(sl->gj))
			batch[n++] = sl->gj;
	if (n > 0)
		gen_step(g, batch, n);
	n = 0;
	for (sl = first_slot(w); sl != NULL; sl = next) {
		next = sl->next;
		if (!sl->begun)
			continue;
		if (gen_job_ended(sl->gj))
			slot_end(w, g, sl, false, 0, NULL);
		else
			n++;
	}
	return n > 0;
}

/* Starts generating the slots handed over before head (and head) was read. */
static void
begin_new(struct worker *w, struct gen *g, struct slot *head)
{
	struct slot *sl, *next;
	struct ktx_err err;
	int rc;

	for (sl = head; sl != NULL; sl = next) {
		next = sl->next;
		if (sl->begun)
			continue;
		pthread_mutex_lock(&w->mu);
		sl->begun = true;
		w->n_new--;
		pthread_mutex_unlock(&w->mu);
		ktx_err_clear(&err);
		if ((rc = gen_job_new(g, &sl->req, on_text, sl, &sl->gj, &err)) != 0)
			slot_end(w, g, sl, false, rc, &err);
	}
}

static void *
thread_main(void *arg)
{
	struct worker *w = arg;
	struct worker_ev *ev;
	struct gen_job **batch = NULL;
	struct slot *sl, *next, *head;
	struct ktx_err err;
	struct gen *g = NULL;
	int64_t forget[FORGET_MAX];
	size_t i, n_forget, n;
	bool busy = false;
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
		while (!w->quit && !busy && w->n_new == 0 && w->n_forget == 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		n_forget = w->n_forget;
		memcpy(forget, w->forget, n_forget * sizeof(*forget));
		w->n_forget = 0;
		/* The batch holds at most the slots there are now: later ones
		 * are begun next round. */
		head = w->slots;
		for (n = 0, sl = head; sl != NULL; sl = sl->next)
			n++;
		pthread_mutex_unlock(&w->mu);
		for (i = 0; i < n_forget; i++)
			gen_forget(g, forget[i]);
		free(batch);
		if ((batch = calloc(n ? n : 1, sizeof(*batch))) == NULL) {
			/* Nothing can run without it: end the running jobs. */
			for (sl = head; sl != NULL; sl = next)
				if ((next = sl->next, sl->begun))
					slot_end(w, g, sl, true, 0, NULL);
			busy = false;
			pthread_mutex_lock(&w->mu);
			continue;
		}
		begin_new(w, g, head);
		busy = round_once(w, g, batch);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	/* Stopping: the running jobs end as cancelled; worker_free drains their ends. */
	for (sl = w->slots; sl != NULL; sl = next)
		if ((next = sl->next, sl->begun))
			slot_end(w, g, sl, true, 0, NULL);
	free(batch);
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
	struct slot *sl;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	while ((sl = w->slots) != NULL) {
		w->slots = sl->next;
		slot_free(sl);
	}
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
	struct slot *sl;
	size_t i;

	if ((sl = calloc(1, sizeof(*sl))) == NULL ||
	    (sl->end_ev = ev_new(WEV_END, j->id, NULL, 0)) == NULL ||
	    (sl->turns = calloc(j->req.n_turns ? j->req.n_turns : 1, sizeof(*sl->turns))) == NULL) {
		if (sl != NULL)
			worker_ev_free(sl->end_ev);
		free(sl);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory handing a job over");
	}
	sl->w = w;
	sl->id = j->id;
	sl->req = j->req;
	sl->opt = *j->req.opt;
	sl->req.opt = &sl->opt;
	sl->req.turns = sl->turns;
	sl->req.n_turns = 0;
	for (i = 0; i < j->req.n_turns; i++) {
		sl->turns[i].assistant = j->req.turns[i].assistant;
		if ((sl->turns[i].content = strdup(j->req.turns[i].content)) == NULL) {
			slot_free(sl);
			return ktx_err_set(err, KTX_ENOMEM, "out of memory handing a job over");
		}
		sl->req.n_turns++;
	}
	atomic_init(&sl->cancel, false);
	pthread_mutex_lock(&w->mu);
	sl->next = w->slots;
	w->slots = sl;
	w->n_new++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void
worker_cancel(struct worker *w, int64_t job)
{
	struct slot *sl;

	pthread_mutex_lock(&w->mu);
	for (sl = w->slots; sl != NULL; sl = sl->next)
		if (sl->id == job)
			atomic_store(&sl->cancel, true);
	pthread_mutex_unlock(&w->mu);
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
