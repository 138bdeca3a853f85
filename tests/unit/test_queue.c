/*
 * test_queue.c - the fair scheduler: bounds, per-user limits, run order,
 * positions, removal.
 */
#include "config.h"

#include "daemon/sched.h"
#include "tests/tap.h"

struct seen {
	int64_t jobs[64];
	size_t n;
	int positions_ok;
};

static void
visit(void *ctx, int64_t job, uint32_t uid, size_t position)
{
	struct seen *s = ctx;

	(void)uid;
	if (s->n < 64)
		s->jobs[s->n] = job;
	s->n++;
	if (position != s->n)
		s->positions_ok = 0;
}

int
main(void)
{
	struct sched *s = sched_new(60, 50);
	struct seen seen = {.positions_ok = 1};
	uint32_t uid = 0;
	int64_t job, order[8];
	int i, ok;

	tap_ok(s != NULL, "sched_new");
	tap_is_int(sched_pop(s, &uid), 0, "an empty queue gives no job");

	/* User 1000 queues 50 jobs (ids 1..50); the first starts. */
	for (i = 1; i <= 50; i++)
		if (sched_push(s, i, 1000) != SCHED_OK)
			break;
	tap_is_int(i, 51, "50 jobs of one user are accepted");
	tap_is_int(sched_push(s, 51, 1000), SCHED_USER_FULL, "the 51st is over the per-user limit");
	tap_is_int(sched_len(s), 50, "a refused push changes nothing");
	tap_is_int(sched_pop(s, &uid), 1, "the first job runs first");
	tap_is_int(uid, 1000, "and belongs to its user");

	/* User 2000 asks one question: it runs next, before 1000's second job. */
	tap_is_int(sched_push(s, 100, 2000), SCHED_OK, "another user's job is accepted");
	tap_is_int(sched_position(s, 100), 1, "and is first in line");
	tap_is_int(sched_position(s, 2), 2, "the batch's next job is second");
	tap_is_int(sched_pop(s, &uid), 100, "the other user's job starts within one job");
	tap_is_int(uid, 2000, "popped with its uid");

	/* Three users alternate. */
	sched_push(s, 200, 3000);
	sched_push(s, 201, 3000);
	sched_push(s, 101, 2000);
	for (i = 0; i < 6; i++)
		order[i] = sched_pop(s, NULL);
	tap_ok(order[0] == 200 && order[1] == 2 && order[2] == 101 && order[3] == 201 &&
		order[4] == 3 && order[5] == 4,
	    "round robin, least recently served first: %lld %lld %lld %lld %lld %lld",
	    (long long)order[0], (long long)order[1], (long long)order[2], (long long)order[3],
	    (long long)order[4], (long long)order[5]);

	/* Positions match the order sched_pop would give. */
	sched_push(s, 300, 4000);
	sched_push(s, 301, 4000);
	sched_push(s, 102, 2000);
	sched_order(s, visit, &seen);
	tap_is_int(seen.n, sched_len(s), "sched_order visits every waiting job");
	tap_ok(seen.positions_ok, "with positions 1, 2, 3, ...");
	ok = 1;
	for (i = 0; i < 10 && i < (int)seen.n; i++)
		if (sched_position(s, seen.jobs[i]) != (size_t)i + 1)
			ok = 0;
	tap_ok(ok, "sched_position agrees with sched_order");
	for (i = 0, ok = 1; i < 10; i++) {
		job = sched_pop(s, NULL);
		if (job != seen.jobs[i])
			ok = 0;
	}
	tap_ok(ok, "sched_pop follows the announced order");

	/* Removal. */
	tap_is_int(sched_remove(s, 40), 1, "a waiting job can be removed");
	tap_is_int(sched_remove(s, 40), 0, "but only once");
	tap_is_int(sched_position(s, 40), 0, "a removed job has no position");
	tap_is_int(sched_user_len(s, 1000), 38, "the user's count drops (46 - 7 popped - 1 removed)");

	/* The total bound. */
	for (i = 0; i < 100; i++)
		if (sched_push(s, 1000 + i, 5000 + (uint32_t)i % 7) != SCHED_OK)
			break;
	tap_is_int(sched_len(s), 60, "the queue stops at queue_max");
	tap_is_int(sched_push(s, 9999, 9), SCHED_FULL, "a full queue says so at once");
	tap_ok(sched_users(s) >= 2, "several users are waiting");
	{
		size_t waiting = 0;
		uint32_t first = sched_user_at(s, 0, &waiting);

		tap_ok(first != 0 && waiting > 0, "sched_user_at names the next user");
	}
	while (sched_pop(s, NULL) != 0)
		;
	tap_is_int(sched_len(s), 0, "everything drains");
	sched_free(s);
	return tap_done();
}
