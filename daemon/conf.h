/*
 * conf.h - ktxd's settings: defaults, ktxd.conf and command-line overrides.
 *
 * ktxd.conf is "key = value" lines ('#' starts a comment); the same keys
 * may be given on the command line, which wins. Every error names the file,
 * the line and the key. See ktxd.conf(5).
 */
#ifndef KTX_DAEMON_CONF_H
#define KTX_DAEMON_CONF_H

#include <stdint.h>

#include "engine/err.h"

/* Most jobs batch_max may let the worker generate together. */
#define KTXD_BATCH_LIMIT 256

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

struct ktxd_config {
	char *model;               /* GGUF file */
	char *socket;              /* Unix socket path (when not socket-activated) */
	char *socket_group;        /* group of a socket ktxd binds itself; NULL: keep */
	char *database;            /* SQLite file */
	char *admin_group;         /* members may see every user's jobs; NULL: root only */
	unsigned socket_mode;      /* permissions of a socket ktxd binds itself */
	int threads;               /* compute threads, 0: all CPUs */
	unsigned act_residual;     /* KTX_ACT_* classes with residual activation rows */
	int cache_type;            /* a KTX_CACHE_*: the latent cache's elements */
	int load;                  /* a KTX_LOAD_*: how the weights reach memory */
	uint32_t experts;          /* routed experts per token, 0: the model's */
	uint32_t context;          /* context length per session, 0: engine default */
	uint64_t vram_headroom;    /* bytes of VRAM left free */
	uint32_t queue_max;        /* waiting jobs, all users */
	uint32_t queue_per_user;   /* waiting jobs of one user */
	uint32_t batch_max;        /* jobs generated together (continuous batching) */
	uint64_t max_prompt_bytes; /* longest prompt accepted */
	uint64_t max_frame_bytes;  /* largest frame read from a client */
	enum log_level log_level;
};

/* Fills c with the compiled-in defaults (strings are allocated). */
int config_init(struct ktxd_config *c, struct ktx_err *err);
void config_free(struct ktxd_config *c);

/*
 * Sets one key from its text form; where says where the value came from
 * ("ktxd.conf:12" or "--threads") and starts the error message.
 */
int config_set(struct ktxd_config *c, const char *where, const char *key, const char *value,
    struct ktx_err *err);

/* Reads a ktxd.conf file on top of what c holds. */
int config_load(struct ktxd_config *c, const char *path, struct ktx_err *err);

/* Checks that the settings agree with each other (frame vs prompt size). */
int config_check(const struct ktxd_config *c, struct ktx_err *err);

/* The name of a log level ("info"). */
const char *config_log_level_name(enum log_level l);

#endif
