/*
 * codec.c - struct ktx_msg to frame and back, through msgpack-c.
 *
 * Encoding packs one map: "op" or "ev", "id", then the fields present.
 * Decoding first lets ktx_proto_scan() prove every declared length fits the
 * frame, then unpacks with msgpack_unpack_next() into a zone (bounded by the
 * already checked object count) and checks each key against the tables in
 * msg.c; strings are copied, NUL-terminated, into the message's arena.
 */
#include "proto/proto.h"

#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"

#define B(f) (UINT64_C(1) << (f))

static int
fail(struct ktx_proto_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills err (when not NULL) and returns code. */
static int
fail(struct ktx_proto_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Packs one field's value; nonzero when msgpack-c ran out of memory. */
static int
pack_value(msgpack_packer *pk, enum ktx_field f, const union ktx_value *v)
{
	size_t n;

	switch (field_specs[f].kind) {
	case KTX_KIND_STR:
		n = strlen(v->s);
		return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, v->s, n);
	case KTX_KIND_UINT:
		return msgpack_pack_uint64(pk, v->u);
	case KTX_KIND_FLOAT:
		return msgpack_pack_double(pk, v->f);
	case KTX_KIND_BOOL:
		return v->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	}
	return -1;
}

/* Packs a string key. */
static int
pack_key(msgpack_packer *pk, const char *k)
{
	size_t n = strlen(k);

	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, k, n);
}

int
ktx_proto_encode(const struct ktx_msg *m, uint32_t frame_max, unsigned char **frame,
    size_t *len, struct ktx_proto_err *err)
{
	const struct msg_spec *spec;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint64_t extra, missing;
	size_t payload;
	int f, n = 2, bad = 0;

	*frame = NULL;
	*len = 0;
	if ((unsigned)m->type >= KTX_MSG_COUNT || m->type == KTX_MSG_NONE)
		return fail(err, KTX_CODE_INTERNAL, "cannot encode a message of type %d", m->type);
	spec = &msg_specs[m->type];
	extra = m->have & ~(spec->required | spec->optional);
	missing = spec->required & ~m->have;
	for (f = 0; f < KTX_NFIELDS; f++) {
		if (extra & B(f))
			return fail(err, KTX_CODE_BAD_FIELD, "\"%s\" has no field \"%s\"",
			    spec->name, field_specs[f].name);
		if (missing & B(f))
			return fail(err, KTX_CODE_BAD_FIELD, "\"%s\" needs the field \"%s\"",
			    spec->name, field_specs[f].name);
		if (!(m->have & B(f)))
			continue;
		n++;
		if (field_specs[f].kind == KTX_KIND_STR &&
		    !ktx_utf8_valid(m->v[f].s, strlen(m->v[f].s)))
			return fail(err, KTX_CODE_BAD_FIELD, "field \"%s\" of \"%s\" is not "
			    "valid UTF-8", field_specs[f].name, spec->name);
	}

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	bad |= msgpack_sbuffer_write(&sb, "\0\0\0\0", KTX_PROTO_HEADER);
	bad |= msgpack_pack_map(&pk, (size_t)n);
	bad |= pack_key(&pk, ktx_msg_is_request(m->type) ? "op" : "ev");
	bad |= pack_key(&pk, spec->name);
	bad |= pack_key(&pk, "id");
	bad |= msgpack_pack_uint64(&pk, m->id);
	for (f = 0; f < KTX_NFIELDS && !bad; f++) {
		if (!(m->have & B(f)))
			continue;
		bad |= pack_key(&pk, field_specs[f].name);
		bad |= pack_value(&pk, f, &m->v[f]);
	}
	if (bad) {
		msgpack_sbuffer_destroy(&sb);
		return fail(err, KTX_CODE_INTERNAL, "out of memory encoding \"%s\"", spec->name);
	}
	payload = sb.size - KTX_PROTO_HEADER;
	if (payload > frame_max) {
		msgpack_sbuffer_destroy(&sb);
		return fail(err, KTX_CODE_TOO_LARGE, "\"%s\" takes %zu bytes, over the frame "
		    "limit of %" PRIu32 " bytes", spec->name, payload, frame_max);
	}
	sb.data[0] = (char)(payload >> 24);
	sb.data[1] = (char)(payload >> 16);
	sb.data[2] = (char)(payload >> 8);
	sb.data[3] = (char)payload;
	*len = sb.size;
	*frame = (unsigned char *)msgpack_sbuffer_release(&sb);
	return KTX_CODE_OK;
}

/* 1 when the msgpack string o equals the C string s. */
static int
str_is(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

/* The type whose wire name is the string o, among requests or events. */
static enum ktx_msg_type
type_of(const msgpack_object *o, int want_request)
{
	int t, lo = want_request ? KTX_MSG_FIRST_OP : KTX_MSG_FIRST_EV;
	int hi = want_request ? KTX_MSG_LAST_OP : KTX_MSG_LAST_EV;

	for (t = lo; t <= hi; t++)
		if (str_is(o, msg_specs[t].name))
			return (enum ktx_msg_type)t;
	return KTX_MSG_NONE;
}

/* Writes a printable, bounded form of a msgpack string into out (for messages). */
static const char *
quote(const msgpack_object *o, char *out, size_t size)
{
	size_t i, j = 0;

	if (o->type != MSGPACK_OBJECT_STR) {
		snprintf(out, size, "(not a string)");
		return out;
	}
	for (i = 0; i < o->via.str.size && j + 5 < size; i++) {
		unsigned char c = (unsigned char)o->via.str.ptr[i];

		out[j++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	if (i < o->via.str.size && j + 4 < size) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
	return out;
}

/* The name of a msgpack object's type, for error messages. */
static const char *
kind_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return "nil";
	case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return "an integer";
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "a negative integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return "a float";
	case MSGPACK_OBJECT_STR: return "a string";
	case MSGPACK_OBJECT_ARRAY: return "an array";
	case MSGPACK_OBJECT_MAP: return "a map";
	case MSGPACK_OBJECT_BIN: return "binary";
	case MSGPACK_OBJECT_EXT: return "an extension";
	}
	return "unknown";
}

/* Range rules for request options that no server could honour. */
static int
check_range(enum ktx_msg_type t, enum ktx_field f, const union ktx_value *v,
    struct ktx_proto_err *err)
{
	const char *op = msg_specs[t].name;

	switch (f) {
	case KTX_F_TEMPERATURE:
		if (v->f < 0 || v->f > 100)
			return fail(err, KTX_CODE_BAD_FIELD, "temperature %g of \"%s\" is "
			    "outside 0..100", v->f, op);
		break;
	case KTX_F_TOP_P:
		if (v->f < 0 || v->f > 1)
			return fail(err, KTX_CODE_BAD_FIELD, "top_p %g of \"%s\" is outside 0..1",
			    v->f, op);
		break;
	case KTX_F_MAX_TOKENS:
		if (v->u == 0)
			return fail(err, KTX_CODE_BAD_FIELD, "max_tokens of \"%s\" is 0", op);
		break;
	case KTX_F_PROMPT:
	case KTX_F_CONVERSATION:
		if (v->s[0] == '\0')
			return fail(err, KTX_CODE_BAD_FIELD, "field \"%s\" of \"%s\" is empty",
			    field_specs[f].name, op);
		break;
	default:
		break;
	}
	return KTX_CODE_OK;
}

/* Converts the value o of field f into v, copying strings to *arena. */
static int
take_value(enum ktx_msg_type t, enum ktx_field f, const msgpack_object *o,
    const struct ktx_proto_limits *l, char **arena, union ktx_value *v,
    struct ktx_proto_err *err)
{
	const struct field_spec *fs = &field_specs[f];
	const char *op = msg_specs[t].name;
	uint32_t max;

	switch (fs->kind) {
	case KTX_KIND_STR:
		if (o->type != MSGPACK_OBJECT_STR)
			break;
		/* Name limits bind requests; events only the text limit. */
		max = fs->max && ktx_msg_is_request(t) ? fs->max : l->text_max;
		if (o->via.str.size > max)
			return fail(err, KTX_CODE_TOO_LARGE, "field \"%s\" of \"%s\" has %" PRIu32
			    " bytes, over the limit of %" PRIu32 " bytes", fs->name, op,
			    o->via.str.size, max);
		if (!ktx_utf8_valid(o->via.str.ptr, o->via.str.size))
			return fail(err, KTX_CODE_BAD_FIELD, "field \"%s\" of \"%s\" is not "
			    "valid UTF-8 text (or holds a NUL byte)", fs->name, op);
		memcpy(*arena, o->via.str.ptr, o->via.str.size);
		(*arena)[o->via.str.size] = '\0';
		v->s = *arena;
		*arena += o->via.str.size + 1;
		return KTX_CODE_OK;
	case KTX_KIND_UINT:
		if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			break;
		v->u = o->via.u64;
		return KTX_CODE_OK;
	case KTX_KIND_FLOAT:
		if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
			v->f = o->via.f64;
		else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			v->f = (double)o->via.u64;
		else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			v->f = (double)o->via.i64;
		else
			break;
		if (!isfinite(v->f))
			return fail(err, KTX_CODE_BAD_FIELD, "field \"%s\" of \"%s\" is not a "
			    "finite number", fs->name, op);
		return KTX_CODE_OK;
	case KTX_KIND_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			break;
		v->b = o->via.boolean;
		return KTX_CODE_OK;
	}
	return fail(err, KTX_CODE_BAD_FIELD, "field \"%s\" of \"%s\" is %s; it must be %s",
	    fs->name, op, kind_name(o),
	    fs->kind == KTX_KIND_STR ? "a string" : fs->kind == KTX_KIND_UINT ?
	    "a non-negative integer" : fs->kind == KTX_KIND_FLOAT ? "a number" : "a boolean");
}

/* The field of type t whose wire key is the string o; KTX_NFIELDS if none. */
static enum ktx_field
field_of(enum ktx_msg_type t, const msgpack_object *o)
{
	uint64_t allowed = msg_specs[t].required | msg_specs[t].optional;
	int f;

	for (f = 0; f < KTX_NFIELDS; f++)
		if ((allowed & B(f)) && str_is(o, field_specs[f].name))
			return (enum ktx_field)f;
	return KTX_NFIELDS;
}

/* Reads "op"/"ev" and "id" of the map; the type lands in *type, the id in m. */
static int
decode_head(const msgpack_object_map *map, int want_request, struct ktx_msg *m,
    enum ktx_msg_type *type, struct ktx_proto_err *err)
{
	const char *tkey = want_request ? "op" : "ev";
	const msgpack_object *tobj = NULL;
	char buf[64];
	uint32_t i;

	for (i = 0; i < map->size; i++) {
		const msgpack_object *k = &map->ptr[i].key, *v = &map->ptr[i].val;

		if (k->type != MSGPACK_OBJECT_STR)
			return fail(err, KTX_CODE_BAD_FIELD, "a key of the map is %s; keys must "
			    "be strings", kind_name(k));
		if (str_is(k, "id")) {
			if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				return fail(err, KTX_CODE_BAD_FIELD, "\"id\" is %s; it must be a "
				    "non-negative integer", kind_name(v));
			m->id = v->via.u64;
		} else if (str_is(k, tkey)) {
			if (tobj != NULL)
				return fail(err, KTX_CODE_BAD_FIELD, "\"%s\" appears twice", tkey);
			tobj = v;
		}
	}
	if (tobj == NULL)
		return fail(err, KTX_CODE_BAD_FIELD, "the map has no \"%s\" key", tkey);
	if (tobj->type != MSGPACK_OBJECT_STR)
		return fail(err, KTX_CODE_BAD_FIELD, "\"%s\" is %s; it must be a string", tkey,
		    kind_name(tobj));
	*type = type_of(tobj, want_request);
	if (*type == KTX_MSG_NONE)
		return fail(err, KTX_CODE_UNKNOWN_OP, "unknown %s \"%s\"",
		    want_request ? "op" : "event", quote(tobj, buf, sizeof(buf)));
	return KTX_CODE_OK;
}

/* Fills m's fields from the map of a message of type t. */
static int
decode_fields(const msgpack_object_map *map, enum ktx_msg_type t, int want_request,
    const struct ktx_proto_limits *l, char *arena, struct ktx_msg *m,
    struct ktx_proto_err *err)
{
	const struct msg_spec *spec = &msg_specs[t];
	uint64_t missing;
	char buf[64];
	uint32_t i;
	int f, rc, seen_id = 0;

	for (i = 0; i < map->size; i++) {
		const msgpack_object *k = &map->ptr[i].key, *v = &map->ptr[i].val;

		if (str_is(k, want_request ? "op" : "ev"))
			continue;
		if (str_is(k, "id")) {
			if (seen_id++)
				return fail(err, KTX_CODE_BAD_FIELD, "\"id\" appears twice");
			continue;
		}
		f = field_of(t, k);
		if (f == KTX_NFIELDS) {
			if (!want_request)
				continue; /* events may grow fields */
			return fail(err, KTX_CODE_BAD_FIELD, "\"%s\" has no field \"%s\"",
			    spec->name, quote(k, buf, sizeof(buf)));
		}
		if (m->have & B(f))
			return fail(err, KTX_CODE_BAD_FIELD, "field \"%s\" appears twice",
			    field_specs[f].name);
		rc = take_value(t, f, v, l, &arena, &m->v[f], err);
		if (rc == KTX_CODE_OK && want_request)
			rc = check_range(t, f, &m->v[f], err);
		if (rc != KTX_CODE_OK)
			return rc;
		m->have |= B(f);
	}
	if (want_request && !seen_id)
		return fail(err, KTX_CODE_BAD_FIELD, "\"%s\" has no \"id\"", spec->name);
	missing = spec->required & ~m->have;
	for (f = 0; f < KTX_NFIELDS; f++)
		if (missing & B(f))
			return fail(err, KTX_CODE_BAD_FIELD, "\"%s\" needs the field \"%s\"",
			    spec->name, field_specs[f].name);
	return KTX_CODE_OK;
}

int
ktx_proto_decode(const unsigned char *buf, size_t len, int want_request,
    const struct ktx_proto_limits *limits, struct ktx_msg *m, struct ktx_proto_err *err)
{
	struct ktx_proto_limits def;
	const struct ktx_proto_limits *l = limits;
	msgpack_unpacked up;
	enum ktx_msg_type type = KTX_MSG_NONE;
	size_t off = 0;
	char *arena;
	int rc;

	ktx_msg_init(m, KTX_MSG_NONE, 0);
	if (l == NULL) {
		ktx_proto_limits_default(&def);
		l = &def;
	}
	if (len > l->frame_max)
		return fail(err, KTX_CODE_TOO_LARGE, "frame of %zu bytes is over the limit of %"
		    PRIu32 " bytes", len, l->frame_max);
	rc = ktx_proto_scan(buf, len, l->depth_max, l->elems_max, err);
	if (rc != KTX_CODE_OK)
		return rc;

	msgpack_unpacked_init(&up);
	switch (msgpack_unpack_next(&up, (const char *)buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		msgpack_unpacked_destroy(&up);
		return fail(err, KTX_CODE_INTERNAL, "out of memory unpacking a frame of %zu "
		    "bytes", len);
	default:
		msgpack_unpacked_destroy(&up);
		return fail(err, KTX_CODE_BAD_FRAME, "msgpack-c could not unpack the frame");
	}
	if (up.data.type != MSGPACK_OBJECT_MAP) {
		rc = fail(err, KTX_CODE_BAD_FRAME, "the frame holds %s, not a map",
		    kind_name(&up.data));
		msgpack_unpacked_destroy(&up);
		return rc;
	}
	rc = decode_head(&up.data.via.map, want_request, m, &type, err);
	if (rc == KTX_CODE_OK) {
		/* Strings copied with their NULs never exceed the frame plus one byte each. */
		arena = malloc(len + 1);
		if (arena == NULL)
			rc = fail(err, KTX_CODE_INTERNAL, "out of memory decoding a frame");
		else {
			m->arena = arena;
			rc = decode_fields(&up.data.via.map, type, want_request, l, arena, m, err);
		}
	}
	msgpack_unpacked_destroy(&up);
	if (rc != KTX_CODE_OK) {
		uint64_t id = m->id;

		free(m->arena);
		ktx_msg_init(m, KTX_MSG_NONE, id);
		return rc;
	}
	m->type = type;
	return KTX_CODE_OK;
}
