/* run_generate.c - placeholder until the forward pass lands (not for commit). */
#include <stdio.h>
#include "tools/ktx-run.h"
int run_logits(const struct run_opts *o) { (void)o; fputs("ktx-run: --logits is not built yet\n", stderr); return RUN_EXIT_FAIL; }
int run_greedy(const struct run_opts *o) { (void)o; fputs("ktx-run: --greedy is not built yet\n", stderr); return RUN_EXIT_FAIL; }
int run_generate(const struct run_opts *o) { (void)o; fputs("ktx-run: -p is not built yet\n", stderr); return RUN_EXIT_FAIL; }
int run_perplexity(const struct run_opts *o) { (void)o; fputs("ktx-run: --perplexity is not built yet\n", stderr); return RUN_EXIT_FAIL; }
