/*
 * conf.c - parsing ktxd.conf and command-line values into struct ktxd_config.
 */
#include "config.h"

#include "daemon/conf.h"

#include "engine/ktx.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KTXD_DEFAULT_MODEL
#define KTXD_DEFAULT_MODEL KTX_DATADIR "/demo.gguf"
#endif
#define KTXD_DEFAULT_SOCKET "/run/ktx/ktxd.sock"
#define KTXD_DEFAULT_DATABASE "/var/lib/ktx/ktxd.db"

/* Longest line of ktxd.conf; a longer one is an error, not silently cut. */
#define CONFIG_LINE_MAX 4096
/* Room in a frame for everything but the prompt (op, ids, options). */
#define CONFIG_FRAME_SLACK 4096

enum key_kind { K_STRING, K_OPT_STRING, K_MODE, K_INT, K_U32, K_SIZE, K_LEVEL, K_ACT, K_CACHE,
	K_LOAD };

struct key {
	const char *name;
	enum key_kind kind;
	size_t offset;
	uint64_t min, max; /* for numbers */
};

#define OFF(f) offsetof(struct ktxd_config, f)

/* Every key ktxd.conf knows, with the range a number must lie in. */
static const struct key keys[] = {
	{"model", K_STRING, OFF(model), 0, 0},
	{"socket", K_STRING, OFF(socket), 0, 0},
	{"socket_mode", K_MODE, OFF(socket_mode), 0, 0777},
	{"socket_group", K_OPT_STRING, OFF(socket_group), 0, 0},
	{"database", K_STRING, OFF(database), 0, 0},
	{"threads", K_INT, OFF(threads), 0, 4096},
	{"act_residual", K_ACT, OFF(act_residual), 0, 0},
	{"cache_type", K_CACHE, OFF(cache_type), 0, 0},
	{"load", K_LOAD, OFF(load), 0, 0},
	{"experts", K_U32, OFF(experts), 0, 256},
	{"context", K_U32, OFF(context), 0, 1u << 20},
	{"vram_headroom", K_SIZE, OFF(vram_headroom), 0, UINT64_C(1) << 50},
	{"queue_max", K_U32, OFF(queue_max), 1, 1000000},
	{"queue_per_user", K_U32, OFF(queue_per_user), 1, 1000000},
	{"batch_max", K_U32, OFF(batch_max), 1, KTXD_BATCH_LIMIT},
	{"max_prompt_bytes", K_SIZE, OFF(max_prompt_bytes), 1, UINT64_C(1) << 30},
	{"max_frame_bytes", K_SIZE, OFF(max_frame_bytes), 64, UINT64_C(1) << 30},
	{"admin_group", K_OPT_STRING, OFF(admin_group), 0, 0},
	{"log_level", K_LEVEL, OFF(log_level), 0, 0},
};

static const char *const level_names[] = {"error", "warning", "info", "debug"};

int
config_init(struct ktxd_config *c, struct ktx_err *err)
{
	memset(c, 0, sizeof(*c));
	c->model = strdup(KTXD_DEFAULT_MODEL);
	c->socket = strdup(KTXD_DEFAULT_SOCKET);
	c->database = strdup(KTXD_DEFAULT_DATABASE);
	if (c->model == NULL || c->socket == NULL || c->database == NULL) {
		config_free(c);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the configuration");
	}
	c->socket_mode = 0660;
	c->queue_max = 4096;
	c->queue_per_user = 512;
	c->batch_max = 8;
	c->max_prompt_bytes = 4u << 20;
	c->max_frame_bytes = 8u << 20;
	c->vram_headroom = 512u << 20;
	c->log_level = LOG_LEVEL_INFO;
	c->act_residual = KTX_ACT_DEFAULT;
	c->cache_type = KTX_CACHE_F32;
	c->load = KTX_LOAD_AUTO;
	return 0;
}

void
config_free(struct ktxd_config *c)
{
	free(c->model);
	free(c->socket);
	free(c->socket_group);
	free(c->database);
	free(c->admin_group);
	memset(c, 0, sizeof(*c));
}

const char *
config_log_level_name(enum log_level l)
{
	if ((unsigned)l < sizeof(level_names) / sizeof(level_names[0]))
		return level_names[l];
	return "?";
}

/* Parses an unsigned decimal number with an optional K/M/G/T (binary) suffix. */
static int
parse_number(const char *s, bool sized, uint64_t *out)
{
	unsigned long long v;
	char *end;
	unsigned shift = 0;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (sized && *end != '\0') {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: return -1;
		}
		end++;
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
	}
	if (*end != '\0')
		return -1;
	if (shift != 0 && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int
config_set(struct ktxd_config *c, const char *where, const char *key, const char *value,
    struct ktx_err *err)
{
	const struct key *k = NULL;
	char *base = (char *)c;
	uint64_t v = 0;
	char *end, *copy;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, key) == 0)
			k = &keys[i];
	if (k == NULL)
		return ktx_err_set(err, KTX_EINVAL, "%s: unknown key '%s' (see ktxd.conf(5))",
		    where, key);
	switch (k->kind) {
	case K_STRING:
	case K_OPT_STRING:
		if (value[0] == '\0' && k->kind == K_STRING)
			return ktx_err_set(err, KTX_EINVAL, "%s: key '%s' needs a value", where, key);
		copy = NULL;
		if (value[0] != '\0' && (copy = strdup(value)) == NULL)
			return ktx_err_set(err, KTX_ENOMEM, "%s: out of memory", where);
		free(*(char **)(base + k->offset));
		*(char **)(base + k->offset) = copy;
		return 0;
	case K_LEVEL:
		for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
			if (strcmp(level_names[i], value) == 0) {
				c->log_level = (enum log_level)i;
				return 0;
			}
		return ktx_err_set(err, KTX_EINVAL,
		    "%s: key '%s': '%s' is not one of error, warning, info, debug", where, key,
		    value);
	case K_ACT:
		if (ktx_act_residual_parse(value, &c->act_residual) != 0)
			return ktx_err_set(err, KTX_EINVAL, "%s: key '%s': '%s' is not all, none or "
			    "a list of attn, dense, routed, output", where, key, value);
		return 0;
	case K_CACHE: {
		enum ktx_cache_type t;

		if (ktx_cache_type_parse(value, &t) != 0)
			return ktx_err_set(err, KTX_EINVAL, "%s: key '%s': '%s' is not f32, f16 or "
			    "bf16", where, key, value);
		c->cache_type = (int)t;
		return 0;
	}
	case K_LOAD: {
		enum ktx_load l;

		if (ktx_load_parse(value, &l) != 0)
			return ktx_err_set(err, KTX_EINVAL, "%s: key '%s': '%s' is not auto, read or "
			    "mmap", where, key, value);
		c->load = (int)l;
		return 0;
	}
	case K_MODE:
		errno = 0;
		v = value[0] >= '0' && value[0] <= '7' ? strtoull(value, &end, 8) : 0;
		if (value[0] < '0' || value[0] > '7' || *end != '\0' || errno != 0 || v > k->max)
			return ktx_err_set(err, KTX_EINVAL,
			    "%s: key '%s': '%s' is not an octal mode such as 0660", where, key,
			    value);
		c->socket_mode = (unsigned)v;
		return 0;
	case K_INT:
	case K_U32:
	case K_SIZE:
		if (parse_number(value, k->kind == K_SIZE, &v) != 0)
			return ktx_err_set(err, KTX_EINVAL, "%s: key '%s': '%s' is not %s", where,
			    key, value,
			    k->kind == K_SIZE ? "a size (a number with an optional K, M, G or T)"
					      : "a non-negative whole number");
		if (v < k->min || v > k->max)
			return ktx_err_set(err, KTX_ERANGE,
			    "%s: key '%s': %s is outside %llu..%llu", where, key, value,
			    (unsigned long long)k->min, (unsigned long long)k->max);
		if (k->kind == K_INT)
			*(int *)(base + k->offset) = (int)v;
		else if (k->kind == K_U32)
			*(uint32_t *)(base + k->offset) = (uint32_t)v;
		else
			*(uint64_t *)(base + k->offset) = v;
		return 0;
	}
	return ktx_err_set(err, KTX_EINVAL, "%s: key '%s' has no parser", where, key);
}

/* Strips spaces and tabs from both ends of s in place. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
config_load(struct ktxd_config *c, const char *path, struct ktx_err *err)
{
	char line[CONFIG_LINE_MAX], where[CONFIG_LINE_MAX + 32];
	char *key, *value, *eq;
	unsigned lineno = 0;
	size_t n;
	FILE *f;
	int rc = 0;

	if ((f = fopen(path, "r")) == NULL)
		return ktx_err_set(err, KTX_EIO, "%s: cannot open: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n' && !feof(f)) {
			rc = ktx_err_set(err, KTX_ERANGE, "%s: line longer than %d bytes", where,
			    CONFIG_LINE_MAX - 2);
			break;
		}
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		key = trim(line);
		if (key[0] == '\0' || key[0] == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			rc = ktx_err_set(err, KTX_EINVAL,
			    "%s: '%s' is not a 'key = value' line", where, key);
			break;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		if ((rc = config_set(c, where, key, value, err)) != 0)
			break;
	}
	if (rc == 0 && ferror(f))
		rc = ktx_err_set(err, KTX_EIO, "%s: read error", path);
	fclose(f);
	return rc;
}

int
config_check(const struct ktxd_config *c, struct ktx_err *err)
{
	if (c->max_frame_bytes < c->max_prompt_bytes + CONFIG_FRAME_SLACK)
		return ktx_err_set(err, KTX_EINVAL,
		    "max_frame_bytes (%llu) must exceed max_prompt_bytes (%llu) by at least %d "
		    "bytes, or the longest prompt cannot be sent",
		    (unsigned long long)c->max_frame_bytes,
		    (unsigned long long)c->max_prompt_bytes, CONFIG_FRAME_SLACK);
	return 0;
}
