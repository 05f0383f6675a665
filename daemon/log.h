/* SPDX-License-Identifier: MIT */
/*
 * kpud logging: one line per message on stderr. Under systemd (stderr not a terminal) each
 * line starts with the sd-daemon "<N>" syslog-priority prefix, which journald turns into
 * the message priority; on a terminal the priority is spelled out instead.
 */
#ifndef KPUD_LOG_H
#define KPUD_LOG_H

#include <syslog.h>

/* kpud_log_set_level - drop messages less important than priority (LOG_ERR..LOG_DEBUG). */
void kpud_log_set_level(int priority);

/* kpud_log_level - the current threshold. */
int kpud_log_level(void);

/* kpud_log_parse_level - "error", "warning", "notice", "info", "debug" -> LOG_*; -1 if
 * the name is unknown. */
int kpud_log_parse_level(const char *name);

/* kpud_log - format and write one message at priority. Never fails the caller. */
void kpud_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) kpud_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) kpud_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) kpud_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) kpud_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) kpud_log(LOG_DEBUG, __VA_ARGS__)

#endif
