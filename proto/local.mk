# proto/local.mk - included by the top-level Makefile.am.
#
# The wire protocol as a small library that ktxd and ktxctl both link:
# $(PROTO_LIBS) after the program's own objects.
PROTO_SRC = \
	proto/proto.h proto/msg.h \
	proto/code.c \
	proto/codec.c \
	proto/frame.c \
	proto/msg.c \
	proto/scan.c \
	proto/utf8.c
noinst_LIBRARIES += libktxproto.a
libktxproto_a_SOURCES = $(PROTO_SRC)
libktxproto_a_CFLAGS = $(AM_CFLAGS) $(MSGPACK_CFLAGS)
PROTO_LIBS = libktxproto.a $(MSGPACK_LIBS)

check_PROGRAMS += tests/unit/test_proto
TESTS += tests/unit/test_proto
tests_unit_test_proto_CFLAGS = $(AM_CFLAGS) $(MSGPACK_CFLAGS)
tests_unit_test_proto_LDADD = $(PROTO_LIBS) -lm

check_PROGRAMS += tests/unit/test_proto_hostile
TESTS += tests/unit/test_proto_hostile
tests_unit_test_proto_hostile_CFLAGS = $(AM_CFLAGS) $(MSGPACK_CFLAGS)
tests_unit_test_proto_hostile_LDADD = $(PROTO_LIBS)

# The fuzz target, replayed over its committed corpus in make check
# (tests/fuzz/mkcorpus_proto.py writes the corpus).
check_PROGRAMS += tests/fuzz/fuzz_proto_replay
TESTS += tests/fuzz/fuzz_proto_replay
tests_fuzz_fuzz_proto_replay_SOURCES = tests/fuzz/fuzz_proto.c tests/fuzz/fuzz-main.c \
	tests/fuzz/fuzz.h
tests_fuzz_fuzz_proto_replay_LDADD = $(PROTO_LIBS)
EXTRA_DIST += tests/fuzz/corpus/proto tests/fuzz/mkcorpus_proto.py tests/client/ktxwire.py

if FUZZING
# libFuzzer build (configure with CC=clang --enable-fuzzing); the protocol
# sources are compiled in so that they carry the coverage instrumentation.
# Run: tests/fuzz/fuzz_proto -max_total_time=60 COPY_OF_CORPUS_DIR
check_PROGRAMS += tests/fuzz/fuzz_proto
tests_fuzz_fuzz_proto_SOURCES = tests/fuzz/fuzz_proto.c tests/fuzz/fuzz.h $(PROTO_SRC)
tests_fuzz_fuzz_proto_CFLAGS = $(AM_CFLAGS) $(MSGPACK_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_proto_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_proto_LDADD = $(MSGPACK_LIBS)
TESTS += tests/fuzz/run_fuzz_proto.sh
endif
EXTRA_DIST += tests/fuzz/run_fuzz_proto.sh
