# engine/local.mk - the engine: GGUF, quant types, model, tokenizer, sessions.
# Included by the top-level Makefile.am.
libktxengine_a_SOURCES += \
	engine/err.c engine/err.h \
	engine/gguf.h \
	engine/quant.h \
	engine/ktx.h
