# engine/gguf.mk - the GGUF reader and writer, and their tests.
# Included by the top-level Makefile.am.
libktxengine_a_SOURCES += engine/gguf.c engine/gguf_get.c engine/gguf_write.c \
	engine/gguf_int.h

check_PROGRAMS += tests/unit/test_gguf tests/unit/test_gguf_write
TESTS += tests/unit/test_gguf tests/unit/test_gguf_write
tests_unit_test_gguf_LDADD = $(ENGINE_LIBS)
tests_unit_test_gguf_write_LDADD = $(ENGINE_LIBS)

TESTS += tests/oracle/test_info.py
EXTRA_DIST += tests/oracle/test_info.py
