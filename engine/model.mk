# engine/model.mk - the deepseek2 model: binding, forward pass, sessions,
# sampling, their reference ops, and ktx-run's generation modes' tests.
# Included by the top-level Makefile.am.
libktxengine_a_SOURCES += \
	engine/model.c engine/model.h engine/model_load.c engine/model_repack.c \
	engine/arena.c engine/arena.h \
	engine/params.c \
	engine/forward.c engine/forward_attn.c engine/forward_moe.c \
	engine/attn_flash.c engine/attn_flash.h \
	engine/forward_matmul.c \
	engine/session.c engine/sampler.c \
	kernels/ref/ops.c kernels/ref/ops.h

check_PROGRAMS += tests/unit/test_ops tests/unit/test_attention tests/unit/test_sampler \
	tests/unit/test_session tests/unit/test_model tests/unit/test_arena
TESTS += tests/unit/test_ops tests/unit/test_attention tests/unit/test_sampler \
	tests/unit/test_session tests/unit/test_model tests/unit/test_arena
tests_unit_test_ops_LDADD = $(ENGINE_LIBS)
tests_unit_test_attention_LDADD = $(ENGINE_LIBS)
tests_unit_test_sampler_LDADD = $(ENGINE_LIBS)
tests_unit_test_session_LDADD = $(ENGINE_LIBS)
tests_unit_test_model_LDADD = $(ENGINE_LIBS)
tests_unit_test_arena_LDADD = $(ENGINE_LIBS)

TESTS += tests/oracle/test_forward.py tests/oracle/test_cache_type.py tests/oracle/test_load.py
EXTRA_DIST += tests/oracle/test_forward.py tests/oracle/test_cache_type.py \
	tests/oracle/test_load.py
