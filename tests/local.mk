# tests/local.mk - the test suite's shared parts; each folder's local.mk adds its own tests.
# Included by the top-level Makefile.am.
check_PROGRAMS += tests/unit/test_err
TESTS += tests/unit/test_err
tests_unit_test_err_LDADD = $(ENGINE_LIBS)
TESTS += tests/oracle/test_kl_demo.py
EXTRA_DIST += tests/oracle/test_kl_demo.py
