/*
 * ktx-mkmodel.c - writes synthetic DeepSeek (deepseek2) GGUF models with
 * seeded random weights, for tests, benchmarks and the demo model.
 *
 * Only option parsing and checking live here; mkmodel_build.c lays the
 * model out and mkmodel_fill.c makes the values.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/gguf.h"
#include "engine/quant.h"
#include "tools/mkmodel.h"

static const char usage_text[] =
    "usage: ktx-mkmodel [options] -o OUT.gguf\n"
    "\n"
    "Writes a deepseek2 GGUF with seeded random weights. Start from a preset and\n"
    "change what you need; the file follows llama.cpp's metadata conventions.\n"
    "\n"
    "  -o, --output FILE        the GGUF to write (required)\n"
    "      --preset NAME        tiny (default: a small V3-style model), v2-lite\n"
    "                           (DeepSeek-V2-Lite widths) or v3 (DeepSeek-V3/R1\n"
    "                           widths); other options change the preset\n"
    "      --vocab FILE         copy the tokenizer.* keys of FILE (a GGUF); the\n"
    "                           vocabulary size follows it\n"
    "      --vocab-size N       vocabulary size without --vocab (no tokenizer keys)\n"
    "      --seed N             random seed (default 1); same seed, same file\n"
    "      --name TEXT          general.name\n"
    "\n"
    "Widths and counts:\n"
    "      --embd N             hidden size (embedding_length)\n"
    "      --layers N           transformer blocks\n"
    "      --dense N            leading dense blocks (leading_dense_block_count)\n"
    "      --nextn N            extra multi-token-prediction blocks (default 0)\n"
    "      --heads N            attention heads\n"
    "      --q-lora N           q_lora_rank; 0 = plain attn_q as in V2-Lite\n"
    "      --kv-lora N          kv_lora_rank\n"
    "      --rope N             rope dimensions per head (qk_rope_head_dim)\n"
    "      --nope N             non-rope query/key dimensions per head\n"
    "      --v-dim N            value dimensions per head\n"
    "      --ff N               dense feed-forward width\n"
    "      --expert-ff N        expert feed-forward width\n"
    "      --experts N          routed experts\n"
    "      --experts-used N     experts chosen per token\n"
    "      --shared N           shared experts\n"
    "      --groups N           expert groups (0 = no group-limited routing)\n"
    "      --groups-used N      groups chosen per token\n"
    "      --ctx N              context_length\n"
    "\n"
    "Semantics:\n"
    "      --routing v2|v3      v2: softmax, no bias, no weight norm;\n"
    "                           v3: sigmoid + exp_probs_b bias, normalised\n"
    "      --scale X            expert_weights_scale (routed scaling factor)\n"
    "      --attn kv_b|k_b      attention layout: legacy attn_kv_b, or the newer\n"
    "                           attn_k_b + attn_v_b (head_count_kv 1)\n"
    "      --mscale X           YaRN mscale_all_dim\n"
    "      --yarn-factor X      YaRN factor (1 = no rope scaling keys)\n"
    "      --yarn-beta          also write yarn_beta_fast 32 / yarn_beta_slow 1\n"
    "\n"
    "Element types (f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_K q3_K q4_K q5_K q6_K\n"
    "iq1_s iq1_m iq2_xxs iq2_xs iq2_s iq3_xxs iq3_s iq4_nl iq4_xs); norms and the\n"
    "router stay f32. A tensor whose rows are not whole blocks of its type gets q8_0\n"
    "(or f16), as llama-quantize does.\n"
    "      --type T             every weight not given a type below (default f32)\n"
    "      --type-embd T        token_embd\n"
    "      --type-output T      output\n"
    "      --type-attn T        attention projections\n"
    "      --type-dense T       dense feed-forward blocks\n"
    "      --type-shexp T       shared experts\n"
    "      --type-experts T     routed experts (gate and up; down too unless given)\n"
    "      --type-experts-down T  routed experts' down projection\n"
    "      --fill MODE          auto (default): quantize random floats, or write random\n"
    "                           blocks with valid scales where ktx cannot quantize or a\n"
    "                           tensor has over 2^20 elements; quantize; blocks (fast:\n"
    "                           gigabytes per second)\n"
    "  -t, --threads N          threads (default: all CPUs)\n"
    "  -q, --quiet              print nothing on success\n"
    "  -h, --help               this text\n"
    "  -V, --version            the version\n"
    "\n"
    "Exit status: 0 written, 1 the file could not be made, 2 bad usage.\n";

enum {
	OPT_PRESET = 256, OPT_VOCAB, OPT_VOCAB_SIZE, OPT_SEED, OPT_NAME, OPT_EMBD, OPT_LAYERS,
	OPT_DENSE, OPT_NEXTN, OPT_HEADS, OPT_QLORA, OPT_KVLORA, OPT_ROPE, OPT_NOPE, OPT_VDIM,
	OPT_FF, OPT_EXPERT_FF, OPT_EXPERTS, OPT_USED, OPT_SHARED, OPT_GROUPS, OPT_GROUPS_USED,
	OPT_CTX, OPT_ROUTING, OPT_SCALE, OPT_ATTN, OPT_MSCALE, OPT_YARN_FACTOR, OPT_YARN_BETA,
	OPT_TYPE, OPT_TYPE_EMBD, OPT_TYPE_OUTPUT, OPT_TYPE_ATTN, OPT_TYPE_DENSE, OPT_TYPE_SHEXP,
	OPT_TYPE_EXPERTS, OPT_TYPE_DOWN, OPT_FILL,
};

static const struct option long_options[] = {
	{"output", required_argument, NULL, 'o'},
	{"threads", required_argument, NULL, 't'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"preset", required_argument, NULL, OPT_PRESET},
	{"vocab", required_argument, NULL, OPT_VOCAB},
	{"vocab-size", required_argument, NULL, OPT_VOCAB_SIZE},
	{"seed", required_argument, NULL, OPT_SEED},
	{"name", required_argument, NULL, OPT_NAME},
	{"embd", required_argument, NULL, OPT_EMBD},
	{"layers", required_argument, NULL, OPT_LAYERS},
	{"dense", required_argument, NULL, OPT_DENSE},
	{"nextn", required_argument, NULL, OPT_NEXTN},
	{"heads", required_argument, NULL, OPT_HEADS},
	{"q-lora", required_argument, NULL, OPT_QLORA},
	{"kv-lora", required_argument, NULL, OPT_KVLORA},
	{"rope", required_argument, NULL, OPT_ROPE},
	{"nope", required_argument, NULL, OPT_NOPE},
	{"v-dim", required_argument, NULL, OPT_VDIM},
	{"ff", required_argument, NULL, OPT_FF},
	{"expert-ff", required_argument, NULL, OPT_EXPERT_FF},
	{"experts", required_argument, NULL, OPT_EXPERTS},
	{"experts-used", required_argument, NULL, OPT_USED},
	{"shared", required_argument, NULL, OPT_SHARED},
	{"groups", required_argument, NULL, OPT_GROUPS},
	{"groups-used", required_argument, NULL, OPT_GROUPS_USED},
	{"ctx", required_argument, NULL, OPT_CTX},
	{"routing", required_argument, NULL, OPT_ROUTING},
	{"scale", required_argument, NULL, OPT_SCALE},
	{"attn", required_argument, NULL, OPT_ATTN},
	{"mscale", required_argument, NULL, OPT_MSCALE},
	{"yarn-factor", required_argument, NULL, OPT_YARN_FACTOR},
	{"yarn-beta", no_argument, NULL, OPT_YARN_BETA},
	{"type", required_argument, NULL, OPT_TYPE},
	{"type-embd", required_argument, NULL, OPT_TYPE_EMBD},
	{"type-output", required_argument, NULL, OPT_TYPE_OUTPUT},
	{"type-attn", required_argument, NULL, OPT_TYPE_ATTN},
	{"type-dense", required_argument, NULL, OPT_TYPE_DENSE},
	{"type-shexp", required_argument, NULL, OPT_TYPE_SHEXP},
	{"type-experts", required_argument, NULL, OPT_TYPE_EXPERTS},
	{"type-experts-down", required_argument, NULL, OPT_TYPE_DOWN},
	{"fill", required_argument, NULL, OPT_FILL},
	{NULL, 0, NULL, 0},
};

/* A small V3-style model like the oracle's v3-f32. */
static const struct mk_spec preset_tiny = {
	.seed = 1, .n_embd = 128, .n_layer = 3, .n_dense_lead = 1, .n_head = 8,
	.q_lora = 128, .kv_lora = 128, .qk_rope = 16, .qk_nope = 32, .v_head = 32,
	.n_ff = 384, .n_ff_exp = 64, .n_expert = 16, .n_expert_used = 4, .n_shared = 1,
	.n_vocab = 4020, .ctx_len = 163840, .yarn_orig_ctx = 4096, .rope_base = 10000.0f,
	.rms_eps = 1e-6f, .yarn_factor = 40.0f, .mscale_all_dim = 1.0f, .weights_scale = 2.5f,
	.routing = MK_ROUTE_V3, .layout = MK_LAYOUT_KV_B,
};

/* DeepSeek-V2-Lite's config.json. */
static const struct mk_spec preset_v2lite = {
	.seed = 1, .n_embd = 2048, .n_layer = 27, .n_dense_lead = 1, .n_head = 16,
	.q_lora = 0, .kv_lora = 512, .qk_rope = 64, .qk_nope = 128, .v_head = 128,
	.n_ff = 10944, .n_ff_exp = 1408, .n_expert = 64, .n_expert_used = 6, .n_shared = 2,
	.n_vocab = 102400, .ctx_len = 163840, .yarn_orig_ctx = 4096, .rope_base = 10000.0f,
	.rms_eps = 1e-6f, .yarn_factor = 40.0f, .mscale_all_dim = 0.707f, .weights_scale = 1.0f,
	.routing = MK_ROUTE_V2, .layout = MK_LAYOUT_KV_B,
};

/* DeepSeek-V3's (and R1's) config.json. */
static const struct mk_spec preset_v3 = {
	.seed = 1, .n_embd = 7168, .n_layer = 61, .n_dense_lead = 3, .n_head = 128,
	.q_lora = 1536, .kv_lora = 512, .qk_rope = 64, .qk_nope = 128, .v_head = 128,
	.n_ff = 18432, .n_ff_exp = 2048, .n_expert = 256, .n_expert_used = 8, .n_shared = 1,
	.n_group = 8, .n_group_used = 4, .n_vocab = 129280, .ctx_len = 163840,
	.yarn_orig_ctx = 4096, .rope_base = 10000.0f, .rms_eps = 1e-6f, .yarn_factor = 40.0f,
	.mscale_all_dim = 1.0f, .weights_scale = 2.5f, .routing = MK_ROUTE_V3,
	.layout = MK_LAYOUT_K_B,
};

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "ktx-mkmodel: %s '%s'\nTry 'ktx-mkmodel --help'.\n", msg, arg);
	return 2;
}

/* Parses a whole decimal number in [lo, hi]. */
static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
		return 0;
	*out = (uint32_t)v;
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

/* Parses a type name (any case) that ktx-mkmodel can make and ktx can read
 * back; q8_K is an activation format that GGUF tools do not load. */
static int
parse_type(const char *s, enum ktx_type *out)
{
	for (uint32_t t = 0; t < KTX_TYPE_COUNT_; t++) {
		const struct ktx_type_traits *tr = ktx_type_traits(t);

		if (tr == NULL || strcasecmp(tr->name, s) != 0)
			continue;
		if (!tr->can_dequantize || t == KTX_TYPE_Q8_K ||
		    !(tr->can_quantize || mk_can_fill_blocks((enum ktx_type)t)))
			return 0;
		*out = (enum ktx_type)t;
		return 1;
	}
	return 0;
}

/* Checks that the widths make a model ktx and llama.cpp can run. */
static const char *
check_spec(const struct mk_spec *s)
{
	if (s->n_layer == 0 || s->n_dense_lead > s->n_layer)
		return "--dense must not exceed --layers (at least 1)";
	if (s->n_dense_lead > 0 && s->n_ff == 0)
		return "dense blocks need --ff";
	if (s->qk_rope % 2 != 0)
		return "--rope must be even (RoPE rotates pairs)";
	if (s->n_expert_used == 0 || s->n_expert_used > s->n_expert)
		return "--experts-used must be 1 to --experts";
	if (s->n_group > 0) {
		if (s->n_expert % s->n_group != 0)
			return "--groups must divide --experts";
		if (s->n_group_used == 0 || s->n_group_used > s->n_group)
			return "--groups-used must be 1 to --groups";
		if (s->n_expert_used > s->n_group_used * (s->n_expert / s->n_group))
			return "--experts-used exceeds the experts in the chosen groups";
	}
	return NULL;
}

/* The vocabulary size of a tokenizer GGUF. */
static int
vocab_size(const char *path, uint32_t *n)
{
	struct gguf_file *f;
	struct ktx_err err;
	enum gguf_vtype et;
	uint64_t count;
	int rc;

	if (gguf_open(path, &f, &err) != 0) {
		fprintf(stderr, "ktx-mkmodel: %s\n", err.msg);
		return 1;
	}
	rc = gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &count, &err);
	gguf_close(f);
	if (rc != 0 || et != GGUF_VT_STRING || count == 0 || count > UINT32_MAX) {
		fprintf(stderr, "ktx-mkmodel: %s has no usable tokenizer.ggml.tokens array\n", path);
		return 1;
	}
	*n = (uint32_t)count;
	return 0;
}

/* Applies one option to s; returns 0, or the exit status of a usage error. */
static int
apply(struct mk_spec *s, int c, const char *arg, enum ktx_type *all, bool *typed)
{
	static const struct { int opt; size_t off; uint32_t lo, hi; } counts[] = {
		{ OPT_EMBD, offsetof(struct mk_spec, n_embd), 1, 1 << 20 },
		{ OPT_LAYERS, offsetof(struct mk_spec, n_layer), 1, 1024 },
		{ OPT_DENSE, offsetof(struct mk_spec, n_dense_lead), 0, 1024 },
		{ OPT_NEXTN, offsetof(struct mk_spec, n_nextn), 0, 16 },
		{ OPT_HEADS, offsetof(struct mk_spec, n_head), 1, 4096 },
		{ OPT_QLORA, offsetof(struct mk_spec, q_lora), 0, 1 << 20 },
		{ OPT_KVLORA, offsetof(struct mk_spec, kv_lora), 1, 1 << 20 },
		{ OPT_ROPE, offsetof(struct mk_spec, qk_rope), 2, 4096 },
		{ OPT_NOPE, offsetof(struct mk_spec, qk_nope), 1, 4096 },
		{ OPT_VDIM, offsetof(struct mk_spec, v_head), 1, 4096 },
		{ OPT_FF, offsetof(struct mk_spec, n_ff), 1, 1 << 20 },
		{ OPT_EXPERT_FF, offsetof(struct mk_spec, n_ff_exp), 1, 1 << 20 },
		{ OPT_EXPERTS, offsetof(struct mk_spec, n_expert), 1, 4096 },
		{ OPT_USED, offsetof(struct mk_spec, n_expert_used), 1, 4096 },
		{ OPT_SHARED, offsetof(struct mk_spec, n_shared), 0, 64 },
		{ OPT_GROUPS, offsetof(struct mk_spec, n_group), 0, 4096 },
		{ OPT_GROUPS_USED, offsetof(struct mk_spec, n_group_used), 0, 4096 },
		{ OPT_CTX, offsetof(struct mk_spec, ctx_len), 1, UINT32_MAX },
		{ OPT_VOCAB_SIZE, offsetof(struct mk_spec, n_vocab), 1, 1 << 24 },
	};
	static const struct { int opt; enum mk_class c; } classes[] = {
		{ OPT_TYPE_EMBD, MK_EMBD }, { OPT_TYPE_OUTPUT, MK_OUTPUT }, { OPT_TYPE_ATTN, MK_ATTN },
		{ OPT_TYPE_DENSE, MK_DENSE }, { OPT_TYPE_SHEXP, MK_SHEXP },
		{ OPT_TYPE_EXPERTS, MK_EXPS }, { OPT_TYPE_DOWN, MK_EXPS_DOWN },
	};
	unsigned long long seed;
	enum ktx_type t;
	char *end;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (counts[i].opt == c) {
			if (!parse_u32(arg, counts[i].lo, counts[i].hi,
			    (uint32_t *)((char *)s + counts[i].off)))
				return usage_error("bad number", arg);
			return 0;
		}
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (classes[i].opt == c) {
			if (!parse_type(arg, &t))
				return usage_error("unknown or unreadable element type", arg);
			s->type[classes[i].c] = t;
			typed[classes[i].c] = true;
			if (classes[i].c == MK_EXPS && !typed[MK_EXPS_DOWN])
				s->type[MK_EXPS_DOWN] = t;
			return 0;
		}
	switch (c) {
	case 'o': s->out = arg; return 0;
	case OPT_VOCAB: s->vocab = arg; return 0;
	case OPT_NAME: s->name = arg; return 0;
	case OPT_SEED:
		errno = 0;
		seed = strtoull(arg, &end, 10);
		if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-')
			return usage_error("bad seed", arg);
		s->seed = seed;
		return 0;
	case OPT_ROUTING:
		if (strcmp(arg, "v2") != 0 && strcmp(arg, "v3") != 0)
			return usage_error("bad --routing (want v2 or v3)", arg);
		s->routing = arg[1] == '2' ? MK_ROUTE_V2 : MK_ROUTE_V3;
		return 0;
	case OPT_ATTN:
		if (strcmp(arg, "kv_b") != 0 && strcmp(arg, "k_b") != 0)
			return usage_error("bad --attn (want kv_b or k_b)", arg);
		s->layout = strcmp(arg, "k_b") == 0 ? MK_LAYOUT_K_B : MK_LAYOUT_KV_B;
		return 0;
	case OPT_SCALE:
		return parse_float(arg, 0.0f, 1000.0f, &s->weights_scale) ? 0 :
		    usage_error("bad --scale", arg);
	case OPT_MSCALE:
		return parse_float(arg, 0.0f, 100.0f, &s->mscale_all_dim) ? 0 :
		    usage_error("bad --mscale", arg);
	case OPT_YARN_FACTOR:
		return parse_float(arg, 1.0f, 1000.0f, &s->yarn_factor) ? 0 :
		    usage_error("bad --yarn-factor (want 1..1000)", arg);
	case OPT_YARN_BETA: s->yarn_beta_keys = true; return 0;
	case OPT_TYPE:
		return parse_type(arg, all) ? 0 : usage_error("unknown or unreadable element type", arg);
	case OPT_FILL:
		if (strcmp(arg, "auto") == 0)
			s->fill = MK_FILL_AUTO;
		else if (strcmp(arg, "quantize") == 0)
			s->fill = MK_FILL_QUANTIZE;
		else if (strcmp(arg, "blocks") == 0)
			s->fill = MK_FILL_BLOCKS;
		else
			return usage_error("bad --fill (want auto, quantize or blocks)", arg);
		return 0;
	case 't':
		return parse_u32(arg, 1, 4096, (uint32_t *)&s->threads) ? 0 :
		    usage_error("bad thread count", arg);
	case 'q': s->quiet = true; return 0;
	}
	return 2;
}

int
main(int argc, char **argv)
{
	struct mk_spec s = preset_tiny;
	enum ktx_type all = KTX_TYPE_F32;
	bool typed[MK_NCLASS] = { false };
	struct mk_stats st;
	struct ktx_err err;
	struct timespec t0, t1;
	const char *bad;
	int c, rc;

	/* The preset is the base that every other option changes. */
	for (int i = 1; i < argc - 1; i++)
		if (strcmp(argv[i], "--preset") == 0) {
			if (strcmp(argv[i + 1], "tiny") == 0)
				s = preset_tiny;
			else if (strcmp(argv[i + 1], "v2-lite") == 0)
				s = preset_v2lite;
			else if (strcmp(argv[i + 1], "v3") == 0)
				s = preset_v3;
			else
				return usage_error("unknown preset (want tiny, v2-lite or v3)", argv[i + 1]);
		}
	while ((c = getopt_long(argc, argv, "o:t:qhV", long_options, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': puts("ktx-mkmodel " PACKAGE_VERSION); return 0;
		case OPT_PRESET: break;
		case '?': fputs("Try 'ktx-mkmodel --help'.\n", stderr); return 2;
		default:
			if ((rc = apply(&s, c, optarg, &all, typed)) != 0)
				return rc;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (s.out == NULL)
		return usage_error("no output given (-o FILE)", "");
	for (int k = 0; k < MK_NCLASS; k++)
		if (!typed[k] && !(k == MK_EXPS_DOWN && typed[MK_EXPS]))
			s.type[k] = all;
	s.type[MK_NORM] = KTX_TYPE_F32;
	if (s.vocab != NULL && vocab_size(s.vocab, &s.n_vocab) != 0)
		return 1;
	if ((bad = check_spec(&s)) != NULL) {
		fprintf(stderr, "ktx-mkmodel: %s\n", bad);
		return 2;
	}
#ifdef _OPENMP
	if (s.threads > 0)
		omp_set_num_threads(s.threads);
#endif
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (mk_build(&s, &st, &err) != 0) {
		fprintf(stderr, "ktx-mkmodel: %s\n", err.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!s.quiet)
		printf("ktx-mkmodel: wrote %s: %" PRId64 " tensors, %" PRIu64 " parameters, %" PRIu64
		    " bytes of tensor data in %.2f s\n", s.out, st.n_tensors, st.params,
		    st.data_bytes, (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
