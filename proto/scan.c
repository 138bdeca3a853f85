/*
 * scan.c - a validating walk over msgpack bytes, done before msgpack-c sees them.
 *
 * msgpack-c allocates for a container's declared element count before the
 * elements arrive, so a 5-byte array32 header can make it ask for ~100 GB.
 * This walk allocates nothing: it checks every declared length against the
 * bytes actually left (each element takes at least one byte), bounds the
 * nesting and the total number of objects, and insists on exactly one
 * object. What passes can be unpacked with memory proportional to its size.
 */
#include "proto/proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#define SCAN_STACK 64 /* hard bound on depth_max */

static int
scan_fail(struct ktx_proto_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fills err with KTX_CODE_BAD_FRAME and the sentence; returns the code. */
static int
scan_fail(struct ktx_proto_err *err, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = KTX_CODE_BAD_FRAME;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return KTX_CODE_BAD_FRAME;
}

/* Reads a big-endian unsigned integer of n bytes at p. */
static uint64_t
be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Decodes the header of the object at buf[pos]: how many header bytes it
 * has (*hdr), how many payload bytes follow (*body, for str/bin/ext and
 * fixed-size scalars) and how many child objects it declares (*kids, for
 * arrays and maps). Returns 0, or -1 for the never-used byte 0xc1.
 */
static int
head(unsigned char c, const unsigned char *p, size_t left, size_t *hdr, uint64_t *body,
    uint64_t *kids)
{
	static const unsigned char fixed[] = {
		/* 0xc0..0xdf: size of the length field, or of the value */
		0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 4, 8, 1, 2, 4, 8,
		1, 2, 4, 8, 1, 2, 4, 8, 16, 1, 2, 4, 2, 4, 2, 4,
	};
	int n;

	*hdr = 1;
	*body = 0;
	*kids = 0;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return 0;
	if (c <= 0x8f) {
		*kids = 2 * (uint64_t)(c & 0x0f);
		return 0;
	}
	if (c <= 0x9f) {
		*kids = c & 0x0f;
		return 0;
	}
	if (c <= 0xbf) {
		*body = c & 0x1f;
		return 0;
	}
	if (c == 0xc1)
		return -1;
	n = fixed[c - 0xc0];
	switch (c) {
	case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf:
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		*body = (uint64_t)n; /* numbers: the value is the body */
		return 0;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		*body = 1 + (uint64_t)n; /* fixext: type byte + data */
		return 0;
	}
	/* A length field of n bytes follows; the caller checks it fits. */
	*hdr = 1 + (size_t)n;
	if (left < *hdr)
		return 0;
	switch (c) {
	case 0xc4: case 0xc5: case 0xc6:       /* bin */
	case 0xd9: case 0xda: case 0xdb:       /* str */
		*body = be(p + 1, n);
		break;
	case 0xc7: case 0xc8: case 0xc9:       /* ext: type byte + data */
		*body = 1 + be(p + 1, n);
		break;
	case 0xdc: case 0xdd:                  /* array */
		*kids = be(p + 1, n);
		break;
	case 0xde: case 0xdf:                  /* map */
		*kids = 2 * be(p + 1, n);
		break;
	}
	return 0;
}

int
ktx_proto_scan(const unsigned char *buf, size_t len, uint32_t depth_max, uint32_t elems_max,
    struct ktx_proto_err *err)
{
	uint64_t stack[SCAN_STACK + 1]; /* objects still to read at each level */
	uint64_t body, kids, elems = 0;
	size_t pos = 0, hdr;
	int depth = 0;

	if (depth_max > SCAN_STACK)
		depth_max = SCAN_STACK;
	if (len == 0)
		return scan_fail(err, "empty frame: expected one msgpack map");
	stack[0] = 1;
	for (;;) {
		if (stack[depth] == 0) {
			if (depth == 0)
				break;
			depth--;
			continue;
		}
		stack[depth]--;
		if (pos >= len)
			return scan_fail(err, "frame ends at byte %zu inside a container", pos);
		if (++elems > elems_max)
			return scan_fail(err, "frame holds more than %" PRIu32 " objects", elems_max);
		if (head(buf[pos], buf + pos, len - pos, &hdr, &body, &kids) != 0)
			return scan_fail(err, "byte 0x%02x at offset %zu is not msgpack", buf[pos], pos);
		if (hdr > len - pos)
			return scan_fail(err, "header at byte %zu is cut off by the end of the frame",
			    pos);
		pos += hdr;
		if (body > len - pos)
			return scan_fail(err, "length %" PRIu64 " declared at byte %zu exceeds "
			    "the %zu bytes left in the frame", body, pos - hdr, len - pos);
		pos += (size_t)body;
		if (kids == 0)
			continue;
		/* Every element takes at least one byte. */
		if (kids > len - pos)
			return scan_fail(err, "container at byte %zu declares %" PRIu64
			    " elements but only %zu bytes are left", pos - hdr, kids, len - pos);
		if ((uint32_t)depth + 1 > depth_max)
			return scan_fail(err, "containers nested deeper than %" PRIu32, depth_max);
		stack[++depth] = kids;
	}
	if (pos != len)
		return scan_fail(err, "%zu bytes after the message at byte %zu", len - pos, pos);
	return KTX_CODE_OK;
}
