/*
 * err.h - the engine's one error convention.
 *
 * Every engine function that can fail returns an int: 0 (KTX_OK) on success
 * or a negative KTX_E* code, and writes a sentence naming the cause (and,
 * where there is one, what to do) into a caller-provided struct ktx_err.
 * Library code never exits and never prints; only main() does.
 */
#ifndef KTX_ENGINE_ERR_H
#define KTX_ENGINE_ERR_H

#include <stddef.h>

enum ktx_status {
	KTX_OK = 0,
	KTX_EIO = -1,          /* open/read/mmap failed */
	KTX_EFORMAT = -2,      /* the file or input is malformed */
	KTX_ENOMEM = -3,       /* an allocation failed */
	KTX_EINVAL = -4,       /* a bad argument from the caller */
	KTX_EUNSUPPORTED = -5, /* valid, but ktx cannot do it (yet) */
	KTX_ERANGE = -6,       /* a size or count over a limit */
	KTX_ENOTFOUND = -7,    /* a key, tensor or id that does not exist */
	KTX_ECANCELED = -8,    /* the caller asked to stop */
};

#define KTX_ERR_MSG_MAX 512

struct ktx_err {
	int code;
	char msg[KTX_ERR_MSG_MAX];
};

/* Fills err (when not NULL) and returns code, so callers can write
 * "return ktx_err_set(err, KTX_EFORMAT, "...", ...);". */
int ktx_err_set(struct ktx_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to "no error". */
void ktx_err_clear(struct ktx_err *err);

/* A short name for a status code ("format error", ...). */
const char *ktx_status_name(int code);

#endif
