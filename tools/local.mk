# tools/local.mk - ktx-run and ktx-mkmodel.
# Included by the top-level Makefile.am.
bin_PROGRAMS += ktx-run
ktx_run_SOURCES = tools/ktx-run.c tools/ktx-run.h \
	tools/run_info.c tools/run_tokenize.c tools/run_generate.c \
	tools/run_kl.c tools/run_bench.c
ktx_run_LDADD = $(ENGINE_LIBS)
