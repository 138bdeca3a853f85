/*
 * ktx-run.c - run, inspect and check a model from the command line.
 *
 * Only option parsing lives here; each mode is a run_* function in its own
 * file. The flags are a contract that scripts and tests rely on.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ktx.h"
#include "tools/ktx-run.h"

static const char usage_text[] =
    "usage: ktx-run --info MODEL\n"
    "       ktx-run -m MODEL --info\n"
    "       ktx-run -m MODEL --tokenize FILE [--special]\n"
    "       ktx-run -m MODEL --dequant TENSOR OUT.f32\n"
    "       ktx-run -m MODEL --tokens 1,2,3 --logits OUT.f32\n"
    "       ktx-run -m MODEL --tokens 1,2,3 --greedy N\n"
    "       ktx-run -m MODEL -p TEXT [--chat] [-n N] [--temp T] [--seed S]\n"
    "       ktx-run -m MODEL --perplexity FILE\n"
    "       ktx-run -m MODEL --kl-divergence FILE | --tokens 1,2,3 --kl-divergence\n"
    "       ktx-run -m MODEL --bench [--prompt-tokens N] [--gen-tokens N] [--sessions N]\n"
    "\n"
    "  -m, --model FILE       the GGUF model\n"
    "      --info             print architecture, hyper-parameters and tensor types\n"
    "      --tokenize FILE    print the ids of FILE's content (no BOS), comma-separated\n"
    "      --special          parse special-token text while tokenizing\n"
    "      --dequant T OUT    write tensor T dequantized to float32 little-endian\n"
    "      --tokens LIST      comma-separated token ids to evaluate\n"
    "      --logits OUT       write float32 logits [n_tokens][n_vocab] of every position\n"
    "      --greedy N         print N greedily generated ids\n"
    "  -p, --prompt TEXT      generate text from TEXT, streaming it\n"
    "      --chat             wrap the prompt in the model's chat template\n"
    "  -n, --n-predict N      tokens to generate (default 128)\n"
    "      --temp T           sampling temperature (0 = greedy; default 0.6)\n"
    "      --top-k K          keep the K most likely tokens (0 = off)\n"
    "      --top-p P          nucleus sampling (1 = off; default 0.95)\n"
    "      --min-p P          drop tokens under P times the top probability\n"
    "      --repeat-penalty R penalise recently generated tokens (1 = off)\n"
    "      --seed S           random seed (reproducible output)\n"
    "      --perplexity FILE  perplexity of the model on FILE's text\n"
    "      --kl-divergence [FILE]  run FILE's text (or --tokens) through --path and\n"
    "                         --kl-base; print mean/max KL, top-1 agreement and\n"
    "                         both perplexities as one JSON object\n"
    "      --kl-base PATH     the baseline path (default ref)\n"
    "      --kl-reference F   baseline logits from a float32 file [n_tokens][n_vocab]\n"
    "                         (with --tokens) instead of a path\n"
    "      --bench            time prefill (after one untimed, as a warm-up) and\n"
    "                         decode, print one JSON object\n"
    "      --prompt-tokens N  --bench: prompt length (default 512)\n"
    "      --gen-tokens N     --bench: decode steps (default 16)\n"
    "      --sessions N       --bench: sessions decoded together (default 1)\n"
    "      --path PATH        compute path: fast (default, SIMD kernels) or ref\n"
    "      --attn PATH        attention path: absorbed (default) or naive\n"
    "      --cache-type T     latent KV cache elements on the fast path: f32\n"
    "                         (default), f16 or bf16\n"
    "      --load MODE        how the weights reach memory: auto (default: read\n"
    "                         when the file fits in 3/4 of the available memory),\n"
    "                         read (into memory, huge pages) or mmap (the file)\n"
    "      --no-repack        keep read weights in the file's layout (the fast path\n"
    "                         otherwise interleaves rows where it has kernels for it)\n"
    "      --act-residual SET fast path: matmuls whose 8-bit activations get a\n"
    "                         residual row (about 16 bits, twice the dot work):\n"
    "                         all, none, or a list of attn,dense,routed,output\n"
    "      --experts N        routed experts per token (default: the model's)\n"
    "      --ctx N            context length\n"
    "  -t, --threads N        compute threads (default: all CPUs)\n"
    "  -h, --help             this text\n"
    "  -V, --version          the version\n"
    "\n"
    "Exit status: 0 success, 1 the model, input or run failed, 2 bad usage.\n";

enum {
	OPT_INFO = 256, OPT_TOKENIZE, OPT_SPECIAL, OPT_DEQUANT, OPT_TOKENS, OPT_LOGITS,
	OPT_GREEDY, OPT_CHAT, OPT_TEMP, OPT_TOPK, OPT_TOPP, OPT_MINP, OPT_REPEAT,
	OPT_SEED, OPT_PERPLEXITY, OPT_ATTN, OPT_EXPERTS, OPT_CTX, OPT_KL, OPT_KL_BASE,
	OPT_KL_REF, OPT_BENCH, OPT_PROMPT_TOKENS, OPT_GEN_TOKENS, OPT_SESSIONS, OPT_PATH,
	OPT_ACT_RESIDUAL, OPT_CACHE_TYPE, OPT_LOAD, OPT_NO_REPACK,
};

static const struct option long_options[] = {
	{"model", required_argument, NULL, 'm'},
	{"threads", required_argument, NULL, 't'},
	{"prompt", required_argument, NULL, 'p'},
	{"n-predict", required_argument, NULL, 'n'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"info", no_argument, NULL, OPT_INFO},
	{"tokenize", required_argument, NULL, OPT_TOKENIZE},
	{"special", no_argument, NULL, OPT_SPECIAL},
	{"dequant", required_argument, NULL, OPT_DEQUANT},
	{"tokens", required_argument, NULL, OPT_TOKENS},
	{"logits", required_argument, NULL, OPT_LOGITS},
	{"greedy", required_argument, NULL, OPT_GREEDY},
	{"chat", no_argument, NULL, OPT_CHAT},
	{"temp", required_argument, NULL, OPT_TEMP},
	{"top-k", required_argument, NULL, OPT_TOPK},
	{"top-p", required_argument, NULL, OPT_TOPP},
	{"min-p", required_argument, NULL, OPT_MINP},
	{"repeat-penalty", required_argument, NULL, OPT_REPEAT},
	{"seed", required_argument, NULL, OPT_SEED},
	{"perplexity", required_argument, NULL, OPT_PERPLEXITY},
	{"attn", required_argument, NULL, OPT_ATTN},
	{"experts", required_argument, NULL, OPT_EXPERTS},
	{"ctx", required_argument, NULL, OPT_CTX},
	{"kl-divergence", optional_argument, NULL, OPT_KL},
	{"kl-base", required_argument, NULL, OPT_KL_BASE},
	{"kl-reference", required_argument, NULL, OPT_KL_REF},
	{"bench", no_argument, NULL, OPT_BENCH},
	{"prompt-tokens", required_argument, NULL, OPT_PROMPT_TOKENS},
	{"gen-tokens", required_argument, NULL, OPT_GEN_TOKENS},
	{"sessions", required_argument, NULL, OPT_SESSIONS},
	{"path", required_argument, NULL, OPT_PATH},
	{"act-residual", required_argument, NULL, OPT_ACT_RESIDUAL},
	{"cache-type", required_argument, NULL, OPT_CACHE_TYPE},
	{"load", required_argument, NULL, OPT_LOAD},
	{"no-repack", no_argument, NULL, OPT_NO_REPACK},
	{NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a usage error and returns the usage exit status. */
static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ktx-run: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ktx-run --help'.\n", stderr);
	return RUN_EXIT_USAGE;
}

/* Parses a whole decimal integer in [lo, hi]; false on anything else. */
static int
parse_int(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return 0;
	*out = v;
	return 1;
}

static int
parse_float(const char *s, float lo, float hi, float *out)
{
	char *end;
	float v;

	errno = 0;
	v = strtof(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return 0;
	*out = v;
	return 1;
}

int
main(int argc, char **argv)
{
	struct run_opts o = {
		.n_predict = 128, .temp = 0.6f, .top_p = 0.95f, .min_p = 0.0f,
		.repeat_penalty = 1.0f, .greedy = -1, .prompt_tokens = 512, .gen_tokens = 16,
		.sessions = 1, .act_residual = -1, .cache_type = -1, .load = -1,
	};
	int info = 0, c;
	long long v;

	while ((c = getopt_long(argc, argv, "m:t:p:n:hV", long_options, NULL)) != -1) {
		switch (c) {
		case 'm': o.model = optarg; break;
		case 't':
			if (!parse_int(optarg, 1, 4096, &v))
				return usage_error("bad thread count '%s' (want 1..4096)", optarg);
			o.threads = (int)v;
			break;
		case 'p': o.prompt = optarg; break;
		case 'n':
			if (!parse_int(optarg, 0, INT_MAX, &v))
				return usage_error("bad token count '%s'", optarg);
			o.n_predict = (int)v;
			break;
		case 'h': fputs(usage_text, stdout); return RUN_EXIT_OK;
		case 'V': puts("ktx-run " PACKAGE_VERSION); return RUN_EXIT_OK;
		case OPT_INFO: info = 1; break;
		case OPT_TOKENIZE: o.tokenize_file = optarg; break;
		case OPT_SPECIAL: o.special = true; break;
		case OPT_DEQUANT:
			if (optind >= argc)
				return usage_error("%s", "--dequant needs TENSOR and OUT.f32");
			o.dequant_tensor = optarg;
			o.dequant_out = argv[optind++];
			break;
		case OPT_TOKENS: o.tokens = optarg; break;
		case OPT_LOGITS: o.logits_out = optarg; break;
		case OPT_GREEDY:
			if (!parse_int(optarg, 0, INT_MAX, &v))
				return usage_error("bad --greedy count '%s'", optarg);
			o.greedy = (int)v;
			break;
		case OPT_CHAT: o.chat = true; break;
		case OPT_TEMP:
			if (!parse_float(optarg, 0.0f, 100.0f, &o.temp))
				return usage_error("bad temperature '%s' (want 0..100)", optarg);
			break;
		case OPT_TOPK:
			if (!parse_int(optarg, 0, INT_MAX, &v))
				return usage_error("bad --top-k '%s'", optarg);
			o.top_k = (int)v;
			break;
		case OPT_TOPP:
			if (!parse_float(optarg, 0.0f, 1.0f, &o.top_p))
				return usage_error("bad --top-p '%s' (want 0..1)", optarg);
			break;
		case OPT_MINP:
			if (!parse_float(optarg, 0.0f, 1.0f, &o.min_p))
				return usage_error("bad --min-p '%s' (want 0..1)", optarg);
			break;
		case OPT_REPEAT:
			if (!parse_float(optarg, 0.0f, 100.0f, &o.repeat_penalty))
				return usage_error("bad --repeat-penalty '%s'", optarg);
			break;
		case OPT_SEED:
			if (!parse_int(optarg, 0, LLONG_MAX, &v))
				return usage_error("bad seed '%s'", optarg);
			o.seed = (uint64_t)v;
			o.seed_set = true;
			break;
		case OPT_PERPLEXITY: o.perplexity_file = optarg; break;
		case OPT_ATTN:
			if (strcmp(optarg, "absorbed") != 0 && strcmp(optarg, "naive") != 0)
				return usage_error("bad --attn '%s' (want absorbed or naive)", optarg);
			o.attn = optarg;
			break;
		case OPT_EXPERTS:
			if (!parse_int(optarg, 1, 1024, &v))
				return usage_error("bad --experts '%s'", optarg);
			o.n_expert_used = (int)v;
			break;
		case OPT_CTX:
			if (!parse_int(optarg, 1, INT_MAX, &v))
				return usage_error("bad --ctx '%s'", optarg);
			o.ctx = (int)v;
			break;
		case OPT_KL:
			o.kl = true;
			/* "--kl-divergence FILE" as well as "=FILE". */
			if (optarg == NULL && optind < argc && argv[optind][0] != '-')
				optarg = argv[optind++];
			o.kl_file = optarg;
			break;
		case OPT_KL_BASE:
			if (run_path_of(optarg) < 0)
				return usage_error("bad --kl-base '%s' (want fast or ref)", optarg);
			o.kl_base = optarg;
			break;
		case OPT_KL_REF: o.kl_reference = optarg; break;
		case OPT_BENCH: o.bench = true; break;
		case OPT_PROMPT_TOKENS:
			if (!parse_int(optarg, 1, 1 << 20, &v))
				return usage_error("bad --prompt-tokens '%s'", optarg);
			o.prompt_tokens = (int)v;
			break;
		case OPT_GEN_TOKENS:
			if (!parse_int(optarg, 1, 1 << 20, &v))
				return usage_error("bad --gen-tokens '%s'", optarg);
			o.gen_tokens = (int)v;
			break;
		case OPT_SESSIONS:
			if (!parse_int(optarg, 1, 1024, &v))
				return usage_error("bad --sessions '%s' (want 1..1024)", optarg);
			o.sessions = (int)v;
			break;
		case OPT_PATH:
			if (run_path_of(optarg) < 0)
				return usage_error("bad --path '%s' (want fast or ref)", optarg);
			o.path = optarg;
			break;
		case OPT_ACT_RESIDUAL: {
			unsigned set;

			if (ktx_act_residual_parse(optarg, &set) != 0)
				return usage_error("bad --act-residual '%s' (want all, none or a "
				    "list of attn,dense,routed,output)", optarg);
			o.act_residual = (int)set;
			break;
		}
		case OPT_CACHE_TYPE: {
			enum ktx_cache_type ct;

			if (ktx_cache_type_parse(optarg, &ct) != 0)
				return usage_error("bad --cache-type '%s' (want f32, f16 or bf16)",
				    optarg);
			o.cache_type = (int)ct;
			break;
		}
		case OPT_LOAD: {
			enum ktx_load l;

			if (ktx_load_parse(optarg, &l) != 0)
				return usage_error("bad --load '%s' (want auto, read or mmap)", optarg);
			o.load = (int)l;
			break;
		}
		case OPT_NO_REPACK:
			o.no_repack = true;
			break;
		default:
			fputs("Try 'ktx-run --help'.\n", stderr);
			return RUN_EXIT_USAGE;
		}
	}
	if (info && o.model == NULL && optind < argc)
		o.model = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o.model == NULL)
		return usage_error("%s", "no model given (-m MODEL)");

	if (info)
		return run_info(&o);
	if (o.tokenize_file)
		return run_tokenize(&o);
	if (o.dequant_tensor)
		return run_dequant(&o);
	if (o.bench)
		return run_bench(&o);
	if (o.kl) {
		if ((o.kl_file == NULL) == (o.tokens == NULL))
			return usage_error("%s", "--kl-divergence needs a FILE or --tokens (not both)");
		if (o.kl_reference != NULL && o.tokens == NULL)
			return usage_error("%s", "--kl-reference goes with --tokens");
		return run_kl(&o);
	}
	if (o.tokens && o.logits_out)
		return run_logits(&o);
	if (o.tokens && o.greedy >= 0)
		return run_greedy(&o);
	if (o.tokens)
		return usage_error("%s", "--tokens needs --logits OUT or --greedy N");
	if (o.perplexity_file)
		return run_perplexity(&o);
	if (o.prompt)
		return run_generate(&o);
	return usage_error("%s", "nothing to do: give --info, --tokenize, --dequant, --tokens, -p, "
	    "--perplexity, --kl-divergence or --bench");
}
