/*
 * ktx-run.h - the options of ktx-run and its modes, one file per mode.
 */
#ifndef KTX_TOOLS_KTX_RUN_H
#define KTX_TOOLS_KTX_RUN_H

#include <stdbool.h>
#include <stdint.h>

struct run_opts {
	const char *model;        /* -m */
	int threads;              /* -t, 0: all CPUs */
	/* --tokenize FILE [--special] */
	const char *tokenize_file;
	bool special;
	/* --dequant TENSOR OUT */
	const char *dequant_tensor, *dequant_out;
	/* --tokens LIST with --logits OUT or --greedy N */
	const char *tokens;
	const char *logits_out;
	int greedy;
	/* -p TEXT [--chat] [-n N] [sampling] */
	const char *prompt;
	bool chat;
	int n_predict;
	float temp, top_p, min_p, repeat_penalty;
	int top_k;
	uint64_t seed;
	bool seed_set;
	/* --perplexity FILE */
	const char *perplexity_file;
	/* engine knobs */
	const char *attn;         /* --attn absorbed|naive */
	int n_expert_used;        /* --experts N, 0: the model's */
	int ctx;                  /* --ctx N, 0: default */
};

/* Each mode returns the process exit status and prints its own errors. */
int run_info(const struct run_opts *o);
int run_dequant(const struct run_opts *o);
int run_tokenize(const struct run_opts *o);
int run_logits(const struct run_opts *o);
int run_greedy(const struct run_opts *o);
int run_generate(const struct run_opts *o);
int run_perplexity(const struct run_opts *o);

/* Exit statuses of ktx-run (documented in its --help). */
#define RUN_EXIT_OK 0
#define RUN_EXIT_FAIL 1  /* the model or input was bad, or the run failed */
#define RUN_EXIT_USAGE 2 /* bad command line */

#endif
