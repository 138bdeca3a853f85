/*
 * test_config.c - ktxd.conf parsing: every key, sizes, modes, and errors that
 * name the file, the line and the key.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "engine/ktx.h"
#include "tests/tap.h"

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *
write_conf(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	strcpy(path, "/tmp/ktx-test-conf-XXXXXX");
	if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text into a default config; returns the status and keeps err. */
static int
load(const char *text, struct ktxd_config *c, struct ktx_err *err)
{
	const char *path = write_conf(text);
	int rc;

	config_init(c, err);
	rc = path ? config_load(c, path, err) : -1;
	if (path)
		unlink(path);
	return rc;
}

int
main(void)
{
	struct ktxd_config c;
	struct ktx_err err;
	int rc;

	tap_is_int(config_init(&c, &err), 0, "defaults");
	tap_is_str(c.socket, "/run/ktx/ktxd.sock", "the default socket");
	tap_is_int(c.socket_mode, 0660, "the default socket mode");
	tap_ok(config_check(&c, &err) == 0, "the defaults are consistent");
	config_free(&c);

	rc = load("# a comment\n"
		  "\n"
		  "model = /srv/models/r1.gguf\n"
		  "  socket=/tmp/x.sock  \n"
		  "socket_mode = 0600\n"
		  "socket_group = ktx\n"
		  "database = /tmp/ktx.db\n"
		  "threads = 12\n"
		  "experts = 6\n"
		  "context = 8192\n"
		  "vram_headroom = 1G\n"
		  "queue_max = 100\n"
		  "queue_per_user = 10\n"
		  "max_prompt_bytes = 2MiB\n"
		  "max_frame_bytes = 3M\n"
		  "admin_group = wheel\n"
		  "log_level = debug\n",
	    &c, &err);
	tap_is_int(rc, 0, "a file with every key loads");
	if (rc != 0)
		tap_diag("%s", err.msg);
	tap_is_str(c.model, "/srv/models/r1.gguf", "model");
	tap_is_str(c.socket, "/tmp/x.sock", "socket, spaces trimmed");
	tap_is_int(c.socket_mode, 0600, "socket_mode is octal");
	tap_is_str(c.socket_group, "ktx", "socket_group");
	tap_is_str(c.database, "/tmp/ktx.db", "database");
	tap_is_int(c.threads, 12, "threads");
	tap_is_int(c.experts, 6, "experts");
	tap_is_int(c.context, 8192, "context");
	tap_is_int(c.vram_headroom, 1 << 30, "vram_headroom with a G suffix");
	tap_is_int(c.queue_max, 100, "queue_max");
	tap_is_int(c.queue_per_user, 10, "queue_per_user");
	tap_is_int(c.max_prompt_bytes, 2 << 20, "max_prompt_bytes with MiB");
	tap_is_int(c.max_frame_bytes, 3 << 20, "max_frame_bytes with M");
	tap_is_str(c.admin_group, "wheel", "admin_group");
	tap_is_int(c.log_level, LOG_LEVEL_DEBUG, "log_level");
	tap_ok(config_check(&c, &err) == 0, "consistent");
	tap_is_int(config_set(&c, "--threads", "threads", "3", &err), 0, "a command-line override");
	tap_is_int(c.threads, 3, "wins over the file");
	config_free(&c);

	rc = load("threads = 4\nbogus = 1\n", &c, &err);
	tap_ok(rc != 0, "an unknown key is an error");
	tap_ok(strstr(err.msg, ":2:") && strstr(err.msg, "bogus"),
	    "naming the line and the key: %s", err.msg);
	config_free(&c);

	rc = load("queue_max = 0\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, ":1:") && strstr(err.msg, "queue_max"),
	    "a number out of range: %s", err.msg);
	config_free(&c);

	rc = load("\n\nthreads = many\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, ":3:") && strstr(err.msg, "threads"),
	    "a word where a number belongs: %s", err.msg);
	config_free(&c);

	rc = load("socket_mode = 0999\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, "socket_mode"), "a bad mode: %s", err.msg);
	config_free(&c);

	rc = load("act_residual = attn,routed\n", &c, &err);
	tap_ok(rc == 0 && c.act_residual == (KTX_ACT_ATTN | KTX_ACT_ROUTED),
	    "act_residual takes a list of classes");
	tap_is_int(config_set(&c, "--x", "act_residual", "none", &err), 0, "act_residual none");
	tap_ok(c.act_residual == 0, "none clears every class");
	config_free(&c);
	config_init(&c, &err);
	tap_ok(c.act_residual == KTX_ACT_DEFAULT, "act_residual defaults to the engine's");
	config_free(&c);

	rc = load("cache_type = bf16\n", &c, &err);
	tap_ok(rc == 0 && c.cache_type == KTX_CACHE_BF16, "cache_type bf16");
	config_free(&c);
	config_init(&c, &err);
	tap_ok(c.cache_type == KTX_CACHE_F32, "cache_type defaults to f32");
	config_free(&c);
	rc = load("cache_type = fp8\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, "cache_type") && strstr(err.msg, "fp8"),
	    "an unknown cache type: %s", err.msg);
	config_free(&c);

	rc = load("load = mmap\n", &c, &err);
	tap_ok(rc == 0 && c.load == KTX_LOAD_MMAP, "load mmap");
	config_free(&c);
	rc = load("load = read\n", &c, &err);
	tap_ok(rc == 0 && c.load == KTX_LOAD_READ, "load read");
	config_free(&c);
	config_init(&c, &err);
	tap_ok(c.load == KTX_LOAD_AUTO, "load defaults to auto");
	config_free(&c);
	rc = load("load = ram\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, "load") && strstr(err.msg, "'ram'"),
	    "an unknown load mode: %s", err.msg);
	config_free(&c);

	rc = load("act_residual = attn,experts\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, "act_residual") && strstr(err.msg, "attn,experts"),
	    "an unknown class: %s", err.msg);
	config_free(&c);

	rc = load("log_level = loud\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, "log_level"), "a bad level: %s", err.msg);
	config_free(&c);

	rc = load("just words\n", &c, &err);
	tap_ok(rc != 0 && strstr(err.msg, ":1:"), "a line without '=': %s", err.msg);
	config_free(&c);

	rc = load("max_prompt_bytes = 99999999999999999999999\n", &c, &err);
	tap_ok(rc != 0, "a number that overflows: %s", err.msg);
	config_free(&c);

	rc = load("vram_headroom = 20000000T\n", &c, &err);
	tap_ok(rc != 0, "a size that overflows: %s", err.msg);
	config_free(&c);

	rc = load("max_prompt_bytes = 8M\nmax_frame_bytes = 8M\n", &c, &err);
	tap_is_int(rc, 0, "sizes load");
	tap_ok(config_check(&c, &err) != 0 && strstr(err.msg, "max_frame_bytes"),
	    "a frame limit below the prompt limit is refused: %s", err.msg);
	config_free(&c);

	config_init(&c, &err);
	tap_ok(config_load(&c, "/nonexistent/ktxd.conf", &err) != 0 &&
		strstr(err.msg, "/nonexistent/ktxd.conf"),
	    "a missing file is named: %s", err.msg);
	config_free(&c);
	return tap_done();
}
