/*
 * ktx-run.h - the options of ktx-run and its modes, one file per mode.
 */
#ifndef KTX_TOOLS_KTX_RUN_H
#define KTX_TOOLS_KTX_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ktx_model;

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
	/* --kl-divergence [FILE] (or with --tokens) [--kl-base PATH] [--kl-reference F32] */
	bool kl;
	const char *kl_file;      /* text to tokenize; NULL: --tokens */
	const char *kl_base;      /* the baseline path, default "ref" */
	const char *kl_reference; /* stored baseline logits instead of a path */
	/* --bench [--prompt-tokens N] [--gen-tokens N] [--sessions N] */
	bool bench;
	int prompt_tokens, gen_tokens, sessions;
	/* engine knobs */
	const char *path;         /* --path fast|ref, NULL: the engine's default */
	const char *attn;         /* --attn absorbed|naive */
	int cache_type;           /* --cache-type, a KTX_CACHE_*; -1: the engine's default */
	int load;                 /* --load, a KTX_LOAD_*; -1: the engine's default */
	bool no_repack;           /* --no-repack */
	int n_expert_used;        /* --experts N, 0: the model's */
	int ctx;                  /* --ctx N, 0: default */
	int act_residual;         /* --act-residual: KTX_ACT_* set, -1: default */
};

/* Each mode returns the process exit status and prints its own errors. */
int run_info(const struct run_opts *o);
int run_dequant(const struct run_opts *o);
int run_tokenize(const struct run_opts *o);
int run_logits(const struct run_opts *o);
int run_greedy(const struct run_opts *o);
int run_generate(const struct run_opts *o);
int run_perplexity(const struct run_opts *o);
int run_kl(const struct run_opts *o);
int run_bench(const struct run_opts *o);

/* Parses "1,2,3" into a malloc'ed array; every id must be a whole number
 * in [0, INT32_MAX]. Prints its own error; -1 then. */
int run_parse_ids(const char *s, int32_t **out, size_t *n);
/* Reads a whole file (NUL-terminated copy); NULL with errno on failure. */
char *run_slurp(const char *path, size_t *len);
/* Prints s as a JSON string. */
void run_json_str(FILE *fp, const char *s);
/* The engine compute path a --path / --kl-base name means (-1: neither). */
int run_path_of(const char *name);
/* "fast" or "ref". */
const char *run_path_name(int path);
/* Loads o->model on one compute path (a KTX_PATH_*) with the command
 * line's knobs; prints its own error and returns -1 on failure. */
int run_load_path(const struct run_opts *o, int path, struct ktx_model **m);

/* Exit statuses of ktx-run (documented in its --help). */
#define RUN_EXIT_OK 0
#define RUN_EXIT_FAIL 1  /* the model or input was bad, or the run failed */
#define RUN_EXIT_USAGE 2 /* bad command line */

#endif
