# engine/tokenizer.mk - included by the top-level Makefile.am.
