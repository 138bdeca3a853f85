/*
 * cerr.c - ktxctl's errors: a sentence for stderr and the exit status that
 * scripts rely on (see ktxctl(1)).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "client/ktxctl.h"

int
cerr_set(struct cerr *e, int exit, const char *fmt, ...)
{
	va_list ap;

	e->exit = exit;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return exit;
}

int
exit_of_code(int code)
{
	switch (code) {
	case KTX_CODE_OK: return KTXCTL_EXIT_OK;
	case KTX_CODE_BUSY: return KTXCTL_EXIT_BUSY;
	case KTX_CODE_CANCELED: return KTXCTL_EXIT_CANCELED;
	case KTX_CODE_NOT_FOUND: return KTXCTL_EXIT_NOT_FOUND;
	case KTX_CODE_FORBIDDEN: return KTXCTL_EXIT_FORBIDDEN;
	case KTX_CODE_TOO_LARGE:
	case KTX_CODE_CONTEXT_FULL: return KTXCTL_EXIT_TOO_LARGE;
	case KTX_CODE_BAD_FRAME:
	case KTX_CODE_VERSION: return KTXCTL_EXIT_PROTOCOL;
	case KTX_CODE_PENDING: return KTXCTL_EXIT_PENDING;
	}
	return KTXCTL_EXIT_DAEMON;
}

int
cerr_from_event(struct cerr *e, const struct ktx_msg *ev)
{
	const char *code = ktx_msg_get_str(ev, KTX_F_CODE);
	const char *msg = ktx_msg_get_str(ev, KTX_F_MESSAGE);

	if (code == NULL)
		code = "internal";
	return cerr_set(e, exit_of_code(ktx_code_from_name(code)), "%s (%s)",
	    msg != NULL ? msg : "ktxd gave no reason", code);
}
