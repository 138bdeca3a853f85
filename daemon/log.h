/*
 * log.h - ktxd's log lines on stderr (journald reads them).
 *
 * Under journald (JOURNAL_STREAM set) each line starts with its syslog
 * priority "<N>" so the journal keeps the level; otherwise with the level's
 * name.
 */
#ifndef KTX_DAEMON_LOG_H
#define KTX_DAEMON_LOG_H

#include "daemon/conf.h"

void log_init(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
