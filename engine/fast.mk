# engine/fast.mk - the fast path of the forward pass (SIMD matmuls, experts
# per expert over their tokens) and its quality gate against the reference.
# Included by the top-level Makefile.am.
libktxengine_a_SOURCES += engine/forward_fast.h engine/forward_fast.c \
	engine/forward_fast_moe.c

TESTS += tests/oracle/test_kl.py tests/unit/test_repack_model.py
EXTRA_DIST += tests/oracle/test_kl.py tests/unit/test_repack_model.py bench/run-bench.sh bench/triad.c bench/dot_peak.c \
	bench/README.md

check_PROGRAMS += tests/unit/test_batch_fast
TESTS += tests/unit/test_batch_fast
tests_unit_test_batch_fast_LDADD = $(ENGINE_LIBS)

# The bandwidth probe of bench/run-bench.sh and the 8-bit dot-product peak
# (not tests).
noinst_PROGRAMS += bench/triad bench/dot_peak
