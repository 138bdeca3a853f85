# kernels/cpu.mk - the fast CPU kernels (kernels/cpu), their reference dot
# product twins (kernels/ref/dot_ref.c), their tests and micro-benchmark.
# Included by the top-level Makefile.am. The ISA files select their own
# instruction sets with a pragma, so no file needs special flags and the
# build never assumes the build machine's CPU.
libktxengine_a_SOURCES += kernels/ref/dot_ref.h \
	kernels/ref/dot_ref.c \
	kernels/cpu/cpu.h \
	kernels/cpu/cpu_impl.h \
	kernels/cpu/kscales.h \
	kernels/cpu/cpu.c \
	kernels/cpu/avx2.c \
	kernels/cpu/avx512.c \
	kernels/cpu/avx512_iq.c \
	kernels/cpu/repack.h \
	kernels/cpu/repack.c \
	kernels/cpu/rp_simd.h \
	kernels/cpu/rp_k2.c \
	kernels/cpu/rp_k4.c \
	kernels/cpu/rp_q6.c

check_PROGRAMS += tests/unit/test_cpu_dot tests/unit/test_cpu_repack
TESTS += tests/unit/test_cpu_dot tests/unit/test_cpu_repack
tests_unit_test_cpu_dot_LDADD = $(ENGINE_LIBS)
tests_unit_test_cpu_repack_LDADD = $(ENGINE_LIBS)
noinst_HEADERS += tests/unit/qrandom.h

noinst_PROGRAMS += bench/bench_kernels
bench_bench_kernels_LDADD = $(ENGINE_LIBS)
