/*
 * frame.c - the length prefix: writing it, and reading frames from a stream.
 *
 * The reader is a two-state machine (collecting the 4-byte prefix, then the
 * payload). The prefix is checked against the maximum before any payload is
 * kept, and the payload buffer grows with the bytes that actually arrive, so
 * a peer that declares 8 MiB and sends 10 bytes costs ~10 bytes, not 8 MiB.
 */
#include "proto/proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_CHUNK 256     /* smallest payload allocation */
#define FRAME_KEEP (64 << 10) /* a larger buffer is freed between frames */

struct ktx_frame_reader {
	uint32_t max;          /* largest payload accepted */
	unsigned char hdr[KTX_PROTO_HEADER];
	size_t nhdr;           /* prefix bytes collected */
	uint32_t want;         /* declared payload length (once nhdr == 4) */
	unsigned char *buf;    /* payload so far */
	size_t have;           /* payload bytes collected */
	size_t cap;            /* allocated size of buf */
	int failed;            /* a fatal error was returned */
	int done;              /* the last call returned a complete frame */
};

struct ktx_frame_reader *
ktx_frame_reader_new(uint32_t frame_max)
{
	struct ktx_frame_reader *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->max = frame_max;
	return r;
}

void
ktx_frame_reader_free(struct ktx_frame_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

size_t
ktx_frame_reader_pending(const struct ktx_frame_reader *r)
{
	return r->done ? 0 : r->nhdr + r->have;
}

static int
reader_fail(struct ktx_frame_reader *r, struct ktx_proto_err *err, int code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records a fatal error; the reader refuses all further input. */
static int
reader_fail(struct ktx_frame_reader *r, struct ktx_proto_err *err, int code,
    const char *fmt, ...)
{
	va_list ap;

	r->failed = code;
	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Makes room for n more payload bytes, growing geometrically up to want. */
static int
reader_reserve(struct ktx_frame_reader *r, size_t n)
{
	size_t cap = r->cap ? r->cap : FRAME_CHUNK;
	unsigned char *p;

	if (r->have + n <= r->cap)
		return 0;
	while (cap < r->have + n)
		cap *= 2;
	if (cap > r->want)
		cap = r->want;
	p = realloc(r->buf, cap);
	if (p == NULL)
		return -1;
	r->buf = p;
	r->cap = cap;
	return 0;
}

int
ktx_frame_reader_feed(struct ktx_frame_reader *r, const void *data, size_t len, size_t *used,
    const unsigned char **frame, size_t *frame_len, struct ktx_proto_err *err)
{
	const unsigned char *p = data;
	size_t n, off = 0;

	*used = 0;
	*frame = NULL;
	*frame_len = 0;
	if (r->failed) {
		if (err != NULL) {
			err->code = r->failed;
			snprintf(err->msg, sizeof(err->msg),
			    "the stream is unusable after an earlier framing error");
		}
		return r->failed;
	}
	if (r->done) {
		/* The previous frame was handed out: start the next one. */
		r->done = 0;
		r->nhdr = 0;
		r->have = 0;
		if (r->cap > FRAME_KEEP) {
			/* Do not pin one big frame's memory to an idle connection. */
			free(r->buf);
			r->buf = NULL;
			r->cap = 0;
		}
	}
	while (off < len) {
		if (r->nhdr < KTX_PROTO_HEADER) {
			r->hdr[r->nhdr++] = p[off++];
			if (r->nhdr < KTX_PROTO_HEADER)
				continue;
			r->want = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 |
			    (uint32_t)r->hdr[2] << 8 | r->hdr[3];
			if (r->want > r->max) {
				*used = off;
				return reader_fail(r, err, KTX_CODE_TOO_LARGE,
				    "frame of %" PRIu32 " bytes is over the limit of %" PRIu32
				    " bytes", r->want, r->max);
			}
			if (r->want == 0) {
				*used = off;
				return reader_fail(r, err, KTX_CODE_BAD_FRAME,
				    "empty frame: expected one msgpack map");
			}
			if (off == len)
				break;
		}
		n = len - off;
		if (n > r->want - r->have)
			n = r->want - r->have;
		if (reader_reserve(r, n) != 0) {
			*used = off;
			return reader_fail(r, err, KTX_CODE_INTERNAL,
			    "out of memory buffering a frame of %" PRIu32 " bytes", r->want);
		}
		memcpy(r->buf + r->have, p + off, n);
		r->have += n;
		off += n;
		if (r->have == r->want) {
			r->done = 1;
			*frame = r->buf;
			*frame_len = r->have;
			break;
		}
	}
	*used = off;
	return KTX_CODE_OK;
}
