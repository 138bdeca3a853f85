/*
 * log.c - writing log lines; see log.h.
 */
#include "config.h"

#include "daemon/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static enum log_level threshold = LOG_LEVEL_INFO;
static bool journal;

void
log_init(enum log_level level)
{
	threshold = level;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const int prio[] = {3, 4, 6, 7}; /* err, warning, info, debug */
	char line[2048];
	va_list ap;

	if (level > threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line, so lines from two threads never interleave. */
	if (journal)
		fprintf(stderr, "<%d>%s\n", prio[level], line);
	else
		fprintf(stderr, "ktxd: %s: %s\n", config_log_level_name(level), line);
}
