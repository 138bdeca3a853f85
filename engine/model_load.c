/*
 * model_load.c - how a model file reaches memory: read whole into
 * anonymous memory, or mapped (enum ktx_load in engine/ktx.h says why
 * either), and for KTX_LOAD_AUTO the choice between them.
 */
#include "engine/model.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/ktx.h"

/* The kernel's estimate of memory available without swapping (page cache
 * counts: it yields), in bytes; 0 when /proc/meminfo does not say. */
static uint64_t
mem_available(void)
{
	char line[128];
	uint64_t kib = 0;
	FILE *fp = fopen("/proc/meminfo", "re");

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1)
			break;
	fclose(fp);
	return kib <= UINT64_MAX / 1024 ? kib * 1024 : 0;
}

/* KTX_LOAD_READ when path's size is at most 3/4 of the available memory
 * (the rest is left to caches, sessions and everyone else), else mmap;
 * mmap too when either size is unknown (the open reports a bad path). */
static enum ktx_load
load_choose(const char *path)
{
	struct stat st;
	uint64_t avail = mem_available();

	if (stat(path, &st) != 0 || st.st_size <= 0 || avail == 0)
		return KTX_LOAD_MMAP;
	return (uint64_t)st.st_size <= avail / 4 * 3 ? KTX_LOAD_READ : KTX_LOAD_MMAP;
}

int
ktx_model_file_open(const char *path, enum ktx_load want, struct gguf_file **out,
    enum ktx_load *used, struct ktx_err *err)
{
	if (want == KTX_LOAD_AUTO)
		want = load_choose(path);
	if (want != KTX_LOAD_READ && want != KTX_LOAD_MMAP)
		return ktx_err_set(err, KTX_EINVAL, "unknown load mode %d", (int)want);
	*used = want;
	return want == KTX_LOAD_READ ? gguf_load(path, out, err) : gguf_open(path, out, err);
}
