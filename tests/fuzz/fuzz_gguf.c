/*
 * fuzz_gguf.c - fuzz target for the GGUF reader and what reads through it.
 *
 * The input is a GGUF image, opened in memory. A file that opens is walked
 * completely: every key/value rendered and read back through the typed
 * getters, every string of every string array, every tensor found again by
 * name, its data range checked against the image and its first block
 * dequantized into a bounded buffer. Then the deepseek2 binding, the
 * tokenizer and the chat-style detection run on it, as a model load would;
 * they may refuse the file but must not crash, leak or allocate absurdly.
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/tokenizer.h"
#include "tests/fuzz/fuzz.h"

/* Elements of the largest block of any type (the K and IQ families). */
#define BLOCK_ELEMS_MAX 256

static unsigned sink; /* keeps the reads of walk_bytes from being dropped */

/* Reads every byte of s, so ASan sees any that lie outside the image. */
static void
walk_bytes(const void *p, uint64_t n)
{
	const unsigned char *s = p;
	uint64_t i;

	for (i = 0; i < n; i++)
		sink += s[i];
}

/* Every getter on key i: each either fits the type or says why not. */
static void
walk_kv(const struct gguf_file *f, int64_t i)
{
	struct gguf_str key = gguf_kv_key(f, i), s;
	enum gguf_vtype et;
	struct ktx_err err;
	char name[256], text[512];
	uint64_t count, j, u64;
	uint32_t u32;
	int32_t i32;
	float f32;
	bool b;

	walk_bytes(key.ptr, key.len);
	gguf_kv_format(f, i, text, sizeof(text));
	assert(strlen(text) < sizeof(text));
	if (key.len >= sizeof(name) || memchr(key.ptr, '\0', key.len) != NULL)
		return;
	memcpy(name, key.ptr, key.len);
	name[key.len] = '\0';
	/* Duplicate keys are refused, so the name finds this entry. */
	assert(gguf_kv_find(f, name) == i);
	(void)gguf_get_u32(f, name, &u32, &err);
	(void)gguf_get_i32(f, name, &i32, &err);
	(void)gguf_get_u64(f, name, &u64, &err);
	(void)gguf_get_f32(f, name, &f32, &err);
	(void)gguf_get_bool(f, name, &b, &err);
	if (gguf_get_str(f, name, &s, &err) == 0)
		walk_bytes(s.ptr, s.len);
	if (gguf_get_arr(f, name, &et, &count, &err) != 0) {
		assert(gguf_kv_type(f, i) != GGUF_VT_ARRAY);
		return;
	}
	if (et == GGUF_VT_STRING) {
		for (j = 0; j < count; j++) {
			s = gguf_arr_str(f, i, j);
			walk_bytes(s.ptr, s.len);
		}
	} else if (count > 0) {
		assert(gguf_arr_data(f, i) != NULL);
	}
}

/* Checks tensor i's data range and dequantizes its first block. */
static void
walk_tensor(const struct gguf_file *f, const uint8_t *data, size_t size, int64_t i)
{
	const struct gguf_tensor *t = gguf_tensor_at(f, i);
	const struct ktx_type_traits *tr;
	float out[BLOCK_ELEMS_MAX];
	const uint8_t *p;
	struct ktx_err err;
	int64_t n;

	assert(t != NULL && t->name != NULL);
	assert(gguf_tensor_find(f, t->name) == t);
	assert(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
	p = t->data;
	assert(p >= data && t->nbytes <= size && (size_t)(p - data) <= size - t->nbytes);
	n = gguf_tensor_nelements(t);
	tr = ktx_type_traits(t->type);
	assert(tr != NULL && n >= 0);
	assert(ktx_type_row_bytes(t->type, n) == t->nbytes);
	if (t->nbytes > 0)
		walk_bytes(p, 1), walk_bytes(p + t->nbytes - 1, 1);
	if (!tr->can_dequantize || n < tr->block_elems || tr->block_elems > BLOCK_ELEMS_MAX)
		return;
	if (ktx_dequantize(t->type, p, out, tr->block_elems, &err) != 0)
		abort();
}

/* Runs the parts of a model load that read the file's metadata. */
static void
bind_model(struct gguf_file *f)
{
	enum ktx_chat_style style;
	struct ktx_tokenizer *tok;
	struct ktx_model *m;
	struct ktx_err err;
	int32_t *ids;
	char *text;
	size_t n, len;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return;
	/* m->gguf stays NULL: the caller owns f. */
	if (ktx_model_bind(m, f, &err) != 0)
		assert(err.code != 0 && err.msg[0] != '\0');
	ktx_model_free(m);
	(void)ktx_chat_style_from_gguf(f, &style, &err);
	if (ktx_tokenizer_load(f, &tok, &err) != 0)
		return;
	/* A vocabulary without some byte symbol cannot encode every text;
	 * it says so instead. */
	if (ktx_tokenize(tok, "Hello <think> world", 19, true, &ids, &n, &err) != 0) {
		assert(err.msg[0] != '\0');
	} else {
		if (ktx_detokenize(tok, ids, n, 0, &text, &len, &err) != 0)
			abort();
		free(text);
		free(ids);
	}
	ktx_tokenizer_free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gguf_file *f;
	struct ktx_err err;
	int64_t i;

	if (gguf_open_memory(data, size, &f, &err) != 0) {
		assert(err.code != 0 && err.msg[0] != '\0');
		return 0;
	}
	/* Without tensors the padded data offset may lie past the end. */
	assert(gguf_file_size(f) == size);
	assert(gguf_tensor_count(f) == 0 || gguf_data_offset(f) <= size);
	for (i = 0; i < gguf_kv_count(f); i++)
		walk_kv(f, i);
	for (i = 0; i < gguf_tensor_count(f); i++)
		walk_tensor(f, data, size, i);
	bind_model(f);
	gguf_close(f);
	return 0;
}
