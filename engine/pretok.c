/*
 * pretok.c - DeepSeek's regex pre-tokenizers on PCRE2 (UTF, UCP, JIT).
 *
 * The regexes are facts of the vocabularies (the Split steps of each
 * model's tokenizer.json); they are taken from llama.cpp src/llama-vocab.cpp
 * at commit 84f71294 (the LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM, _DEEPSEEK3_LLM
 * and _DEEPSEEK_CODER cases). Where llama.cpp approximates Unicode classes
 * (it leaves '~' out of \p{S}), PCRE2's real properties give what Hugging
 * Face's tokenizer gives, which is what the models were trained with.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "engine/pretok.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#define PRETOK_MAX_REGEX 6

struct pretok_def {
	const char *name;
	const char *regex[PRETOK_MAX_REGEX]; /* NULL-terminated */
};

/*
 * llama.cpp src/llama-vocab.cpp @84f71294, llama_vocab::impl::load, with
 * every non-ASCII character written as a PCRE2 \x{...} escape (several of
 * the ranges start or end on characters that Unicode normalisation would
 * silently change, e.g. U+1FD3, U+2126, U+212A).
 */
static const struct pretok_def pretok_defs[] = {
	{"deepseek-v3", {
		"\\p{N}{1,3}",
		"[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
		"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
		"[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
		NULL,
	}},
	{"deepseek-llm", {
		"[\r\n]",
		"\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}"
		"\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}"
		"\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}"
		"\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}"
		"\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}"
		"\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"
		"\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"
		"\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
		"\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}"
		"\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}"
		"\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
		"\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
		"\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
		"\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}"
		"\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"
		"\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}"
		"\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"
		"\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
		"\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
		"\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
		"\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}"
		"\\x{3000}-\\x{3002}]+",
		"\\s+$",
		"[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
		"\\p{N}+",
	}},
	{"deepseek-coder", {
		"[\r\n]",
		"\\s?\\p{L}+",
		"\\s?\\p{P}+",
		"[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
		"\\p{N}",
		NULL,
	}},
};

struct ktx_pretok {
	const struct pretok_def *def;
	pcre2_code *code[PRETOK_MAX_REGEX];
	size_t n_code;
};

/*
 * UTF: patterns and subjects are UTF-8; UCP: \s and friends use Unicode
 * properties; MATCH_INVALID_UTF: invalid bytes are never matched, instead of
 * making every match fail (it also skips the per-call validity scan, which
 * would otherwise cost a pass over the rest of the subject on every match);
 * DOLLAR_ENDONLY: "$" is the end of the piece, not before a final newline.
 */
#define PRETOK_COMPILE_OPTS \
	(PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY)

int
ktx_pretok_new(const char *name, size_t len, struct ktx_pretok **out, struct ktx_err *err)
{
	const struct pretok_def *def = NULL;
	struct ktx_pretok *p;
	size_t i;

	*out = NULL;
	for (i = 0; i < sizeof(pretok_defs) / sizeof(pretok_defs[0]); i++) {
		if (strlen(pretok_defs[i].name) == len &&
		    memcmp(pretok_defs[i].name, name, len) == 0)
			def = &pretok_defs[i];
	}
	if (def == NULL)
		return ktx_err_set(err, KTX_EUNSUPPORTED,
		    "pre-tokenizer \"%.*s\" is not supported (ktx has deepseek-v3, "
		    "deepseek-llm, deepseek-coder)", (int)(len > 64 ? 64 : len), name);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory compiling a pre-tokenizer");
	p->def = def;
	for (i = 0; i < PRETOK_MAX_REGEX && def->regex[i] != NULL; i++) {
		int ecode;
		PCRE2_SIZE eoff;
		PCRE2_UCHAR msg[128];

		p->code[i] = pcre2_compile((PCRE2_SPTR)def->regex[i], PCRE2_ZERO_TERMINATED,
		    PRETOK_COMPILE_OPTS, &ecode, &eoff, NULL);
		if (p->code[i] == NULL) {
			pcre2_get_error_message(ecode, msg, sizeof(msg));
			ktx_pretok_free(p);
			return ktx_err_set(err, KTX_EUNSUPPORTED,
			    "pre-tokenizer %s: regex %zu does not compile at offset %zu: %s",
			    def->name, i + 1, (size_t)eoff, (const char *)msg);
		}
		p->n_code = i + 1;
		/* JIT is an optimisation: when the platform has none the
		 * interpreter gives the same matches. */
		(void)pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
	}
	*out = p;
	return KTX_OK;
}

void
ktx_pretok_free(struct ktx_pretok *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_code; i++)
		pcre2_code_free(p->code[i]);
	free(p);
}

const char *
ktx_pretok_name(const struct ktx_pretok *p)
{
	return p->def->name;
}

/* The length of the UTF-8 sequence starting with byte c (1 for a byte that
 * cannot start one), used only to step past an empty match. */
static size_t
utf8_step(unsigned char c)
{
	if (c >= 0xf0 && c < 0xf8)
		return 4;
	if (c >= 0xe0 && c < 0xf0)
		return 3;
	if (c >= 0xc0 && c < 0xe0)
		return 2;
	return 1;
}

/*
 * Runs one pcre2_match: JIT first, then the interpreter if the JIT stack
 * was too small for this subject. Returns pcre2_match's result.
 */
static int
match_one(const pcre2_code *code, const char *s, size_t len, size_t start, pcre2_match_data *md)
{
	int rc;

	rc = pcre2_match(code, (PCRE2_SPTR)s, len, start, 0, md, NULL);
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
		rc = pcre2_match(code, (PCRE2_SPTR)s, len, start, PCRE2_NO_JIT, md, NULL);
	return rc;
}

/* The state of one ktx_pretok_split call. */
struct split {
	const struct ktx_pretok *p;
	pcre2_match_data *md;
	ktx_piece_fn fn;
	void *ctx;
	struct ktx_err *err;
};

/*
 * Splits s[0..len) by regex number stage into matches and the gaps between
 * them, and hands each to the next stage (or to the callback after the last
 * one). The match data is shared by all stages: each match's bounds are
 * copied out before the next stage runs.
 */
static int
split_stage(struct split *sp, size_t stage, const char *s, size_t len)
{
	const pcre2_code *code;
	size_t pos = 0, start = 0;
	int rc;

	if (stage == sp->p->n_code)
		return sp->fn(sp->ctx, s, len, sp->err);
	code = sp->p->code[stage];
	while (start < len) {
		PCRE2_SIZE *ov;
		size_t ms, me;

		rc = match_one(code, s, len, start, sp->md);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			PCRE2_UCHAR msg[128];

			pcre2_get_error_message(rc, msg, sizeof(msg));
			return ktx_err_set(sp->err, KTX_ERANGE,
			    "pre-tokenizer failed on a %zu-byte piece: %s", len, (const char *)msg);
		}
		ov = pcre2_get_ovector_pointer(sp->md);
		ms = ov[0];
		me = ov[1];
		if (me <= ms) {
			/* None of the regexes matches empty text; step on anyway. */
			start = ms + utf8_step((unsigned char)s[ms]);
			continue;
		}
		if (ms > pos && (rc = split_stage(sp, stage + 1, s + pos, ms - pos)) != 0)
			return rc;
		if ((rc = split_stage(sp, stage + 1, s + ms, me - ms)) != 0)
			return rc;
		pos = start = me;
	}
	if (pos < len)
		return split_stage(sp, stage + 1, s + pos, len - pos);
	return KTX_OK;
}

int
ktx_pretok_split(const struct ktx_pretok *p, const char *text, size_t len, ktx_piece_fn fn,
    void *ctx, struct ktx_err *err)
{
	struct split sp = {p, NULL, fn, ctx, err};
	int rc;

	if (len == 0)
		return KTX_OK;
	/* No capture groups: one pair (the whole match) is all we read. */
	if ((sp.md = pcre2_match_data_create(1, NULL)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for regex match data");
	rc = split_stage(&sp, 0, text, len);
	pcre2_match_data_free(sp.md);
	return rc;
}
