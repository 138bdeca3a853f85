/*
 * sched.c - the fair queue behind sched.h.
 *
 * Users are kept in a small array (one entry per uid ever queued; the uids of
 * one machine are few) with their FIFO of job ids. The order between users
 * is (last served, arrival): least recently served first.
 */
#include "config.h"

#include "daemon/sched.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct user {
	uint32_t uid;
	uint64_t served;  /* tick of its last pop, 0: never */
	uint64_t arrived; /* tick at which its queue last became non-empty */
	int64_t *jobs;    /* FIFO: jobs[head .. head + n) */
	size_t head, n, cap;
};

struct sched {
	size_t max, per_user, len;
	struct user *users;
	size_t n_users, cap_users;
	uint64_t tick;
};

struct sched *
sched_new(size_t queue_max, size_t queue_per_user)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->max = queue_max;
	s->per_user = queue_per_user;
	return s;
}

void
sched_free(struct sched *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n_users; i++)
		free(s->users[i].jobs);
	free(s->users);
	free(s);
}

/* True when a should be served before b (both have waiting jobs). */
static bool
before(const struct user *a, const struct user *b)
{
	if (a->served != b->served)
		return a->served < b->served;
	return a->arrived < b->arrived;
}

static struct user *
find_user(const struct sched *s, uint32_t uid)
{
	size_t i;

	for (i = 0; i < s->n_users; i++)
		if (s->users[i].uid == uid)
			return &s->users[i];
	return NULL;
}

enum sched_status
sched_push(struct sched *s, int64_t job, uint32_t uid)
{
	struct user *u = find_user(s, uid), *nu;
	int64_t *nj;
	size_t cap;

	if (s->len >= s->max)
		return SCHED_FULL;
	if (u != NULL && u->n >= s->per_user)
		return SCHED_USER_FULL;
	if (u == NULL) {
		if (s->n_users == s->cap_users) {
			cap = s->cap_users ? 2 * s->cap_users : 8;
			if ((nu = realloc(s->users, cap * sizeof(*nu))) == NULL)
				return SCHED_NOMEM;
			s->users = nu;
			s->cap_users = cap;
		}
		u = &s->users[s->n_users++];
		memset(u, 0, sizeof(*u));
		u->uid = uid;
	}
	if (u->head + u->n == u->cap) {
		if (u->head > 0) {
			memmove(u->jobs, u->jobs + u->head, u->n * sizeof(*u->jobs));
			u->head = 0;
		} else {
			cap = u->cap ? 2 * u->cap : 8;
			if ((nj = realloc(u->jobs, cap * sizeof(*nj))) == NULL)
				return SCHED_NOMEM;
			u->jobs = nj;
			u->cap = cap;
		}
	}
	if (u->n == 0)
		u->arrived = ++s->tick;
	u->jobs[u->head + u->n++] = job;
	s->len++;
	return SCHED_OK;
}

/* The waiting users in serving order, written to out (s->n_users entries). */
static size_t
sorted_users(const struct sched *s, const struct user **out)
{
	size_t i, j, m = 0;
	const struct user *u;

	for (i = 0; i < s->n_users; i++) {
		u = &s->users[i];
		if (u->n == 0)
			continue;
		for (j = m; j > 0 && before(u, out[j - 1]); j--)
			out[j] = out[j - 1];
		out[j] = u;
		m++;
	}
	return m;
}

int64_t
sched_pop(struct sched *s, uint32_t *uid)
{
	struct user *best = NULL;
	int64_t job;
	size_t i;

	for (i = 0; i < s->n_users; i++)
		if (s->users[i].n > 0 && (best == NULL || before(&s->users[i], best)))
			best = &s->users[i];
	if (best == NULL)
		return 0;
	job = best->jobs[best->head++];
	best->n--;
	if (best->n == 0)
		best->head = 0;
	best->served = ++s->tick;
	s->len--;
	if (uid != NULL)
		*uid = best->uid;
	return job;
}

int
sched_remove(struct sched *s, int64_t job)
{
	struct user *u;
	size_t i, k;

	for (i = 0; i < s->n_users; i++) {
		u = &s->users[i];
		for (k = 0; k < u->n; k++) {
			if (u->jobs[u->head + k] != job)
				continue;
			memmove(u->jobs + u->head + k, u->jobs + u->head + k + 1,
			    (u->n - k - 1) * sizeof(*u->jobs));
			u->n--;
			s->len--;
			return 1;
		}
	}
	return 0;
}

/*
 * Walks the run order: round r takes the r-th job of every user that has
 * one, users in serving order (a served user goes to the back, so the order
 * between users stays the same from round to round).
 */
static size_t
walk(const struct sched *s, int64_t want, sched_visit_fn fn, void *ctx)
{
	const struct user **order;
	size_t m, i, r, pos = 0, longest = 0;
	int64_t job;

	if (s->len == 0 || (order = malloc(s->n_users * sizeof(*order))) == NULL)
		return 0;
	m = sorted_users(s, order);
	for (i = 0; i < m; i++)
		if (order[i]->n > longest)
			longest = order[i]->n;
	for (r = 0; r < longest; r++)
		for (i = 0; i < m; i++) {
			if (order[i]->n <= r)
				continue;
			job = order[i]->jobs[order[i]->head + r];
			pos++;
			if (fn != NULL)
				fn(ctx, job, order[i]->uid, pos);
			else if (job == want) {
				free(order);
				return pos;
			}
		}
	free(order);
	return 0;
}

size_t
sched_position(const struct sched *s, int64_t job)
{
	return walk(s, job, NULL, NULL);
}

void
sched_order(const struct sched *s, sched_visit_fn fn, void *ctx)
{
	walk(s, 0, fn, ctx);
}

size_t
sched_len(const struct sched *s)
{
	return s->len;
}

size_t
sched_user_len(const struct sched *s, uint32_t uid)
{
	const struct user *u = find_user(s, uid);

	return u != NULL ? u->n : 0;
}

size_t
sched_users(const struct sched *s)
{
	size_t i, m = 0;

	for (i = 0; i < s->n_users; i++)
		m += s->users[i].n > 0;
	return m;
}

uint32_t
sched_user_at(const struct sched *s, size_t i, size_t *waiting)
{
	const struct user **order;
	uint32_t uid = 0;
	size_t m;

	*waiting = 0;
	if ((order = malloc((s->n_users ? s->n_users : 1) * sizeof(*order))) == NULL)
		return 0;
	m = sorted_users(s, order);
	if (i < m) {
		uid = order[i]->uid;
		*waiting = order[i]->n;
	}
	free(order);
	return uid;
}
