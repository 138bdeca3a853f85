# daemon/local.mk - ktxd, the resident service, and its unit tests.
# Included by the top-level Makefile.am.
#
# ktxd is a system daemon started by systemd, so it is installed in sbin.

KTXD_CPPFLAGS = $(AM_CPPFLAGS) -DKTXD_SYSCONFDIR='"$(sysconfdir)"'
KTXD_DEPS_CFLAGS = $(UV_CFLAGS) $(MSGPACK_CFLAGS) $(SQLITE_CFLAGS) $(SYSTEMD_CFLAGS)

# Unit tests of the daemon's parts that need no loop.
check_PROGRAMS += tests/unit/test_queue tests/unit/test_store tests/unit/test_config
TESTS += tests/unit/test_queue tests/unit/test_store tests/unit/test_config
tests_unit_test_queue_SOURCES = tests/unit/test_queue.c daemon/sched.c daemon/sched.h
tests_unit_test_store_SOURCES = tests/unit/test_store.c daemon/store.c daemon/store.h
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_LDADD = $(ENGINE_LIBS) $(SQLITE_LIBS)
tests_unit_test_config_SOURCES = tests/unit/test_config.c daemon/conf.c daemon/conf.h
tests_unit_test_config_CPPFLAGS = $(KTXD_CPPFLAGS)
tests_unit_test_config_LDADD = $(ENGINE_LIBS)

# The worker thread with the real engine and an oracle model.
check_PROGRAMS += tests/unit/test_queue_worker
TESTS += tests/unit/test_queue_worker
tests_unit_test_queue_worker_SOURCES = tests/unit/test_queue_worker.c \
	daemon/worker.c daemon/worker.h daemon/gen_engine.c daemon/gen.h
tests_unit_test_queue_worker_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS)
tests_unit_test_queue_worker_LDADD = $(ENGINE_LIBS) $(UV_LIBS)

sbin_PROGRAMS += ktxd
ktxd_SOURCES = \
	daemon/ktxd.c daemon/ktxd.h \
	daemon/conf.c daemon/conf.h \
	daemon/conn.c daemon/ops.c daemon/jobs.c daemon/server.c \
	daemon/log.c daemon/log.h \
	daemon/sched.c daemon/sched.h \
	daemon/store.c daemon/store.h \
	daemon/worker.c daemon/worker.h \
	daemon/gen.h daemon/gen_engine.c
ktxd_CPPFLAGS = $(KTXD_CPPFLAGS)
ktxd_CFLAGS = $(AM_CFLAGS) $(KTXD_DEPS_CFLAGS)
ktxd_LDADD = $(PROTO_LIBS) $(ENGINE_LIBS) $(UV_LIBS) $(SQLITE_LIBS) $(SYSTEMD_LIBS)

# Integration tests: the real ktxd driven over its socket and by the real
# ktxctl, with an oracle model (tests/integration/ktxd_harness.py).
TESTS += tests/integration/test_ktxd_badinput.py tests/integration/test_ktxd_ask.py \
	tests/integration/test_ktxd_queue.py tests/integration/test_ktxd_restart.py \
	tests/integration/test_ktxd_systemd.py tests/integration/test_ktxd_cli.py \
	tests/integration/test_ktxd_batch.py
EXTRA_DIST += tests/integration/ktxd_harness.py tests/integration/test_ktxd_badinput.py \
	tests/integration/test_ktxd_ask.py tests/integration/test_ktxd_queue.py \
	tests/integration/test_ktxd_restart.py tests/integration/test_ktxd_systemd.py \
	tests/integration/test_ktxd_cli.py tests/integration/test_ktxd_batch.py

dist_man_MANS += man/ktxd.8 man/ktxd.conf.5
