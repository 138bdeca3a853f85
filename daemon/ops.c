/*
 * ops.c - what ktxd does for each request once its frame is decoded.
 *
 * Identity is the connection's peer uid; a user sees, continues and deletes
 * only their own conversations and jobs, while root and admin_group members
 * may list and read everyone's ("all").
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/ktxd.h"
#include "daemon/log.h"

/* Items history/jobs send when the request sets no limit, and at most. */
#define LIST_DEFAULT 50
#define LIST_MAX 10000

/* A list request's limit. */
static unsigned
list_limit(const struct ktx_msg *m)
{
	uint64_t n = ktx_msg_get_uint(m, KTX_F_LIMIT, LIST_DEFAULT);

	return n == 0 || n > LIST_MAX ? LIST_MAX : (unsigned)n;
}

static void
send_end(struct conn *c, uint64_t req, uint64_t count)
{
	struct ktx_msg ev;

	ktx_msg_init(&ev, KTX_EV_END, req);
	ktx_msg_set_uint(&ev, KTX_F_COUNT, count);
	conn_send(c, &ev);
}

static void
send_ok(struct conn *c, uint64_t req, int64_t job, int64_t conv)
{
	struct ktx_msg ev;

	ktx_msg_init(&ev, KTX_EV_OK, req);
	if (job > 0)
		ktx_msg_set_uint(&ev, KTX_F_JOB, (uint64_t)job);
	if (conv > 0)
		ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)conv);
	conn_send(c, &ev);
}

static void
op_hello(struct conn *c, const struct ktx_msg *m)
{
	struct server *srv = c->srv;
	struct ktx_msg ev;

	if (ktx_msg_get_uint(m, KTX_F_VERSION, 0) != KTX_PROTO_VERSION) {
		conn_error(c, m->id, KTX_CODE_VERSION, 0,
		    "protocol version %llu is not supported; this ktxd speaks version %d",
		    (unsigned long long)ktx_msg_get_uint(m, KTX_F_VERSION, 0),
		    KTX_PROTO_VERSION);
		conn_close(c);
		return;
	}
	c->hello = true;
	ktx_msg_init(&ev, KTX_EV_WELCOME, m->id);
	ktx_msg_set_uint(&ev, KTX_F_VERSION, KTX_PROTO_VERSION);
	ktx_msg_set_str(&ev, KTX_F_SERVER, "ktxd " PACKAGE_VERSION);
	ktx_msg_set_uint(&ev, KTX_F_FRAME_MAX, srv->cfg->max_frame_bytes);
	ktx_msg_set_uint(&ev, KTX_F_PROMPT_MAX, srv->cfg->max_prompt_bytes);
	if (srv->state != SRV_LOADING) {
		ktx_msg_set_str(&ev, KTX_F_MODEL, srv->info.name);
		ktx_msg_set_uint(&ev, KTX_F_CTX, srv->info.n_ctx);
	}
	ktx_msg_set_uint(&ev, KTX_F_UID, c->uid);
	conn_send(c, &ev);
}

/* Bytes of RAM the process holds (resident set), from /proc. */
static uint64_t
resident_bytes(void)
{
	unsigned long long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The status event that opens both status and ps answers. */
static void
send_status(struct conn *c, uint64_t req)
{
	static const char *const states[] = {"loading", "ready", "stopping"};
	struct server *srv = c->srv;
	struct ktx_msg ev;

	ktx_msg_init(&ev, KTX_EV_STATUS, req);
	ktx_msg_set_str(&ev, KTX_F_SERVER, "ktxd " PACKAGE_VERSION);
	ktx_msg_set_str(&ev, KTX_F_STATE, states[srv->state]);
	if (srv->state == SRV_LOADING) {
		ktx_msg_set_float(&ev, KTX_F_PROGRESS, srv->progress);
	} else {
		ktx_msg_set_str(&ev, KTX_F_MODEL, srv->info.name);
		ktx_msg_set_uint(&ev, KTX_F_CTX, srv->info.n_ctx);
		ktx_msg_set_uint(&ev, KTX_F_MODEL_RAM, srv->info.bytes_ram);
		ktx_msg_set_uint(&ev, KTX_F_MODEL_VRAM, srv->info.bytes_vram);
	}
	ktx_msg_set_uint(&ev, KTX_F_UPTIME, (uint64_t)(store_now_ms() - srv->started_ms) / 1000);
	ktx_msg_set_uint(&ev, KTX_F_RAM, resident_bytes());
	if (srv->info.bytes_vram > 0)
		ktx_msg_set_uint(&ev, KTX_F_VRAM, srv->info.bytes_vram);
	ktx_msg_set_uint(&ev, KTX_F_WAITING, sched_len(srv->sched));
	ktx_msg_set_uint(&ev, KTX_F_RUNNING, srv->n_running);
	ktx_msg_set_float(&ev, KTX_F_TOK_S, jobs_recent_tps(srv));
	ktx_msg_set_uint(&ev, KTX_F_THREADS, srv->cfg->threads > 0 ? (uint64_t)srv->cfg->threads :
	    (uint64_t)sysconf(_SC_NPROCESSORS_ONLN));
	conn_send(c, &ev);
}

static void
op_status(struct conn *c, const struct ktx_msg *m)
{
	struct server *srv = c->srv;
	struct ktx_msg ev;
	size_t i, n = sched_users(srv->sched), waiting;
	uint32_t uid;
	uint64_t count = 0;
	struct job *j, *k;

	send_status(c, m->id);
	/* Queue by user; a user who is not an admin sees only their own line. */
	for (i = 0; i < n; i++) {
		uid = sched_user_at(srv->sched, i, &waiting);
		if (!c->admin && uid != c->uid)
			continue;
		ktx_msg_init(&ev, KTX_EV_USAGE, m->id);
		ktx_msg_set_uint(&ev, KTX_F_UID, uid);
		ktx_msg_set_uint(&ev, KTX_F_WAITING, waiting);
		ktx_msg_set_uint(&ev, KTX_F_RUNNING, jobs_running_of(srv, uid));
		conn_send(c, &ev);
		count++;
	}
	/* Users with running jobs but none waiting: one line each, at their first job. */
	for (j = srv->jobs; j != NULL; j = j->next) {
		if (j->started_ms == 0 || sched_user_len(srv->sched, j->uid) > 0 ||
		    (!c->admin && j->uid != c->uid))
			continue;
		for (k = srv->jobs; k != j && (k->started_ms == 0 || k->uid != j->uid); k = k->next)
			;
		if (k != j)
			continue;
		ktx_msg_init(&ev, KTX_EV_USAGE, m->id);
		ktx_msg_set_uint(&ev, KTX_F_UID, j->uid);
		ktx_msg_set_uint(&ev, KTX_F_WAITING, 0);
		ktx_msg_set_uint(&ev, KTX_F_RUNNING, jobs_running_of(srv, j->uid));
		conn_send(c, &ev);
		count++;
	}
	send_end(c, m->id, count);
}

/* One live job as a "job" event; the owner is named to admins and the owner. */
static void
send_live_job(struct conn *c, uint64_t req, const struct job *j, size_t position)
{
	struct ktx_msg ev;

	ktx_msg_init(&ev, KTX_EV_JOB, req);
	ktx_msg_set_uint(&ev, KTX_F_JOB, (uint64_t)j->id);
	ktx_msg_set_str(&ev, KTX_F_STATE, j->started_ms ? "running" : "queued");
	ktx_msg_set_uint(&ev, KTX_F_POSITION, position);
	ktx_msg_set_uint(&ev, KTX_F_UID, j->uid);
	ktx_msg_set_uint(&ev, KTX_F_AGE, (uint64_t)(store_now_ms() - j->created_ms) / 1000);
	ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)j->conversation);
	ktx_msg_set_str(&ev, KTX_F_TITLE, j->title);
	ktx_msg_set_bool(&ev, KTX_F_DETACHED, j->detached);
	conn_send(c, &ev);
}

struct ps_walk {
	struct conn *c;
	uint64_t req, count;
};

static void
ps_visit(void *ctx, int64_t id, uint32_t uid, size_t position)
{
	struct ps_walk *w = ctx;
	struct job *j;

	if (!w->c->admin && uid != w->c->uid)
		return;
	if ((j = jobs_find(w->c->srv, id)) == NULL)
		return;
	send_live_job(w->c, w->req, j, position);
	w->count++;
}

static void
op_ps(struct conn *c, const struct ktx_msg *m)
{
	struct server *srv = c->srv;
	struct ps_walk w = {c, m->id, 0};
	struct job *j;

	send_status(c, m->id);
	/* Every running job first (oldest first: the list is newest first). */
	for (j = srv->jobs; j != NULL && j->next != NULL; j = j->next)
		;
	for (; j != NULL; j = j->prev) {
		if (j->started_ms == 0 || (!c->admin && j->uid != c->uid))
			continue;
		send_live_job(c, m->id, j, 0);
		w.count++;
	}
	sched_order(srv->sched, ps_visit, &w);
	send_end(c, m->id, w.count);
}

struct list_walk {
	struct conn *c;
	uint64_t req, count;
};

static int
history_visit(void *ctx, const struct store_conv *cv)
{
	struct list_walk *w = ctx;
	struct ktx_msg ev;

	ktx_msg_init(&ev, KTX_EV_CONVERSATION, w->req);
	ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)cv->id);
	if (cv->name != NULL)
		ktx_msg_set_str(&ev, KTX_F_NAME, cv->name);
	ktx_msg_set_str(&ev, KTX_F_TITLE, cv->title);
	ktx_msg_set_uint(&ev, KTX_F_TURNS, cv->n_turns);
	ktx_msg_set_uint(&ev, KTX_F_CREATED, (uint64_t)cv->created_ms / 1000);
	ktx_msg_set_uint(&ev, KTX_F_UPDATED, (uint64_t)cv->updated_ms / 1000);
	ktx_msg_set_uint(&ev, KTX_F_UID, cv->uid);
	conn_send(w->c, &ev);
	w->count++;
	return 0;
}

/* Refuses "all" to users who are not admins; true when the request may go on. */
static bool
check_all(struct conn *c, const struct ktx_msg *m)
{
	if (ktx_msg_get_bool(m, KTX_F_ALL, 0) && !c->admin) {
		conn_error(c, m->id, KTX_CODE_FORBIDDEN, 0,
		    "only root and members of the admin group may list every user's items");
		return false;
	}
	return true;
}

static void
op_history(struct conn *c, const struct ktx_msg *m)
{
	struct list_walk w = {c, m->id, 0};
	struct ktx_err err;

	if (!check_all(c, m))
		return;
	if (store_conv_list(c->srv->store, c->uid, ktx_msg_get_bool(m, KTX_F_ALL, 0),
		list_limit(m), history_visit, &w, &err) != 0) {
		conn_error(c, m->id, KTX_CODE_INTERNAL, 0, "%s", err.msg);
		return;
	}
	send_end(c, m->id, w.count);
}

/* Finds the conversation a request names that c may read (write: only its own). */
static int
conversation_of(struct conn *c, const struct ktx_msg *m, bool write, int64_t *id)
{
	const char *ref = ktx_msg_get_str(m, KTX_F_CONVERSATION);
	struct ktx_err err;
	uint32_t owner;
	int rc;

	if (strcmp(ref, "last") == 0) {
		rc = store_conv_last(c->srv->store, c->uid, id, &err);
		owner = c->uid;
	} else {
		rc = store_conv_find(c->srv->store, c->uid, ref, id, &owner, &err);
	}
	if (rc != 0) {
		conn_error(c, m->id, ops_code_of(rc), 0, "%s", err.msg);
		return -1;
	}
	if (owner != c->uid && (write || !c->admin)) {
		conn_error(c, m->id, KTX_CODE_FORBIDDEN, 0,
		    "conversation %s belongs to another user", ref);
		return -1;
	}
	return 0;
}

static int
turn_visit(void *ctx, const struct store_turn *t)
{
	struct list_walk *w = ctx;
	struct ktx_msg ev;

	ktx_msg_init(&ev, KTX_EV_TURN, w->req);
	ktx_msg_set_str(&ev, KTX_F_ROLE, t->role);
	ktx_msg_set_str(&ev, KTX_F_TEXT, t->content);
	ktx_msg_set_uint(&ev, KTX_F_TIME, (uint64_t)t->created_ms / 1000);
	conn_send(w->c, &ev);
	w->count++;
	return 0;
}

static void
op_show(struct conn *c, const struct ktx_msg *m)
{
	struct list_walk w = {c, m->id, 0};
	struct ktx_err err;
	int64_t id;

	if (conversation_of(c, m, false, &id) != 0)
		return;
	if (store_conv_get(c->srv->store, id, history_visit, &w, &err) != 0) {
		conn_error(c, m->id, KTX_CODE_INTERNAL, 0, "%s", err.msg);
		return;
	}
	w.count = 0;
	if (store_conv_turns(c->srv->store, id, turn_visit, &w, &err) != 0) {
		conn_error(c, m->id, KTX_CODE_INTERNAL, 0, "%s", err.msg);
		return;
	}
	send_end(c, m->id, w.count);
}

static void
op_rm(struct conn *c, const struct ktx_msg *m)
{
	struct ktx_err err;
	int64_t id;
	int rc;

	if (conversation_of(c, m, !c->admin, &id) != 0)
		return;
	if ((rc = store_conv_delete(c->srv->store, id, &err)) != 0) {
		conn_error(c, m->id, ops_code_of(rc), 0, "%s", err.msg);
		return;
	}
	worker_forget(c->srv->worker, id);
	log_info("uid %u deleted conversation %lld", (unsigned)c->uid, (long long)id);
	send_ok(c, m->id, 0, id);
}

static int
jobs_visit(void *ctx, const struct store_job *j)
{
	struct list_walk *w = ctx;
	struct job *live = jobs_find(w->c->srv, j->id);
	struct ktx_msg ev;
	char *title = NULL;

	ktx_msg_init(&ev, KTX_EV_JOB, w->req);
	ktx_msg_set_uint(&ev, KTX_F_JOB, (uint64_t)j->id);
	ktx_msg_set_str(&ev, KTX_F_STATE, store_job_state_name(j->state));
	ktx_msg_set_uint(&ev, KTX_F_UID, j->uid);
	ktx_msg_set_uint(&ev, KTX_F_AGE, (uint64_t)(store_now_ms() - j->created_ms) / 1000);
	if (j->conversation > 0)
		ktx_msg_set_uint(&ev, KTX_F_CONV_ID, (uint64_t)j->conversation);
	ktx_msg_set_bool(&ev, KTX_F_DETACHED, j->detached);
	if (live != NULL) {
		ktx_msg_set_str(&ev, KTX_F_TITLE, live->title);
		if (live->started_ms == 0)
			ktx_msg_set_uint(&ev, KTX_F_POSITION,
			    sched_position(w->c->srv->sched, j->id));
	} else {
		if ((title = jobs_title(j->prompt)) != NULL)
			ktx_msg_set_str(&ev, KTX_F_TITLE, title);
	}
	if (j->state == JOB_DONE) {
		ktx_msg_set_uint(&ev, KTX_F_PROMPT_TOKENS, j->stats.prompt_tokens);
		ktx_msg_set_uint(&ev, KTX_F_GEN_TOKENS, j->stats.gen_tokens);
	}
	conn_send(w->c, &ev);
	free(title);
	w->count++;
	return 0;
}

static void
op_jobs(struct conn *c, const struct ktx_msg *m)
{
	struct list_walk w = {c, m->id, 0};
	struct ktx_err err;

	if (!check_all(c, m))
		return;
	if (store_job_list(c->srv->store, c->uid, ktx_msg_get_bool(m, KTX_F_ALL, 0),
		list_limit(m), jobs_visit, &w, &err) != 0) {
		conn_error(c, m->id, KTX_CODE_INTERNAL, 0, "%s", err.msg);
		return;
	}
	send_end(c, m->id, w.count);
}

/* Reads a job c may see and cancel (its own, or any for admins); sends the error itself. */
static int
job_of(struct conn *c, const struct ktx_msg *m, struct store_job *j)
{
	int64_t id = (int64_t)ktx_msg_get_uint(m, KTX_F_JOB, 0);
	struct ktx_err err;
	int rc;

	if (id <= 0 || (uint64_t)id != ktx_msg_get_uint(m, KTX_F_JOB, 0)) {
		conn_error(c, m->id, KTX_CODE_NOT_FOUND, 0, "no job %llu",
		    (unsigned long long)ktx_msg_get_uint(m, KTX_F_JOB, 0));
		return -1;
	}
	if ((rc = store_job_get(c->srv->store, id, j, &err)) != 0) {
		conn_error(c, m->id, ops_code_of(rc), id, "%s", err.msg);
		return -1;
	}
	if (j->uid != c->uid && !c->admin) {
		store_job_clear(j);
		conn_error(c, m->id, KTX_CODE_FORBIDDEN, id, "job %lld belongs to another user",
		    (long long)id);
		return -1;
	}
	return 0;
}

static void
op_cancel(struct conn *c, const struct ktx_msg *m)
{
	struct store_job j;

	if (job_of(c, m, &j) != 0)
		return;
	store_job_clear(&j);
	if (jobs_cancel(c->srv, j.id, "canceled by its owner") != 0) {
		conn_error(c, m->id, KTX_CODE_NOT_FOUND, j.id,
		    "job %lld is not waiting or running (it is %s)", (long long)j.id,
		    store_job_state_name(j.state));
		return;
	}
	log_info("uid %u canceled job %lld", (unsigned)c->uid, (long long)j.id);
	send_ok(c, m->id, j.id, 0);
}

static void
op_result(struct conn *c, const struct ktx_msg *m, bool wait)
{
	struct store_job j;

	if (job_of(c, m, &j) != 0)
		return;
	if (j.state == JOB_QUEUED || j.state == JOB_RUNNING) {
		if (wait)
			jobs_add_waiter(c, m->id, j.id);
		else
			conn_error(c, m->id, KTX_CODE_PENDING, j.id,
			    "job %lld is %s; 'ktxctl wait %lld' waits for it", (long long)j.id,
			    store_job_state_name(j.state), (long long)j.id);
	} else {
		jobs_send_result(c, m->id, &j);
	}
	store_job_clear(&j);
}

void
ops_handle(struct conn *c, struct ktx_msg *m)
{
	switch (m->type) {
	case KTX_OP_HELLO:
		if (c->hello)
			conn_error(c, m->id, KTX_CODE_VERSION, 0, "hello was already sent");
		else
			op_hello(c, m);
		break;
	case KTX_OP_ASK:
		jobs_submit(c, m, ktx_msg_get_bool(m, KTX_F_DETACHED, 0));
		break;
	case KTX_OP_SUBMIT:
		jobs_submit(c, m, true);
		break;
	case KTX_OP_CANCEL:
		op_cancel(c, m);
		break;
	case KTX_OP_STATUS:
		op_status(c, m);
		break;
	case KTX_OP_PS:
		op_ps(c, m);
		break;
	case KTX_OP_HISTORY:
		op_history(c, m);
		break;
	case KTX_OP_SHOW:
		op_show(c, m);
		break;
	case KTX_OP_RM:
		op_rm(c, m);
		break;
	case KTX_OP_JOBS:
		op_jobs(c, m);
		break;
	case KTX_OP_RESULT:
		op_result(c, m, false);
		break;
	case KTX_OP_WAIT:
		op_result(c, m, true);
		break;
	case KTX_OP_PING:
		send_ok(c, m->id, 0, 0);
		break;
	default:
		conn_error(c, m->id, KTX_CODE_UNKNOWN_OP, 0, "'%s' is not a request",
		    ktx_msg_type_name(m->type) ? ktx_msg_type_name(m->type) : "?");
		break;
	}
}
