/*
 * test_arena.c - the forward pass's scratch arena (engine/arena.h):
 * alignment, contents kept while later buffers come and go, the same
 * memory handed out again after a release, growth past a chunk, a reset
 * that keeps the memory, and refusals of sizes that overflow.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/arena.h"
#include "tests/tap.h"

#define MiB ((size_t)1 << 20)

/* Fills p with a pattern of seed; true when check finds it intact. */
static void
fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

static bool
intact(const uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(i * 31 + seed))
			return false;
	return true;
}

int
main(void)
{
	struct ktx_arena *a = ktx_arena_new();
	struct ktx_arena_mark m0, m1;
	uint8_t *p, *q, *r, *again, *big;
	bool aligned = true;
	size_t held;

	tap_ok(a != NULL, "a new arena");
	tap_is_int(ktx_arena_size(a), 0, "holds no memory before the first allocation");

	m0 = ktx_arena_mark(a);
	for (size_t k = 1; k < 50; k++) {
		p = ktx_arena_alloc(a, k * 7);
		aligned = aligned && p != NULL && (uintptr_t)p % 64 == 0;
	}
	tap_ok(aligned, "every allocation is 64-byte aligned");
	ktx_arena_release(a, m0);

	p = ktx_arena_alloc(a, 1000);
	fill(p, 1000, 1);
	m1 = ktx_arena_mark(a);
	q = ktx_arena_alloc(a, 5000);
	fill(q, 5000, 2);
	tap_ok(q >= p + 1000 || q + 5000 <= p, "buffers do not overlap");
	tap_ok(intact(p, 1000, 1), "a buffer keeps its bytes while another is written");
	ktx_arena_release(a, m1);
	again = ktx_arena_alloc(a, 5000);
	tap_ok(again == q, "memory released to a mark is handed out again");
	tap_ok(intact(p, 1000, 1), "a release keeps what was allocated before the mark");

	/* Past the first chunk: a second one, and buffers still apart. */
	held = ktx_arena_size(a);
	big = ktx_arena_alloc(a, held + MiB);
	tap_ok(big != NULL, "an allocation larger than the arena");
	memset(big, 0xab, held + MiB);
	tap_ok(ktx_arena_size(a) >= 2 * held + MiB, "the arena grew by at least what it held");
	tap_ok(intact(p, 1000, 1), "growing keeps earlier buffers");
	r = ktx_arena_alloc(a, 4096);
	fill(r, 4096, 3);
	tap_ok(big[held + MiB - 1] == 0xab && intact(r, 4096, 3),
	    "buffers on both sides of a chunk boundary keep their bytes");

	/* Reset: everything released, nothing returned, the same addresses. */
	held = ktx_arena_size(a);
	ktx_arena_reset(a);
	tap_is_int(ktx_arena_size(a), held, "a reset keeps the memory");
	m0 = ktx_arena_mark(a);
	tap_is_int(m0.chunk, 0, "after a reset allocations start in the first chunk");
	q = ktx_arena_alloc(a, 1000);
	tap_ok(q == p, "and hand out the first address again");
	big = ktx_arena_alloc(a, held / 2);
	tap_ok(big != NULL && ktx_arena_size(a) == held,
	    "what fit before the reset fits without growing");
	ktx_arena_release(a, m0);

	/* Sizes that cannot be met are refused, not wrapped. */
	tap_ok(ktx_arena_alloc(a, SIZE_MAX) == NULL, "SIZE_MAX bytes are refused");
	tap_ok(ktx_arena_array(a, SIZE_MAX / 2, 4) == NULL, "an overflowing array is refused");
	tap_ok(ktx_arena_array(a, 0, 4) != NULL, "an empty array is a valid pointer");
	tap_is_int(ktx_arena_size(a), held, "refusals leave the arena as it was");

	ktx_arena_free(a);
	ktx_arena_free(NULL);
	return tap_done();
}
