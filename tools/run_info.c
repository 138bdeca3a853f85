/* run_info.c - placeholder until the GGUF work lands (not for commit). */
#include <stdio.h>
#include "tools/ktx-run.h"
int run_info(const struct run_opts *o) { (void)o; fputs("ktx-run: --info is not built yet\n", stderr); return RUN_EXIT_FAIL; }
int run_dequant(const struct run_opts *o) { (void)o; fputs("ktx-run: --dequant is not built yet\n", stderr); return RUN_EXIT_FAIL; }
