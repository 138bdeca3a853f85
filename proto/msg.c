/*
 * msg.c - what each message may carry: the tables of types and fields, and
 * the accessors of struct ktx_msg.
 *
 * The tables here are the protocol; ktx-protocol(7) describes the same
 * thing in prose, and the unit test walks them to round-trip every field.
 */
#include "proto/proto.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"

#define B(f) (UINT64_C(1) << (f))

_Static_assert(KTX_NFIELDS <= 64, "field bits must fit in a uint64_t");

/* Generation options shared by ask and submit. */
#define GEN_OPTS (B(KTX_F_CONVERSATION) | B(KTX_F_MAX_TOKENS) | B(KTX_F_TEMPERATURE) | \
	B(KTX_F_TOP_P) | B(KTX_F_SEED))
/* Statistics of a finished generation. */
#define GEN_STATS (B(KTX_F_CONV_ID) | B(KTX_F_PROMPT_TOKENS) | B(KTX_F_GEN_TOKENS) | \
	B(KTX_F_PREFILL_TPS) | B(KTX_F_DECODE_TPS) | B(KTX_F_REASON))

const struct msg_spec msg_specs[KTX_MSG_COUNT] = {
	[KTX_MSG_NONE] = { NULL, 0, 0 },
	[KTX_OP_HELLO] = { "hello", B(KTX_F_VERSION), B(KTX_F_CLIENT) },
	[KTX_OP_ASK] = { "ask", B(KTX_F_PROMPT), GEN_OPTS | B(KTX_F_DETACHED) },
	[KTX_OP_SUBMIT] = { "submit", B(KTX_F_PROMPT), GEN_OPTS },
	[KTX_OP_CANCEL] = { "cancel", B(KTX_F_JOB), 0 },
	[KTX_OP_STATUS] = { "status", 0, 0 },
	[KTX_OP_PS] = { "ps", 0, 0 },
	[KTX_OP_HISTORY] = { "history", 0, B(KTX_F_ALL) | B(KTX_F_LIMIT) },
	[KTX_OP_SHOW] = { "show", B(KTX_F_CONVERSATION), 0 },
	[KTX_OP_RM] = { "rm", B(KTX_F_CONVERSATION), 0 },
	[KTX_OP_JOBS] = { "jobs", 0, B(KTX_F_ALL) | B(KTX_F_LIMIT) },
	[KTX_OP_RESULT] = { "result", B(KTX_F_JOB), 0 },
	[KTX_OP_WAIT] = { "wait", B(KTX_F_JOB), 0 },
	[KTX_OP_PING] = { "ping", 0, 0 },
	[KTX_EV_WELCOME] = { "welcome",
	    B(KTX_F_VERSION) | B(KTX_F_SERVER) | B(KTX_F_FRAME_MAX) | B(KTX_F_PROMPT_MAX),
	    B(KTX_F_MODEL) | B(KTX_F_CTX) | B(KTX_F_UID) | B(KTX_F_USER) },
	[KTX_EV_QUEUED] = { "queued", B(KTX_F_JOB) | B(KTX_F_POSITION), B(KTX_F_CONV_ID) },
	[KTX_EV_STARTED] = { "started", B(KTX_F_JOB), B(KTX_F_CONV_ID) },
	[KTX_EV_TOKEN] = { "token", B(KTX_F_TEXT), 0 },
	[KTX_EV_DONE] = { "done", B(KTX_F_JOB), GEN_STATS },
	[KTX_EV_ERROR] = { "error", B(KTX_F_CODE) | B(KTX_F_MESSAGE), B(KTX_F_JOB) },
	[KTX_EV_OK] = { "ok", 0, B(KTX_F_JOB) | B(KTX_F_CONV_ID) },
	[KTX_EV_ACCEPTED] = { "accepted", B(KTX_F_JOB), B(KTX_F_POSITION) | B(KTX_F_CONV_ID) },
	[KTX_EV_END] = { "end", 0, B(KTX_F_COUNT) },
	[KTX_EV_CONVERSATION] = { "conversation", B(KTX_F_CONV_ID),
	    B(KTX_F_NAME) | B(KTX_F_TITLE) | B(KTX_F_TURNS) | B(KTX_F_CREATED) |
	    B(KTX_F_UPDATED) | B(KTX_F_UID) | B(KTX_F_USER) },
	[KTX_EV_TURN] = { "turn", B(KTX_F_ROLE) | B(KTX_F_TEXT), B(KTX_F_TIME) | B(KTX_F_JOB) },
	[KTX_EV_JOB] = { "job", B(KTX_F_JOB) | B(KTX_F_STATE),
	    B(KTX_F_UID) | B(KTX_F_USER) | B(KTX_F_POSITION) | B(KTX_F_AGE) |
	    B(KTX_F_CONV_ID) | B(KTX_F_TITLE) | B(KTX_F_DETACHED) |
	    B(KTX_F_PROMPT_TOKENS) | B(KTX_F_GEN_TOKENS) },
	[KTX_EV_STATUS] = { "status", 0,
	    B(KTX_F_SERVER) | B(KTX_F_MODEL) | B(KTX_F_STATE) | B(KTX_F_PROGRESS) |
	    B(KTX_F_UPTIME) | B(KTX_F_RAM) | B(KTX_F_VRAM) | B(KTX_F_MODEL_RAM) |
	    B(KTX_F_MODEL_VRAM) | B(KTX_F_WAITING) | B(KTX_F_RUNNING) | B(KTX_F_TOK_S) |
	    B(KTX_F_CTX) | B(KTX_F_THREADS) },
	[KTX_EV_USAGE] = { "usage", B(KTX_F_UID),
	    B(KTX_F_USER) | B(KTX_F_WAITING) | B(KTX_F_RUNNING) },
	[KTX_EV_RESULT] = { "result", B(KTX_F_JOB) | B(KTX_F_STATE),
	    B(KTX_F_TEXT) | GEN_STATS | B(KTX_F_CODE) | B(KTX_F_MESSAGE) },
};

const struct field_spec field_specs[KTX_NFIELDS] = {
	[KTX_F_CLIENT] = { "client", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_SERVER] = { "server", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_MODEL] = { "model", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_PROMPT] = { "prompt", KTX_KIND_STR, 0 },
	[KTX_F_CONVERSATION] = { "conversation", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_NAME] = { "name", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_TITLE] = { "title", KTX_KIND_STR, KTX_PROTO_LINE_MAX },
	[KTX_F_TEXT] = { "text", KTX_KIND_STR, 0 },
	[KTX_F_CODE] = { "code", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_MESSAGE] = { "message", KTX_KIND_STR, KTX_PROTO_LINE_MAX },
	[KTX_F_STATE] = { "state", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_ROLE] = { "role", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_USER] = { "user", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_REASON] = { "reason", KTX_KIND_STR, KTX_PROTO_NAME_MAX },
	[KTX_F_VERSION] = { "version", KTX_KIND_UINT, 0 },
	[KTX_F_JOB] = { "job", KTX_KIND_UINT, 0 },
	[KTX_F_CONV_ID] = { "conversation", KTX_KIND_UINT, 0 },
	[KTX_F_POSITION] = { "position", KTX_KIND_UINT, 0 },
	[KTX_F_MAX_TOKENS] = { "max_tokens", KTX_KIND_UINT, 0 },
	[KTX_F_SEED] = { "seed", KTX_KIND_UINT, 0 },
	[KTX_F_FRAME_MAX] = { "frame_max", KTX_KIND_UINT, 0 },
	[KTX_F_PROMPT_MAX] = { "prompt_max", KTX_KIND_UINT, 0 },
	[KTX_F_CTX] = { "ctx", KTX_KIND_UINT, 0 },
	[KTX_F_PROMPT_TOKENS] = { "prompt_tokens", KTX_KIND_UINT, 0 },
	[KTX_F_GEN_TOKENS] = { "gen_tokens", KTX_KIND_UINT, 0 },
	[KTX_F_COUNT] = { "count", KTX_KIND_UINT, 0 },
	[KTX_F_TURNS] = { "turns", KTX_KIND_UINT, 0 },
	[KTX_F_UID] = { "uid", KTX_KIND_UINT, 0 },
	[KTX_F_WAITING] = { "waiting", KTX_KIND_UINT, 0 },
	[KTX_F_RUNNING] = { "running", KTX_KIND_UINT, 0 },
	[KTX_F_UPTIME] = { "uptime", KTX_KIND_UINT, 0 },
	[KTX_F_RAM] = { "ram", KTX_KIND_UINT, 0 },
	[KTX_F_VRAM] = { "vram", KTX_KIND_UINT, 0 },
	[KTX_F_MODEL_RAM] = { "model_ram", KTX_KIND_UINT, 0 },
	[KTX_F_MODEL_VRAM] = { "model_vram", KTX_KIND_UINT, 0 },
	[KTX_F_AGE] = { "age", KTX_KIND_UINT, 0 },
	[KTX_F_LIMIT] = { "limit", KTX_KIND_UINT, 0 },
	[KTX_F_TIME] = { "time", KTX_KIND_UINT, 0 },
	[KTX_F_CREATED] = { "created", KTX_KIND_UINT, 0 },
	[KTX_F_UPDATED] = { "updated", KTX_KIND_UINT, 0 },
	[KTX_F_THREADS] = { "threads", KTX_KIND_UINT, 0 },
	[KTX_F_TEMPERATURE] = { "temperature", KTX_KIND_FLOAT, 0 },
	[KTX_F_TOP_P] = { "top_p", KTX_KIND_FLOAT, 0 },
	[KTX_F_PREFILL_TPS] = { "prefill_tps", KTX_KIND_FLOAT, 0 },
	[KTX_F_DECODE_TPS] = { "decode_tps", KTX_KIND_FLOAT, 0 },
	[KTX_F_TOK_S] = { "tok_s", KTX_KIND_FLOAT, 0 },
	[KTX_F_PROGRESS] = { "progress", KTX_KIND_FLOAT, 0 },
	[KTX_F_DETACHED] = { "detached", KTX_KIND_BOOL, 0 },
	[KTX_F_ALL] = { "all", KTX_KIND_BOOL, 0 },
};

void
ktx_msg_init(struct ktx_msg *m, enum ktx_msg_type type, uint64_t id)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->id = id;
}

void
ktx_msg_clear(struct ktx_msg *m)
{
	free(m->arena);
	ktx_msg_init(m, KTX_MSG_NONE, 0);
}

/* Marks f present after checking, as an invariant, that it has kind k. */
static union ktx_value *
msg_slot(struct ktx_msg *m, enum ktx_field f, enum ktx_kind k)
{
	assert((unsigned)f < KTX_NFIELDS && field_specs[f].kind == k);
	m->have |= B(f);
	return &m->v[f];
}

void
ktx_msg_set_str(struct ktx_msg *m, enum ktx_field f, const char *s)
{
	assert(s != NULL);
	msg_slot(m, f, KTX_KIND_STR)->s = s;
}

void
ktx_msg_set_uint(struct ktx_msg *m, enum ktx_field f, uint64_t u)
{
	msg_slot(m, f, KTX_KIND_UINT)->u = u;
}

void
ktx_msg_set_float(struct ktx_msg *m, enum ktx_field f, double d)
{
	msg_slot(m, f, KTX_KIND_FLOAT)->f = d;
}

void
ktx_msg_set_bool(struct ktx_msg *m, enum ktx_field f, int b)
{
	msg_slot(m, f, KTX_KIND_BOOL)->b = b != 0;
}

int
ktx_msg_has(const struct ktx_msg *m, enum ktx_field f)
{
	return (unsigned)f < KTX_NFIELDS && (m->have & B(f)) != 0;
}

const char *
ktx_msg_get_str(const struct ktx_msg *m, enum ktx_field f)
{
	assert((unsigned)f < KTX_NFIELDS && field_specs[f].kind == KTX_KIND_STR);
	return ktx_msg_has(m, f) ? m->v[f].s : NULL;
}

uint64_t
ktx_msg_get_uint(const struct ktx_msg *m, enum ktx_field f, uint64_t def)
{
	assert((unsigned)f < KTX_NFIELDS && field_specs[f].kind == KTX_KIND_UINT);
	return ktx_msg_has(m, f) ? m->v[f].u : def;
}

double
ktx_msg_get_float(const struct ktx_msg *m, enum ktx_field f, double def)
{
	assert((unsigned)f < KTX_NFIELDS && field_specs[f].kind == KTX_KIND_FLOAT);
	return ktx_msg_has(m, f) ? m->v[f].f : def;
}

int
ktx_msg_get_bool(const struct ktx_msg *m, enum ktx_field f, int def)
{
	assert((unsigned)f < KTX_NFIELDS && field_specs[f].kind == KTX_KIND_BOOL);
	return ktx_msg_has(m, f) ? m->v[f].b : def;
}

int
ktx_msg_is_request(enum ktx_msg_type t)
{
	return t >= KTX_MSG_FIRST_OP && t <= KTX_MSG_LAST_OP;
}

const char *
ktx_msg_type_name(enum ktx_msg_type t)
{
	if ((unsigned)t >= KTX_MSG_COUNT)
		return NULL;
	return msg_specs[t].name;
}

const char *
ktx_field_name(enum ktx_field f)
{
	return (unsigned)f < KTX_NFIELDS ? field_specs[f].name : NULL;
}

enum ktx_kind
ktx_field_kind(enum ktx_field f)
{
	assert((unsigned)f < KTX_NFIELDS);
	return field_specs[f].kind;
}

int
ktx_msg_field_rule(enum ktx_msg_type t, enum ktx_field f)
{
	if ((unsigned)t >= KTX_MSG_COUNT || (unsigned)f >= KTX_NFIELDS)
		return 0;
	if (msg_specs[t].required & B(f))
		return 2;
	return (msg_specs[t].optional & B(f)) ? 1 : 0;
}
