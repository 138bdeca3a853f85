# kernels/local.mk - reference (kernels/ref), SIMD (kernels/cpu) and CUDA kernels.
# Included by the top-level Makefile.am.
libktxengine_a_SOURCES += kernels/qtypes.h
