# client/local.mk - ktxctl, the client of ktxd.
# Included by the top-level Makefile.am (after proto/local.mk).
bin_PROGRAMS += ktxctl
ktxctl_SOURCES = client/ktxctl.c client/ktxctl.h client/cerr.c client/conn.c \
	client/input.c client/render.c client/cmd_ask.c client/cmd_list.c
ktxctl_LDADD = $(PROTO_LIBS)
dist_man_MANS += man/ktxctl.1 man/ktx-protocol.7

TESTS += tests/client/test_ktxctl.py
EXTRA_DIST += tests/client/test_ktxctl.py tests/client/fake_ktxd.py
