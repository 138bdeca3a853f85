/*
 * store.h - ktxd's memory: users, conversations, turns and jobs in SQLite.
 *
 * One connection, used only from the loop thread (the one writer). WAL mode,
 * a busy timeout, every state change one transaction, statements prepared
 * once. The schema is migrated by PRAGMA user_version. Errors follow
 * engine/err.h: 0 or a KTX_E* code with a sentence in struct ktx_err.
 */
#ifndef KTX_DAEMON_STORE_H
#define KTX_DAEMON_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/err.h"

struct store;

enum job_state {
	JOB_QUEUED = 0,
	JOB_RUNNING,
	JOB_DONE,
	JOB_FAILED,
	JOB_CANCELED,
	JOB_INTERRUPTED, /* was running or waiting when ktxd stopped */
};

/* Sampling and length options of one job. */
struct job_options {
	int32_t max_tokens;  /* 0: until the end of the turn or the context */
	double temperature;  /* 0: greedy */
	double top_p;        /* 1: off */
	uint64_t seed;
	bool seed_set;       /* false: a seed from the clock */
};

/* What a finished generation measured. */
struct job_stats {
	uint32_t prompt_tokens; /* tokens of the whole templated prompt */
	uint32_t cached_tokens; /* of which were already in the session cache */
	uint32_t gen_tokens;
	double prefill_s, decode_s;
};

struct store_job {
	int64_t id;
	uint32_t uid;
	enum job_state state;
	bool detached;
	char *prompt;
	struct job_options opt;
	int64_t conversation;
	int64_t turn;          /* the user turn this job answers */
	char *result;          /* the answer (done) or NULL */
	char *error;           /* why it failed, or NULL */
	int64_t created_ms, started_ms, finished_ms;
	uint32_t restarts;     /* times it was re-queued by a restart */
	struct job_stats stats;
};

struct store_conv {
	int64_t id;
	uint32_t uid;
	const char *name;      /* NULL when unnamed */
	const char *title;     /* the start of the first question */
	int64_t created_ms, updated_ms;
	uint32_t n_turns;
};

struct store_turn {
	int64_t id;
	const char *role;      /* "user" or "assistant" */
	const char *content;
	int64_t created_ms;
	struct job_stats stats; /* assistant turns; zero for user turns */
};

/* A submission: a new conversation (conversation 0, name optional) or a follow-up. */
struct store_submit {
	uint32_t uid;
	bool detached;
	const char *prompt;
	const struct job_options *opt;
	int64_t conversation;
	const char *name;
};

typedef int (*store_job_fn)(void *ctx, const struct store_job *j);
typedef int (*store_conv_fn)(void *ctx, const struct store_conv *c);
typedef int (*store_turn_fn)(void *ctx, const struct store_turn *t);

int store_open(const char *path, struct store **out, struct ktx_err *err);
void store_close(struct store *st);

/* Milliseconds since the epoch, the store's clock. */
int64_t store_now_ms(void);
const char *store_job_state_name(enum job_state s);

/*
 * After a stop (clean or not): jobs found running or waiting that were bound
 * to a connection become interrupted; detached ones found running go back to
 * the queue (restarts + 1). Counts what it changed.
 */
int store_recover(struct store *st, unsigned *n_interrupted, unsigned *n_requeued,
    struct ktx_err *err);
/* Calls fn for each queued job, oldest first (to refill the scheduler). */
int store_jobs_queued(struct store *st, store_job_fn fn, void *ctx, struct ktx_err *err);

/*
 * Stores the question as a user turn and the job, in one transaction; a
 * detached job is committed with synchronous=FULL because it is acknowledged
 * as accepted. Refuses a conversation that is not the user's or that has a
 * job in progress. Writes the new ids.
 */
int store_submit(struct store *st, const struct store_submit *s, int64_t *job_id,
    int64_t *conversation, struct ktx_err *err);
int store_job_started(struct store *st, int64_t id, struct ktx_err *err);
/*
 * Ends a job: state, error (or NULL), stats; with an answer (state done)
 * the assistant turn is stored in the same transaction.
 */
int store_job_finish(struct store *st, int64_t id, enum job_state state, const char *answer,
    const char *error, const struct job_stats *stats, struct ktx_err *err);
/* Reads one job; free its strings with store_job_clear. KTX_ENOTFOUND if none. */
int store_job_get(struct store *st, int64_t id, struct store_job *out, struct ktx_err *err);
void store_job_clear(struct store_job *j);
/* Jobs of uid (all users when all), newest first, at most limit. */
int store_job_list(struct store *st, uint32_t uid, bool all, unsigned limit, store_job_fn fn,
    void *ctx, struct ktx_err *err);

/* Conversations of uid (all users when all), most recently updated first. */
int store_conv_list(struct store *st, uint32_t uid, bool all, unsigned limit,
    store_conv_fn fn, void *ctx, struct ktx_err *err);
/* Calls fn once with the summary of conversation id (not at all if none). */
int store_conv_get(struct store *st, int64_t id, store_conv_fn fn, void *ctx,
    struct ktx_err *err);
/* Finds a conversation by id or name; *owner gets its uid. KTX_ENOTFOUND if none. */
int store_conv_find(struct store *st, uint32_t uid, const char *id_or_name, int64_t *id,
    uint32_t *owner, struct ktx_err *err);
/* uid's most recently updated conversation; KTX_ENOTFOUND if none. */
int store_conv_last(struct store *st, uint32_t uid, int64_t *id, struct ktx_err *err);
int store_conv_owner(struct store *st, int64_t id, uint32_t *owner, struct ktx_err *err);
/* Every turn of a conversation, oldest first. */
int store_conv_turns(struct store *st, int64_t id, store_turn_fn fn, void *ctx,
    struct ktx_err *err);
/*
 * The turns a job's prompt is made of: those up to and including its own
 * question, leaving out questions that never got an answer.
 */
int store_job_context(struct store *st, int64_t job_id, store_turn_fn fn, void *ctx,
    struct ktx_err *err);
/* Deletes a conversation and its turns; refused while one of its jobs is in progress. */
int store_conv_delete(struct store *st, int64_t id, struct ktx_err *err);

#endif
