/* SPDX-License-Identifier: MIT */
/* Helpers for the core (util.h). */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>

void kfa_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t i = 0;

    if (cap == 0)
        return;
    for (; i + 1 < cap && src[i]; i++)
        dst[i] = src[i];
    dst[i] = '\0';
}

void kfa_fmt(char *text, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (!text || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(text, cap, fmt, ap);
    va_end(ap);
}
