# tests/fuzz/fuzz.mk - the engine's fuzz targets (GGUF reader and model
# binding, tokenizer, chat templates), their corpus maker and CI runner.
# Included by the top-level Makefile.am.
#
# Each target is replayed over its committed corpus (tests/fuzz/corpus/NAME)
# in make check through fuzz-main.c; under --enable-fuzzing (CC=clang) the
# same sources also build as libFuzzer programs, which tests/fuzz/ci-fuzz.sh
# runs for a few seconds each.

FUZZ_ENGINE_CPPFLAGS = $(AM_CPPFLAGS) -DKTX_FUZZ_DATA='"$(abs_top_srcdir)/tests/fuzz/data"'
FUZZ_GGUF_SRC = tests/fuzz/fuzz_gguf.c tests/fuzz/fuzz.h
FUZZ_TOKENIZE_SRC = tests/fuzz/fuzz_tokenize.c tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h \
	tests/fuzz/fuzz.h
FUZZ_CHAT_SRC = tests/fuzz/fuzz_chat.c tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h \
	tests/fuzz/fuzz.h

check_PROGRAMS += tests/fuzz/fuzz_gguf_replay tests/fuzz/fuzz_tokenize_replay \
	tests/fuzz/fuzz_chat_replay
TESTS += tests/fuzz/fuzz_gguf_replay tests/fuzz/fuzz_tokenize_replay \
	tests/fuzz/fuzz_chat_replay
tests_fuzz_fuzz_gguf_replay_SOURCES = $(FUZZ_GGUF_SRC) tests/fuzz/fuzz-main.c
tests_fuzz_fuzz_gguf_replay_LDADD = $(ENGINE_LIBS)
tests_fuzz_fuzz_tokenize_replay_SOURCES = $(FUZZ_TOKENIZE_SRC) tests/fuzz/fuzz-main.c
tests_fuzz_fuzz_tokenize_replay_CPPFLAGS = $(FUZZ_ENGINE_CPPFLAGS)
tests_fuzz_fuzz_tokenize_replay_LDADD = $(ENGINE_LIBS)
tests_fuzz_fuzz_chat_replay_SOURCES = $(FUZZ_CHAT_SRC) tests/fuzz/fuzz-main.c
tests_fuzz_fuzz_chat_replay_CPPFLAGS = $(FUZZ_ENGINE_CPPFLAGS)
tests_fuzz_fuzz_chat_replay_LDADD = $(ENGINE_LIBS)

# Writes tests/fuzz/data and the corpora above (run by hand, see its header).
noinst_PROGRAMS += tests/fuzz/mkcorpus_engine
tests_fuzz_mkcorpus_engine_SOURCES = tests/fuzz/mkcorpus_engine.c \
	tools/mkmodel.h tools/mkmodel_build.c tools/mkmodel_fill.c
tests_fuzz_mkcorpus_engine_LDADD = $(ENGINE_LIBS)

EXTRA_DIST += tests/fuzz/corpus/gguf tests/fuzz/corpus/tokenize tests/fuzz/corpus/chat \
	tests/fuzz/data tests/fuzz/ci-fuzz.sh

if FUZZING
# The engine again, with libFuzzer's coverage instrumentation, for the
# libFuzzer programs (the plain library above has none).
check_LIBRARIES = libktxengine_fuzz.a
libktxengine_fuzz_a_SOURCES = $(libktxengine_a_SOURCES)
libktxengine_fuzz_a_CFLAGS = $(libktxengine_a_CFLAGS) -fsanitize=fuzzer-no-link
FUZZ_ENGINE_LIBS = libktxengine_fuzz.a $(PCRE2_LIBS) -lm

check_PROGRAMS += tests/fuzz/fuzz_gguf tests/fuzz/fuzz_tokenize tests/fuzz/fuzz_chat
tests_fuzz_fuzz_gguf_SOURCES = $(FUZZ_GGUF_SRC)
tests_fuzz_fuzz_gguf_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_gguf_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_gguf_LDADD = $(FUZZ_ENGINE_LIBS)
tests_fuzz_fuzz_tokenize_SOURCES = $(FUZZ_TOKENIZE_SRC)
tests_fuzz_fuzz_tokenize_CPPFLAGS = $(FUZZ_ENGINE_CPPFLAGS)
tests_fuzz_fuzz_tokenize_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_tokenize_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_tokenize_LDADD = $(FUZZ_ENGINE_LIBS)
tests_fuzz_fuzz_chat_SOURCES = $(FUZZ_CHAT_SRC)
tests_fuzz_fuzz_chat_CPPFLAGS = $(FUZZ_ENGINE_CPPFLAGS)
tests_fuzz_fuzz_chat_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_chat_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_chat_LDADD = $(FUZZ_ENGINE_LIBS)
endif
