/* run_tokenize.c - placeholder until the tokenizer lands (not for commit). */
#include <stdio.h>
#include "tools/ktx-run.h"
int run_tokenize(const struct run_opts *o) { (void)o; fputs("ktx-run: --tokenize is not built yet\n", stderr); return RUN_EXIT_FAIL; }
