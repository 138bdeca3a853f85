/*
 * err.c - filling struct ktx_err; see err.h for the convention.
 */
#include "engine/err.h"

#include <stdarg.h>
#include <stdio.h>

int
ktx_err_set(struct ktx_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void
ktx_err_clear(struct ktx_err *err)
{
	if (err == NULL)
		return;
	err->code = KTX_OK;
	err->msg[0] = '\0';
}

const char *
ktx_status_name(int code)
{
	switch (code) {
	case KTX_OK: return "ok";
	case KTX_EIO: return "I/O error";
	case KTX_EFORMAT: return "format error";
	case KTX_ENOMEM: return "out of memory";
	case KTX_EINVAL: return "invalid argument";
	case KTX_EUNSUPPORTED: return "unsupported";
	case KTX_ERANGE: return "over a limit";
	case KTX_ENOTFOUND: return "not found";
	case KTX_ECANCELED: return "canceled";
	}
	return "unknown error";
}
