/*
 * store.c - the SQLite store behind store.h.
 *
 * Durability: the connection runs with synchronous=NORMAL, which in WAL mode
 * may lose the last commits on power loss but never corrupts. Commits that
 * acknowledge something to a user who will not wait for it (a detached job
 * accepted, a detached job's result) switch to synchronous=FULL for that one
 * transaction. Commits are per job, never per token.
 */
#include "config.h"

#include "daemon/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The schema this code reads and writes; older files are migrated up to it. */
#define STORE_VERSION 1

/* Each migration takes the file from version i to i + 1. */
static const char *const migrations[STORE_VERSION] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE users ("
	"  uid INTEGER PRIMARY KEY,"
	"  first_ms INTEGER NOT NULL,"
	"  last_ms INTEGER NOT NULL);"
	"CREATE TABLE conversations ("
	"  id INTEGER PRIMARY KEY,"
	"  uid INTEGER NOT NULL REFERENCES users(uid),"
	"  name TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX conversations_name ON conversations(uid, name)"
	"  WHERE name IS NOT NULL;"
	"CREATE INDEX conversations_uid ON conversations(uid, updated_ms);"
	"CREATE TABLE turns ("
	"  id INTEGER PRIMARY KEY,"
	"  conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
	"  role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),"
	"  content TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  prompt_tokens INTEGER NOT NULL DEFAULT 0,"
	"  cached_tokens INTEGER NOT NULL DEFAULT 0,"
	"  gen_tokens INTEGER NOT NULL DEFAULT 0,"
	"  prefill_s REAL NOT NULL DEFAULT 0,"
	"  decode_s REAL NOT NULL DEFAULT 0);"
	"CREATE INDEX turns_conversation ON turns(conversation, id);"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  uid INTEGER NOT NULL REFERENCES users(uid),"
	"  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed',"
	"    'canceled', 'interrupted')),"
	"  detached INTEGER NOT NULL,"
	"  prompt TEXT NOT NULL,"
	"  max_tokens INTEGER NOT NULL,"
	"  temperature REAL NOT NULL,"
	"  top_p REAL NOT NULL,"
	"  seed INTEGER,"
	"  conversation INTEGER REFERENCES conversations(id) ON DELETE SET NULL,"
	"  turn INTEGER REFERENCES turns(id) ON DELETE SET NULL,"
	"  result TEXT,"
	"  error TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  started_ms INTEGER,"
	"  finished_ms INTEGER,"
	"  restarts INTEGER NOT NULL DEFAULT 0,"
	"  prompt_tokens INTEGER NOT NULL DEFAULT 0,"
	"  cached_tokens INTEGER NOT NULL DEFAULT 0,"
	"  gen_tokens INTEGER NOT NULL DEFAULT 0,"
	"  prefill_s REAL NOT NULL DEFAULT 0,"
	"  decode_s REAL NOT NULL DEFAULT 0);"
	"CREATE INDEX jobs_state ON jobs(state, id);"
	"CREATE INDEX jobs_uid ON jobs(uid, id);"
	"CREATE INDEX jobs_conversation ON jobs(conversation, state);",
};

static const char *const state_names[] = {
	"queued", "running", "done", "failed", "canceled", "interrupted",
};

#define JOB_COLUMNS                                                                     \
	"id, uid, state, detached, prompt, max_tokens, temperature, top_p, seed,"       \
	" conversation, turn, result, error, created_ms, started_ms, finished_ms,"      \
	" restarts, prompt_tokens, cached_tokens, gen_tokens, prefill_s, decode_s"
#define TURN_COLUMNS                                                                    \
	"id, role, content, created_ms, prompt_tokens, cached_tokens, gen_tokens,"      \
	" prefill_s, decode_s"

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_SYNC_FULL, S_SYNC_NORMAL,
	S_USER_TOUCH,
	S_CONV_NEW, S_CONV_TOUCH, S_CONV_OWNER, S_CONV_BY_NAME, S_CONV_LAST, S_CONV_BUSY,
	S_CONV_DELETE, S_CONV_LIST_USER, S_CONV_LIST_ALL, S_CONV_GET, S_CONV_TURNS,
	S_TURN_ADD, S_TURN_ADD_STATS,
	S_JOB_ADD, S_JOB_SET_TURN, S_JOB_STARTED, S_JOB_FINISH, S_JOB_GET, S_JOB_CONV,
	S_JOB_LIST_USER, S_JOB_LIST_ALL, S_JOB_QUEUED,
	S_RECOVER_INTERRUPT, S_RECOVER_REQUEUE,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SYNC_FULL] = "PRAGMA synchronous = FULL",
	[S_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
	[S_USER_TOUCH] = "INSERT INTO users(uid, first_ms, last_ms) VALUES (?1, ?2, ?2)"
			 " ON CONFLICT(uid) DO UPDATE SET last_ms = ?2",
	[S_CONV_NEW] = "INSERT INTO conversations(uid, name, created_ms, updated_ms)"
		       " VALUES (?1, ?2, ?3, ?3)",
	[S_CONV_TOUCH] = "UPDATE conversations SET updated_ms = ?2 WHERE id = ?1",
	[S_CONV_OWNER] = "SELECT uid FROM conversations WHERE id = ?1",
	[S_CONV_BY_NAME] = "SELECT id FROM conversations WHERE uid = ?1 AND name = ?2",
	[S_CONV_LAST] = "SELECT id FROM conversations WHERE uid = ?1"
			" ORDER BY updated_ms DESC, id DESC LIMIT 1",
	[S_CONV_BUSY] = "SELECT id FROM jobs WHERE conversation = ?1"
			" AND state IN ('queued', 'running') LIMIT 1",
	[S_CONV_DELETE] = "DELETE FROM conversations WHERE id = ?1",
	[S_CONV_LIST_USER] = "SELECT c.id, c.uid, c.name, c.created_ms, c.updated_ms,"
			     " (SELECT count(*) FROM turns t WHERE t.conversation = c.id),"
			     " (SELECT substr(content, 1, 60) FROM turns t"
			     "   WHERE t.conversation = c.id ORDER BY t.id LIMIT 1)"
			     " FROM conversations c WHERE c.uid = ?1"
			     " ORDER BY c.updated_ms DESC, c.id DESC LIMIT ?2",
	[S_CONV_LIST_ALL] = "SELECT c.id, c.uid, c.name, c.created_ms, c.updated_ms,"
			    " (SELECT count(*) FROM turns t WHERE t.conversation = c.id),"
			    " (SELECT substr(content, 1, 60) FROM turns t"
			    "   WHERE t.conversation = c.id ORDER BY t.id LIMIT 1)"
			    " FROM conversations c"
			    " ORDER BY c.updated_ms DESC, c.id DESC LIMIT ?2",
	[S_CONV_GET] = "SELECT c.id, c.uid, c.name, c.created_ms, c.updated_ms,"
		       " (SELECT count(*) FROM turns t WHERE t.conversation = c.id),"
		       " (SELECT substr(content, 1, 60) FROM turns t"
		       "   WHERE t.conversation = c.id ORDER BY t.id LIMIT 1)"
		       " FROM conversations c WHERE c.id = ?1 AND ?2 >= 0",
	[S_CONV_TURNS] = "SELECT " TURN_COLUMNS " FROM turns WHERE conversation = ?1"
			 " AND id <= ?2 ORDER BY id",
	[S_TURN_ADD] = "INSERT INTO turns(conversation, role, content, created_ms)"
		       " VALUES (?1, 'user', ?2, ?3)",
	[S_TURN_ADD_STATS] = "INSERT INTO turns(conversation, role, content, created_ms,"
			     " prompt_tokens, cached_tokens, gen_tokens, prefill_s, decode_s)"
			     " VALUES (?1, 'assistant', ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_JOB_ADD] = "INSERT INTO jobs(uid, state, detached, prompt, max_tokens, temperature,"
		      " top_p, seed, conversation, created_ms)"
		      " VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_JOB_SET_TURN] = "UPDATE jobs SET turn = ?2 WHERE id = ?1",
	[S_JOB_STARTED] = "UPDATE jobs SET state = 'running', started_ms = ?2 WHERE id = ?1",
	[S_JOB_FINISH] = "UPDATE jobs SET state = ?2, result = ?3, error = ?4, finished_ms = ?5,"
			 " prompt_tokens = ?6, cached_tokens = ?7, gen_tokens = ?8,"
			 " prefill_s = ?9, decode_s = ?10 WHERE id = ?1",
	[S_JOB_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
	[S_JOB_CONV] = "SELECT conversation, detached FROM jobs WHERE id = ?1",
	[S_JOB_LIST_USER] = "SELECT " JOB_COLUMNS " FROM jobs WHERE uid = ?1"
			    " ORDER BY id DESC LIMIT ?2",
	[S_JOB_LIST_ALL] = "SELECT " JOB_COLUMNS " FROM jobs ORDER BY id DESC LIMIT ?2",
	[S_JOB_QUEUED] = "SELECT " JOB_COLUMNS " FROM jobs WHERE state = 'queued' ORDER BY id",
	[S_RECOVER_INTERRUPT] = "UPDATE jobs SET state = 'interrupted', finished_ms = ?1,"
				" error = 'ktxd stopped before the job finished'"
				" WHERE state IN ('queued', 'running') AND detached = 0",
	[S_RECOVER_REQUEUE] = "UPDATE jobs SET state = 'queued', restarts = restarts + 1,"
			      " started_ms = NULL WHERE state = 'running' AND detached = 1",
};

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[S_COUNT];
};

int64_t
store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
store_job_state_name(enum job_state s)
{
	if ((unsigned)s < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[s];
	return "?";
}

/* Maps a state column back to the enum; unknown text reads as failed. */
static enum job_state
state_parse(const unsigned char *s)
{
	unsigned i;

	for (i = 0; s != NULL && i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp((const char *)s, state_names[i]) == 0)
			return (enum job_state)i;
	return JOB_FAILED;
}

/* Turns the connection's last error into err, naming what was being done. */
static int
db_err(struct store *st, struct ktx_err *err, const char *what)
{
	int code = sqlite3_errcode(st->db);

	return ktx_err_set(err, code == SQLITE_NOMEM ? KTX_ENOMEM : KTX_EIO, "%s: %s: %s",
	    st->path, what, sqlite3_errmsg(st->db));
}

/* Resets a statement for its next use and returns it. */
static sqlite3_stmt *
stmt(struct store *st, enum stmt i)
{
	sqlite3_reset(st->stmt[i]);
	sqlite3_clear_bindings(st->stmt[i]);
	return st->stmt[i];
}

/* Runs a statement that returns no rows. */
static int
exec_stmt(struct store *st, sqlite3_stmt *s, struct ktx_err *err, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_err(st, err, what);
	return 0;
}

static int
begin(struct store *st, bool full, struct ktx_err *err)
{
	if (full && exec_stmt(st, stmt(st, S_SYNC_FULL), err, "synchronous = FULL") != 0)
		return err->code;
	return exec_stmt(st, stmt(st, S_BEGIN), err, "begin a transaction");
}

/* Commits (rc 0) or rolls back, and goes back to synchronous=NORMAL. */
static int
end(struct store *st, bool full, int rc, struct ktx_err *err)
{
	struct ktx_err ignored;

	if (rc == 0)
		rc = exec_stmt(st, stmt(st, S_COMMIT), err, "commit");
	if (rc != 0 && !sqlite3_get_autocommit(st->db))
		exec_stmt(st, stmt(st, S_ROLLBACK), &ignored, "roll back");
	if (full)
		exec_stmt(st, stmt(st, S_SYNC_NORMAL), &ignored, "synchronous = NORMAL");
	return rc;
}

/* Brings the file's schema up to STORE_VERSION, one transaction per step. */
static int
migrate(struct store *st, struct ktx_err *err)
{
	sqlite3_stmt *s;
	char sql[64];
	char *msg = NULL;
	int version, rc;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return db_err(st, err, "read the schema version");
	rc = sqlite3_step(s);
	version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (version < 0)
		return db_err(st, err, "read the schema version");
	if (version > STORE_VERSION)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    "%s: schema version %d is newer than this ktxd knows (%d); use a newer ktxd",
		    st->path, version, STORE_VERSION);
	for (; version < STORE_VERSION; version++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(st->db, migrations[version], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			rc = ktx_err_set(err, KTX_EIO, "%s: migrating the schema to version %d: %s",
			    st->path, version + 1, msg ? msg : sqlite3_errmsg(st->db));
			sqlite3_free(msg);
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return 0;
}

int
store_open(const char *path, struct store **out, struct ktx_err *err)
{
	static const char setup[] = "PRAGMA journal_mode = WAL;"
				    "PRAGMA synchronous = NORMAL;"
				    "PRAGMA foreign_keys = ON;";
	struct store *st;
	char *msg = NULL;
	int i, rc;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		free(st);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory opening %s", path);
	}
	if (sqlite3_open_v2(path, &st->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = st->db ? db_err(st, err, "open") :
			      ktx_err_set(err, KTX_ENOMEM, "out of memory opening %s", path);
		store_close(st);
		return rc;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (sqlite3_exec(st->db, setup, NULL, NULL, &msg) != SQLITE_OK) {
		rc = ktx_err_set(err, KTX_EIO, "%s: cannot set up the database: %s", path,
		    msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		store_close(st);
		return rc;
	}
	if ((rc = migrate(st, err)) != 0) {
		store_close(st);
		return rc;
	}
	for (i = 0; i < S_COUNT; i++)
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
			&st->stmt[i], NULL) != SQLITE_OK) {
			rc = db_err(st, err, "prepare a statement");
			store_close(st);
			return rc;
		}
	*out = st;
	return 0;
}

void
store_close(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

int
store_recover(struct store *st, unsigned *n_interrupted, unsigned *n_requeued,
    struct ktx_err *err)
{
	sqlite3_stmt *s;
	int rc;

	*n_interrupted = *n_requeued = 0;
	if ((rc = begin(st, true, err)) != 0)
		return rc;
	s = stmt(st, S_RECOVER_INTERRUPT);
	sqlite3_bind_int64(s, 1, store_now_ms());
	if ((rc = exec_stmt(st, s, err, "mark interrupted jobs")) == 0) {
		*n_interrupted = (unsigned)sqlite3_changes(st->db);
		rc = exec_stmt(st, stmt(st, S_RECOVER_REQUEUE), err, "re-queue detached jobs");
		*n_requeued = (unsigned)sqlite3_changes(st->db);
	}
	return end(st, true, rc, err);
}

/* Copies a text column (NULL stays NULL); returns -1 when out of memory. */
static int
column_dup(sqlite3_stmt *s, int col, char **out)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	*out = NULL;
	if (t == NULL)
		return sqlite3_column_type(s, col) == SQLITE_NULL ? 0 : -1;
	return (*out = strdup((const char *)t)) == NULL ? -1 : 0;
}

/* Fills j from a row of JOB_COLUMNS, copying its strings. */
static int
job_from_row(sqlite3_stmt *s, struct store_job *j)
{
	memset(j, 0, sizeof(*j));
	j->id = sqlite3_column_int64(s, 0);
	j->uid = (uint32_t)sqlite3_column_int64(s, 1);
	j->state = state_parse(sqlite3_column_text(s, 2));
	j->detached = sqlite3_column_int(s, 3) != 0;
	j->opt.max_tokens = sqlite3_column_int(s, 5);
	j->opt.temperature = sqlite3_column_double(s, 6);
	j->opt.top_p = sqlite3_column_double(s, 7);
	j->opt.seed_set = sqlite3_column_type(s, 8) != SQLITE_NULL;
	j->opt.seed = (uint64_t)sqlite3_column_int64(s, 8);
	j->conversation = sqlite3_column_int64(s, 9);
	j->turn = sqlite3_column_int64(s, 10);
	j->created_ms = sqlite3_column_int64(s, 13);
	j->started_ms = sqlite3_column_int64(s, 14);
	j->finished_ms = sqlite3_column_int64(s, 15);
	j->restarts = (uint32_t)sqlite3_column_int(s, 16);
	j->stats.prompt_tokens = (uint32_t)sqlite3_column_int(s, 17);
	j->stats.cached_tokens = (uint32_t)sqlite3_column_int(s, 18);
	j->stats.gen_tokens = (uint32_t)sqlite3_column_int(s, 19);
	j->stats.prefill_s = sqlite3_column_double(s, 20);
	j->stats.decode_s = sqlite3_column_double(s, 21);
	if (column_dup(s, 4, &j->prompt) != 0 || column_dup(s, 11, &j->result) != 0 ||
	    column_dup(s, 12, &j->error) != 0) {
		store_job_clear(j);
		return -1;
	}
	return 0;
}

void
store_job_clear(struct store_job *j)
{
	free(j->prompt);
	free(j->result);
	free(j->error);
	j->prompt = j->result = j->error = NULL;
}

/* Steps a job query, calling fn per row; stops at fn's first non-zero. */
static int
each_job(struct store *st, sqlite3_stmt *s, store_job_fn fn, void *ctx, struct ktx_err *err)
{
	struct store_job j;
	int rc, r = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (job_from_row(s, &j) != 0) {
			sqlite3_reset(s);
			return ktx_err_set(err, KTX_ENOMEM, "out of memory reading jobs");
		}
		r = fn(ctx, &j);
		store_job_clear(&j);
		if (r != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = db_err(st, err, "read jobs");
	sqlite3_reset(s);
	return r;
}

int
store_jobs_queued(struct store *st, store_job_fn fn, void *ctx, struct ktx_err *err)
{
	return each_job(st, stmt(st, S_JOB_QUEUED), fn, ctx, err);
}

int
store_job_list(struct store *st, uint32_t uid, bool all, unsigned limit, store_job_fn fn,
    void *ctx, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, all ? S_JOB_LIST_ALL : S_JOB_LIST_USER);

	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_int64(s, 2, limit);
	return each_job(st, s, fn, ctx, err);
}

int
store_job_get(struct store *st, int64_t id, struct store_job *out, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_JOB_GET);
	int rc;

	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rc = job_from_row(s, out) == 0 ? 0 :
			ktx_err_set(err, KTX_ENOMEM, "out of memory reading job %lld", (long long)id);
	} else if (rc == SQLITE_DONE) {
		rc = ktx_err_set(err, KTX_ENOTFOUND, "no job %lld", (long long)id);
	} else {
		rc = db_err(st, err, "read a job");
	}
	sqlite3_reset(s);
	return rc;
}

/* Reads one integer from a one-row query; KTX_ENOTFOUND when no row. */
static int
query_int(struct store *st, sqlite3_stmt *s, int64_t *out, struct ktx_err *err,
    const char *what)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = ktx_err_set(err, KTX_ENOTFOUND, "no %s", what);
	} else {
		rc = db_err(st, err, what);
	}
	sqlite3_reset(s);
	return rc;
}

int
store_conv_owner(struct store *st, int64_t id, uint32_t *owner, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_CONV_OWNER);
	int64_t uid;
	int rc;

	sqlite3_bind_int64(s, 1, id);
	if ((rc = query_int(st, s, &uid, err, "such conversation")) == 0)
		*owner = (uint32_t)uid;
	else if (rc == KTX_ENOTFOUND)
		ktx_err_set(err, rc, "no conversation %lld", (long long)id);
	return rc;
}

int
store_conv_find(struct store *st, uint32_t uid, const char *id_or_name, int64_t *id,
    uint32_t *owner, struct ktx_err *err)
{
	sqlite3_stmt *s;
	char *end;
	long long v;
	int rc;

	v = strtoll(id_or_name, &end, 10);
	if (id_or_name[0] >= '0' && id_or_name[0] <= '9' && *end == '\0' && v > 0) {
		*id = v;
		return store_conv_owner(st, v, owner, err);
	}
	s = stmt(st, S_CONV_BY_NAME);
	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_text(s, 2, id_or_name, -1, SQLITE_STATIC);
	rc = query_int(st, s, id, err, "such conversation");
	if (rc == KTX_ENOTFOUND)
		return ktx_err_set(err, rc, "you have no conversation named '%s'", id_or_name);
	if (rc == 0)
		*owner = uid;
	return rc;
}

int
store_conv_last(struct store *st, uint32_t uid, int64_t *id, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_CONV_LAST);
	int rc;

	sqlite3_bind_int64(s, 1, uid);
	rc = query_int(st, s, id, err, "conversation");
	if (rc == KTX_ENOTFOUND)
		return ktx_err_set(err, rc, "you have no conversation yet");
	return rc;
}

/* Fails with KTX_EINVAL when a job of conversation id is queued or running. */
static int
conv_idle(struct store *st, int64_t id, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_CONV_BUSY);
	int64_t job;
	int rc;

	sqlite3_bind_int64(s, 1, id);
	rc = query_int(st, s, &job, err, "job");
	if (rc == KTX_ENOTFOUND)
		return 0;
	if (rc == 0)
		return ktx_err_set(err, KTX_EINVAL,
		    "conversation %lld is busy with job %lld; wait for it or cancel it",
		    (long long)id, (long long)job);
	return rc;
}

/* The body of store_submit, inside its transaction. */
static int
submit_tx(struct store *st, const struct store_submit *sub, int64_t now, int64_t *job_id,
    int64_t *conversation, struct ktx_err *err)
{
	sqlite3_stmt *s;
	uint32_t owner;
	int64_t conv = sub->conversation, turn;
	int rc;

	s = stmt(st, S_USER_TOUCH);
	sqlite3_bind_int64(s, 1, sub->uid);
	sqlite3_bind_int64(s, 2, now);
	if ((rc = exec_stmt(st, s, err, "record the user")) != 0)
		return rc;
	if (conv == 0) {
		s = stmt(st, S_CONV_NEW);
		sqlite3_bind_int64(s, 1, sub->uid);
		if (sub->name != NULL)
			sqlite3_bind_text(s, 2, sub->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE ?
				ktx_err_set(err, KTX_EINVAL,
				    "you already have a conversation named '%s'", sub->name) :
				db_err(st, err, "create a conversation");
			sqlite3_reset(s);
			return rc;
		}
		sqlite3_reset(s);
		conv = sqlite3_last_insert_rowid(st->db);
	} else {
		if ((rc = store_conv_owner(st, conv, &owner, err)) != 0)
			return rc;
		if (owner != sub->uid)
			return ktx_err_set(err, KTX_ENOTFOUND, "no conversation %lld of yours",
			    (long long)conv);
		if ((rc = conv_idle(st, conv, err)) != 0)
			return rc;
		s = stmt(st, S_CONV_TOUCH);
		sqlite3_bind_int64(s, 1, conv);
		sqlite3_bind_int64(s, 2, now);
		if ((rc = exec_stmt(st, s, err, "update the conversation")) != 0)
			return rc;
	}
	s = stmt(st, S_TURN_ADD);
	sqlite3_bind_int64(s, 1, conv);
	sqlite3_bind_text(s, 2, sub->prompt, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	if ((rc = exec_stmt(st, s, err, "store the question")) != 0)
		return rc;
	turn = sqlite3_last_insert_rowid(st->db);
	s = stmt(st, S_JOB_ADD);
	sqlite3_bind_int64(s, 1, sub->uid);
	sqlite3_bind_int(s, 2, sub->detached);
	sqlite3_bind_text(s, 3, sub->prompt, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, sub->opt->max_tokens);
	sqlite3_bind_double(s, 5, sub->opt->temperature);
	sqlite3_bind_double(s, 6, sub->opt->top_p);
	if (sub->opt->seed_set)
		sqlite3_bind_int64(s, 7, (sqlite3_int64)sub->opt->seed);
	sqlite3_bind_int64(s, 8, conv);
	sqlite3_bind_int64(s, 9, now);
	if ((rc = exec_stmt(st, s, err, "store the job")) != 0)
		return rc;
	*job_id = sqlite3_last_insert_rowid(st->db);
	s = stmt(st, S_JOB_SET_TURN);
	sqlite3_bind_int64(s, 1, *job_id);
	sqlite3_bind_int64(s, 2, turn);
	if ((rc = exec_stmt(st, s, err, "link the job to its question")) != 0)
		return rc;
	*conversation = conv;
	return 0;
}

int
store_submit(struct store *st, const struct store_submit *sub, int64_t *job_id,
    int64_t *conversation, struct ktx_err *err)
{
	int rc;

	if ((rc = begin(st, sub->detached, err)) != 0)
		return rc;
	rc = submit_tx(st, sub, store_now_ms(), job_id, conversation, err);
	return end(st, sub->detached, rc, err);
}

int
store_job_started(struct store *st, int64_t id, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_JOB_STARTED);

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, store_now_ms());
	return exec_stmt(st, s, err, "mark a job running");
}

/* The body of store_job_finish, inside its transaction. */
static int
finish_tx(struct store *st, int64_t id, enum job_state state, const char *answer,
    const char *error, const struct job_stats *stats, int64_t conv, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_JOB_FINISH);
	int64_t now = store_now_ms();
	int rc;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, store_job_state_name(state), -1, SQLITE_STATIC);
	if (answer != NULL)
		sqlite3_bind_text(s, 3, answer, -1, SQLITE_STATIC);
	if (error != NULL)
		sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int64(s, 6, stats->prompt_tokens);
	sqlite3_bind_int64(s, 7, stats->cached_tokens);
	sqlite3_bind_int64(s, 8, stats->gen_tokens);
	sqlite3_bind_double(s, 9, stats->prefill_s);
	sqlite3_bind_double(s, 10, stats->decode_s);
	if ((rc = exec_stmt(st, s, err, "finish a job")) != 0)
		return rc;
	if (answer == NULL || state != JOB_DONE || conv == 0)
		return 0;
	s = stmt(st, S_TURN_ADD_STATS);
	sqlite3_bind_int64(s, 1, conv);
	sqlite3_bind_text(s, 2, answer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, stats->prompt_tokens);
	sqlite3_bind_int64(s, 5, stats->cached_tokens);
	sqlite3_bind_int64(s, 6, stats->gen_tokens);
	sqlite3_bind_double(s, 7, stats->prefill_s);
	sqlite3_bind_double(s, 8, stats->decode_s);
	if ((rc = exec_stmt(st, s, err, "store the answer")) != 0)
		return rc;
	s = stmt(st, S_CONV_TOUCH);
	sqlite3_bind_int64(s, 1, conv);
	sqlite3_bind_int64(s, 2, now);
	return exec_stmt(st, s, err, "update the conversation");
}

int
store_job_finish(struct store *st, int64_t id, enum job_state state, const char *answer,
    const char *error, const struct job_stats *stats, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_JOB_CONV);
	int64_t conv = 0;
	bool detached = false;
	int rc;

	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		conv = sqlite3_column_int64(s, 0);
		detached = sqlite3_column_int(s, 1) != 0;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return ktx_err_set(err, KTX_ENOTFOUND, "no job %lld", (long long)id);
	if (rc != SQLITE_ROW)
		return db_err(st, err, "read a job");
	if ((rc = begin(st, detached, err)) != 0)
		return rc;
	rc = finish_tx(st, id, state, answer, error, stats, conv, err);
	return end(st, detached, rc, err);
}

/* Steps a conversation query, calling fn per row. */
static int
each_conv(struct store *st, sqlite3_stmt *s, store_conv_fn fn, void *ctx, struct ktx_err *err)
{
	struct store_conv c;
	int rc, r = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		c.id = sqlite3_column_int64(s, 0);
		c.uid = (uint32_t)sqlite3_column_int64(s, 1);
		c.name = (const char *)sqlite3_column_text(s, 2);
		c.created_ms = sqlite3_column_int64(s, 3);
		c.updated_ms = sqlite3_column_int64(s, 4);
		c.n_turns = (uint32_t)sqlite3_column_int(s, 5);
		c.title = (const char *)sqlite3_column_text(s, 6);
		if (c.title == NULL)
			c.title = "";
		if ((r = fn(ctx, &c)) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = db_err(st, err, "list conversations");
	sqlite3_reset(s);
	return r;
}

int
store_conv_list(struct store *st, uint32_t uid, bool all, unsigned limit,
    store_conv_fn fn, void *ctx, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, all ? S_CONV_LIST_ALL : S_CONV_LIST_USER);

	sqlite3_bind_int64(s, 1, uid);
	sqlite3_bind_int64(s, 2, limit);
	return each_conv(st, s, fn, ctx, err);
}

int
store_conv_get(struct store *st, int64_t id, store_conv_fn fn, void *ctx, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_CONV_GET);

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, 0);
	return each_conv(st, s, fn, ctx, err);
}

/* Reads turns of conv up to turn id upto; with skip_unanswered, leaves out
 * a question followed by another question. */
static int
each_turn(struct store *st, int64_t conv, int64_t upto, bool skip_unanswered, store_turn_fn fn,
    void *ctx, struct ktx_err *err)
{
	sqlite3_stmt *s = stmt(st, S_CONV_TURNS);
	struct store_turn t, held;
	char *held_content = NULL;
	int rc, r = 0;
	bool have_held = false;

	sqlite3_bind_int64(s, 1, conv);
	sqlite3_bind_int64(s, 2, upto);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&t, 0, sizeof(t));
		t.id = sqlite3_column_int64(s, 0);
		t.role = (const char *)sqlite3_column_text(s, 1);
		t.content = (const char *)sqlite3_column_text(s, 2);
		t.created_ms = sqlite3_column_int64(s, 3);
		t.stats.prompt_tokens = (uint32_t)sqlite3_column_int(s, 4);
		t.stats.cached_tokens = (uint32_t)sqlite3_column_int(s, 5);
		t.stats.gen_tokens = (uint32_t)sqlite3_column_int(s, 6);
		t.stats.prefill_s = sqlite3_column_double(s, 7);
		t.stats.decode_s = sqlite3_column_double(s, 8);
		if (t.role == NULL || t.content == NULL)
			continue;
		if (!skip_unanswered) {
			if ((r = fn(ctx, &t)) != 0)
				break;
			continue;
		}
		/* A question is passed on only once the next turn is an answer
		 * (or it is the last turn, the job's own question). */
		if (have_held && strcmp(t.role, "assistant") == 0) {
			held.content = held_content;
			if ((r = fn(ctx, &held)) != 0)
				break;
		}
		free(held_content);
		held_content = NULL;
		have_held = false;
		if (strcmp(t.role, "user") == 0) {
			held = t;
			held.role = "user";
			if ((held_content = strdup(t.content)) == NULL) {
				r = ktx_err_set(err, KTX_ENOMEM, "out of memory reading turns");
				break;
			}
			have_held = true;
		} else if ((r = fn(ctx, &t)) != 0) {
			break;
		}
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = db_err(st, err, "read turns");
	if (r == 0 && have_held) {
		held.content = held_content;
		r = fn(ctx, &held);
	}
	free(held_content);
	sqlite3_reset(s);
	return r;
}

int
store_conv_turns(struct store *st, int64_t id, store_turn_fn fn, void *ctx,
    struct ktx_err *err)
{
	return each_turn(st, id, INT64_MAX, false, fn, ctx, err);
}

int
store_job_context(struct store *st, int64_t job_id, store_turn_fn fn, void *ctx,
    struct ktx_err *err)
{
	struct store_job j;
	int rc;

	if ((rc = store_job_get(st, job_id, &j, err)) != 0)
		return rc;
	store_job_clear(&j);
	if (j.conversation == 0 || j.turn == 0)
		return ktx_err_set(err, KTX_ENOTFOUND,
		    "job %lld's conversation was deleted", (long long)job_id);
	return each_turn(st, j.conversation, j.turn, true, fn, ctx, err);
}

int
store_conv_delete(struct store *st, int64_t id, struct ktx_err *err)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = begin(st, false, err)) != 0)
		return rc;
	if ((rc = conv_idle(st, id, err)) == 0) {
		s = stmt(st, S_CONV_DELETE);
		sqlite3_bind_int64(s, 1, id);
		rc = exec_stmt(st, s, err, "delete a conversation");
	}
	return end(st, false, rc, err);
}
