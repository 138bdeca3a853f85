/*
 * test_tokenizer.c - the tokenizer on a small vocabulary written here:
 * merge order, special-token parsing, bytes that are not UTF-8, streaming
 * decode, the pre-tokenizer's cuts, and the errors a bad vocabulary gets.
 * (tests/unit/test_tokenizer_oracle.c checks the real vocabularies.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/pretok.h"
#include "engine/tokenizer.h"
#include "engine/tokenizer_impl.h"
#include "tests/tap.h"

/* Token spellings beyond the 256 byte symbols (ids 256..). */
static const char *const extra_tokens[] = {
	"ab", "abc", "bc", "aa", "Ġt", "he", "Ġthe", /* 256..262 normal */
	"<|s|>", "<|s|>x", "<u>", "<|eos|>",        /* 263..266 special */
	"[PAD]",                                      /* 267 unused */
};
static const int extra_types[] = {1, 1, 1, 1, 1, 1, 1, 3, 3, 4, 3, 5};
#define ID_AB 256
#define ID_ABC 257
#define ID_BC 258
#define ID_AA 259
#define ID_HE 261
#define ID_THE 262
#define ID_S 263
#define ID_SX 264
#define ID_U 265
#define ID_EOS 266
#define N_EXTRA ((int)(sizeof(extra_tokens) / sizeof(extra_tokens[0])))

/* Ranked: "b c" before "a b", so "abc" is a + bc. */
static const char *const merges[] = {
	"b c", "a b", "ab c", "a a", "Ġ t", "h e", "Ġt he", "x y",
};

/* Settings of one synthetic vocabulary file. */
struct vocab_opts {
	const char *model, *pre;
	int bad_type;   /* write type 9 for one token */
	int bos;        /* written as bos_token_id */
};

/* Writes the vocabulary to path. */
static int
write_vocab(const char *path, const struct vocab_opts *o)
{
	struct gguf_writer *w = gguf_writer_new();
	struct gguf_str toks[256 + N_EXTRA], mer[sizeof(merges) / sizeof(merges[0])];
	char spell[256][4];
	int32_t types[256 + N_EXTRA];
	uint32_t cp_of_byte[256];
	int16_t byte_of_cp[TOK_BYTE_CP_MAX];
	struct ktx_err err;
	int i, rc = -1;

	if (w == NULL)
		return -1;
	tok_byte_map(cp_of_byte, byte_of_cp);
	for (i = 0; i < 256; i++) {
		toks[i].ptr = spell[i];
		toks[i].len = tok_utf8_put(cp_of_byte[i], spell[i]);
		types[i] = 1;
	}
	for (i = 0; i < N_EXTRA; i++) {
		toks[256 + i].ptr = extra_tokens[i];
		toks[256 + i].len = strlen(extra_tokens[i]);
		types[256 + i] = extra_types[i];
	}
	if (o->bad_type)
		types[10] = 9;
	for (i = 0; i < (int)(sizeof(merges) / sizeof(merges[0])); i++) {
		mer[i].ptr = merges[i];
		mer[i].len = strlen(merges[i]);
	}
	if (gguf_writer_add_str(w, "tokenizer.ggml.model", o->model, strlen(o->model), &err) ||
	    gguf_writer_add_str(w, "tokenizer.ggml.pre", o->pre, strlen(o->pre), &err) ||
	    gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, 256 + N_EXTRA, &err) ||
	    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types,
	    256 + N_EXTRA, &err) ||
	    gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", mer,
	    sizeof(merges) / sizeof(merges[0]), &err) ||
	    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos, &err) ||
	    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", ID_EOS, &err) ||
	    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true, &err) ||
	    gguf_writer_write(w, path, &err)) {
		tap_diag("writing the vocabulary failed: %s", err.msg);
		goto done;
	}
	rc = 0;
done:
	gguf_writer_free(w);
	return rc;
}

static char vocab_path[4096];

/* Writes a vocabulary with o and loads it; returns the load's status. */
static int
load_vocab(const struct vocab_opts *o, struct ktx_tokenizer **tok, struct ktx_err *err)
{
	struct gguf_file *f;
	int rc;

	*tok = NULL;
	if (write_vocab(vocab_path, o) != 0)
		return -100;
	if ((rc = gguf_open(vocab_path, &f, err)) != KTX_OK)
		return rc;
	rc = ktx_tokenizer_load(f, tok, err);
	gguf_close(f);
	return rc;
}

/* Tokenizes s and compares with want[0..n). */
static void
check_ids(const struct ktx_tokenizer *tok, const char *s, size_t len, bool special,
    const int32_t *want, size_t n, const char *name)
{
	struct ktx_err err;
	int32_t *ids;
	size_t n_ids, i;
	int ok;

	if (ktx_tokenize(tok, s, len, special, &ids, &n_ids, &err) != KTX_OK) {
		tap_ok(0, "%s", name);
		tap_diag("ktx_tokenize failed: %s", err.msg);
		return;
	}
	ok = n_ids == n;
	for (i = 0; ok && i < n; i++)
		ok = ids[i] == want[i];
	if (!tap_ok(ok, "%s", name)) {
		for (i = 0; i < n_ids; i++)
			tap_diag("got[%zu] = %d", i, ids[i]);
	}
	free(ids);
}

#define CHECK(tok, s, special, name, ...)                                     \
	do {                                                                  \
		const int32_t want_[] = {__VA_ARGS__};                        \
		check_ids(tok, s, sizeof(s) - 1, special, want_,              \
		    sizeof(want_) / sizeof(want_[0]), name);                  \
	} while (0)

static void
test_encode(const struct ktx_tokenizer *tok)
{
	int32_t *ids;
	size_t n;
	struct ktx_err err;

	CHECK(tok, "abc", false, "rank order: \"b c\" merges before \"a b\"", tok->byte_id['a'],
	    ID_BC);
	CHECK(tok, "aaa", false, "equal ranks merge leftmost first", ID_AA, tok->byte_id['a']);
	CHECK(tok, "ab", false, "a single merge", ID_AB);
	CHECK(tok, "he the", false, "merges chain across ranks (Ġ t, h e, Ġt he)",
	    ID_HE, ID_THE);
	CHECK(tok, "xy", false, "a merge whose result is not a token never fires",
	    tok->byte_id['x'], tok->byte_id['y']);
	CHECK(tok, "a<|s|>b", true, "a control token is parsed on request",
	    tok->byte_id['a'], ID_S, tok->byte_id['b']);
	CHECK(tok, "<|s|>x", true, "the longest special spelling wins", ID_SX);
	CHECK(tok, "<u><|s|>", false, "user-defined tokens are always parsed, control ones "
	    "only on request", ID_U, tok->byte_id['<'], tok->byte_id['|'], tok->byte_id['s'],
	    tok->byte_id['|'], tok->byte_id['>']);
	CHECK(tok, "\xff\xfe" "a", false, "bytes that are not UTF-8 become byte tokens",
	    tok->byte_id[0xff], tok->byte_id[0xfe], tok->byte_id['a']);
	tap_ok(ktx_tokenize(tok, "", 0, true, &ids, &n, &err) == KTX_OK && n == 0 && ids == NULL,
	    "empty text gives no ids");
}

/* Compares the guarded encoding of s with want[0..n). */
static void
check_guarded(const struct ktx_tokenizer *tok, const char *s, const struct ktx_span *sp,
    size_t n_sp, const int32_t *want, size_t n, const char *name)
{
	struct ktx_err err;
	int32_t *ids = NULL;
	size_t n_ids = 0;
	int ok;

	ok = ktx_tokenize_guarded(tok, s, strlen(s), sp, n_sp, &ids, &n_ids, &err) == KTX_OK &&
	    n_ids == n && memcmp(ids, want, n * sizeof(*ids)) == 0;
	tap_ok(ok, "%s", name);
	free(ids);
}

static void
test_guarded(const struct ktx_tokenizer *tok)
{
	const struct ktx_span x = {5, 1}, tail = {6, 5}, bad[] = {{6, 5}, {0, 1}}, past = {10, 5};
	const int32_t w1[] = {ID_S, tok->byte_id['x'], ID_S};
	const int32_t w2[] = {ID_SX, tok->byte_id['<'], tok->byte_id['|'], tok->byte_id['s'],
	    tok->byte_id['|'], tok->byte_id['>']};
	struct ktx_err err;
	int32_t *ids;
	size_t n;

	check_guarded(tok, "<|s|>x<|s|>", &x, 1, w1, 3,
	    "guarded: a special may not reach into a guarded range");
	check_guarded(tok, "<|s|>x<|s|>", &tail, 1, w2, 6,
	    "guarded: control spellings inside a guarded range are text");
	tap_is_int(ktx_tokenize_guarded(tok, "<|s|>x<|s|>", 11, bad, 2, &ids, &n, &err), KTX_EINVAL,
	    "guarded ranges out of order: KTX_EINVAL");
	tap_is_int(ktx_tokenize_guarded(tok, "<|s|>x<|s|>", 11, &past, 1, &ids, &n, &err),
	    KTX_EINVAL,
	    "a guarded range past the end: KTX_EINVAL");
}

static void
test_lookups(const struct ktx_tokenizer *tok)
{
	size_t len;
	const char *t;
	char buf[8];

	tap_is_int(ktx_n_vocab(tok), 256 + N_EXTRA, "n_vocab");
	tap_is_int(ktx_token_bos(tok), ID_S, "bos id from the file");
	tap_is_int(ktx_token_eos(tok), ID_EOS, "eos id from the file");
	tap_is_int(ktx_token_pad(tok), -1, "no pad id: -1");
	tap_ok(ktx_token_add_bos(tok), "add_bos_token read");
	tap_is_int(ktx_tokenizer_find(tok, "<u>", 3), ID_U, "find a special by spelling");
	tap_is_int(ktx_tokenizer_find(tok, "<v>", 3), -1, "find: -1 for no such spelling");
	tap_ok(ktx_token_is_eog(tok, ID_EOS) && !ktx_token_is_eog(tok, ID_S),
	    "eos ends generation");
	t = ktx_token_text(tok, ID_THE, &len);
	tap_ok(t && len == 5 && memcmp(t, "Ġthe", 5) == 0, "token text is the vocabulary spelling");
	tap_ok(ktx_token_text(tok, 9999, &len) == NULL, "token text of an id out of range: NULL");
	tap_is_int(ktx_token_type(tok, ID_U), KTX_TOKEN_USER_DEFINED, "token type");
	tap_ok(ktx_token_bytes(tok, ID_THE, buf, sizeof(buf), &len, NULL) == KTX_OK && len == 4 &&
	    memcmp(buf, " the", 4) == 0, "token bytes undo the byte-level mapping");
	tap_ok(ktx_token_bytes(tok, ID_S, buf, sizeof(buf), &len, NULL) == KTX_OK && len == 5 &&
	    memcmp(buf, "<|s|>", 5) == 0, "control tokens decode to their spelling");
	tap_ok(ktx_token_bytes(tok, 256 + N_EXTRA - 1, buf, sizeof(buf), &len, NULL) == KTX_OK &&
	    len == 0, "unused tokens decode to nothing");
	tap_is_int(ktx_token_bytes(tok, -1, buf, sizeof(buf), &len, NULL), KTX_ENOTFOUND,
	    "token bytes of a bad id: KTX_ENOTFOUND");
	tap_is_str(ktx_tokenizer_pre(tok), "deepseek-v3", "pre-tokenizer name");
}

/* Pushes ids through a streaming detokenizer; checks each chunk and the
 * concatenation (chunks joined by '|'). */
static void
check_stream(const struct ktx_tokenizer *tok, unsigned flags, const int32_t *ids, size_t n,
    const char *want, const char *name)
{
	struct ktx_detok *d;
	struct ktx_err err;
	char got[256] = "";
	const char *t;
	size_t len, i, o = 0;

	if (ktx_detok_new(tok, flags, &d, &err) != KTX_OK) {
		tap_ok(0, "%s", name);
		return;
	}
	for (i = 0; i <= n; i++) {
		if (i < n) {
			if (ktx_detok_push(d, ids[i], &t, &len, &err) != KTX_OK)
				break;
		} else {
			ktx_detok_flush(d, &t, &len);
		}
		if (o + len + 2 >= sizeof(got))
			break;
		memcpy(got + o, t, len);
		o += len;
		got[o++] = '|';
		got[o] = '\0';
	}
	ktx_detok_free(d);
	tap_is_str(got, want, name);
}

static void
test_decode(const struct ktx_tokenizer *tok)
{
	const int32_t *b = tok->byte_id;
	int32_t e_acute[] = {b[0xc3], b[0xa9], b['!']};
	int32_t euro[] = {b[0xe2], b[0x82], b[0xac]};
	int32_t broken[] = {b[0xc3], b['a'], b[0xff], b[0xe2], b[0x82]};
	int32_t ctrl[] = {ID_S, ID_THE, ID_EOS};
	int32_t bad = 12345;
	struct ktx_detok *d;
	struct ktx_err err;
	const char *t;
	size_t len;
	char *s;
	int32_t round[] = {b['h'], b['e'], ID_THE, b[0xe2], b[0x82], b[0xac]};

	check_stream(tok, 0, e_acute, 3, "|é|!||",
	    "a character split over two tokens comes out whole");
	check_stream(tok, 0, euro, 3, "||€||", "a three-byte character waits for its last byte");
	check_stream(tok, 0, broken, 5, "|\xef\xbf\xbd" "a|\xef\xbf\xbd|||\xef\xbf\xbd|",
	    "invalid bytes become U+FFFD, an unfinished tail is flushed as one");
	check_stream(tok, 0, ctrl, 3, "<|s|>| the|<|eos|>||", "control tokens render as text");
	check_stream(tok, KTX_DETOK_SKIP_CONTROL, ctrl, 3, "| the|||",
	    "KTX_DETOK_SKIP_CONTROL drops control tokens");
	tap_ok(ktx_detok_new(tok, 0, &d, &err) == KTX_OK &&
	    ktx_detok_push(d, bad, &t, &len, &err) == KTX_ENOTFOUND && len == 0,
	    "pushing an id out of range: KTX_ENOTFOUND");
	ktx_detok_free(d);
	tap_ok(ktx_detokenize(tok, round, 6, 0, &s, &len, &err) == KTX_OK && len == 9 &&
	    strcmp(s, "he the€") == 0, "whole-sequence detokenize");
	free(s);
}

/* Whether s[0..n) is well-formed UTF-8: each sequence decodes to a code
 * point that needed its length and is not a surrogate (an independent
 * check of detok.c's table-driven one). */
static int
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
		size_t len = s[i] < 0x80 ? 1 : (s[i] >> 5) == 6 ? 2 : (s[i] >> 4) == 14 ? 3 :
		    (s[i] >> 3) == 30 ? 4 : 0;
		uint32_t cp;
		size_t k;

		if (len == 0 || i + len > n)
			return 0;
		cp = len == 1 ? s[i] : (uint32_t)(s[i] & (0x7f >> len));
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/*
 * Random streams: valid text cut into byte tokens comes out identical, one
 * whole character at a time; random bytes and tokens come out as valid
 * UTF-8 in every chunk.
 */
static void
test_stream_random(const struct ktx_tokenizer *tok)
{
	static const uint32_t cps[] = {'a', ' ', 0xe9, 0x4e2d, 0x1f600, 0x10ffff, 0xff5c, '\n'};
	char text[4096], out[4096 * 3];
	int32_t ids[4096];
	struct ktx_detok *d;
	struct ktx_err err;
	uint32_t r = 1;
	size_t n = 0, o = 0, i, len;
	const char *t;
	int valid_chunks = 1, round;

	while (n + 4 < sizeof(text)) {
		r = r * 1103515245u + 12345u;
		n += tok_utf8_put(cps[(r >> 16) % (sizeof(cps) / sizeof(cps[0]))], text + n);
	}
	for (i = 0; i < n; i++)
		ids[i] = tok->byte_id[(unsigned char)text[i]];
	if (ktx_detok_new(tok, 0, &d, &err) != KTX_OK) {
		tap_ok(0, "detokenizer");
		return;
	}
	for (i = 0; i <= n; i++) {
		if (i < n)
			ktx_detok_push(d, ids[i], &t, &len, &err);
		else
			ktx_detok_flush(d, &t, &len);
		valid_chunks &= utf8_ok((const unsigned char *)t, len);
		memcpy(out + o, t, len);
		o += len;
	}
	tap_ok(valid_chunks && o == n && memcmp(out, text, n) == 0,
	    "valid text streamed byte by byte comes out whole and unchanged");
	valid_chunks = 1;
	for (round = 0; round < 2000; round++) {
		r = r * 1103515245u + 12345u;
		if (ktx_detok_push(d, (int32_t)((r >> 8) % (uint32_t)ktx_n_vocab(tok)), &t, &len,
		    &err) != KTX_OK)
			valid_chunks = 0;
		valid_chunks &= utf8_ok((const unsigned char *)t, len);
	}
	ktx_detok_flush(d, &t, &len);
	valid_chunks &= utf8_ok((const unsigned char *)t, len);
	tap_ok(valid_chunks, "random tokens: every chunk is valid UTF-8");
	ktx_detok_free(d);
}

/* Collects pieces joined by '|' (a ktx_piece_fn). */
struct joined {
	char buf[512];
	size_t n;
};

static int
join_piece(void *ctx, const char *piece, size_t len, struct ktx_err *err)
{
	struct joined *j = ctx;

	(void)err;
	if (j->n + len + 2 > sizeof(j->buf))
		return -1;
	memcpy(j->buf + j->n, piece, len);
	j->n += len;
	j->buf[j->n++] = '|';
	j->buf[j->n] = '\0';
	return 0;
}

/* Splits s with the pre-tokenizer name; compares the pieces joined by '|'. */
static void
check_split(const char *name, const char *s, size_t len, const char *want, const char *what)
{
	struct ktx_pretok *p;
	struct joined j = {"", 0};
	struct ktx_err err;

	if (ktx_pretok_new(name, strlen(name), &p, &err) != KTX_OK) {
		tap_ok(0, "%s", what);
		tap_diag("%s", err.msg);
		return;
	}
	if (ktx_pretok_split(p, s, len, join_piece, &j, &err) != KTX_OK)
		tap_ok(0, "%s", what);
	else
		tap_is_str(j.buf, want, what);
	ktx_pretok_free(p);
}

#define SPLIT(name, s, want, what) check_split(name, s, sizeof(s) - 1, want, what)

static void
test_pretok(void)
{
	struct ktx_pretok *p;
	struct ktx_err err;

	SPLIT("deepseek-v3", "Hello world 1234567", "Hello| world| |123|456|7|",
	    "v3: words keep their leading space, digits go in threes");
	SPLIT("deepseek-v3", "a ~ b", "a| ~| b|",
	    "v3: '~' is a symbol (\\p{S}), as in Hugging Face");
	SPLIT("deepseek-v3", "中文abc", "中文|abc|", "v3: CJK ideographs split from Latin");
	SPLIT("deepseek-v3", "x  \n\n  y", "x|  \n\n| | y|", "v3: whitespace runs and newlines");
	SPLIT("deepseek-v3", "ab\xff" "cd", "ab|\xff|cd|",
	    "v3: an invalid byte is a piece of its own");
	SPLIT("deepseek-llm", "Hi there  ", "Hi| there|  |", "llm: trailing whitespace (\\s+$)");
	SPLIT("deepseek-coder", "x=12", "x|=|1|2|", "coder: digits one by one");
	SPLIT("deepseek-v3", "", "", "empty text: no pieces");
	tap_is_int(ktx_pretok_new("gpt-4o", 6, &p, &err), KTX_EUNSUPPORTED,
	    "an unknown pre-tokenizer is KTX_EUNSUPPORTED");
	tap_ok(strstr(err.msg, "gpt-4o") != NULL, "... and the message names it");
}

static void
test_load_errors(void)
{
	struct vocab_opts o = {"gpt2", "qwen2", 0, ID_S};
	struct ktx_tokenizer *tok;
	struct ktx_err err;

	tap_is_int(load_vocab(&o, &tok, &err), KTX_EUNSUPPORTED,
	    "vocabulary with pre \"qwen2\": unsupported");
	tap_ok(strstr(err.msg, "qwen2") != NULL, "... the message names it");
	o.pre = "deepseek-v3";
	o.model = "llama";
	tap_is_int(load_vocab(&o, &tok, &err), KTX_EUNSUPPORTED,
	    "tokenizer model \"llama\": unsupported");
	o.model = "gpt2";
	o.bad_type = 1;
	tap_is_int(load_vocab(&o, &tok, &err), KTX_EFORMAT,
	    "a token type out of range: format error");
	o.bad_type = 0;
	o.bos = 99999;
	tap_is_int(load_vocab(&o, &tok, &err), KTX_EFORMAT, "a BOS id out of range: format error");
}

int
main(void)
{
	struct vocab_opts o = {"gpt2", "deepseek-v3", 0, ID_S};
	struct ktx_tokenizer *tok;
	struct ktx_err err;
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(vocab_path, sizeof(vocab_path), "%s/ktx-test-vocab-XXXXXX", tmp ? tmp : "/tmp");
	if ((fd = mkstemp(vocab_path)) < 0) {
		tap_ok(0, "make a temporary file");
		return tap_done();
	}
	close(fd);
	if (!tap_ok(load_vocab(&o, &tok, &err) == KTX_OK, "load a synthetic vocabulary")) {
		tap_diag("%s", err.msg);
		unlink(vocab_path);
		return tap_done();
	}
	test_lookups(tok);
	test_encode(tok);
	test_guarded(tok);
	test_decode(tok);
	test_stream_random(tok);
	ktx_tokenizer_free(tok);
	test_pretok();
	test_load_errors();
	unlink(vocab_path);
	return tap_done();
}
