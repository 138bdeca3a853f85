/*
 * proto.h - the ktx wire protocol, one definition for ktxd and ktxctl.
 *
 * A connection carries frames both ways: a 4-byte big-endian length, then
 * that many bytes holding exactly one msgpack map with string keys. A
 * request (client to server) names its kind in "op", an event (server to
 * client) in "ev"; both carry "id", the client-chosen request id that every
 * event answering the request repeats (0: about the connection as a whole).
 * ktx-protocol(7) is the prose version of this file.
 *
 * Decoding never trusts a declared length: the frame reader refuses a
 * length prefix over its maximum before buffering any of it, and
 * ktx_proto_scan() checks every array/map/str/bin/ext length in a frame
 * against the bytes left (and bounds depth and element count) before
 * msgpack-c unpacks it, because msgpack-c reserves memory for a container's
 * declared size. Functions here never exit or print: they return 0 or a
 * KTX_CODE_* (> 0) and write a sentence into a struct ktx_proto_err; the
 * code is also the one the peer is told in an "error" event.
 */
#ifndef KTX_PROTO_PROTO_H
#define KTX_PROTO_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define KTX_PROTO_VERSION 1

/* Defaults and hard bounds; a server may configure its own maxima. */
#define KTX_PROTO_FRAME_MAX_DEFAULT (8u << 20)  /* request frame, bytes */
#define KTX_PROTO_PROMPT_MAX_DEFAULT (4u << 20) /* prompt text, bytes */
#define KTX_PROTO_EVENT_FRAME_MAX (64u << 20)   /* what a client accepts */
#define KTX_PROTO_NAME_MAX 256                  /* names, codes, states */
#define KTX_PROTO_LINE_MAX 4096                 /* "message" and "title" */
#define KTX_PROTO_DEPTH_MAX 8                   /* container nesting */
#define KTX_PROTO_ELEMS_MAX 1024                /* objects in one frame */
#define KTX_PROTO_HEADER 4                      /* length prefix, bytes */

/* Error codes: the value returned by this module and, by name, the "code"
 * of an error event. Keep the numbers: clients map them to exit statuses. */
enum ktx_code {
	KTX_CODE_OK = 0,
	KTX_CODE_BAD_FRAME = 1,    /* not one well-formed msgpack map */
	KTX_CODE_TOO_LARGE = 2,    /* frame or text over a limit */
	KTX_CODE_UNKNOWN_OP = 3,   /* an "op" this server does not know */
	KTX_CODE_BAD_FIELD = 4,    /* missing, unknown, mistyped or invalid field */
	KTX_CODE_VERSION = 5,      /* no hello first, or unsupported version */
	KTX_CODE_BUSY = 6,         /* queue full: try later */
	KTX_CODE_NOT_FOUND = 7,    /* no such conversation or job */
	KTX_CODE_FORBIDDEN = 8,    /* it belongs to another user */
	KTX_CODE_CANCELED = 9,     /* the job was canceled */
	KTX_CODE_CONTEXT_FULL = 10, /* the conversation no longer fits */
	KTX_CODE_INTERNAL = 11,    /* a bug or resource failure in the server */
	KTX_CODE_UNAVAILABLE = 12, /* loading or shutting down */
	KTX_CODE_PENDING = 13,     /* the job has not finished yet */
	KTX_CODE_COUNT
};

#define KTX_PROTO_ERR_MSG_MAX 256

struct ktx_proto_err {
	int code;                        /* enum ktx_code */
	char msg[KTX_PROTO_ERR_MSG_MAX]; /* names the cause */
};

/* The wire name of a code ("bad_frame"); "internal" for unknown values. */
const char *ktx_code_name(int code);

/* The code of a wire name; KTX_CODE_INTERNAL when the name is unknown. */
int ktx_code_from_name(const char *name);

/* Limits a decoder applies; ktx_proto_limits_default() fills the defaults. */
struct ktx_proto_limits {
	uint32_t frame_max;  /* largest frame payload accepted */
	uint32_t text_max;   /* longest "prompt"/"text" string */
	uint32_t depth_max;  /* container nesting */
	uint32_t elems_max;  /* msgpack objects in one frame */
};

void ktx_proto_limits_default(struct ktx_proto_limits *l);

/* ---- message kinds ---------------------------------------------------- */

enum ktx_msg_type {
	KTX_MSG_NONE = 0,
	/* requests: "op" */
	KTX_OP_HELLO,   /* version, client -> welcome */
	KTX_OP_ASK,     /* prompt, ... -> queued*, started, token*, done */
	KTX_OP_SUBMIT,  /* prompt, ... (detached) -> accepted */
	KTX_OP_CANCEL,  /* job -> ok */
	KTX_OP_STATUS,  /* -> status, usage*, end */
	KTX_OP_PS,      /* -> status, job*, end */
	KTX_OP_HISTORY, /* [all, limit] -> conversation*, end */
	KTX_OP_SHOW,    /* conversation -> conversation, turn*, end */
	KTX_OP_RM,      /* conversation -> ok */
	KTX_OP_JOBS,    /* [all, limit] -> job*, end */
	KTX_OP_RESULT,  /* job -> result */
	KTX_OP_WAIT,    /* job -> result, once the job has finished */
	KTX_OP_PING,    /* -> ok */
	/* events: "ev" */
	KTX_EV_WELCOME,
	KTX_EV_QUEUED,
	KTX_EV_STARTED,
	KTX_EV_TOKEN,
	KTX_EV_DONE,
	KTX_EV_ERROR,
	KTX_EV_OK,
	KTX_EV_ACCEPTED,
	KTX_EV_END,
	KTX_EV_CONVERSATION,
	KTX_EV_TURN,
	KTX_EV_JOB,
	KTX_EV_STATUS,
	KTX_EV_USAGE,
	KTX_EV_RESULT,
	KTX_MSG_COUNT
};

#define KTX_MSG_FIRST_OP KTX_OP_HELLO
#define KTX_MSG_LAST_OP KTX_OP_PING
#define KTX_MSG_FIRST_EV KTX_EV_WELCOME
#define KTX_MSG_LAST_EV KTX_EV_RESULT

/* Fields. Each has one msgpack kind; which fields a message may or must
 * carry is a table in msg.c, documented in ktx-protocol(7). Two fields
 * share the wire name "conversation": a reference in requests (a decimal
 * id, a name, or "last") and a numeric id in events. */
enum ktx_field {
	/* strings (UTF-8, no NUL) */
	KTX_F_CLIENT,       /* hello: client name and version */
	KTX_F_SERVER,       /* welcome/status: "ktxd 0.1.0" */
	KTX_F_MODEL,        /* model name */
	KTX_F_PROMPT,       /* ask/submit: the user's text */
	KTX_F_CONVERSATION, /* request: id, name or "last" */
	KTX_F_NAME,         /* conversation name */
	KTX_F_TITLE,        /* first line of a conversation or job prompt */
	KTX_F_TEXT,         /* token piece, turn text, job output */
	KTX_F_CODE,         /* error: ktx_code_name() */
	KTX_F_MESSAGE,      /* error: a sentence naming the cause */
	KTX_F_STATE,        /* job: queued|running|done|failed|canceled; status: loading|ready|stopping */
	KTX_F_ROLE,         /* turn: user|assistant */
	KTX_F_USER,         /* user name of uid */
	KTX_F_REASON,       /* done: eos|length|stop */
	/* unsigned integers */
	KTX_F_VERSION,      /* protocol version */
	KTX_F_JOB,          /* job id */
	KTX_F_CONV_ID,      /* event: conversation id (wire "conversation") */
	KTX_F_POSITION,     /* place in the queue, 1 = next; 0 = running */
	KTX_F_MAX_TOKENS,   /* tokens to generate at most */
	KTX_F_SEED,         /* sampling seed */
	KTX_F_FRAME_MAX,    /* welcome: the server's request frame limit */
	KTX_F_PROMPT_MAX,   /* welcome: the server's prompt limit */
	KTX_F_CTX,          /* context length in tokens */
	KTX_F_PROMPT_TOKENS,
	KTX_F_GEN_TOKENS,
	KTX_F_COUNT,        /* end: items sent */
	KTX_F_TURNS,        /* conversation: number of turns */
	KTX_F_UID,
	KTX_F_WAITING,      /* jobs waiting */
	KTX_F_RUNNING,      /* jobs running */
	KTX_F_UPTIME,       /* seconds */
	KTX_F_RAM,          /* bytes of RAM the process uses */
	KTX_F_VRAM,         /* bytes of VRAM the process uses */
	KTX_F_MODEL_RAM,    /* bytes of weights in RAM */
	KTX_F_MODEL_VRAM,   /* bytes of weights in VRAM */
	KTX_F_AGE,          /* seconds since a job was submitted */
	KTX_F_LIMIT,        /* history/jobs: newest N */
	KTX_F_TIME,         /* turn: unix seconds */
	KTX_F_CREATED,      /* unix seconds */
	KTX_F_UPDATED,      /* unix seconds */
	KTX_F_THREADS,      /* compute threads */
	/* floating point */
	KTX_F_TEMPERATURE,
	KTX_F_TOP_P,
	KTX_F_PREFILL_TPS,  /* prompt tokens per second */
	KTX_F_DECODE_TPS,   /* generated tokens per second */
	KTX_F_TOK_S,        /* status: recent decode tokens per second */
	KTX_F_PROGRESS,     /* status: model loading, 0..1 */
	/* booleans */
	KTX_F_DETACHED,     /* ask: keep the job when the client goes */
	KTX_F_ALL,          /* history/jobs: every user's (admins) */
	KTX_NFIELDS
};

enum ktx_kind {
	KTX_KIND_STR,
	KTX_KIND_UINT,
	KTX_KIND_FLOAT,
	KTX_KIND_BOOL,
};

union ktx_value {
	const char *s;
	uint64_t u;
	double f;
	int b;
};

/*
 * One decoded or to-be-encoded message. Set fields with the ktx_msg_set_*
 * calls (they mark the field present); read them with ktx_msg_get_* or
 * ktx_msg_has(). Strings of a decoded message live in its own arena until
 * ktx_msg_clear(); strings set for encoding stay the caller's.
 */
struct ktx_msg {
	enum ktx_msg_type type;
	uint64_t id;                   /* request id; 0 = the connection */
	uint64_t have;                 /* bit (1 << field) when present */
	union ktx_value v[KTX_NFIELDS];
	char *arena;                   /* decoded strings; freed by clear */
};

/* Empties m and sets its type and request id. */
void ktx_msg_init(struct ktx_msg *m, enum ktx_msg_type type, uint64_t id);

/* Frees a decoded message's strings and empties it. */
void ktx_msg_clear(struct ktx_msg *m);

void ktx_msg_set_str(struct ktx_msg *m, enum ktx_field f, const char *s);
void ktx_msg_set_uint(struct ktx_msg *m, enum ktx_field f, uint64_t u);
void ktx_msg_set_float(struct ktx_msg *m, enum ktx_field f, double d);
void ktx_msg_set_bool(struct ktx_msg *m, enum ktx_field f, int b);
int ktx_msg_has(const struct ktx_msg *m, enum ktx_field f);
/* These return the field's value, or def (NULL for strings) when absent. */
const char *ktx_msg_get_str(const struct ktx_msg *m, enum ktx_field f);
uint64_t ktx_msg_get_uint(const struct ktx_msg *m, enum ktx_field f, uint64_t def);
double ktx_msg_get_float(const struct ktx_msg *m, enum ktx_field f, double def);
int ktx_msg_get_bool(const struct ktx_msg *m, enum ktx_field f, int def);

/* 1 for request types, 0 for events. */
int ktx_msg_is_request(enum ktx_msg_type t);
/* The wire name of a type ("ask", "token"); NULL for KTX_MSG_NONE. */
const char *ktx_msg_type_name(enum ktx_msg_type t);
/* The wire name of a field ("max_tokens") and its kind. */
const char *ktx_field_name(enum ktx_field f);
enum ktx_kind ktx_field_kind(enum ktx_field f);
/* Whether type t may carry field f (1), must carry it (2), or not (0). */
int ktx_msg_field_rule(enum ktx_msg_type t, enum ktx_field f);

/* ---- encoding and decoding --------------------------------------------- */

/*
 * Encodes m as one frame (length prefix + msgpack map) into a malloc'd
 * buffer the caller frees. Fails with KTX_CODE_BAD_FIELD when a required
 * field is missing or a field does not belong to the type, KTX_CODE_TOO_LARGE
 * when the payload would exceed frame_max, KTX_CODE_INTERNAL on no memory.
 */
int ktx_proto_encode(const struct ktx_msg *m, uint32_t frame_max, unsigned char **frame,
    size_t *len, struct ktx_proto_err *err);

/*
 * Walks buf[0..len) as msgpack without allocating: exactly one object, every
 * declared length within the bytes left, nesting at most depth_max, at most
 * elems_max objects in all. KTX_CODE_BAD_FRAME otherwise.
 */
int ktx_proto_scan(const unsigned char *buf, size_t len, uint32_t depth_max,
    uint32_t elems_max, struct ktx_proto_err *err);

/*
 * Decodes one frame payload (without its length prefix) into m, which it
 * initialises. want_request selects the direction: requests ("op") for a
 * server, events ("ev") for a client. Requests are strict: an unknown key,
 * a missing required field or a wrong type is KTX_CODE_BAD_FIELD, an unknown
 * op KTX_CODE_UNKNOWN_OP, a prompt over l->text_max KTX_CODE_TOO_LARGE.
 * Events ignore keys they do not know (servers may add statistics) but
 * refuse unknown event names. Strings must be valid UTF-8 without NUL;
 * "prompt" and "text" may hold l->text_max bytes, other strings of a
 * request KTX_PROTO_NAME_MAX or KTX_PROTO_LINE_MAX (events: text_max). On
 * failure m->type is KTX_MSG_NONE but m->id holds the request id when one
 * was read, so the error event can answer it; m needs no clear then.
 */
int ktx_proto_decode(const unsigned char *buf, size_t len, int want_request,
    const struct ktx_proto_limits *l, struct ktx_msg *m, struct ktx_proto_err *err);

/* ---- the incremental frame reader ------------------------------------- */

struct ktx_frame_reader;

/* A reader for one byte stream that accepts payloads up to frame_max bytes.
 * NULL when out of memory. */
struct ktx_frame_reader *ktx_frame_reader_new(uint32_t frame_max);
void ktx_frame_reader_free(struct ktx_frame_reader *r);

/*
 * Consumes bytes of data[0..len) until one frame is complete or the input
 * is used up; *used says how many. When a frame is complete, *frame and
 * *frame_len give its payload (without the prefix), valid until the next
 * call or free; otherwise *frame is NULL. Call again with the rest of the
 * input. A declared length over frame_max fails with KTX_CODE_TOO_LARGE as
 * soon as its 4 bytes are in, before any payload is buffered; the reader
 * then stays failed (the stream cannot be resynchronised). Memory held
 * grows with the bytes actually received, not with the declared length.
 */
int ktx_frame_reader_feed(struct ktx_frame_reader *r, const void *data, size_t len,
    size_t *used, const unsigned char **frame, size_t *frame_len, struct ktx_proto_err *err);

/* Bytes buffered of an incomplete frame (prefix included); 0 at a boundary. */
size_t ktx_frame_reader_pending(const struct ktx_frame_reader *r);

/* ---- text -------------------------------------------------------------- */

/* 1 when s[0..len) is valid UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF) and holds no NUL byte; 0 otherwise. */
int ktx_utf8_valid(const char *s, size_t len);

#endif
