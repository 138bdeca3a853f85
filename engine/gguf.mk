# engine/gguf.mk - included by the top-level Makefile.am.
