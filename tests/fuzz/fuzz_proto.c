/*
 * fuzz_proto.c - fuzz target for the protocol decoder.
 *
 * The input is a byte stream as a peer would send it: it goes through the
 * frame reader in chunks whose sizes come from the input's first byte, and
 * every complete frame is decoded as a request and as an event. A frame
 * that decodes must encode again and decode to the same message. Built with
 * -fsanitize=fuzzer under --enable-fuzzing, and with fuzz-main.c as a
 * corpus replay in make check.
 */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "tests/fuzz/fuzz.h"

/* Asserts that a decoded message survives encode + decode unchanged. */
static void
check_round_trip(const struct ktx_msg *m, const struct ktx_proto_limits *l)
{
	struct ktx_proto_err err;
	struct ktx_msg b;
	unsigned char *frame;
	size_t len;
	int f;

	if (ktx_proto_encode(m, KTX_PROTO_EVENT_FRAME_MAX, &frame, &len, &err) != 0)
		abort();
	if (ktx_proto_decode(frame + KTX_PROTO_HEADER, len - KTX_PROTO_HEADER,
	    ktx_msg_is_request(m->type), l, &b, &err) != 0)
		abort();
	assert(b.type == m->type && b.id == m->id && b.have == m->have);
	for (f = 0; f < KTX_NFIELDS; f++) {
		if (!ktx_msg_has(m, f))
			continue;
		if (ktx_field_kind(f) == KTX_KIND_STR)
			assert(strcmp(m->v[f].s, b.v[f].s) == 0);
		else
			assert(memcmp(&m->v[f], &b.v[f], sizeof(b.v[f])) == 0);
	}
	ktx_msg_clear(&b);
	free(frame);
}

/* Decodes one frame both ways. */
static void
decode_frame(const unsigned char *p, size_t n, const struct ktx_proto_limits *l)
{
	struct ktx_proto_err err;
	struct ktx_msg m;
	int dir;

	for (dir = 0; dir <= 1; dir++) {
		if (ktx_proto_decode(p, n, dir, l, &m, &err) != 0) {
			assert(m.type == KTX_MSG_NONE && m.arena == NULL);
			assert(err.code > 0 && err.code < KTX_CODE_COUNT);
			continue;
		}
		check_round_trip(&m, l);
		ktx_msg_clear(&m);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ktx_proto_limits l;
	struct ktx_frame_reader *r;
	struct ktx_proto_err err;
	const unsigned char *frame;
	size_t chunk, n, used, flen, pos = 1;

	if (size < 1)
		return 0;
	ktx_proto_limits_default(&l);
	l.frame_max = 1 << 16;
	l.text_max = 1 << 12;
	chunk = 1 + data[0] % 64;
	/* The whole input as one payload, too: the decoder must hold on its own. */
	decode_frame(data + 1, size - 1, &l);
	r = ktx_frame_reader_new(l.frame_max);
	if (r == NULL)
		return 0;
	while (pos < size) {
		n = size - pos < chunk ? size - pos : chunk;
		if (ktx_frame_reader_feed(r, data + pos, n, &used, &frame, &flen, &err) != 0)
			break;
		assert(used > 0 && used <= n);
		pos += used;
		if (frame != NULL)
			decode_frame(frame, flen, &l);
	}
	ktx_frame_reader_free(r);
	return 0;
}
