# engine/tokenizer.mk - the tokenizer and chat templates, and their tests.
# Included by the top-level Makefile.am.
libktxengine_a_SOURCES += \
	engine/tokenizer.c engine/tokenizer.h engine/tokenizer_impl.h \
	engine/encode.c \
	engine/pretok.c engine/pretok.h \
	engine/detok.c \
	engine/chat.c engine/chat.h

noinst_HEADERS += tests/unit/jsonl.h
check_PROGRAMS += tests/unit/test_tokenizer
TESTS += tests/unit/test_tokenizer
tests_unit_test_tokenizer_LDADD = $(ENGINE_LIBS)
check_PROGRAMS += tests/unit/test_tokenizer_oracle
TESTS += tests/unit/test_tokenizer_oracle
tests_unit_test_tokenizer_oracle_LDADD = $(ENGINE_LIBS)
check_PROGRAMS += tests/unit/test_chat
TESTS += tests/unit/test_chat
tests_unit_test_chat_LDADD = $(ENGINE_LIBS)
TESTS += tests/oracle/test_tokenizer.py
EXTRA_DIST += tests/oracle/test_tokenizer.py
