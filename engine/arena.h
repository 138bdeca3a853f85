/*
 * arena.h - the forward pass's scratch memory, kept from one call to the
 * next.
 *
 * A prompt chunk's forward pass needs a few hundred MB of short-lived
 * buffers (activations, each expert's gathered rows and products). From
 * malloc, every large buffer is a fresh mapping whose first touch faults
 * and zeroes each page: a quarter of prefill time went to the kernel. The
 * arena hands the same memory out again at every call.
 *
 * Allocation is a bump in the current chunk, or the next one with room; a
 * function takes a mark on entry and releases back to it on exit, so the
 * buffers of nested calls come and go in LIFO order. Chunks are kept until
 * the arena is freed (replacing several by one would fault fresh pages in
 * again), and each new one at least doubles what the arena holds, so a
 * steady workload stops growing after a few calls.
 *
 * An arena belongs to one thread at a time (the model's caller): parallel
 * regions use memory allocated before they start. Under AddressSanitizer,
 * free space and a red zone after each allocation stay poisoned, so an
 * overrun is still caught.
 */
#ifndef KTX_ENGINE_ARENA_H
#define KTX_ENGINE_ARENA_H

#include <stddef.h>

struct ktx_arena;

/* A position in the arena to release back to. */
struct ktx_arena_mark {
	size_t chunk, used;
};

/* An empty arena (no memory until the first allocation); NULL when out
 * of memory. */
struct ktx_arena *ktx_arena_new(void);
void ktx_arena_free(struct ktx_arena *a);

/* bytes of memory aligned to 64 bytes, valid until a release to a mark
 * taken before; NULL when out of memory. */
void *ktx_arena_alloc(struct ktx_arena *a, size_t bytes);
/* ktx_arena_alloc of n elements of size bytes, NULL also on overflow. */
void *ktx_arena_array(struct ktx_arena *a, size_t n, size_t size);

struct ktx_arena_mark ktx_arena_mark(const struct ktx_arena *a);
void ktx_arena_release(struct ktx_arena *a, struct ktx_arena_mark mark);

/* Releases everything (the memory stays for the next pass). */
void ktx_arena_reset(struct ktx_arena *a);

/* Bytes the arena holds. */
size_t ktx_arena_size(const struct ktx_arena *a);

#endif
