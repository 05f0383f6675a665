/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the core's files: little-endian access, bounded string copy and
 * formatting into fixed buffers (the Status and LogLine texts).
 */
#ifndef KFA_UTIL_H
#define KFA_UTIL_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t kfa_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void kfa_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* kfa_strlcpy - copy src into dst (cap bytes, cap > 0), always NUL-terminated, truncating. */
void kfa_strlcpy(char *dst, const char *src, size_t cap);

/* kfa_fmt - printf into text (cap bytes); a NULL text or cap 0 does nothing. */
void kfa_fmt(char *text, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* KFA_UTIL_H */
