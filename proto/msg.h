/*
 * msg.h - the protocol's tables, shared by msg.c and codec.c only.
 */
#ifndef KTX_PROTO_MSG_H
#define KTX_PROTO_MSG_H

#include <stdint.h>

#include "proto/proto.h"

struct msg_spec {
	const char *name;  /* wire name of the op or event */
	uint64_t required; /* field bits that must be present */
	uint64_t optional; /* field bits that may be present */
};

struct field_spec {
	const char *name;  /* wire key */
	enum ktx_kind kind;
	uint32_t max;      /* string bytes; 0: the decoder's text_max */
};

extern const struct msg_spec msg_specs[KTX_MSG_COUNT];
extern const struct field_spec field_specs[KTX_NFIELDS];

#endif
