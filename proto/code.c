/*
 * code.c - error codes of the protocol and their wire names.
 */
#include "proto/proto.h"

#include <string.h>

/* Indexed by enum ktx_code; the names are part of the protocol. */
static const char *const code_names[KTX_CODE_COUNT] = {
	[KTX_CODE_OK] = "ok",
	[KTX_CODE_BAD_FRAME] = "bad_frame",
	[KTX_CODE_TOO_LARGE] = "too_large",
	[KTX_CODE_UNKNOWN_OP] = "unknown_op",
	[KTX_CODE_BAD_FIELD] = "bad_field",
	[KTX_CODE_VERSION] = "version",
	[KTX_CODE_BUSY] = "busy",
	[KTX_CODE_NOT_FOUND] = "not_found",
	[KTX_CODE_FORBIDDEN] = "forbidden",
	[KTX_CODE_CANCELED] = "canceled",
	[KTX_CODE_CONTEXT_FULL] = "context_full",
	[KTX_CODE_INTERNAL] = "internal",
	[KTX_CODE_UNAVAILABLE] = "unavailable",
	[KTX_CODE_PENDING] = "pending",
};

const char *
ktx_code_name(int code)
{
	if (code < 0 || code >= KTX_CODE_COUNT)
		return code_names[KTX_CODE_INTERNAL];
	return code_names[code];
}

int
ktx_code_from_name(const char *name)
{
	int i;

	if (name == NULL)
		return KTX_CODE_INTERNAL;
	for (i = 0; i < KTX_CODE_COUNT; i++)
		if (strcmp(code_names[i], name) == 0)
			return i;
	return KTX_CODE_INTERNAL;
}

void
ktx_proto_limits_default(struct ktx_proto_limits *l)
{
	l->frame_max = KTX_PROTO_FRAME_MAX_DEFAULT;
	l->text_max = KTX_PROTO_PROMPT_MAX_DEFAULT;
	l->depth_max = KTX_PROTO_DEPTH_MAX;
	l->elems_max = KTX_PROTO_ELEMS_MAX;
}
