/*
 * arena.c - the forward pass's scratch memory (arena.h): chunks of 2 MiB
 * aligned memory advised for huge pages, handed out by bumping an offset.
 */
#include "engine/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* Poisoned bytes after each allocation: an overrun lands in them. */
#define ARENA_RED 64
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ARENA_RED 0
#endif

#define ARENA_ALIGN 64
#define ARENA_PAGE ((size_t)2 << 20)
/* The smallest chunk: what a decode step of a large model needs. */
#define ARENA_MIN_CHUNK ((size_t)16 << 20)

struct arena_chunk {
	uint8_t *base;
	size_t cap, used;
};

struct ktx_arena {
	struct arena_chunk *chunks;   /* [n], allocated [max] */
	size_t n, max;
	size_t cur;                   /* the chunk allocations come from */
};

struct ktx_arena *
ktx_arena_new(void)
{
	return calloc(1, sizeof(struct ktx_arena));
}

static void
chunks_free(struct ktx_arena *a)
{
	for (size_t i = 0; i < a->n; i++) {
		ASAN_UNPOISON_MEMORY_REGION(a->chunks[i].base, a->chunks[i].cap);
		free(a->chunks[i].base);
	}
	a->n = a->cur = 0;
}

void
ktx_arena_free(struct ktx_arena *a)
{
	if (a == NULL)
		return;
	chunks_free(a);
	free(a->chunks);
	free(a);
}

/* Appends a chunk of at least bytes; returns its index, or a->n when out
 * of memory. */
static size_t
chunk_add(struct ktx_arena *a, size_t bytes)
{
	struct arena_chunk *c;
	void *p;
	size_t cap;

	if (a->n == a->max) {
		size_t max = a->max ? 2 * a->max : 4;

		if ((c = realloc(a->chunks, max * sizeof(*c))) == NULL)
			return a->n;
		a->chunks = c;
		a->max = max;
	}
	if (bytes > SIZE_MAX - ARENA_PAGE)
		return a->n;
	cap = (bytes + ARENA_PAGE - 1) / ARENA_PAGE * ARENA_PAGE;
	if (posix_memalign(&p, ARENA_PAGE, cap) != 0)
		return a->n;
	/* Big buffers streamed by the kernels: fewer TLB misses and faults.
	 * Only advice, so its failure changes nothing. */
	(void)madvise(p, cap, MADV_HUGEPAGE);
	ASAN_POISON_MEMORY_REGION(p, cap);
	a->chunks[a->n] = (struct arena_chunk){ p, cap, 0 };
	return a->n++;
}

void *
ktx_arena_alloc(struct ktx_arena *a, size_t bytes)
{
	size_t need, i;
	uint8_t *p;

	if (bytes > SIZE_MAX / 2)
		return NULL;
	need = (bytes + ARENA_RED + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
	for (i = a->cur; i < a->n; i++) {
		if (a->chunks[i].cap - a->chunks[i].used >= need)
			break;
	}
	if (i == a->n) {
		/* Each new chunk at least doubles what the arena holds. */
		size_t cap = ktx_arena_size(a);

		if (cap < need)
			cap = need;
		if (cap < ARENA_MIN_CHUNK)
			cap = ARENA_MIN_CHUNK;
		if ((i = chunk_add(a, cap)) == a->n)
			return NULL;
	}
	a->cur = i;
	p = a->chunks[i].base + a->chunks[i].used;
	a->chunks[i].used += need;
	ASAN_UNPOISON_MEMORY_REGION(p, bytes);
	return p;
}

void *
ktx_arena_array(struct ktx_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return ktx_arena_alloc(a, n * size);
}

struct ktx_arena_mark
ktx_arena_mark(const struct ktx_arena *a)
{
	struct ktx_arena_mark mk = { a->cur, a->n > 0 ? a->chunks[a->cur].used : 0 };

	return mk;
}

void
ktx_arena_release(struct ktx_arena *a, struct ktx_arena_mark mark)
{
	for (size_t i = mark.chunk; i < a->n && i <= a->cur; i++) {
		struct arena_chunk *c = &a->chunks[i];
		size_t keep = i == mark.chunk ? mark.used : 0;

		ASAN_POISON_MEMORY_REGION(c->base + keep, c->cap - keep);
		c->used = keep;
	}
	a->cur = mark.chunk < a->n ? mark.chunk : 0;
}

void
ktx_arena_reset(struct ktx_arena *a)
{
	ktx_arena_release(a, (struct ktx_arena_mark){ 0, 0 });
}

size_t
ktx_arena_size(const struct ktx_arena *a)
{
	size_t total = 0;

	for (size_t i = 0; i < a->n; i++)
		total += a->chunks[i].cap;
	return total;
}
