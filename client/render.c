/*
 * render.c - events on stdout: one JSON object per line for scripts, or
 * aligned lines for people.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/ktxctl.h"

/* Writes s as a JSON string: UTF-8 passes through, controls are escaped. */
static void
json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putc('"', f);
	for (; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				putc(*p, f);
		}
	}
	putc('"', f);
}

void
render_json(FILE *f, const struct ktx_msg *ev)
{
	int i;

	fputs("{\"ev\":", f);
	json_str(f, ktx_msg_type_name(ev->type));
	fprintf(f, ",\"id\":%" PRIu64, ev->id);
	for (i = 0; i < KTX_NFIELDS; i++) {
		if (!ktx_msg_has(ev, i))
			continue;
		fputc(',', f);
		json_str(f, ktx_field_name(i));
		fputc(':', f);
		switch (ktx_field_kind(i)) {
		case KTX_KIND_STR:
			json_str(f, ev->v[i].s);
			break;
		case KTX_KIND_UINT:
			fprintf(f, "%" PRIu64, ev->v[i].u);
			break;
		case KTX_KIND_FLOAT:
			fprintf(f, "%.9g", ev->v[i].f);
			break;
		case KTX_KIND_BOOL:
			fputs(ev->v[i].b ? "true" : "false", f);
			break;
		}
	}
	fputs("}\n", f);
	fflush(f);
}

/* A byte count for people: "1.5 GiB". */
static void
human_bytes(char *buf, size_t size, uint64_t n)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

/* A duration for people: "42s", "3m05s", "2h07m". */
static void
human_age(char *buf, size_t size, uint64_t s)
{
	if (s < 60)
		snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
}

/* A unix time for people, local time. */
static void
human_time(char *buf, size_t size, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, size, "%" PRIu64, t);
}

/* The first line of s, at most 60 bytes, cut on a character boundary. */
static void
first_line(char *buf, size_t size, const char *s)
{
	size_t n = strcspn(s, "\n"), cut = n > 60 ? 60 : n;

	while (cut > 0 && cut < n && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	snprintf(buf, size, "%.*s%s", (int)cut, s, cut < n || s[n] ? "..." : "");
}

static void
render_status(FILE *f, const struct ktx_msg *ev)
{
	char a[32], b[32];

	if (ktx_msg_has(ev, KTX_F_SERVER))
		fprintf(f, "server:   %s\n", ktx_msg_get_str(ev, KTX_F_SERVER));
	if (ktx_msg_has(ev, KTX_F_MODEL))
		fprintf(f, "model:    %s\n", ktx_msg_get_str(ev, KTX_F_MODEL));
	if (ktx_msg_has(ev, KTX_F_STATE)) {
		fprintf(f, "state:    %s", ktx_msg_get_str(ev, KTX_F_STATE));
		if (ktx_msg_has(ev, KTX_F_PROGRESS) &&
		    strcmp(ktx_msg_get_str(ev, KTX_F_STATE), "loading") == 0)
			fprintf(f, " (%.0f%%)", 100 * ktx_msg_get_float(ev, KTX_F_PROGRESS, 0));
		fputc('\n', f);
	}
	if (ktx_msg_has(ev, KTX_F_UPTIME)) {
		human_age(a, sizeof(a), ktx_msg_get_uint(ev, KTX_F_UPTIME, 0));
		fprintf(f, "uptime:   %s\n", a);
	}
	if (ktx_msg_has(ev, KTX_F_RAM) || ktx_msg_has(ev, KTX_F_VRAM)) {
		human_bytes(a, sizeof(a), ktx_msg_get_uint(ev, KTX_F_RAM, 0));
		fprintf(f, "memory:   %s RAM", a);
		if (ktx_msg_has(ev, KTX_F_VRAM)) {
			human_bytes(b, sizeof(b), ktx_msg_get_uint(ev, KTX_F_VRAM, 0));
			fprintf(f, ", %s VRAM", b);
		}
		fputc('\n', f);
	}
	if (ktx_msg_has(ev, KTX_F_MODEL_RAM) || ktx_msg_has(ev, KTX_F_MODEL_VRAM)) {
		human_bytes(a, sizeof(a), ktx_msg_get_uint(ev, KTX_F_MODEL_RAM, 0));
		human_bytes(b, sizeof(b), ktx_msg_get_uint(ev, KTX_F_MODEL_VRAM, 0));
		fprintf(f, "weights:  %s in RAM, %s in VRAM\n", a, b);
	}
	if (ktx_msg_has(ev, KTX_F_CTX) || ktx_msg_has(ev, KTX_F_THREADS))
		fprintf(f, "context:  %" PRIu64 " tokens, %" PRIu64 " threads\n",
		    ktx_msg_get_uint(ev, KTX_F_CTX, 0), ktx_msg_get_uint(ev, KTX_F_THREADS, 0));
	if (ktx_msg_has(ev, KTX_F_WAITING) || ktx_msg_has(ev, KTX_F_RUNNING))
		fprintf(f, "jobs:     %" PRIu64 " running, %" PRIu64 " waiting\n",
		    ktx_msg_get_uint(ev, KTX_F_RUNNING, 0), ktx_msg_get_uint(ev, KTX_F_WAITING, 0));
	if (ktx_msg_has(ev, KTX_F_TOK_S))
		fprintf(f, "speed:    %.1f tokens/s (recent jobs)\n",
		    ktx_msg_get_float(ev, KTX_F_TOK_S, 0));
}

/* The owner of a job or conversation: user name, else uid, else "-". */
static void
owner(char *buf, size_t size, const struct ktx_msg *ev)
{
	if (ktx_msg_has(ev, KTX_F_USER))
		snprintf(buf, size, "%s", ktx_msg_get_str(ev, KTX_F_USER));
	else if (ktx_msg_has(ev, KTX_F_UID))
		snprintf(buf, size, "%" PRIu64, ktx_msg_get_uint(ev, KTX_F_UID, 0));
	else
		snprintf(buf, size, "-");
}

void
render_item(FILE *f, const struct ktx_msg *ev)
{
	char a[32], who[64], title[128];
	const char *s;

	switch (ev->type) {
	case KTX_EV_STATUS:
		render_status(f, ev);
		break;
	case KTX_EV_USAGE:
		owner(who, sizeof(who), ev);
		fprintf(f, "user %-12s %" PRIu64 " running, %" PRIu64 " waiting\n", who,
		    ktx_msg_get_uint(ev, KTX_F_RUNNING, 0), ktx_msg_get_uint(ev, KTX_F_WAITING, 0));
		break;
	case KTX_EV_JOB:
		owner(who, sizeof(who), ev);
		human_age(a, sizeof(a), ktx_msg_get_uint(ev, KTX_F_AGE, 0));
		s = ktx_msg_get_str(ev, KTX_F_TITLE);
		first_line(title, sizeof(title), s ? s : "");
		fprintf(f, "%-6" PRIu64 " %-9s %4" PRIu64 " %-10s %7s  %s\n",
		    ktx_msg_get_uint(ev, KTX_F_JOB, 0), ktx_msg_get_str(ev, KTX_F_STATE),
		    ktx_msg_get_uint(ev, KTX_F_POSITION, 0), who, a, title);
		break;
	case KTX_EV_CONVERSATION:
		human_time(a, sizeof(a), ktx_msg_get_uint(ev, KTX_F_UPDATED,
		    ktx_msg_get_uint(ev, KTX_F_CREATED, 0)));
		s = ktx_msg_get_str(ev, KTX_F_NAME);
		if (s == NULL)
			s = ktx_msg_get_str(ev, KTX_F_TITLE);
		first_line(title, sizeof(title), s ? s : "");
		fprintf(f, "%-6" PRIu64 " %5" PRIu64 "  %-16s  %s\n",
		    ktx_msg_get_uint(ev, KTX_F_CONV_ID, 0), ktx_msg_get_uint(ev, KTX_F_TURNS, 0),
		    a, title);
		break;
	case KTX_EV_TURN:
		s = ktx_msg_get_str(ev, KTX_F_TEXT);
		fprintf(f, "[%s]\n%s%s\n", ktx_msg_get_str(ev, KTX_F_ROLE), s,
		    s[0] && s[strlen(s) - 1] != '\n' ? "\n" : "");
		break;
	default:
		break;
	}
}
