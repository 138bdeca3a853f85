/*
 * test_proto_hostile.c - frames written to make a decoder allocate: declared
 * lengths far past the bytes present, deep nesting, huge length prefixes.
 *
 * Each must be refused with the right code, and the decoder's peak memory
 * (getrusage maxrss, printed as a diagnostic) must stay small while
 * thousands of them are decoded and thousands of readers hold hostile
 * prefixes at once. msgpack-c alone reserves for the declared counts (a
 * map32 of 1Mi pairs costs ~48 MB, an array32 of 4Gi asks for ~100 GB); a
 * child process shows the first for comparison.
 */
#include "config.h"

#include <malloc.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/proto.h"
#include "tests/tap.h"

#define DEEP 2000

#if defined(__SANITIZE_ADDRESS__)
#define RSS_BOUND_KIB (96 * 1024)
#else
#define RSS_BOUND_KIB (16 * 1024)
#endif

struct hostile {
	const char *name;
	unsigned char bytes[32];
	size_t len;
	int code;
};

/* Payloads (after the length prefix); each is 32 bytes or fewer. */
static const struct hostile cases[] = {
	{ "map32 declaring 1Mi pairs in a 10-byte frame",
	  { 0xdf, 0x00, 0x10, 0x00, 0x00, 0xa2, 'o', 'p', 0xa0, 0xc0 }, 10, KTX_CODE_BAD_FRAME },
	{ "map32 declaring 4Gi-1 pairs",
	  { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0 }, 6, KTX_CODE_BAD_FRAME },
	{ "array32 declaring 4Gi-1 elements",
	  { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 }, 7, KTX_CODE_BAD_FRAME },
	{ "array32 of 4Gi-1 inside a valid map",
	  { 0x81, 0xa2, 'o', 'p', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00 }, 10,
	  KTX_CODE_BAD_FRAME },
	{ "map16 declaring 65535 pairs in 8 bytes",
	  { 0xde, 0xff, 0xff, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0 }, 8, KTX_CODE_BAD_FRAME },
	{ "fixarray declaring 15 with 2 present",
	  { 0x81, 0xa2, 'o', 'p', 0x9f, 0x01, 0x02 }, 7, KTX_CODE_BAD_FRAME },
	{ "str32 of 4Gi-1 bytes past the end",
	  { 0x81, 0xa2, 'o', 'p', 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 's', 'k' }, 12,
	  KTX_CODE_BAD_FRAME },
	{ "str32 one byte past the end",
	  { 0x81, 0xa2, 'o', 'p', 0xdb, 0x00, 0x00, 0x00, 0x04, 'a', 's', 'k' }, 12,
	  KTX_CODE_BAD_FRAME },
	{ "str8 key past the end",
	  { 0x81, 0xd9, 0xff, 'o', 'p' }, 5, KTX_CODE_BAD_FRAME },
	{ "bin32 of 2Gi past the end",
	  { 0x81, 0xa2, 'o', 'p', 0xc6, 0x80, 0x00, 0x00, 0x00, 0x00 }, 10, KTX_CODE_BAD_FRAME },
	{ "ext32 of 4Gi-1 past the end",
	  { 0x81, 0xa2, 'o', 'p', 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00 }, 11,
	  KTX_CODE_BAD_FRAME },
	{ "fixext16 cut short",
	  { 0x81, 0xa2, 'o', 'p', 0xd8, 0x01, 0x00 }, 7, KTX_CODE_BAD_FRAME },
	{ "str32 header cut inside its length",
	  { 0x81, 0xa2, 'o', 'p', 0xdb, 0xff }, 6, KTX_CODE_BAD_FRAME },
	{ "uint64 cut short",
	  { 0x81, 0xa2, 'i', 'd', 0xcf, 0x00, 0x00 }, 7, KTX_CODE_BAD_FRAME },
	{ "the never-used byte 0xc1",
	  { 0x81, 0xa2, 'o', 'p', 0xc1 }, 5, KTX_CODE_BAD_FRAME },
	{ "nested array32 headers, each 4Gi",
	  { 0xdd, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff,
	    0xff, 0xff }, 15, KTX_CODE_BAD_FRAME },
	{ "a string, not a map",
	  { 0xa3, 'a', 's', 'k' }, 4, KTX_CODE_BAD_FRAME },
};

/* Peak resident memory of this process, KiB. */
static long
maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* A frame of n nested fixarrays of one element around a 0. */
static unsigned char *
deep(size_t n, size_t *len)
{
	unsigned char *b = malloc(n + 1);

	memset(b, 0x91, n);
	b[n] = 0x00;
	*len = n + 1;
	return b;
}

/* Decodes every case many times; 1 if each gave its code every time. */
static int
decode_all(int rounds)
{
	struct ktx_proto_err err;
	struct ktx_msg m;
	size_t i;
	int r, ok = 1;

	for (r = 0; r < rounds; r++)
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			ok &= ktx_proto_decode(cases[i].bytes, cases[i].len, 1, NULL, &m, &err) ==
			    cases[i].code;
			ok &= ktx_proto_decode(cases[i].bytes, cases[i].len, 0, NULL, &m, &err) ==
			    cases[i].code;
		}
	return ok;
}

/* What msgpack-c alone reserves for the map32 header, measured in a child
 * (the allocation is mostly untouched, so malloc's books show it, not RSS). */
static void
raw_msgpack_child(void)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		msgpack_unpacked up;
		struct mallinfo2 a, b;
		size_t off = 0;

		a = mallinfo2();
		msgpack_unpacked_init(&up);
		msgpack_unpack_next(&up, (const char *)cases[0].bytes, cases[0].len, &off);
		b = mallinfo2();
		/* (sanitizer allocators keep their own books: 0 there) */
		if (b.uordblks + b.hblkhd > a.uordblks + a.hblkhd)
			tap_diag("for comparison, msgpack-c alone reserves %zu KiB for the "
			    "10-byte map32 frame", (b.uordblks + b.hblkhd - a.uordblks -
			    a.hblkhd) >> 10);
		fflush(stdout);
		msgpack_unpacked_destroy(&up);
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

int
main(void)
{
	struct ktx_frame_reader *readers[2000];
	struct ktx_proto_err err;
	struct ktx_msg m;
	const unsigned char *frame;
	unsigned char prefix[4 + 10];
	unsigned char *d;
	size_t i, len, used, flen;
	long before, decoded, after;
	int ok, rc;

	before = maxrss_kib();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = ktx_proto_decode(cases[i].bytes, cases[i].len, 1, NULL, &m, &err);
		tap_is_int(rc, cases[i].code, cases[i].name);
		if (rc != 0)
			tap_diag("%s", err.msg);
	}
	tap_ok(decode_all(2000), "every case, 2000 times each way, gives its code");
	decoded = maxrss_kib();

	d = deep(DEEP, &len);
	rc = ktx_proto_decode(d, len, 1, NULL, &m, &err);
	tap_is_int(rc, KTX_CODE_BAD_FRAME, "2000 nested arrays are bad_frame");
	tap_ok(strstr(err.msg, "nested") != NULL, "... saying they are nested too deep");
	free(d);
	d = deep(KTX_PROTO_DEPTH_MAX, &len);
	rc = ktx_proto_scan(d, len, KTX_PROTO_DEPTH_MAX, KTX_PROTO_ELEMS_MAX, &err);
	tap_is_int(rc, 0, "nesting at the depth limit passes the scan");
	free(d);

	/* 65535 nils: every length fits, but there are too many objects. */
	d = malloc(3 + 65535);
	d[0] = 0xdc;
	d[1] = d[2] = 0xff;
	memset(d + 3, 0xc0, 65535);
	rc = ktx_proto_decode(d, 3 + 65535, 1, NULL, &m, &err);
	tap_is_int(rc, KTX_CODE_BAD_FRAME, "an array of 65535 nils is over the object limit");
	free(d);

	/* Many readers at once, each holding a prefix that declares the maximum
	 * and the first bytes of a map32 header. */
	prefix[0] = 0x00;
	prefix[1] = 0x80;
	prefix[2] = 0x00;
	prefix[3] = 0x00; /* 8 MiB */
	memcpy(prefix + 4, cases[0].bytes, 10);
	ok = 1;
	for (i = 0; i < 2000; i++) {
		readers[i] = ktx_frame_reader_new(KTX_PROTO_FRAME_MAX_DEFAULT);
		rc = ktx_frame_reader_feed(readers[i], prefix, sizeof(prefix), &used, &frame,
		    &flen, &err);
		ok &= rc == 0 && frame == NULL && used == sizeof(prefix) &&
		    ktx_frame_reader_pending(readers[i]) == sizeof(prefix);
	}
	tap_ok(ok, "2000 readers each hold an 8 MiB declaration with 10 bytes present");
	after = maxrss_kib();
	for (i = 0; i < 2000; i++)
		ktx_frame_reader_free(readers[i]);

	prefix[0] = 0xff;
	readers[0] = ktx_frame_reader_new(KTX_PROTO_FRAME_MAX_DEFAULT);
	rc = ktx_frame_reader_feed(readers[0], prefix, sizeof(prefix), &used, &frame, &flen,
	    &err);
	tap_ok(rc == KTX_CODE_TOO_LARGE && used == 4, "a 4 GiB prefix is too_large after 4 bytes");
	ktx_frame_reader_free(readers[0]);

	tap_diag("peak RSS before the hostile frames: %ld KiB; after decoding 68000 of them: "
	    "%ld KiB (+%ld); with 2000 readers holding 8 MiB declarations: %ld KiB (+%ld)",
	    before, decoded, decoded - before, after, after - decoded);
	/* 2000 readers at ~300 bytes each; without the scan one map32 header
	 * alone costs msgpack-c 48 MB or more. Under ASan the freed 8 KiB
	 * zones of the frames that do get unpacked sit in its quarantine
	 * (up to 256 MiB), so the bound is looser there. */
	tap_ok(after - before < RSS_BOUND_KIB, "peak memory grew by less than %d MiB",
	    RSS_BOUND_KIB / 1024);

	raw_msgpack_child();
	return tap_done();
}
