/* SPDX-License-Identifier: MIT */
/*
 * kpud's logging (daemon/log.h) for the daemon fuzz targets: every message is formatted
 * (so bad format arguments still show up under ASan) into a buffer and thrown away, which
 * keeps libFuzzer's output readable and fast. Defining every function of daemon/log.c
 * here keeps the linker from taking log.o out of kpud_core.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static int threshold = LOG_DEBUG;

void kpud_log_set_level(int priority)
{
    (void)priority; /* stay at debug: the fuzzer wants every message formatted */
}

int kpud_log_level(void)
{
    return threshold;
}

int kpud_log_parse_level(const char *name)
{
    static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                        "warning", "notice", "info", "debug"};
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

    (void)priority;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
}
