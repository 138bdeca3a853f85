/*
 * fuzz-main.c - replays a fuzz target's committed corpus as a TAP test.
 *
 * Linked with a target instead of libFuzzer: each file under the corpus
 * directory (argv[1], or $KTX_SRCDIR/tests/fuzz/corpus/NAME where NAME is
 * this program's name without "fuzz_" and "_replay") runs once through
 * LLVMFuzzerTestOneInput. A crash or assertion fails the test; a sanitizer
 * build turns memory errors into failures too.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "tests/tap.h"

/* Reads a whole file; NULL on error. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL, *nb;
	size_t cap = 0, n;

	*len = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			nb = realloc(b, cap);
			if (nb == NULL)
				break;
			b = nb;
		}
		n = fread(b + *len, 1, cap - *len, f);
		*len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	return b;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Keeps regular corpus files, not "." entries. */
static int
is_input(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int
main(int argc, char **argv)
{
	char dir[PATH_MAX], path[PATH_MAX + 256], name[128];
	struct dirent **ents;
	const char *base, *src;
	unsigned char *buf;
	size_t len;
	int i, n;

	if (argc > 1)
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	else {
		/* fuzz_proto_replay -> corpus/proto */
		base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strncmp(base, "fuzz_", 5) == 0)
			base += 5;
		snprintf(name, sizeof(name), "%s", base);
		if (strstr(name, "_replay") != NULL)
			*strstr(name, "_replay") = '\0';
		src = getenv("KTX_SRCDIR");
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src ? src : ".", name);
	}
	n = scandir(dir, &ents, is_input, by_name);
	if (!tap_ok(n > 0, "corpus %s has inputs", dir)) {
		tap_diag("%s", n < 0 ? strerror(errno) : "empty");
		return tap_done();
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		buf = slurp(path, &len);
		/* A crash or failed assertion ends the run before the line. */
		if (buf != NULL)
			LLVMFuzzerTestOneInput(buf, len);
		tap_ok(buf != NULL, "%s (%zu bytes) replayed", ents[i]->d_name, len);
		free(buf);
		free(ents[i]);
	}
	free(ents);
	return tap_done();
}
