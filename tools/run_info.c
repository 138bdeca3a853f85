/*
 * run_info.c - ktx-run --info (what a model file holds, read from its header
 * only, so it is instant even on a 400 GB file) and --dequant (one tensor
 * written as float32 little-endian, for scripts and the oracle tests).
 */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "tools/ktx-run.h"

/* Renders a byte count as "5.3 MiB". */
static const char *
human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/* Renders a parameter count as "2.73 M" or "671.03 B". */
static const char *
human_count(uint64_t n, char *buf, size_t len)
{
	if (n >= 1000000000ULL)
		snprintf(buf, len, "%.2f B", (double)n / 1e9);
	else if (n >= 1000000ULL)
		snprintf(buf, len, "%.2f M", (double)n / 1e6);
	else if (n >= 1000ULL)
		snprintf(buf, len, "%.2f K", (double)n / 1e3);
	else
		snprintf(buf, len, "%" PRIu64, n);
	return buf;
}

/* Keys the header lines already show. */
static int
shown_elsewhere(struct gguf_str k)
{
	static const char *const keys[] = { "general.name", "general.architecture",
		"general.alignment" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (k.len == strlen(keys[i]) && memcmp(k.ptr, keys[i], k.len) == 0)
			return 1;
	return 0;
}

/* Prints "  key  value" for every metadata key under prefix, in file order. */
static void
print_keys(const struct gguf_file *f, const char *prefix)
{
	size_t plen = strlen(prefix);
	char val[256];

	for (int64_t i = 0; i < gguf_kv_count(f); i++) {
		struct gguf_str k = gguf_kv_key(f, i);

		if (k.len < plen || memcmp(k.ptr, prefix, plen) != 0)
			continue;
		if (shown_elsewhere(k))
			continue;
		gguf_kv_format(f, i, val, sizeof(val));
		printf("  %-44.*s %s\n", (int)(k.len - plen), k.ptr + plen, val);
	}
}

/* Reads <arch>.<key> as u32, or def when absent or not an integer. */
static uint32_t
arch_u32(const struct gguf_file *f, const char *arch, const char *key, uint32_t def)
{
	char full[256];
	uint32_t v;

	snprintf(full, sizeof(full), "%s.%s", arch, key);
	return gguf_get_u32(f, full, &v, NULL) == 0 ? v : def;
}

static int
has_tensor_suffix(const struct gguf_file *f, const char *suffix)
{
	size_t sl = strlen(suffix);

	for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
		const char *n = gguf_tensor_at(f, i)->name;
		size_t nl = strlen(n);

		if (nl >= sl && strcmp(n + nl - sl, suffix) == 0)
			return 1;
	}
	return 0;
}

/* A one-paragraph reading of the DeepSeek hyper-parameters. */
static void
print_deepseek(const struct gguf_file *f, const char *arch)
{
	uint32_t n_layer = arch_u32(f, arch, "block_count", 0);
	uint32_t dense = arch_u32(f, arch, "leading_dense_block_count", 0);
	uint32_t nextn = arch_u32(f, arch, "nextn_predict_layers", 0);
	uint32_t q_lora = arch_u32(f, arch, "attention.q_lora_rank", 0);
	uint32_t kv_lora = arch_u32(f, arch, "attention.kv_lora_rank", 0);
	uint32_t gating = arch_u32(f, arch, "expert_gating_func", 1);
	uint32_t n_exp = arch_u32(f, arch, "expert_count", 0);
	uint32_t n_used = arch_u32(f, arch, "expert_used_count", 0);
	uint32_t n_shared = arch_u32(f, arch, "expert_shared_count", 0);
	uint32_t groups = arch_u32(f, arch, "expert_group_count", 0);
	uint32_t g_used = arch_u32(f, arch, "expert_group_used_count", 0);
	char key[256];
	float scale = 1.0f;
	bool norm = false;

	snprintf(key, sizeof(key), "%s.expert_weights_scale", arch);
	gguf_get_f32(f, key, &scale, NULL);
	snprintf(key, sizeof(key), "%s.expert_weights_norm", arch);
	gguf_get_bool(f, key, &norm, NULL);
	printf("model:\n");
	printf("  blocks             %" PRIu32 " (%" PRIu32 " dense, %" PRIu32 " MoE)",
	    n_layer, dense, n_layer > dense + nextn ? n_layer - dense - nextn : 0);
	if (nextn)
		printf(" + %" PRIu32 " next-token-prediction (not used for inference)", nextn);
	printf("\n");
	printf("  attention          MLA, kv_lora_rank %" PRIu32 ", %s", kv_lora,
	    q_lora ? "low-rank q" : "plain attn_q (q_lora_rank 0)");
	/* The layout and the bias show in the tensors, which a vocabulary file lacks. */
	if (gguf_tensor_count(f) > 0)
		printf(", %s layout", has_tensor_suffix(f, ".attn_k_b.weight") ?
		    "attn_k_b/attn_v_b" : "attn_kv_b");
	printf("\n  routing            %s%s, top-%" PRIu32 " of %" PRIu32 " experts",
	    gating == 2 ? "sigmoid" : "softmax",
	    has_tensor_suffix(f, ".exp_probs_b.bias") ? " + correction bias" : "", n_used, n_exp);
	if (groups > 1)
		printf(" in %" PRIu32 " of %" PRIu32 " groups", g_used, groups);
	printf(", %s, scale %g, %" PRIu32 " shared\n", norm ? "normalised" : "not normalised",
	    (double)scale, n_shared);
}

/* The vocabulary line: tokens, tokenizer model, pre-tokenizer, merges. */
static void
print_vocab(const struct gguf_file *f)
{
	struct gguf_str model = { "?", 1 }, pre = { "?", 1 };
	enum gguf_vtype et;
	uint64_t n_tok = 0, n_merge = 0;
	uint32_t bos, eos;

	if (gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n_tok, NULL) != 0) {
		printf("vocabulary:    none\n");
		return;
	}
	gguf_get_str(f, "tokenizer.ggml.model", &model, NULL);
	gguf_get_str(f, "tokenizer.ggml.pre", &pre, NULL);
	gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n_merge, NULL);
	printf("vocabulary:    %" PRIu64 " tokens (%.*s, pre-tokenizer %.*s), %" PRIu64 " merges",
	    n_tok, (int)model.len, model.ptr, (int)pre.len, pre.ptr, n_merge);
	if (gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &bos, NULL) == 0)
		printf(", BOS %" PRIu32, bos);
	if (gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &eos, NULL) == 0)
		printf(", EOS %" PRIu32, eos);
	printf("%s\n", gguf_kv_find(f, "tokenizer.chat_template") >= 0 ? ", chat template" : "");
}

/* Tensor totals and the count and bytes of tensors per type. */
static void
print_tensors(const struct gguf_file *f)
{
	int64_t count[KTX_TYPE_COUNT_] = { 0 };
	uint64_t bytes[KTX_TYPE_COUNT_] = { 0 }, params = 0, total = 0;
	char b1[32], b2[32];

	for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(f, i);

		assert((unsigned)t->type < KTX_TYPE_COUNT_);
		count[t->type]++;
		bytes[t->type] += t->nbytes;
		params += (uint64_t)gguf_tensor_nelements(t);
		total += t->nbytes;
	}
	printf("tensors:       %" PRId64 "%s\n", gguf_tensor_count(f),
	    gguf_tensor_count(f) == 0 ? " (a vocabulary-only file)" : "");
	if (gguf_tensor_count(f) == 0)
		return;
	printf("parameters:    %" PRIu64 " (%s)\n", params, human_count(params, b1, sizeof(b1)));
	printf("tensor data:   %" PRIu64 " bytes (%s, %.3f bits per parameter)\n", total,
	    human_bytes(total, b2, sizeof(b2)), params ? 8.0 * (double)total / (double)params : 0.0);
	printf("tensor types:\n");
	for (int ty = 0; ty < KTX_TYPE_COUNT_; ty++) {
		char name[32];
		size_t k;

		if (count[ty] == 0)
			continue;
		snprintf(name, sizeof(name), "%s", ktx_type_name((uint32_t)ty));
		for (k = 0; name[k]; k++)
			name[k] = (char)toupper((unsigned char)name[k]);
		printf("  %-10s %6" PRId64 " tensors %16" PRIu64 " bytes (%s)\n", name, count[ty],
		    bytes[ty], human_bytes(bytes[ty], b1, sizeof(b1)));
	}
}

int
run_info(const struct run_opts *o)
{
	struct gguf_file *f;
	struct ktx_err err;
	struct gguf_str arch = { NULL, 0 }, s;
	char archz[64], b1[32];

	if (gguf_open(o->model, &f, &err) != 0) {
		fprintf(stderr, "ktx-run: %s\n", err.msg);
		return RUN_EXIT_FAIL;
	}
	printf("file:          %s\n", o->model);
	printf("size:          %" PRIu64 " bytes (%s)\n", gguf_file_size(f),
	    human_bytes(gguf_file_size(f), b1, sizeof(b1)));
	printf("format:        GGUF v%" PRIu32 ", %" PRId64 " metadata keys, alignment %" PRIu64 "\n",
	    gguf_version(f), gguf_kv_count(f), gguf_alignment(f));
	if (gguf_get_str(f, "general.architecture", &arch, NULL) != 0 || arch.len == 0 ||
	    arch.len >= sizeof(archz) || memchr(arch.ptr, '\0', arch.len) != NULL) {
		printf("architecture:  none (general.architecture is absent or unusable)\n");
		archz[0] = '\0';
	} else {
		memcpy(archz, arch.ptr, arch.len);
		archz[arch.len] = '\0';
		printf("architecture:  %s\n", archz);
	}
	if (gguf_get_str(f, "general.name", &s, NULL) == 0)
		printf("name:          %.*s\n", (int)s.len, s.ptr);
	printf("general:\n");
	print_keys(f, "general.");
	if (archz[0] != '\0') {
		char prefix[80];

		snprintf(prefix, sizeof(prefix), "%s.", archz);
		printf("hyper-parameters (%s):\n", prefix);
		print_keys(f, prefix);
		if (strcmp(archz, "deepseek2") == 0)
			print_deepseek(f, archz);
	}
	print_vocab(f);
	print_tensors(f);
	gguf_close(f);
	return RUN_EXIT_OK;
}

/* Tells the user which names exist when the one asked for does not. */
static void
tensor_hint(const struct gguf_file *f, const char *name)
{
	char with[300];
	int shown = 0;

	snprintf(with, sizeof(with), "%s.weight", name);
	if (gguf_tensor_find(f, with) != NULL) {
		fprintf(stderr, "ktx-run: did you mean '%s'?\n", with);
		return;
	}
	for (int64_t i = 0; i < gguf_tensor_count(f) && shown < 5; i++) {
		const char *n = gguf_tensor_at(f, i)->name;

		if (strstr(n, name) != NULL) {
			fprintf(stderr, "%s '%s'", shown ? "," : "ktx-run: names that contain it:", n);
			shown++;
		}
	}
	if (shown) {
		fputc('\n', stderr);
		return;
	}
	if (gguf_tensor_count(f) == 0)
		fprintf(stderr, "ktx-run: the file has no tensors (a vocabulary-only GGUF?)\n");
	else
		fprintf(stderr, "ktx-run: the file has %" PRId64 " tensors, named like '%s'\n",
		    gguf_tensor_count(f), gguf_tensor_at(f, 0)->name);
}

/* Dequantizes t in chunks of whole rows and writes them to fp. */
static int
write_dequant(const struct gguf_tensor *t, FILE *fp, const char *out, struct ktx_err *err)
{
	int64_t row = t->ne[0], rows = gguf_tensor_nelements(t) / t->ne[0];
	int64_t chunk = row >= (1 << 20) ? 1 : (1 << 20) / row;
	uint64_t rb = ktx_type_row_bytes(t->type, row);
	float *buf = malloc((size_t)(chunk * row) * sizeof(float));
	int rc = 0;

	if (buf == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory");
	for (int64_t r = 0; r < rows && rc == 0; r += chunk) {
		int64_t n = rows - r < chunk ? rows - r : chunk;

		rc = ktx_dequantize(t->type, (const uint8_t *)t->data + (uint64_t)r * rb, buf, n * row,
		    err);
		if (rc == 0 && fwrite(buf, sizeof(float), (size_t)(n * row), fp) != (size_t)(n * row))
			rc = ktx_err_set(err, KTX_EIO, "%s: write failed", out);
	}
	free(buf);
	return rc;
}

int
run_dequant(const struct run_opts *o)
{
	const struct ktx_type_traits *tr;
	const struct gguf_tensor *t;
	struct gguf_file *f;
	struct ktx_err err;
	int to_stdout = strcmp(o->dequant_out, "-") == 0, rc;
	FILE *fp;

	if (gguf_open(o->model, &f, &err) != 0) {
		fprintf(stderr, "ktx-run: %s\n", err.msg);
		return RUN_EXIT_FAIL;
	}
	if ((t = gguf_tensor_find(f, o->dequant_tensor)) == NULL) {
		fprintf(stderr, "ktx-run: %s has no tensor named '%s'\n", o->model, o->dequant_tensor);
		tensor_hint(f, o->dequant_tensor);
		gguf_close(f);
		return RUN_EXIT_FAIL;
	}
	tr = ktx_type_traits(t->type);
	if (!tr->can_dequantize) {
		fprintf(stderr, "ktx-run: tensor '%s' is of type %s, which ktx cannot dequantize\n",
		    t->name, tr->name);
		gguf_close(f);
		return RUN_EXIT_FAIL;
	}
	fp = to_stdout ? stdout : fopen(o->dequant_out, "wb");
	if (fp == NULL) {
		fprintf(stderr, "ktx-run: cannot create %s: %m\n", o->dequant_out);
		gguf_close(f);
		return RUN_EXIT_FAIL;
	}
	rc = write_dequant(t, fp, o->dequant_out, &err);
	if ((to_stdout ? fflush(fp) : fclose(fp)) != 0 && rc == 0)
		rc = ktx_err_set(&err, KTX_EIO, "%s: write failed: %m", o->dequant_out);
	if (rc != 0)
		fprintf(stderr, "ktx-run: tensor '%s': %s\n", t->name, err.msg);
	gguf_close(f);
	return rc == 0 ? RUN_EXIT_OK : RUN_EXIT_FAIL;
}
