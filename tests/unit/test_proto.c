/*
 * test_proto.c - the wire protocol: codes, UTF-8, every message round trip,
 * the strict request decoder, and the frame reader fed in every way.
 */
#include "config.h"

#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "tests/tap.h"

/* Text that a prompt may hold: newlines, tabs, CJK, emoji, quotes. */
static const char any_text[] =
    "line one\n\tline two \"quoted\" \\ back\r\n"
    "\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xc3\xa9";

static void
test_codes(void)
{
	int c, ok = 1;

	for (c = 0; c < KTX_CODE_COUNT; c++)
		ok &= ktx_code_from_name(ktx_code_name(c)) == c;
	tap_ok(ok, "every code name maps back to its code");
	tap_is_str(ktx_code_name(KTX_CODE_BUSY), "busy", "busy is \"busy\"");
	tap_is_str(ktx_code_name(999), "internal", "an out-of-range code is named internal");
	tap_is_int(ktx_code_from_name("no_such_code"), KTX_CODE_INTERNAL,
	    "an unknown name is internal");
}

static void
test_utf8(void)
{
	static const struct { const char *s; size_t n; int ok; const char *name; } cases[] = {
		{ "", 0, 1, "empty" },
		{ any_text, sizeof(any_text) - 1, 1, "newlines, tabs, CJK, emoji" },
		{ "\xf4\x8f\xbf\xbf", 4, 1, "U+10FFFF" },
		{ "\xc0\x80", 2, 0, "overlong NUL" },
		{ "\xe0\x80\xaf", 3, 0, "overlong slash" },
		{ "\xed\xa0\x80", 3, 0, "UTF-16 surrogate" },
		{ "\xf4\x90\x80\x80", 4, 0, "past U+10FFFF" },
		{ "\x80", 1, 0, "lone continuation byte" },
		{ "\xe4\xb8", 2, 0, "cut-off sequence" },
		{ "\xe4\x41\x41", 3, 0, "bad continuation" },
		{ "a\0b", 3, 0, "NUL byte" },
		{ "\xff", 1, 0, "0xff" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_is_int(ktx_utf8_valid(cases[i].s, cases[i].n), cases[i].ok, cases[i].name);
}

/* Sets every field type t allows (all when full, else the required ones). */
static void
fill(struct ktx_msg *m, enum ktx_msg_type t, uint64_t id, int full)
{
	int f, rule;

	ktx_msg_init(m, t, id);
	for (f = 0; f < KTX_NFIELDS; f++) {
		rule = ktx_msg_field_rule(t, f);
		if (rule == 0 || (rule == 1 && !full))
			continue;
		switch (ktx_field_kind(f)) {
		case KTX_KIND_STR:
			ktx_msg_set_str(m, f, f == KTX_F_PROMPT || f == KTX_F_TEXT ? any_text :
			    ktx_field_name(f));
			break;
		case KTX_KIND_UINT:
			ktx_msg_set_uint(m, f, (UINT64_C(1) << 40) + (uint64_t)f);
			break;
		case KTX_KIND_FLOAT:
			ktx_msg_set_float(m, f, 0.125 * (f % 8));
			break;
		case KTX_KIND_BOOL:
			ktx_msg_set_bool(m, f, f & 1);
			break;
		}
	}
}

/* 1 when a and b carry the same type, id and field values. */
static int
same(const struct ktx_msg *a, const struct ktx_msg *b)
{
	int f;

	if (a->type != b->type || a->id != b->id || a->have != b->have)
		return 0;
	for (f = 0; f < KTX_NFIELDS; f++) {
		if (!ktx_msg_has(a, f))
			continue;
		switch (ktx_field_kind(f)) {
		case KTX_KIND_STR:
			if (strcmp(a->v[f].s, b->v[f].s) != 0)
				return 0;
			break;
		case KTX_KIND_UINT:
			if (a->v[f].u != b->v[f].u)
				return 0;
			break;
		case KTX_KIND_FLOAT:
			if (a->v[f].f != b->v[f].f)
				return 0;
			break;
		case KTX_KIND_BOOL:
			if (a->v[f].b != b->v[f].b)
				return 0;
			break;
		}
	}
	return 1;
}

static void
test_round_trips(void)
{
	struct ktx_proto_err err;
	struct ktx_msg a, b;
	unsigned char *frame;
	size_t len;
	int t, full, rc, names_ok = 1, f, g;
	uint64_t plen;

	for (t = KTX_MSG_FIRST_OP; t < KTX_MSG_COUNT; t++) {
		for (full = 0; full <= 1; full++) {
			fill(&a, t, full ? UINT64_MAX : (uint64_t)t, full);
			rc = ktx_proto_encode(&a, KTX_PROTO_EVENT_FRAME_MAX, &frame, &len, &err);
			if (!tap_ok(rc == 0, "encode %s (%s fields)", ktx_msg_type_name(t),
			    full ? "all" : "required")) {
				tap_diag("%s", err.msg);
				continue;
			}
			plen = (uint64_t)frame[0] << 24 | frame[1] << 16 | frame[2] << 8 | frame[3];
			tap_is_int(plen, len - 4, "the prefix holds the payload length");
			rc = ktx_proto_decode(frame + 4, len - 4, ktx_msg_is_request(t), NULL, &b,
			    &err);
			if (rc != 0)
				tap_diag("%s", err.msg);
			tap_ok(rc == 0 && same(&a, &b), "decode %s (%s fields) gives it back",
			    ktx_msg_type_name(t), full ? "all" : "required");
			ktx_msg_clear(&b);
			/* The other direction does not know this name. */
			rc = ktx_proto_decode(frame + 4, len - 4, !ktx_msg_is_request(t), NULL, &b,
			    &err);
			tap_ok(rc != 0 && b.type == KTX_MSG_NONE, "%s is refused in the other "
			    "direction", ktx_msg_type_name(t));
			free(frame);
		}
	}
	/* No type allows two fields with the same wire key. */
	for (t = KTX_MSG_FIRST_OP; t < KTX_MSG_COUNT; t++)
		for (f = 0; f < KTX_NFIELDS; f++)
			for (g = f + 1; g < KTX_NFIELDS; g++)
				if (ktx_msg_field_rule(t, f) && ktx_msg_field_rule(t, g) &&
				    strcmp(ktx_field_name(f), ktx_field_name(g)) == 0)
					names_ok = 0;
	tap_ok(names_ok, "field keys are unique within every message type");
}

static void
test_encode_errors(void)
{
	struct ktx_proto_err err;
	struct ktx_msg m;
	unsigned char *frame;
	size_t len;
	char big[1000];

	ktx_msg_init(&m, KTX_OP_ASK, 1);
	tap_is_int(ktx_proto_encode(&m, 1 << 20, &frame, &len, &err), KTX_CODE_BAD_FIELD,
	    "encode: ask without a prompt is refused");
	tap_ok(frame == NULL && strstr(err.msg, "prompt") != NULL, "... naming the field");
	ktx_msg_set_str(&m, KTX_F_PROMPT, "hi");
	ktx_msg_set_uint(&m, KTX_F_POSITION, 3);
	tap_is_int(ktx_proto_encode(&m, 1 << 20, &frame, &len, &err), KTX_CODE_BAD_FIELD,
	    "encode: a field the type does not have is refused");
	ktx_msg_init(&m, KTX_EV_TOKEN, 1);
	ktx_msg_set_str(&m, KTX_F_TEXT, "\xe4\xb8");
	tap_is_int(ktx_proto_encode(&m, 1 << 20, &frame, &len, &err), KTX_CODE_BAD_FIELD,
	    "encode: half a UTF-8 character is refused");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ktx_msg_set_str(&m, KTX_F_TEXT, big);
	tap_is_int(ktx_proto_encode(&m, 500, &frame, &len, &err), KTX_CODE_TOO_LARGE,
	    "encode: a frame over the limit is refused");
	ktx_msg_init(&m, KTX_MSG_NONE, 1);
	tap_is_int(ktx_proto_encode(&m, 500, &frame, &len, &err), KTX_CODE_INTERNAL,
	    "encode: no type is an internal error");
}

/* A payload built with msgpack-c's packer, for hand-made frames. */
struct pk {
	msgpack_sbuffer sb;
	msgpack_packer p;
};

static void
pk_init(struct pk *k, size_t n)
{
	msgpack_sbuffer_init(&k->sb);
	msgpack_packer_init(&k->p, &k->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&k->p, n);
}

static void
pk_str(struct pk *k, const char *s, size_t n)
{
	msgpack_pack_str(&k->p, n);
	msgpack_pack_str_body(&k->p, s, n);
}

static void
pk_kv(struct pk *k, const char *key, const char *val)
{
	pk_str(k, key, strlen(key));
	pk_str(k, val, strlen(val));
}

static void
pk_ku(struct pk *k, const char *key, uint64_t u)
{
	pk_str(k, key, strlen(key));
	msgpack_pack_uint64(&k->p, u);
}

/* Decodes k's bytes as a request (or event) and frees them. */
static int
pk_decode(struct pk *k, int request, const struct ktx_proto_limits *l, struct ktx_msg *m,
    struct ktx_proto_err *err)
{
	int rc = ktx_proto_decode((unsigned char *)k->sb.data, k->sb.size, request, l, m, err);

	msgpack_sbuffer_destroy(&k->sb);
	return rc;
}

static void
test_decode_errors(void)
{
	struct ktx_proto_limits l;
	struct ktx_proto_err err;
	struct ktx_msg m;
	struct pk k;
	int rc;

	pk_init(&k, 3);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 7);
	pk_kv(&k, "prompt", any_text);
	rc = pk_decode(&k, 1, NULL, &m, &err);
	tap_ok(rc == 0 && m.type == KTX_OP_ASK && m.id == 7 &&
	    strcmp(ktx_msg_get_str(&m, KTX_F_PROMPT), any_text) == 0,
	    "a hand-made ask decodes with its text intact");
	ktx_msg_clear(&m);

	pk_init(&k, 2);
	pk_kv(&k, "op", "frobnicate");
	pk_ku(&k, "id", 42);
	rc = pk_decode(&k, 1, NULL, &m, &err);
	tap_is_int(rc, KTX_CODE_UNKNOWN_OP, "an unknown op is unknown_op");
	tap_is_int(m.id, 42, "... and the id is kept for the error event");
	tap_ok(strstr(err.msg, "frobnicate") != NULL, "... and the message names it");

	pk_init(&k, 1);
	pk_ku(&k, "id", 1);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD, "no op is bad_field");

	pk_init(&k, 1);
	pk_kv(&k, "op", "ping");
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "a request without an id is bad_field");

	pk_init(&k, 3);
	pk_kv(&k, "op", "ping");
	pk_ku(&k, "id", 1);
	pk_ku(&k, "color", 1);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "an unknown field in a request is bad_field");
	tap_ok(strstr(err.msg, "color") != NULL, "... naming it");

	pk_init(&k, 4);
	pk_kv(&k, "ev", "token");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "text", "x");
	pk_ku(&k, "future_stat", 1);
	rc = pk_decode(&k, 0, NULL, &m, &err);
	tap_ok(rc == 0 && m.type == KTX_EV_TOKEN, "an unknown field in an event is ignored");
	ktx_msg_clear(&m);

	pk_init(&k, 3);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_ku(&k, "prompt", 5);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "a prompt that is an integer is bad_field");

	pk_init(&k, 3);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "prompt", "");
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "an empty prompt is bad_field");

	pk_init(&k, 2);
	pk_kv(&k, "op", "ping");
	pk_str(&k, "id", 2);
	msgpack_pack_int64(&k.p, -1);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "a negative id is bad_field");

	pk_init(&k, 3);
	pk_kv(&k, "op", "cancel");
	pk_ku(&k, "id", 1);
	pk_ku(&k, "id", 2);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "a repeated key is bad_field");

	pk_init(&k, 2);
	msgpack_pack_int(&k.p, 1);
	msgpack_pack_int(&k.p, 2);
	pk_kv(&k, "op", "ping");
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "an integer key is bad_field");

	pk_init(&k, 3);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_str(&k, "prompt", 6);
	pk_str(&k, "a\0b", 3);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "a prompt with a NUL byte is bad_field");

	pk_init(&k, 3);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "prompt", "caf\xe9");
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "a Latin-1 prompt is bad_field (not UTF-8)");

	ktx_proto_limits_default(&l);
	l.text_max = 16;
	pk_init(&k, 3);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "prompt", "seventeen bytes!!");
	tap_is_int(pk_decode(&k, 1, &l, &m, &err), KTX_CODE_TOO_LARGE,
	    "a prompt over the configured limit is too_large");
	tap_ok(strstr(err.msg, "17 bytes") != NULL && strstr(err.msg, "16 bytes") != NULL,
	    "... naming its size and the limit");

	{
		char name[301];

		memset(name, 'n', 300);
		name[300] = '\0';
		pk_init(&k, 3);
		pk_kv(&k, "op", "show");
		pk_ku(&k, "id", 1);
		pk_kv(&k, "conversation", name);
		tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_TOO_LARGE,
		    "a 300-byte conversation name in a request is too_large");
		pk_init(&k, 3);
		pk_kv(&k, "ev", "conversation");
		pk_ku(&k, "conversation", 1);
		pk_kv(&k, "name", name);
		rc = pk_decode(&k, 0, NULL, &m, &err);
		tap_ok(rc == 0 && strlen(ktx_msg_get_str(&m, KTX_F_NAME)) == 300,
		    "a 300-byte name in an event is accepted");
		ktx_msg_clear(&m);
	}

	pk_init(&k, 4);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "prompt", "x");
	pk_str(&k, "temperature", 11);
	msgpack_pack_double(&k.p, 0.0 / 0.0);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "a NaN temperature is bad_field");

	pk_init(&k, 4);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "prompt", "x");
	pk_str(&k, "top_p", 5);
	msgpack_pack_double(&k.p, 1.5);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "top_p 1.5 is bad_field");

	pk_init(&k, 4);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "prompt", "x");
	pk_ku(&k, "temperature", 1);
	rc = pk_decode(&k, 1, NULL, &m, &err);
	tap_ok(rc == 0 && ktx_msg_get_float(&m, KTX_F_TEMPERATURE, -1) == 1.0,
	    "an integer temperature is taken as a number");
	ktx_msg_clear(&m);

	pk_init(&k, 4);
	pk_kv(&k, "op", "ask");
	pk_ku(&k, "id", 1);
	pk_kv(&k, "prompt", "x");
	pk_kv(&k, "detached", "yes");
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "detached as a string is bad_field");
	tap_ok(strstr(err.msg, "boolean") != NULL, "... saying it must be a boolean");

	pk_init(&k, 2);
	pk_kv(&k, "ev", "token");
	pk_ku(&k, "id", 1);
	tap_is_int(pk_decode(&k, 1, NULL, &m, &err), KTX_CODE_BAD_FIELD,
	    "an event sent to a server has no op: bad_field");

	/* Not a map; trailing bytes; garbage. */
	{
		static const unsigned char arr[] = { 0x92, 0x01, 0x02 };
		static const unsigned char trail[] = { 0x80, 0x00 };
		static const unsigned char junk[] = { 0xc1 };

		tap_is_int(ktx_proto_decode(arr, sizeof(arr), 1, NULL, &m, &err),
		    KTX_CODE_BAD_FRAME, "an array frame is bad_frame");
		tap_is_int(ktx_proto_decode(trail, sizeof(trail), 1, NULL, &m, &err),
		    KTX_CODE_BAD_FRAME, "bytes after the map are bad_frame");
		tap_is_int(ktx_proto_decode(junk, sizeof(junk), 1, NULL, &m, &err),
		    KTX_CODE_BAD_FRAME, "the never-used byte 0xc1 is bad_frame");
		tap_is_int(ktx_proto_decode(junk, 0, 1, NULL, &m, &err),
		    KTX_CODE_BAD_FRAME, "an empty payload is bad_frame");
	}
}

/* Several encoded frames back to back, and their payloads. */
struct stream {
	unsigned char *bytes;
	size_t len;
	size_t nframes;
	size_t off[8], plen[8];
};

static void
stream_build(struct stream *s)
{
	struct ktx_proto_err err;
	struct ktx_msg m;
	unsigned char *f;
	size_t n, i;
	char *big;

	memset(s, 0, sizeof(*s));
	big = malloc(100000);
	for (i = 0; i < 99999; i++)
		big[i] = any_text[i % 10];
	big[99999] = '\0';
	for (i = 0; i < 8; i++) {
		ktx_msg_init(&m, i % 2 ? KTX_EV_TOKEN : KTX_EV_END, i);
		if (i % 2)
			ktx_msg_set_str(&m, KTX_F_TEXT, i == 5 ? big : any_text);
		ktx_proto_encode(&m, KTX_PROTO_EVENT_FRAME_MAX, &f, &n, &err);
		s->bytes = realloc(s->bytes, s->len + n);
		memcpy(s->bytes + s->len, f, n);
		s->off[i] = s->len + 4;
		s->plen[i] = n - 4;
		s->len += n;
		s->nframes++;
		free(f);
	}
	free(big);
}

/* Feeds s to a fresh reader in chunks from next_chunk; 1 if every frame came out intact. */
static int
stream_feed(const struct stream *s, size_t (*next_chunk)(unsigned *), unsigned *seed)
{
	struct ktx_frame_reader *r = ktx_frame_reader_new(1 << 20);
	struct ktx_proto_err err;
	const unsigned char *frame;
	size_t pos = 0, chunk, used, flen, got = 0;
	int ok = 1;

	while (pos < s->len) {
		chunk = next_chunk(seed);
		if (chunk > s->len - pos)
			chunk = s->len - pos;
		while (chunk > 0) {
			if (ktx_frame_reader_feed(r, s->bytes + pos, chunk, &used, &frame, &flen,
			    &err) != 0)
				ok = 0;
			pos += used;
			chunk -= used;
			if (frame == NULL)
				continue;
			if (got >= s->nframes || flen != s->plen[got] ||
			    memcmp(frame, s->bytes + s->off[got], flen) != 0)
				ok = 0;
			got++;
		}
	}
	ok &= got == s->nframes && ktx_frame_reader_pending(r) == 0;
	ktx_frame_reader_free(r);
	return ok;
}

static size_t
chunk_one(unsigned *seed)
{
	(void)seed;
	return 1;
}

static size_t
chunk_all(unsigned *seed)
{
	(void)seed;
	return SIZE_MAX;
}

static size_t
chunk_random(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return 1 + (*seed >> 8) % 3000;
}

static void
test_reader(void)
{
	static const unsigned char huge[] = { 0x00, 0x10, 0x00, 0x01, 0x80 };
	static const unsigned char empty[] = { 0, 0, 0, 0 };
	struct ktx_frame_reader *r;
	struct ktx_proto_err err;
	const unsigned char *frame;
	struct stream s;
	size_t used, flen;
	unsigned seed;
	int i, ok = 1, rc;

	stream_build(&s);
	tap_ok(stream_feed(&s, chunk_all, &seed), "reader: 8 frames in one buffer");
	tap_ok(stream_feed(&s, chunk_one, &seed), "reader: 8 frames byte by byte");
	for (i = 0, seed = 1; i < 20; i++)
		ok &= stream_feed(&s, chunk_random, &seed);
	tap_ok(ok, "reader: 8 frames in random chunks, 20 seeds");
	free(s.bytes);

	r = ktx_frame_reader_new(1 << 20);
	rc = ktx_frame_reader_feed(r, huge, sizeof(huge), &used, &frame, &flen, &err);
	tap_is_int(rc, KTX_CODE_TOO_LARGE, "reader: a prefix of 1 MiB + 1 over a 1 MiB limit "
	    "is too_large");
	tap_is_int(used, 4, "... right after the 4 prefix bytes");
	tap_ok(strstr(err.msg, "1048577") != NULL, "... naming the size");
	rc = ktx_frame_reader_feed(r, huge, 1, &used, &frame, &flen, &err);
	tap_is_int(rc, KTX_CODE_TOO_LARGE, "reader: stays failed afterwards");
	ktx_frame_reader_free(r);

	r = ktx_frame_reader_new(1 << 20);
	rc = ktx_frame_reader_feed(r, empty, sizeof(empty), &used, &frame, &flen, &err);
	tap_is_int(rc, KTX_CODE_BAD_FRAME, "reader: a zero length is bad_frame");
	ktx_frame_reader_free(r);

	r = ktx_frame_reader_new(1 << 20);
	rc = ktx_frame_reader_feed(r, huge + 1, 3, &used, &frame, &flen, &err);
	tap_ok(rc == 0 && frame == NULL && ktx_frame_reader_pending(r) == 3,
	    "reader: 3 prefix bytes are pending, no frame");
	ktx_frame_reader_free(r);
}

int
main(void)
{
	test_codes();
	test_utf8();
	test_round_trips();
	test_encode_errors();
	test_decode_errors();
	test_reader();
	return tap_done();
}
