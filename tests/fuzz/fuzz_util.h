/*
 * fuzz_util.h - what the engine's fuzz targets share: the tiny committed
 * vocabularies (tests/fuzz/data, written by mkcorpus_engine), a strict
 * UTF-8 check, and decoding ids through the streaming detokenizer.
 */
#ifndef KTX_TESTS_FUZZ_FUZZ_UTIL_H
#define KTX_TESTS_FUZZ_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ktx_tokenizer;

/* One tiny vocabulary per pre-tokenizer ktx supports. */
#define FUZZ_N_VOCAB 3

/* The i-th vocabulary (0: deepseek-v3, 1: deepseek-llm, 2: deepseek-coder),
 * loaded on first use and kept for the process; aborts when it cannot be
 * loaded, since every input would then test nothing. */
const struct ktx_tokenizer *fuzz_vocab(int i);

/* True when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF). */
bool fuzz_utf8_valid(const char *s, size_t n);

/* Decodes ids one at a time through a ktx_detok (flags as ktx_detok_new)
 * and returns the concatenated text (malloc'ed, *len bytes); aborts when
 * the detokenizer fails, which it must not for ids in range. */
char *fuzz_detok_stream(const struct ktx_tokenizer *tok, unsigned flags, const int32_t *ids,
    size_t n, size_t *len);

#endif
