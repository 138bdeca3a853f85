/*
 * encode.c - text to token ids: special tokens, pre-tokenizer, BPE.
 *
 * GPT-2 style byte-level BPE: the text is cut at special-token spellings,
 * each stretch between them is split by the pre-tokenizer (pretok.c), each
 * piece's bytes become the vocabulary's 256 byte symbols, and the merges are
 * applied lowest rank first (leftmost first on ties) until none applies.
 * That order is what Hugging Face's and llama.cpp's BPE both do, so the ids
 * are theirs. Each piece is merged with a heap, so a long piece stays
 * O(n log n); short pieces repeat a lot in real text, so a call remembers
 * the ids of the pieces it has encoded.
 */
#include "engine/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pretok.h"
#include "engine/tokenizer_impl.h"

/* Pieces up to this long are remembered, at most CACHE_MAX_SLOTS / 2 of them
 * (a small table that stays in cache: text that keeps making new pieces,
 * like random bytes, would otherwise pay a cache miss per lookup). */
#define CACHE_MAX_LEN 64
#define CACHE_MAX_SLOTS (1u << 14)

/* The merge of (left, right), or NULL. */
static const struct tok_merge *
merge_find(const struct ktx_tokenizer *tok, int32_t left, int32_t right)
{
	uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
	size_t i = (size_t)tok_hash_u64(key) & tok->merge_mask;

	for (;; i = (i + 1) & tok->merge_mask) {
		const struct tok_merge *m = &tok->merge_table[i];

		if (m->rank < 0)
			return NULL;
		if (m->key == key)
			return m;
	}
}

/* One symbol of a piece being merged: a doubly linked list over the
 * piece's bytes; id -1 once merged into its left neighbour. */
struct bpe_sym {
	int32_t id, prev, next;
};

/* A candidate merge of the symbol at left with its right neighbour:
 * (rank << 32 | left), so the smallest key is the lowest rank, leftmost. */
typedef uint64_t bpe_cand;

/* A remembered piece: text[off .. off + len) encodes to out[first ..
 * first + n_ids); len 0 marks an empty slot. */
struct cache_slot {
	uint64_t hash;
	size_t off, first;
	uint32_t len, n_ids;
};

/* The state of one ktx_tokenize call. */
struct encoder {
	const struct ktx_tokenizer *tok;
	const char *text;      /* the whole input: the cache points into it */
	int32_t *out;          /* the ids so far */
	size_t n_out, cap_out;
	struct bpe_sym *sym;   /* work space, grown to the longest piece */
	bpe_cand *heap;
	size_t cap_sym, n_heap;
	struct cache_slot *cache;
	size_t cache_mask, cache_used;
};

/* Makes room for n more ids. */
static int
out_reserve(struct encoder *e, size_t n, struct ktx_err *err)
{
	size_t cap = e->cap_out ? e->cap_out : 256;
	int32_t *v;

	if (e->n_out + n <= e->cap_out)
		return KTX_OK;
	while (cap < e->n_out + n) {
		if (cap > SIZE_MAX / 2 / sizeof(*v))
			return ktx_err_set(err, KTX_ENOMEM, "too many tokens");
		cap *= 2;
	}
	if ((v = realloc(e->out, cap * sizeof(*v))) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for %zu tokens", cap);
	e->out = v;
	e->cap_out = cap;
	return KTX_OK;
}

static int
out_push(struct encoder *e, int32_t id, struct ktx_err *err)
{
	int rc;

	if (e->n_out == e->cap_out && (rc = out_reserve(e, 1, err)) != KTX_OK)
		return rc;
	e->out[e->n_out++] = id;
	return KTX_OK;
}

static void
heap_push(struct encoder *e, bpe_cand c)
{
	size_t i = e->n_heap++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (c >= e->heap[parent])
			break;
		e->heap[i] = e->heap[parent];
		i = parent;
	}
	e->heap[i] = c;
}

static bpe_cand
heap_pop(struct encoder *e)
{
	bpe_cand top = e->heap[0], last = e->heap[--e->n_heap];
	size_t i = 0, n = e->n_heap;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && e->heap[c + 1] < e->heap[c])
			c++;
		if (e->heap[c] >= last)
			break;
		e->heap[i] = e->heap[c];
		i = c;
	}
	if (n > 0)
		e->heap[i] = last;
	return top;
}

/* Queues the merge of symbol left with its right neighbour, if any. */
static void
bpe_try(struct encoder *e, int32_t left)
{
	const struct tok_merge *m;
	int32_t right;

	if (left < 0 || (right = e->sym[left].next) < 0)
		return;
	m = merge_find(e->tok, e->sym[left].id, e->sym[right].id);
	if (m != NULL)
		heap_push(e, (uint64_t)(uint32_t)m->rank << 32 | (uint32_t)left);
}

/* Grows the work space to n symbols (and 3n heap entries: n - 1 first
 * candidates, then at most two per merge). */
static int
bpe_reserve(struct encoder *e, size_t n, struct ktx_err *err)
{
	size_t cap = n > 2 * e->cap_sym ? n : 2 * e->cap_sym;
	struct bpe_sym *sym;
	bpe_cand *heap;

	if (n <= e->cap_sym)
		return KTX_OK;
	if (cap > INT32_MAX / 3)
		return ktx_err_set(err, KTX_ERANGE, "a %zu-byte piece is too long to encode", n);
	if ((sym = realloc(e->sym, cap * sizeof(*sym))) != NULL)
		e->sym = sym;
	if ((heap = realloc(e->heap, 3 * cap * sizeof(*heap))) != NULL)
		e->heap = heap;
	if (sym == NULL || heap == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory encoding a %zu-byte piece", n);
	e->cap_sym = cap;
	return KTX_OK;
}

/*
 * Encodes one piece: its bytes as byte symbols, then merges by rank. A
 * heap entry goes stale when either side has merged since; when popped it is
 * applied only if the symbol at its position still has a right neighbour
 * and the pair's rank is still the entry's (a rank names one pair of ids, so
 * that is the same merge).
 */
static int
bpe_piece(struct encoder *e, const char *s, size_t n, struct ktx_err *err)
{
	int32_t i;
	int rc;

	if ((rc = bpe_reserve(e, n, err)) != KTX_OK)
		return rc;
	for (i = 0; i < (int32_t)n; i++) {
		int32_t id = e->tok->byte_id[(unsigned char)s[i]];

		if (id < 0)
			return ktx_err_set(err, KTX_EUNSUPPORTED,
			    "the vocabulary has no symbol for byte 0x%02x", (unsigned char)s[i]);
		e->sym[i].id = id;
		e->sym[i].prev = i - 1;
		e->sym[i].next = i + 1 < (int32_t)n ? i + 1 : -1;
	}
	e->n_heap = 0;
	for (i = 0; i + 1 < (int32_t)n; i++)
		bpe_try(e, i);
	while (e->n_heap > 0) {
		bpe_cand c = heap_pop(e);
		int32_t left = (int32_t)(uint32_t)c, r;
		struct bpe_sym *l = &e->sym[left];
		const struct tok_merge *m;

		if (l->id < 0 || (r = l->next) < 0 ||
		    (m = merge_find(e->tok, l->id, e->sym[r].id)) == NULL ||
		    (uint64_t)(uint32_t)m->rank != c >> 32)
			continue;
		l->id = m->id;
		l->next = e->sym[r].next;
		if (l->next >= 0)
			e->sym[l->next].prev = left;
		e->sym[r].id = -1;
		bpe_try(e, l->prev);
		bpe_try(e, left);
	}
	for (i = 0; n > 0 && i >= 0; i = e->sym[i].next) {
		if ((rc = out_push(e, e->sym[i].id, err)) != KTX_OK)
			return rc;
	}
	return KTX_OK;
}

/* Doubles the cache (or makes the first one); old entries move over. */
static int
cache_grow(struct encoder *e)
{
	size_t cap = e->cache ? 2 * (e->cache_mask + 1) : 1024, i;
	struct cache_slot *c = calloc(cap, sizeof(*c));

	if (c == NULL)
		return -1;
	for (i = 0; e->cache && i <= e->cache_mask; i++) {
		size_t j;

		if (e->cache[i].len == 0)
			continue;
		for (j = e->cache[i].hash & (cap - 1); c[j].len != 0; j = (j + 1) & (cap - 1))
			;
		c[j] = e->cache[i];
	}
	free(e->cache);
	e->cache = c;
	e->cache_mask = cap - 1;
	return 0;
}

/* Encodes one piece of the pre-tokenizer's split (a ktx_piece_fn). */
static int
encode_piece(void *ctx, const char *s, size_t n, struct ktx_err *err)
{
	struct encoder *e = ctx;
	struct cache_slot *slot = NULL;
	uint64_t h;
	size_t first = e->n_out, i;
	int rc;

	if (n == 1) {
		int32_t id = e->tok->byte_id[(unsigned char)s[0]];

		if (id < 0)
			return ktx_err_set(err, KTX_EUNSUPPORTED,
			    "the vocabulary has no symbol for byte 0x%02x", (unsigned char)s[0]);
		return out_push(e, id, err);
	}
	if (n > CACHE_MAX_LEN)
		return bpe_piece(e, s, n, err);
	h = tok_hash_bytes(s, n);
	if (e->cache != NULL) {
		for (i = h & e->cache_mask; e->cache[i].len != 0; i = (i + 1) & e->cache_mask) {
			struct cache_slot *c = &e->cache[i];

			if (c->hash == h && c->len == n && memcmp(e->text + c->off, s, n) == 0) {
				if ((rc = out_reserve(e, c->n_ids, err)) != KTX_OK)
					return rc;
				memcpy(e->out + e->n_out, e->out + c->first,
				    c->n_ids * sizeof(*e->out));
				e->n_out += c->n_ids;
				return KTX_OK;
			}
		}
		slot = &e->cache[i];
	}
	if ((rc = bpe_piece(e, s, n, err)) != KTX_OK)
		return rc;
	/* Remember it, keeping the table at most half full; a full-size
	 * table stops taking new pieces, and a failed grow only costs speed. */
	if (e->cache == NULL || 2 * (e->cache_used + 1) > e->cache_mask + 1) {
		if (e->cache != NULL && e->cache_mask + 1 >= CACHE_MAX_SLOTS)
			return KTX_OK;
		if (cache_grow(e) != 0)
			return KTX_OK;
		for (i = h & e->cache_mask; e->cache[i].len != 0; i = (i + 1) & e->cache_mask)
			;
		slot = &e->cache[i];
	}
	slot->hash = h;
	slot->off = (size_t)(s - e->text);
	slot->len = (uint32_t)n;
	slot->first = first;
	slot->n_ids = (uint32_t)(e->n_out - first);
	e->cache_used++;
	return KTX_OK;
}

/* The longest special token spelled at s[0..n) that may be matched here
 * (control ones only with parse_special), or -1. */
static int32_t
special_at(const struct ktx_tokenizer *tok, const char *s, size_t n, bool parse_special)
{
	int32_t id;

	if (!tok->sp_first[(unsigned char)s[0]])
		return -1;
	if (n >= 2) {
		uint16_t k = tok_key2(s);
		uint32_t j;

		for (j = tok->sp_start[k]; j < tok->sp_start[k + 1]; j++) {
			size_t len;

			id = tok->sp_ids[j];
			len = tok_text_len(tok, id);
			if (len <= n && memcmp(tok_text(tok, id), s, len) == 0 &&
			    (parse_special || tok->type[id] == KTX_TOKEN_USER_DEFINED))
				return id;
		}
	}
	id = tok->sp_single[(unsigned char)s[0]];
	if (id >= 0 && (parse_special || tok->type[id] == KTX_TOKEN_USER_DEFINED))
		return id;
	return -1;
}

int
ktx_tokenize_guarded(const struct ktx_tokenizer *tok, const char *text, size_t len,
    const struct ktx_span *plain, size_t n_plain, int32_t **ids, size_t *n_ids,
    struct ktx_err *err)
{
	struct encoder e = {0};
	size_t i = 0, start = 0, p = 0;
	int rc = KTX_OK;

	*ids = NULL;
	*n_ids = 0;
	for (p = 0; p < n_plain; p++) {
		if (plain[p].off > len || plain[p].len > len - plain[p].off ||
		    (p > 0 && plain[p].off < plain[p - 1].off + plain[p - 1].len))
			return ktx_err_set(err, KTX_EINVAL, "guarded range %zu is out of order or "
			    "outside the %zu-byte text", p, len);
	}
	e.tok = tok;
	e.text = text;
	/* Most text averages three or more bytes a token. */
	if (len > 0 && (rc = out_reserve(&e, len / 3 + 16, err)) != KTX_OK)
		goto done;
	/* Special tokens first, leftmost then longest (as Hugging Face's
	 * added-token matcher); the text between them is plain. */
	p = 0;
	while (i < len) {
		size_t room = len - i;
		bool guarded;
		int32_t sp;

		while (p < n_plain && plain[p].off + plain[p].len <= i)
			p++;
		guarded = p < n_plain && plain[p].off <= i;
		if (!guarded && p < n_plain)
			room = plain[p].off - i; /* a special may not reach into a guarded range */
		if (guarded)
			room = plain[p].off + plain[p].len - i;
		sp = special_at(tok, text + i, room, !guarded);
		if (sp < 0) {
			i++;
			continue;
		}
		if (i > start && (rc = ktx_pretok_split(tok->pre, text + start, i - start,
		    encode_piece, &e, err)) != KTX_OK)
			goto done;
		if ((rc = out_push(&e, sp, err)) != KTX_OK)
			goto done;
		i += tok_text_len(tok, sp);
		start = i;
	}
	if (len > start && (rc = ktx_pretok_split(tok->pre, text + start, len - start,
	    encode_piece, &e, err)) != KTX_OK)
		goto done;
	if (e.n_out > 0) {
		*ids = e.out;
		*n_ids = e.n_out;
		e.out = NULL;
	}
done:
	free(e.out);
	free(e.sym);
	free(e.heap);
	free(e.cache);
	return rc;
}

int
ktx_tokenize(const struct ktx_tokenizer *tok, const char *text, size_t len, bool parse_special,
    int32_t **ids, size_t *n_ids, struct ktx_err *err)
{
	/* Without special parsing the whole text is one guarded range. */
	struct ktx_span all = {0, len};

	return ktx_tokenize_guarded(tok, text, len, &all, parse_special ? 0 : 1, ids, n_ids, err);
}
