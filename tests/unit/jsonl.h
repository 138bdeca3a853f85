/*
 * jsonl.h - a small JSON reader for tests that read the oracle's .jsonl case
 * files (the tokenizer and chat tests). Header-only, for tests only: it
 * trusts nothing (every read is bounded) but reports a bad file simply as
 * NULL.
 */
#ifndef KTX_TESTS_UNIT_JSONL_H
#define KTX_TESTS_UNIT_JSONL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	bool b;
	double num;
	char *s;           /* J_STR: UTF-8, NUL-terminated (may hold NULs: see slen) */
	size_t slen;
	struct jv *items;  /* J_ARR, J_OBJ values */
	char **keys;       /* J_OBJ */
	size_t n;
};

struct jparser {
	const char *p, *end;
	int depth;
};

static void
jfree_inner(struct jv *v)
{
	size_t i;

	free(v->s);
	for (i = 0; i < v->n; i++) {
		jfree_inner(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
}

static void
jfree(struct jv *v)
{
	if (v == NULL)
		return;
	jfree_inner(v);
	free(v);
}

static void
jskip(struct jparser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n'
	    || *jp->p == '\r'))
		jp->p++;
}

static int
jhex4(struct jparser *jp, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	if (jp->end - jp->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = *jp->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Parses a string after its opening quote into a malloc'ed UTF-8 copy
 * (\u escapes with surrogate pairs; a lone surrogate is an error). */
static int
jstring(struct jparser *jp, char **out, size_t *outlen)
{
	size_t cap = 16, n = 0;
	char *s = malloc(cap);

	if (s == NULL)
		return -1;
	for (;;) {
		uint32_t cp;
		char c;

		if (jp->p >= jp->end)
			goto bad;
		if (n + 5 > cap) {
			char *ns = realloc(s, cap * 2);

			if (ns == NULL)
				goto bad;
			s = ns;
			cap *= 2;
		}
		c = *jp->p++;
		if (c == '"')
			break;
		if (c != '\\') {
			s[n++] = c;
			continue;
		}
		if (jp->p >= jp->end)
			goto bad;
		c = *jp->p++;
		switch (c) {
		case '"': case '\\': case '/': s[n++] = c; continue;
		case 'b': s[n++] = '\b'; continue;
		case 'f': s[n++] = '\f'; continue;
		case 'n': s[n++] = '\n'; continue;
		case 'r': s[n++] = '\r'; continue;
		case 't': s[n++] = '\t'; continue;
		case 'u': break;
		default: goto bad;
		}
		if (jhex4(jp, &cp) != 0)
			goto bad;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			goto bad;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo;

			if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u')
				goto bad;
			jp->p += 2;
			if (jhex4(jp, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
				goto bad;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (cp < 0x80) {
			s[n++] = (char)cp;
		} else if (cp < 0x800) {
			s[n++] = (char)(0xc0 | (cp >> 6));
			s[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			s[n++] = (char)(0xe0 | (cp >> 12));
			s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			s[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			s[n++] = (char)(0xf0 | (cp >> 18));
			s[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			s[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			s[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	s[n] = '\0';
	*out = s;
	*outlen = n;
	return 0;
bad:
	free(s);
	return -1;
}

static int jvalue(struct jparser *jp, struct jv *v);

/* Parses the elements of an array or object after its opening bracket. */
static int
jcontainer(struct jparser *jp, struct jv *v, bool obj)
{
	size_t cap = 0;

	jskip(jp);
	if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) {
		jp->p++;
		return 0;
	}
	for (;;) {
		if (v->n == cap) {
			size_t nc = cap ? 2 * cap : 8;
			struct jv *ni = realloc(v->items, nc * sizeof(*ni));

			if (ni == NULL)
				return -1;
			v->items = ni;
			if (obj) {
				char **nk = realloc(v->keys, nc * sizeof(*nk));

				if (nk == NULL)
					return -1;
				v->keys = nk;
			}
			cap = nc;
		}
		memset(&v->items[v->n], 0, sizeof(v->items[0]));
		if (obj) {
			size_t kl;

			jskip(jp);
			if (jp->p >= jp->end || *jp->p++ != '"')
				return -1;
			v->keys[v->n] = NULL;
			if (jstring(jp, &v->keys[v->n], &kl) != 0) {
				v->keys[v->n] = NULL;
				return -1;
			}
			jskip(jp);
			if (jp->p >= jp->end || *jp->p++ != ':') {
				v->n++;
				return -1;
			}
		}
		v->n++;
		if (jvalue(jp, &v->items[v->n - 1]) != 0)
			return -1;
		jskip(jp);
		if (jp->p >= jp->end)
			return -1;
		if (*jp->p == ',') {
			jp->p++;
			continue;
		}
		if (*jp->p++ != (obj ? '}' : ']'))
			return -1;
		return 0;
	}
}

static int
jvalue(struct jparser *jp, struct jv *v)
{
	jskip(jp);
	if (jp->p >= jp->end || ++jp->depth > 64)
		return -1;
	if (*jp->p == '"') {
		jp->p++;
		v->t = J_STR;
		if (jstring(jp, &v->s, &v->slen) != 0)
			return -1;
	} else if (*jp->p == '[' || *jp->p == '{') {
		bool obj = *jp->p == '{';

		jp->p++;
		v->t = obj ? J_OBJ : J_ARR;
		if (jcontainer(jp, v, obj) != 0)
			return -1;
	} else if (jp->end - jp->p >= 4 && memcmp(jp->p, "true", 4) == 0) {
		v->t = J_BOOL, v->b = true, jp->p += 4;
	} else if (jp->end - jp->p >= 5 && memcmp(jp->p, "false", 5) == 0) {
		v->t = J_BOOL, v->b = false, jp->p += 5;
	} else if (jp->end - jp->p >= 4 && memcmp(jp->p, "null", 4) == 0) {
		v->t = J_NULL, jp->p += 4;
	} else {
		char buf[64], *e;
		size_t k = 0;

		while (jp->p + k < jp->end && k < sizeof(buf) - 1 &&
		    strchr("+-0123456789.eE", jp->p[k]) != NULL) {
			buf[k] = jp->p[k];
			k++;
		}
		buf[k] = '\0';
		v->t = J_NUM;
		v->num = strtod(buf, &e);
		if (k == 0 || *e != '\0')
			return -1;
		jp->p += k;
	}
	jp->depth--;
	return 0;
}

/* Parses one JSON text of len bytes; NULL when it is not valid. */
static struct jv *
jparse(const char *s, size_t len)
{
	struct jparser jp = {s, s + len, 0};
	struct jv *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	if (jvalue(&jp, v) != 0) {
		jfree(v);
		return NULL;
	}
	jskip(&jp);
	if (jp.p != jp.end) {
		jfree(v);
		return NULL;
	}
	return v;
}

/* The member key of object o, or NULL. */
static const struct jv *
jget(const struct jv *o, const char *key)
{
	size_t i;

	if (o == NULL || o->t != J_OBJ)
		return NULL;
	for (i = 0; i < o->n; i++) {
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	}
	return NULL;
}

/* Reads a whole file into a malloc'ed, NUL-terminated buffer. */
static char *
read_whole(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (fp == NULL)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap ? 2 * cap : 65536);

			if (nb == NULL) {
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = nb;
			cap = cap ? 2 * cap : 65536;
		}
		got = fread(buf + n, 1, cap - n - 1, fp);
		n += got;
	} while (got > 0);
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

#endif
