# tools/mkmodel.mk - ktx-mkmodel, the synthetic model writer, and its test.
# Included by the top-level Makefile.am.
bin_PROGRAMS += ktx-mkmodel
ktx_mkmodel_SOURCES = tools/ktx-mkmodel.c tools/mkmodel.h tools/mkmodel_build.c \
	tools/mkmodel_fill.c
ktx_mkmodel_LDADD = $(ENGINE_LIBS)

TESTS += tests/unit/test_mkmodel.py
EXTRA_DIST += tests/unit/test_mkmodel.py
dist_man_MANS += man/ktx-mkmodel.1
