# engine/model.mk - included by the top-level Makefile.am.
