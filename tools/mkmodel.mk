# tools/mkmodel.mk - included by the top-level Makefile.am.
