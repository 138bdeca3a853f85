# kernels/local.mk - reference (kernels/ref), SIMD (kernels/cpu) and CUDA kernels.
# Included by the top-level Makefile.am.
libktxengine_a_SOURCES += kernels/qtypes.h \
	kernels/quant_blocks.h \
	kernels/ref/fp16.h \
	kernels/ref/nofma.h \
	kernels/ref/quant_ref.h \
	kernels/ref/quant_util.h \
	kernels/ref/iq_tables.h \
	kernels/ref/iq_tables.c \
	kernels/ref/quant_float.c \
	kernels/ref/quant_legacy.c \
	kernels/ref/quant_k.c \
	kernels/ref/quant_iq.c \
	engine/quant.c

check_PROGRAMS += tests/unit/test_quant_fp16 tests/unit/test_quant_blocks \
	tests/unit/test_quant_roundtrip tests/unit/test_quant_oracle
TESTS += tests/unit/test_quant_fp16 tests/unit/test_quant_blocks \
	tests/unit/test_quant_roundtrip tests/unit/test_quant_oracle
tests_unit_test_quant_fp16_LDADD = $(ENGINE_LIBS)
tests_unit_test_quant_blocks_LDADD = $(ENGINE_LIBS)
tests_unit_test_quant_roundtrip_LDADD = $(ENGINE_LIBS)
tests_unit_test_quant_oracle_LDADD = $(ENGINE_LIBS)

TESTS += tests/oracle/test_dequant.py
EXTRA_DIST += tests/oracle/test_dequant.py
