/*
 * test_store.c - the SQLite store: schema creation and re-opening, turns
 * stored before generation, ownership, busy conversations, job states,
 * recovery after a stop, and the turns a job's prompt is built from.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/store.h"
#include "tests/tap.h"

struct collect {
	char text[4096];
	unsigned n;
};

static int
turn_cb(void *ctx, const struct store_turn *t)
{
	struct collect *c = ctx;
	size_t used = strlen(c->text);

	snprintf(c->text + used, sizeof(c->text) - used, "%s%s:%s", c->n ? "|" : "", t->role,
	    t->content);
	c->n++;
	return 0;
}

static int
job_cb(void *ctx, const struct store_job *j)
{
	struct collect *c = ctx;
	size_t used = strlen(c->text);

	snprintf(c->text + used, sizeof(c->text) - used, "%s%lld:%s", c->n ? "|" : "",
	    (long long)j->id, store_job_state_name(j->state));
	c->n++;
	return 0;
}

static int
conv_cb(void *ctx, const struct store_conv *cv)
{
	struct collect *c = ctx;

	(void)cv;
	c->n++;
	return 0;
}

int
main(void)
{
	char path[] = "/tmp/ktx-test-store-XXXXXX";
	char wal[64], shm[64];
	struct store *st = NULL;
	struct store_submit sub;
	struct job_options opt = {.max_tokens = 16, .temperature = 0.5, .top_p = 0.9};
	struct job_stats stats = {.prompt_tokens = 12, .gen_tokens = 3, .decode_s = 0.25};
	struct store_job j;
	struct collect c;
	struct ktx_err err;
	int64_t job1, job2, job3, job4, conv1, conv2, conv3, id;
	unsigned n_int, n_req;
	uint32_t owner;
	sqlite3 *db;
	int fd, version = -1;

	if ((fd = mkstemp(path)) >= 0)
		close(fd);
	unlink(path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);

	tap_is_int(store_open(path, &st, &err), 0, "a new database is created");
	memset(&sub, 0, sizeof(sub));
	sub.uid = 1000;
	sub.prompt = "first line\nsecond line\t\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80";
	sub.opt = &opt;
	sub.name = "notes";
	tap_is_int(store_submit(st, &sub, &job1, &conv1, &err), 0, "an interactive job is stored");
	tap_ok(job1 > 0 && conv1 > 0, "with ids");
	memset(&c, 0, sizeof(c));
	store_conv_turns(st, conv1, turn_cb, &c, &err);
	tap_ok(c.n == 1 && strstr(c.text, sub.prompt) != NULL,
	    "the question is stored before any answer, byte for byte");
	tap_is_int(store_submit(st, &sub, &job2, &conv2, &err), KTX_EINVAL,
	    "a second conversation with the same name is refused");
	sub.name = NULL;
	sub.conversation = conv1;
	tap_is_int(store_submit(st, &sub, &job2, &conv2, &err), KTX_EINVAL,
	    "a follow-up while the conversation is busy is refused");
	tap_ok(strstr(err.msg, "busy") != NULL, "saying it is busy: %s", err.msg);

	tap_is_int(store_job_started(st, job1, &err), 0, "the job starts");
	tap_is_int(store_job_finish(st, job1, JOB_DONE, "an answer", NULL, &stats, &err), 0,
	    "and finishes with an answer");
	tap_is_int(store_job_get(st, job1, &j, &err), 0, "the job reads back");
	tap_ok(j.state == JOB_DONE && j.result && strcmp(j.result, "an answer") == 0 &&
		j.stats.gen_tokens == 3 && j.opt.max_tokens == 16 && !j.opt.seed_set &&
		j.uid == 1000 && j.started_ms > 0 && j.finished_ms >= j.started_ms,
	    "with state, result, options and stats");
	store_job_clear(&j);

	opt.seed = 42;
	opt.seed_set = true;
	tap_is_int(store_submit(st, &sub, &job2, &conv2, &err), 0, "a follow-up is stored");
	tap_is_int(conv2, conv1, "in the same conversation");
	memset(&c, 0, sizeof(c));
	store_job_context(st, job2, turn_cb, &c, &err);
	tap_ok(c.n == 3 && strstr(c.text, "assistant:an answer|user:") != NULL,
	    "the follow-up's context holds the first exchange");
	tap_is_int(store_job_finish(st, job2, JOB_CANCELED, NULL, "canceled", &stats, &err), 0,
	    "a canceled job");
	tap_is_int(store_submit(st, &sub, &job3, &conv2, &err), 0, "another follow-up");
	memset(&c, 0, sizeof(c));
	store_job_context(st, job3, turn_cb, &c, &err);
	tap_is_int(c.n, 3, "an unanswered question is left out of the next prompt");

	/* Ownership. */
	sub.uid = 2000;
	sub.conversation = conv1;
	tap_is_int(store_submit(st, &sub, &job4, &conv3, &err), KTX_ENOTFOUND,
	    "another user cannot continue the conversation");
	tap_is_int(store_conv_find(st, 2000, "notes", &id, &owner, &err), KTX_ENOTFOUND,
	    "nor find it by name");
	tap_is_int(store_conv_find(st, 1000, "notes", &id, &owner, &err), 0, "its owner can");
	tap_ok(id == conv1 && owner == 1000, "by name");
	sub.conversation = 0;
	sub.detached = true;
	tap_is_int(store_submit(st, &sub, &job4, &conv3, &err), 0, "a detached job");
	memset(&c, 0, sizeof(c));
	store_conv_list(st, 2000, false, 100, conv_cb, &c, &err);
	tap_is_int(c.n, 1, "a user lists only their conversations");
	memset(&c, 0, sizeof(c));
	store_conv_list(st, 0, true, 100, conv_cb, &c, &err);
	tap_is_int(c.n, 2, "an admin lists all");
	memset(&c, 0, sizeof(c));
	store_job_list(st, 2000, false, 100, job_cb, &c, &err);
	tap_is_int(c.n, 1, "a user lists only their jobs");
	tap_is_int(store_conv_last(st, 2000, &id, &err), 0, "the last conversation");
	tap_is_int(id, conv3, "is the newest");

	/* A crash: job3 (interactive) and job4 (detached) were running. */
	store_job_started(st, job3, &err);
	store_job_started(st, job4, &err);
	store_close(st);
	tap_is_int(store_open(path, &st, &err), 0, "the database opens again");
	tap_is_int(store_recover(st, &n_int, &n_req, &err), 0, "recovery runs");
	tap_ok(n_int == 1 && n_req == 1, "one interrupted, one re-queued (%u, %u)", n_int, n_req);
	memset(&c, 0, sizeof(c));
	store_jobs_queued(st, job_cb, &c, &err);
	tap_is_int(c.n, 1, "the detached job waits again");
	store_job_get(st, job4, &j, &err);
	tap_ok(j.state == JOB_QUEUED && j.restarts == 1 && j.detached, "counting the restart");
	store_job_clear(&j);
	store_job_get(st, job3, &j, &err);
	tap_ok(j.state == JOB_INTERRUPTED && j.error != NULL, "the interactive one is interrupted");
	store_job_clear(&j);
	memset(&c, 0, sizeof(c));
	store_conv_turns(st, conv1, turn_cb, &c, &err);
	tap_is_int(c.n, 4, "history is intact after the restart");

	tap_is_int(store_conv_delete(st, conv3, &err), KTX_EINVAL,
	    "a conversation with a waiting job cannot be deleted");
	tap_is_int(store_conv_delete(st, conv1, &err), 0, "an idle one can");
	tap_is_int(store_conv_owner(st, conv1, &owner, &err), KTX_ENOTFOUND, "and is gone");
	tap_is_int(store_job_get(st, job1, &j, &err), 0, "its jobs remain");
	tap_ok(j.conversation == 0, "without the conversation");
	store_job_clear(&j);
	tap_is_int(store_job_get(st, 999999, &j, &err), KTX_ENOTFOUND, "an unknown job");
	store_close(st);

	if (sqlite3_open(path, &db) == SQLITE_OK) {
		sqlite3_stmt *s;

		if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
		    sqlite3_step(s) == SQLITE_ROW)
			version = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL);
		sqlite3_close(db);
	}
	tap_is_int(version, 1, "the schema version is recorded");
	tap_is_int(store_open(path, &st, &err), KTX_EUNSUPPORTED,
	    "a newer schema is refused, not damaged");
	tap_ok(strstr(err.msg, "999") != NULL, "naming its version: %s", err.msg);
	tap_ok(store_open("/nonexistent/dir/ktx.db", &st, &err) != 0 &&
		strstr(err.msg, "/nonexistent/dir/ktx.db") != NULL,
	    "an unopenable path is named: %s", err.msg);
	unlink(path);
	unlink(wal);
	unlink(shm);
	return tap_done();
}
