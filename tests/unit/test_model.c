/*
 * test_model.c - binding a deepseek2 file: the oracle models' hyper-
 * parameters, and files made inconsistent on purpose (a tensor of the
 * wrong shape, a missing tensor, metadata of another model) refused with
 * an error that names the tensor.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/ktx.h"
#include "tests/tap.h"

static char tmpdir[] = "/tmp/ktx-test-model-XXXXXX";

/* Writes out: metadata of kv_src, the tensors of t_src except drop, with
 * swap's first two dims exchanged. */
static int
remix(const char *kv_src, const char *t_src, const char *drop, const char *swap, const char *out)
{
	struct gguf_file *fk = NULL, *ft = NULL;
	struct gguf_writer *w = gguf_writer_new();
	struct ktx_err err;
	int64_t i;
	int rc = -1;

	if (w == NULL || gguf_open(kv_src, &fk, &err) != 0 || gguf_open(t_src, &ft, &err) != 0 ||
	    gguf_writer_copy_kv(w, fk, "", &err) != 0)
		goto out;
	for (i = 0; i < gguf_tensor_count(ft); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(ft, i);
		int64_t ne[GGUF_MAX_DIMS];

		if (drop != NULL && strcmp(t->name, drop) == 0)
			continue;
		memcpy(ne, t->ne, sizeof(ne));
		if (swap != NULL && strcmp(t->name, swap) == 0) {
			ne[0] = t->ne[1];
			ne[1] = t->ne[0];
		}
		if (gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, NULL, NULL,
		    &err) != 0)
			goto out;
	}
	rc = gguf_writer_write(w, out, &err);
out:
	if (rc != 0)
		tap_diag("remix: %s", err.msg);
	gguf_writer_free(w);
	gguf_close(fk);
	gguf_close(ft);
	return rc;
}

/* Loads path; returns the status and leaves the message in err. */
static int
try_load(const char *path, struct ktx_err *err)
{
	struct ktx_model_params p;
	struct ktx_model *m = NULL;
	int rc;

	ktx_model_params_default(&p);
	p.path = path;
	p.n_threads = 1;
	ktx_err_clear(err);
	rc = ktx_model_load(&p, &m, err);
	ktx_model_free(m);
	return rc;
}

static void
expect_error(const char *path, int code, const char *needle, const char *what)
{
	struct ktx_err err;
	int rc = try_load(path, &err);

	if (!tap_ok(rc == code && strstr(err.msg, needle) != NULL, "%s", what))
		tap_diag("status %d, message: %s", rc, err.msg);
}

int
main(void)
{
	const char *oracle = getenv("KTX_ORACLE");
	char v3[4096], v2[4096], mla[4096], vocab[4096], out[4096];
	struct ktx_model_params p;
	struct ktx_model_info info;
	struct ktx_model *m;
	struct ktx_err err;

	if (oracle == NULL || mkdtemp(tmpdir) == NULL) {
		tap_ok(0, "KTX_ORACLE is set and a temporary folder can be made");
		return tap_done();
	}
	snprintf(v3, sizeof(v3), "%s/models/v3-f32.gguf", oracle);
	snprintf(v2, sizeof(v2), "%s/models/v2lite-f32.gguf", oracle);
	snprintf(mla, sizeof(mla), "%s/models/v3mla-q8q4.gguf", oracle);
	snprintf(vocab, sizeof(vocab), "%s/tokenizer/deepseek-v3-cut.gguf", oracle);
	snprintf(out, sizeof(out), "%s/remix.gguf", tmpdir);

	/* The oracle files as they are. */
	ktx_model_params_default(&p);
	p.path = v3;
	p.n_threads = 1;
	if (tap_ok(ktx_model_load(&p, &m, &err) == 0, "v3-f32 loads")) {
		ktx_model_get_info(m, &info);
		tap_is_str(info.arch, "deepseek2", "architecture");
		tap_is_int(info.n_layer, 3, "the nextn block is not one of the layers");
		tap_ok(info.n_expert == 16 && info.n_expert_used == 4 &&
		    info.n_expert_shared == 1 &&
		    info.n_dense_lead == 1, "experts 16/4/1 shared, 1 dense block");
		tap_ok(info.n_vocab == 4020 && info.n_embd == 128 && info.n_head == 8,
		    "vocab, width, heads");
		tap_is_int(info.n_ctx, 4096, "default context capped at 4096");
		tap_ok(info.token_bos == 4000 && info.token_eos == 4001,
		    "BOS and EOS from the vocabulary");
		tap_ok(ktx_model_is_eog(m, 4001) && !ktx_model_is_eog(m, 13),
		    "EOS ends a generation");
		tap_ok(ktx_model_tokenizer(m) != NULL, "the tokenizer comes with the model");
		ktx_model_free(m);
	} else {
		tap_diag("%s", err.msg);
	}
	p.path = mla;
	p.n_expert_used = 4;
	tap_is_int(ktx_model_load(&p, &m, &err), 0,
	    "v3mla-q8q4 with 4 active experts (2 groups of 2)");
	ktx_model_free(m);
	p.n_expert_used = 5;
	tap_is_int(ktx_model_load(&p, &m, &err), KTX_ERANGE,
	    "5 active experts exceed 2 groups of 2");
	p.n_expert_used = 0;
	p.n_ctx = 200000;
	tap_is_int(ktx_model_load(&p, &m, &err), KTX_ERANGE,
	    "a context past the model's is refused");

	/* Inconsistent files. */
	if (remix(v3, v3, NULL, "blk.1.attn_output.weight", out) == 0)
		expect_error(out, KTX_EFORMAT,
		    "blk.1.attn_output.weight has shape {128, 256}, want {256, 128}",
		    "a transposed tensor is named with both shapes");
	if (remix(v3, v3, "blk.2.ffn_down_exps.weight", NULL, out) == 0)
		expect_error(out, KTX_EFORMAT, "blk.2.ffn_down_exps.weight is missing",
		    "a missing expert tensor is named");
	if (remix(v3, v3, "blk.3.nextn.eh_proj.weight", NULL, out) == 0)
		tap_is_int(try_load(out, &err), 0, "multi-token-prediction tensors are not needed");
	if (remix(v2, v3, NULL, NULL, out) == 0)
		expect_error(out, KTX_EFORMAT, "blk.0.attn_q.weight is missing",
		    "V2-Lite metadata (no q_lora_rank) wants attn_q");
	if (remix(v3, mla, NULL, NULL, out) == 0)
		expect_error(out, KTX_EFORMAT,
		    "token_embd.weight has shape {256, 4020}, want {128, 4020}",
		    "another model's tensors are refused at the first mismatch");
	expect_error(vocab, KTX_EFORMAT, "token_embd.weight is missing",
	    "a vocabulary-only file is not a model");
	unlink(out);
	rmdir(tmpdir);
	return tap_done();
}
