/*
 * fuzz.h - the libFuzzer entry point every fuzz target defines.
 */
#ifndef KTX_TESTS_FUZZ_FUZZ_H
#define KTX_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
