/*
 * sched.h - the waiting jobs: bounded, per-user limits, fair across users.
 *
 * Each user with waiting jobs has a FIFO; the next job comes from the user
 * who was served least recently (a user never served goes first, in order
 * of arrival). So one user's 500 queued prompts delay another user's single
 * question by at most the job already running. Pure data: no I/O, no locks
 * (the loop thread owns it).
 */
#ifndef KTX_DAEMON_SCHED_H
#define KTX_DAEMON_SCHED_H

#include <stddef.h>
#include <stdint.h>

struct sched;

enum sched_status {
	SCHED_OK = 0,
	SCHED_FULL = 1,      /* queue_max jobs are waiting */
	SCHED_USER_FULL = 2, /* this user has queue_per_user jobs waiting */
	SCHED_NOMEM = 3,
};

/* Called by sched_order for each waiting job in the order they would run. */
typedef void (*sched_visit_fn)(void *ctx, int64_t job, uint32_t uid, size_t position);

struct sched *sched_new(size_t queue_max, size_t queue_per_user);
void sched_free(struct sched *s);

/* Appends a job of uid; SCHED_FULL/SCHED_USER_FULL leave the queue unchanged. */
enum sched_status sched_push(struct sched *s, int64_t job, uint32_t uid);
/* Takes the next job to run; 0 when none waits. */
int64_t sched_pop(struct sched *s, uint32_t *uid);
/* Takes a waiting job out (cancelled); returns 0 if it was not waiting. */
int sched_remove(struct sched *s, int64_t job);
/* 1-based place of a waiting job in the order they would run; 0 if absent. */
size_t sched_position(const struct sched *s, int64_t job);
size_t sched_len(const struct sched *s);
size_t sched_user_len(const struct sched *s, uint32_t uid);
/* Visits every waiting job in run order (1-based positions). */
void sched_order(const struct sched *s, sched_visit_fn fn, void *ctx);
/* Number of users with waiting jobs, and the i-th one (run order). */
size_t sched_users(const struct sched *s);
uint32_t sched_user_at(const struct sched *s, size_t i, size_t *waiting);

#endif
