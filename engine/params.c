/*
 * params.c - engine knobs from their text form, shared by every front end
 * (ktx-run's options, ktxd.conf's keys) so each accepts the same words.
 */
#include "engine/ktx.h"

#include <string.h>

int
ktx_act_residual_parse(const char *s, unsigned *classes)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = { { "attn", KTX_ACT_ATTN }, { "dense", KTX_ACT_DENSE },
		      { "routed", KTX_ACT_ROUTED }, { "output", KTX_ACT_OUTPUT } };
	unsigned set = 0;

	if (strcmp(s, "all") == 0) {
		*classes = KTX_ACT_ALL;
		return 0;
	}
	if (strcmp(s, "none") == 0) {
		*classes = 0;
		return 0;
	}
	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		size_t len = strcspn(s, ","), i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len && strncmp(s, names[i].name, len) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return -1;
		set |= names[i].bit;
		s += len;
		if (*s == ',' && *++s == '\0')
			return -1;
	}
	*classes = set;
	return 0;
}

int
ktx_cache_type_parse(const char *s, enum ktx_cache_type *t)
{
	if (strcmp(s, "f32") == 0)
		*t = KTX_CACHE_F32;
	else if (strcmp(s, "f16") == 0)
		*t = KTX_CACHE_F16;
	else if (strcmp(s, "bf16") == 0)
		*t = KTX_CACHE_BF16;
	else
		return -1;
	return 0;
}

int
ktx_load_parse(const char *s, enum ktx_load *l)
{
	if (strcmp(s, "auto") == 0)
		*l = KTX_LOAD_AUTO;
	else if (strcmp(s, "read") == 0)
		*l = KTX_LOAD_READ;
	else if (strcmp(s, "mmap") == 0)
		*l = KTX_LOAD_MMAP;
	else
		return -1;
	return 0;
}

const char *
ktx_load_name(enum ktx_load l)
{
	switch (l) {
	case KTX_LOAD_AUTO:
		return "auto";
	case KTX_LOAD_READ:
		return "read";
	case KTX_LOAD_MMAP:
		return "mmap";
	}
	return "?";
}
