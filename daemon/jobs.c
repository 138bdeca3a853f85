/*
 * jobs.c - a job's life on the loop thread: submitted (question stored,
 * queued), dispatched to the worker, streamed, finished (answer stored,
 * client and waiters told), or cancelled.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ktxd.h"
#include "daemon/log.h"

/* Bounds on the options a request may carry. */
#define MAX_TOKENS_LIMIT (1u << 20)
#define TEMPERATURE_MAX 100.0
/* The options a job gets when its request leaves them out. */
#define DEFAULT_TEMPERATURE 0.6
#define DEFAULT_TOP_P 0.95
/* Bytes of a prompt's first line kept as the job's title. */
#define TITLE_MAX 60
/* A status beside the KTX_E* codes (which are negative): another user's. */
#define JOBS_EFORBIDDEN 1

struct job *
jobs_find(struct server *srv, int64_t id)
{
	struct job *j;

	for (j = srv->jobs; j != NULL; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

unsigned
jobs_running_of(const struct server *srv, uint32_t uid)
{
	const struct job *j;
	unsigned n = 0;

	for (j = srv->jobs; j != NULL; j = j->next)
		if (j->started_ms != 0 && j->uid == uid)
			n++;
	return n;
}

char *
jobs_title(const char *text)
{
	size_t n = strcspn(text, "\r\n");
	char *t;

	if (n > TITLE_MAX) {
		n = TITLE_MAX;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
	}
	if ((t = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(t, text, n);
	t[n] = '\0';
	return t;
}

static void
job_unlink_free(struct server *srv, struct job *j)
{
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		srv->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	free(j->title);
	free(j);
}

int
ops_code_of(int status)
{
	switch (status) {
	case KTX_ENOTFOUND: return KTX_CODE_NOT_FOUND;
	case KTX_EINVAL: return KTX_CODE_BAD_FIELD;
	case KTX_ERANGE: return KTX_CODE_CONTEXT_FULL;
	case KTX_ECANCELED: return KTX_CODE_CANCELED;
	}
	return KTX_CODE_INTERNAL;
}

/* Resolves the "conversation" of a request: 0 (new, maybe named) or an id of c's user. */
static int
resolve_conversation(struct conn *c, const char *ref, int64_t *id, const char **name,
    struct ktx_err *err)
{
	uint32_t owner;
	int rc;

	*id = 0;
	*name = NULL;
	if (ref == NULL)
		return 0;
	if (strcmp(ref, "last") == 0)
		return store_conv_last(c->srv->store, c->uid, id, err);
	rc = store_conv_find(c->srv->store, c->uid, ref, id, &owner, err);
	if (rc == KTX_ENOTFOUND && (ref[0] < '0' || ref[0] > '9')) {
		*name = ref; /* a new conversation with this name */
		return 0;
	}
	if (rc == 0 && owner != c->uid)
		return ktx_err_set(err, JOBS_EFORBIDDEN, "conversation %s belongs to another user",
		    ref);
	return rc;
}

void
jobs_submit(struct conn *c, const struct ktx_msg *m, bool detached)
{
	struct server *srv = c->srv;
	struct job_options opt;
	struct store_submit sub;
	struct ktx_msg ev;
	struct ktx_err err;
	struct job *j;
	const char *prompt = ktx_msg_get_str(m, KTX_F_PROMPT);
	int64_t id, conv;
	int rc;

	if (srv->state == SRV_STOPPING) {
		conn_error(c, m->id, KTX_CODE_UNAVAILABLE, 0, "ktxd is shutting down");
		return;
	}
	if (prompt[0] == '\0') {
		conn_error(c, m->id, KTX_CODE_BAD_FIELD, 0, "the prompt is empty");
		return;
	}
	memset(&opt, 0, sizeof(opt));
	opt.max_tokens = (int32_t)ktx_msg_get_uint(m, KTX_F_MAX_TOKENS, 0);
	opt.temperature = ktx_msg_get_float(m, KTX_F_TEMPERATURE, DEFAULT_TEMPERATURE);
	opt.top_p = ktx_msg_get_float(m, KTX_F_TOP_P, DEFAULT_TOP_P);
	opt.seed_set = ktx_msg_has(m, KTX_F_SEED);
	opt.seed = ktx_msg_get_uint(m, KTX_F_SEED, 0);
	if (ktx_msg_get_uint(m, KTX_F_MAX_TOKENS, 0) > MAX_TOKENS_LIMIT ||
	    !(opt.temperature >= 0 && opt.temperature <= TEMPERATURE_MAX) ||
	    !(opt.top_p > 0 && opt.top_p <= 1)) {
		conn_error(c, m->id, KTX_CODE_BAD_FIELD, 0,
		    "options out of range: max_tokens 0..%u, temperature 0..%g, top_p (0, 1]",
		    MAX_TOKENS_LIMIT, TEMPERATURE_MAX);
		return;
	}
	/* Busy is answered before anything is stored. */
	if (sched_len(srv->sched) >= srv->cfg->queue_max) {
		conn_error(c, m->id, KTX_CODE_BUSY, 0,
		    "the queue is full (%u jobs waiting); try again later", srv->cfg->queue_max);
		return;
	}
	if (sched_user_len(srv->sched, c->uid) >= srv->cfg->queue_per_user) {
		conn_error(c, m->id, KTX_CODE_BUSY, 0,
		    "you have %u jobs waiting, the most one user may; wait for some to finish",
		    srv->cfg->queue_per_user);
		return;
	}
	ktx_err_clear(&err);
	memset(&sub, 0, sizeof(sub));
	rc = resolve_conversation(c, ktx_msg_get_str(m, KTX_F_CONVERSATION), &sub.conversation,
	    &sub.name, &err);
	if (rc != 0) {
		conn_error(c, m->id, rc == JOBS_EFORBIDDEN ? KTX_CODE_FORBIDDEN : ops_code_of(rc),
		    0, "%s", err.msg);
		return;
	}
	sub.uid = c->uid;
	sub.detached = detached;
	sub.prompt = prompt;
	sub.opt = &opt;
	if ((rc = store_submit(srv->store, &sub, &id, &conv, &err)) != 0) {
		conn_error(c, m->id, ops_code_of(rc), 0, "%s", err.msg);
		if (ops_code_of(rc) == KTX_CODE_INTERNAL)
			log_error("%s", err.msg);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->title = jobs_title(prompt)) == NULL ||
	    sched_push(srv->sched, id, c->uid) != SCHED_OK) {
		if (j != NULL)
			free(j->title);
		free(j);
		store_job_finish(srv->store, id, JOB_FAILED, NULL, "out of memory queueing it",
		    &(struct job_stats){0}, &err);
		conn_error(c, m->id, KTX_CODE_INTERNAL, id, "out of memory queueing the job");
		return;
	}
	j->id = id;
	j->uid = c->uid;
	j->detached = detached;
	j->conversation = conv;
	j->created_ms = store_now_ms();
	j->req = m->id;
	if (m->type == KTX_OP_ASK)
		j->conn = c;
	j->next = srv->jobs;
	if (srv->jobs != NULL)
		srv->jobs->prev = j;
	srv->jobs = j;
	log_debug("uid %u: job %lld queued (%s)", (unsigned)c->uid, (long long)id,
	    detached ? "detached" : "interactive");
	ktx_msg_init(&ev, m->type == KTX_OP_ASK ? KTX_EV_QUEUED : KTX_EV_ACCEPTED, m->id);
	ktx_msg_set_uint(&ev, KTX_F_JOB, (uint64_t)id);
	ktx_msg_set_uint(&ev, KTX_F_POSITION, sched_position(srv->sched, id));
	ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)conv);
	conn_send(c, &ev);
	jobs_dispatch(srv);
	server_notify_status(srv);
}

/* Collects a job's context turns into a growing array. */
struct turns {
	struct gen_turn *v;
	size_t n, cap;
	char **owned;
};

static int
add_turn(void *ctx, const struct store_turn *t)
{
	struct turns *ts = ctx;
	struct gen_turn *nv;
	char **no;
	size_t cap;

	if (ts->n == ts->cap) {
		cap = ts->cap ? 2 * ts->cap : 16;
		if ((nv = realloc(ts->v, cap * sizeof(*nv))) == NULL)
			return KTX_ENOMEM;
		ts->v = nv;
		if ((no = realloc(ts->owned, cap * sizeof(*no))) == NULL)
			return KTX_ENOMEM;
		ts->owned = no;
		ts->cap = cap;
	}
	if ((ts->owned[ts->n] = strdup(t->content)) == NULL)
		return KTX_ENOMEM;
	ts->v[ts->n].assistant = strcmp(t->role, "assistant") == 0;
	ts->v[ts->n].content = ts->owned[ts->n];
	ts->n++;
	return 0;
}

static void
turns_free(struct turns *ts)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		free(ts->owned[i]);
	free(ts->owned);
	free(ts->v);
}

/* Tells everyone who waits for job id (its streaming client has been told). */
static void
notify_waiters(struct server *srv, int64_t id)
{
	struct waiter **pw = &srv->waiters, *w, *mine = NULL;
	struct store_job sj;
	struct ktx_err err;
	int rc = 1;

	/* Take them off the list first; then answer them. */
	while ((w = *pw) != NULL) {
		if (w->job == id) {
			*pw = w->next;
			w->next = mine;
			mine = w;
		} else {
			pw = &w->next;
		}
	}
	if (mine != NULL && (rc = store_job_get(srv->store, id, &sj, &err)) != 0)
		log_error("%s", err.msg);
	while ((w = mine) != NULL) {
		mine = w->next;
		if (rc == 0)
			jobs_send_result(w->conn, w->req, &sj);
		else
			conn_error(w->conn, w->req, KTX_CODE_INTERNAL, id, "%s", err.msg);
		free(w);
	}
	if (rc == 0)
		store_job_clear(&sj);
}

/* Ends a job that never reached the worker (cancelled or failed while waiting). */
static void
end_waiting(struct server *srv, struct job *j, enum job_state state, int code, const char *why)
{
	struct job_stats none = {0};
	struct ktx_err err;

	if (store_job_finish(srv->store, j->id, state, NULL, why, &none, &err) != 0)
		log_error("%s", err.msg);
	if (j->conn != NULL)
		conn_error(j->conn, j->req, code, j->id, "%s", why);
	notify_waiters(srv, j->id);
	job_unlink_free(srv, j);
}

/* Tells each waiting interactive client its job's new place in the queue. */
static void
announce_positions(struct server *srv)
{
	struct ktx_msg ev;
	struct job *j;

	for (j = srv->jobs; j != NULL; j = j->next) {
		if (j->conn == NULL || j->started_ms != 0)
			continue;
		ktx_msg_init(&ev, KTX_EV_QUEUED, j->req);
		ktx_msg_set_uint(&ev, KTX_F_JOB, (uint64_t)j->id);
		ktx_msg_set_uint(&ev, KTX_F_POSITION, sched_position(srv->sched, j->id));
		ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)j->conversation);
		conn_send(j->conn, &ev);
	}
}

void
jobs_dispatch(struct server *srv)
{
	bool moved = false;
	struct worker_job wj;
	struct turns ts;
	struct ktx_err err;
	struct ktx_msg ev;
	struct job *j;
	int64_t id;
	int rc;

	while (srv->state == SRV_READY && srv->n_running < srv->cfg->batch_max &&
	    (id = sched_pop(srv->sched, NULL)) != 0) {
		if ((j = jobs_find(srv, id)) == NULL)
			continue;
		memset(&ts, 0, sizeof(ts));
		ktx_err_clear(&err);
		rc = store_job_context(srv->store, id, add_turn, &ts, &err);
		if (rc != 0 && err.msg[0] == '\0')
			ktx_err_set(&err, rc, "out of memory reading job %lld's turns", (long long)id);
		if (rc == 0 && ts.n == 0)
			rc = ktx_err_set(&err, KTX_ENOTFOUND, "job %lld has no question",
			    (long long)id);
		if (rc == 0)
			rc = store_job_started(srv->store, id, &err);
		if (rc == 0) {
			struct store_job sj;

			if ((rc = store_job_get(srv->store, id, &sj, &err)) == 0) {
				memset(&wj, 0, sizeof(wj));
				wj.id = id;
				wj.req.conversation = j->conversation;
				wj.req.turns = ts.v;
				wj.req.n_turns = ts.n;
				wj.req.opt = &sj.opt;
				rc = worker_start(srv->worker, &wj, &err);
				store_job_clear(&sj);
			}
		}
		turns_free(&ts);
		if (rc != 0) {
			log_error("job %lld: %s", (long long)id, err.msg);
			end_waiting(srv, j, JOB_FAILED, ops_code_of(rc), err.msg);
			continue;
		}
		j->started_ms = store_now_ms();
		srv->n_running++;
		moved = true;
		if (j->conn != NULL) {
			ktx_msg_init(&ev, KTX_EV_STARTED, j->req);
			ktx_msg_set_uint(&ev, KTX_F_JOB, (uint64_t)id);
			ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)j->conversation);
			conn_send(j->conn, &ev);
		}
		log_debug("job %lld of uid %u started", (long long)id, (unsigned)j->uid);
	}
	if (moved)
		announce_positions(srv);
	server_notify_status(srv);
}

int
jobs_cancel(struct server *srv, int64_t id, const char *why)
{
	struct job *j = jobs_find(srv, id);

	if (j == NULL)
		return KTX_ENOTFOUND;
	if (j->started_ms != 0) {
		worker_cancel(srv->worker, id);
		return 0;
	}
	sched_remove(srv->sched, id);
	end_waiting(srv, j, JOB_CANCELED, KTX_CODE_CANCELED, why);
	server_notify_status(srv);
	return 0;
}

void
jobs_conn_gone(struct conn *c)
{
	struct server *srv = c->srv;
	struct waiter **pw = &srv->waiters, *w;
	struct job *j, *next;

	for (j = srv->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->conn != c)
			continue;
		j->conn = NULL;
		if (!j->detached) {
			log_debug("job %lld: its client left; cancelling", (long long)j->id);
			jobs_cancel(srv, j->id, "the client disconnected");
		}
	}
	while ((w = *pw) != NULL) {
		if (w->conn == c) {
			*pw = w->next;
			free(w);
		} else {
			pw = &w->next;
		}
	}
}

void
jobs_add_waiter(struct conn *c, uint64_t req, int64_t job)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		conn_error(c, req, KTX_CODE_INTERNAL, job, "out of memory");
		return;
	}
	w->conn = c;
	w->req = req;
	w->job = job;
	w->next = c->srv->waiters;
	c->srv->waiters = w;
}

/* Tokens per second, or 0 for an empty interval. */
static double
rate(uint32_t n, double s)
{
	return s > 0 ? n / s : 0;
}

void
jobs_send_result(struct conn *c, uint64_t req, const struct store_job *j)
{
	struct ktx_msg ev;

	ktx_msg_init(&ev, KTX_EV_RESULT, req);
	ktx_msg_set_uint(&ev, KTX_F_JOB, (uint64_t)j->id);
	ktx_msg_set_str(&ev, KTX_F_STATE, store_job_state_name(j->state));
	if (j->conversation > 0)
		ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)j->conversation);
	if (j->result != NULL)
		ktx_msg_set_str(&ev, KTX_F_TEXT, j->result);
	if (j->state == JOB_DONE) {
		ktx_msg_set_uint(&ev, KTX_F_PROMPT_TOKENS, j->stats.prompt_tokens);
		ktx_msg_set_uint(&ev, KTX_F_GEN_TOKENS, j->stats.gen_tokens);
		ktx_msg_set_float(&ev, KTX_F_PREFILL_TPS,
		    rate(j->stats.prompt_tokens - j->stats.cached_tokens, j->stats.prefill_s));
		ktx_msg_set_float(&ev, KTX_F_DECODE_TPS, rate(j->stats.gen_tokens, j->stats.decode_s));
	} else if (j->state != JOB_QUEUED && j->state != JOB_RUNNING) {
		ktx_msg_set_str(&ev, KTX_F_CODE,
		    ktx_code_name(j->state == JOB_CANCELED ? KTX_CODE_CANCELED :
			j->state == JOB_INTERRUPTED ? KTX_CODE_UNAVAILABLE : KTX_CODE_INTERNAL));
		ktx_msg_set_str(&ev, KTX_F_MESSAGE, j->error != NULL ? j->error : "no answer");
	}
	conn_send(c, &ev);
}

double
jobs_recent_tps(const struct server *srv)
{
	double sum = 0;
	unsigned i, n = srv->n_recent < RECENT_JOBS ? srv->n_recent : RECENT_JOBS;

	for (i = 0; i < n; i++)
		sum += srv->recent_tps[i];
	return n ? sum / n : 0;
}

/* The worker finished one of the running jobs. */
static void
on_end(struct server *srv, struct worker_ev *ev)
{
	struct job *j = jobs_find(srv, ev->job);
	struct ktx_err err;
	struct ktx_msg m;
	const char *why;
	int code;

	if (j == NULL || j->started_ms == 0)
		return;
	srv->n_running--;
	if (srv->stop_requeue) {
		/* Shutting down: a detached job stays "running" in the store and is
		 * re-queued by the next start, exactly as after a crash. */
		if (!j->detached) {
			store_job_finish(srv->store, j->id, JOB_INTERRUPTED, NULL,
			    "ktxd stopped before the job finished", &ev->stats, &err);
			if (j->conn != NULL)
				conn_error(j->conn, j->req, KTX_CODE_UNAVAILABLE, j->id,
				    "ktxd is shutting down; the answer was not finished");
		}
		job_unlink_free(srv, j);
		return;
	}
	if (store_job_finish(srv->store, j->id, ev->state, ev->state == JOB_DONE ? ev->text : NULL,
		ev->state == JOB_DONE ? NULL :
		ev->state == JOB_CANCELED ? "canceled" : ev->text, &ev->stats, &err) != 0)
		log_error("job %lld: %s", (long long)j->id, err.msg);
	if (ev->state == JOB_DONE && ev->stats.decode_s > 0) {
		srv->recent_tps[srv->n_recent % RECENT_JOBS] =
		    rate(ev->stats.gen_tokens, ev->stats.decode_s);
		srv->n_recent++;
	}
	if (j->conn != NULL) {
		if (ev->state == JOB_DONE) {
			ktx_msg_init(&m, KTX_EV_DONE, j->req);
			ktx_msg_set_uint(&m, KTX_F_JOB, (uint64_t)j->id);
			ktx_msg_set_uint(&m, KTX_F_CONV_ID, (uint64_t)j->conversation);
			ktx_msg_set_uint(&m, KTX_F_PROMPT_TOKENS, ev->stats.prompt_tokens);
			ktx_msg_set_uint(&m, KTX_F_GEN_TOKENS, ev->stats.gen_tokens);
			ktx_msg_set_float(&m, KTX_F_PREFILL_TPS,
			    rate(ev->stats.prompt_tokens - ev->stats.cached_tokens,
				ev->stats.prefill_s));
			ktx_msg_set_float(&m, KTX_F_DECODE_TPS,
			    rate(ev->stats.gen_tokens, ev->stats.decode_s));
			ktx_msg_set_str(&m, KTX_F_REASON,
			    ev->end == GEN_END_EOS ? "eos" : "length");
			conn_send(j->conn, &m);
		} else {
			code = ev->state == JOB_CANCELED ? KTX_CODE_CANCELED : ops_code_of(ev->code);
			why = ev->state == JOB_CANCELED ? "the job was canceled" : ev->text;
			conn_error(j->conn, j->req, code, j->id, "%s", why ? why : "generation failed");
		}
	}
	if (ev->state == JOB_FAILED)
		log_warning("job %lld failed: %s", (long long)j->id, ev->text ? ev->text : "?");
	else
		log_info("job %lld of uid %u %s: %u prompt tokens (%u cached), %u generated, "
			 "%.1f tok/s", (long long)j->id, (unsigned)j->uid,
		    store_job_state_name(ev->state), ev->stats.prompt_tokens,
		    ev->stats.cached_tokens, ev->stats.gen_tokens,
		    rate(ev->stats.gen_tokens, ev->stats.decode_s));
	notify_waiters(srv, j->id);
	job_unlink_free(srv, j);
}

void
jobs_on_events(uv_async_t *async)
{
	struct server *srv = async->data;
	struct worker_ev *ev, *next;
	struct ktx_msg m;
	struct job *j;

	if (srv->worker == NULL)
		return; /* stopping while the model loads: the thread is left to exit() */
	for (ev = worker_take(srv->worker); ev != NULL; ev = next) {
		next = ev->next;
		switch (ev->type) {
		case WEV_PROGRESS:
			srv->progress = ev->fraction;
			snprintf(srv->progress_what, sizeof(srv->progress_what), "%s",
			    ev->text ? ev->text : "");
			server_notify_status(srv);
			break;
		case WEV_LOADED:
			srv->info = ev->info;
			if (srv->state == SRV_LOADING)
				srv->state = SRV_READY;
			log_info("model %s loaded: context %u, %.1f GiB RAM (%s), %.1f GiB VRAM",
			    ev->info.name, ev->info.n_ctx, ev->info.bytes_ram / 1073741824.0,
			    ev->info.mapped ? "mapped" : "read into memory",
			    ev->info.bytes_vram / 1073741824.0);
			server_notify_status(srv);
			jobs_dispatch(srv);
			break;
		case WEV_FAILED:
			srv->load_failed = true;
			log_error("cannot load the model: %s", ev->text ? ev->text : "?");
			server_stop(srv, 1);
			break;
		case WEV_TEXT:
			j = jobs_find(srv, ev->job);
			if (j == NULL || j->started_ms == 0 || j->conn == NULL || j->conn->stalled)
				break;
			if (j->conn->out_bytes > CONN_WRITE_MAX) {
				/* The client stopped reading its stream: drop it, which
				 * cancels the job unless it is detached. */
				log_warning("uid %u stopped reading job %lld's answer; dropping it",
				    (unsigned)j->uid, (long long)ev->job);
				conn_abort(j->conn);
				break;
			}
			ktx_msg_init(&m, KTX_EV_TOKEN, j->req);
			ktx_msg_set_str(&m, KTX_F_TEXT, ev->text);
			conn_send(j->conn, &m);
			break;
		case WEV_END:
			on_end(srv, ev);
			if (srv->state == SRV_STOPPING)
				server_stop(srv, srv->exit_code);
			else
				jobs_dispatch(srv);
			break;
		}
		worker_ev_free(ev);
	}
}

void
jobs_shutdown(struct server *srv)
{
	struct job *j, *next;
	struct ktx_err err;

	for (j = srv->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->started_ms != 0)
			continue;
		sched_remove(srv->sched, j->id);
		if (!j->detached) {
			if (store_job_finish(srv->store, j->id, JOB_INTERRUPTED, NULL,
				"ktxd stopped before the job started", &(struct job_stats){0}, &err) != 0)
				log_error("%s", err.msg);
			if (j->conn != NULL)
				conn_error(j->conn, j->req, KTX_CODE_UNAVAILABLE, j->id,
				    "ktxd is shutting down");
		}
		job_unlink_free(srv, j);
	}
}

void
jobs_free_all(struct server *srv)
{
	struct waiter *w;

	while (srv->jobs != NULL)
		job_unlink_free(srv, srv->jobs);
	while ((w = srv->waiters) != NULL) {
		srv->waiters = w->next;
		free(w);
	}
}
