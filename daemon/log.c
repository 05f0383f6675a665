/* SPDX-License-Identifier: MIT */
/*
 * kpud logging to stderr with syslog priority prefixes (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int threshold = LOG_INFO;
static int tty = -1;

static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                    "warning", "notice", "info", "debug"};

void kpud_log_set_level(int priority)
{
    threshold = priority;
}

int kpud_log_level(void)
{
    return threshold;
}

int kpud_log_parse_level(const char *name)
{
    for (int i = 0; i < 8; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    if (strcmp(name, "err") == 0)
        return LOG_ERR;
    if (strcmp(name, "warn") == 0)
        return LOG_WARNING;
    return -1;
}

void kpud_log(int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    if (priority > threshold)
        return;
    if (tty < 0)
        tty = isatty(STDERR_FILENO);
    if (priority < 0 || priority > 7)
        priority = LOG_ERR;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* One write per line so lines from kpud and its children do not interleave. */
    if (tty)
        fprintf(stderr, "kpud %s: %s\n", names[priority], line);
    else
        fprintf(stderr, "<%d>%s\n", priority, line);
}
