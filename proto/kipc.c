/* SPDX-License-Identifier: MIT */
/*
 * kipc framing: length-prefixed kpu.ipc.v1 frames on a byte stream (see kipc.h).
 */
#include "kipc.h"

#include <stdlib.h>
#include <string.h>

void kipc_reader_init(struct kipc_reader *r, uint32_t max_frame)
{
    memset(r, 0, sizeof(*r));
    r->max_frame = max_frame ? max_frame : KIPC_DEFAULT_MAX_FRAME;
}

void kipc_reader_free(struct kipc_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->buf_cap = 0;
}

/* Make room for need bytes, growing geometrically but never past the frame limit. */
static int reserve(struct kipc_reader *r, size_t need)
{
    size_t cap;
    uint8_t *nb;

    if (need <= r->buf_cap)
        return 0;
    cap = r->buf_cap ? r->buf_cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > r->max_frame)
        cap = r->max_frame;
    nb = realloc(r->buf, cap);
    if (!nb)
        return -1;
    r->buf = nb;
    r->buf_cap = cap;
    return 0;
}

int kipc_reader_feed(struct kipc_reader *r, const uint8_t **data, size_t *len,
                     const uint8_t **frame, size_t *frame_len)
{
    const uint8_t *p = *data;
    size_t n = *len;

    if (r->error)
        return r->error;
    while (n > 0 || (r->hdr_len == KIPC_HEADER_SIZE && r->have == r->need)) {
        if (r->hdr_len < KIPC_HEADER_SIZE) {
            size_t take = KIPC_HEADER_SIZE - r->hdr_len;
            if (take > n)
                take = n;
            memcpy(r->hdr + r->hdr_len, p, take);
            r->hdr_len += take;
            p += take;
            n -= take;
            if (r->hdr_len < KIPC_HEADER_SIZE)
                break;
            r->need = (size_t)r->hdr[0] << 24 | (size_t)r->hdr[1] << 16 | (size_t)r->hdr[2] << 8 |
                      r->hdr[3];
            r->have = 0;
            if (r->need > r->max_frame) {
                r->too_large_len = (uint32_t)r->need;
                r->error = KIPC_E_TOO_LARGE;
                break;
            }
            if (reserve(r, r->need) < 0) {
                r->error = KIPC_E_NOMEM;
                break;
            }
        }
        if (r->have < r->need) {
            size_t take = r->need - r->have;
            if (take > n)
                take = n;
            memcpy(r->buf + r->have, p, take);
            r->have += take;
            p += take;
            n -= take;
        }
        if (r->have == r->need) {
            *frame = r->buf ? r->buf : (const uint8_t *)"";
            *frame_len = r->need;
            r->hdr_len = 0;
            *data = p;
            *len = n;
            return KIPC_FRAME;
        }
    }
    *data = p;
    *len = n;
    return r->error;
}

void kipc_put_header(uint8_t out[KIPC_HEADER_SIZE], uint32_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

int kipc_pack(const Kpu__Ipc__V1__Frame *frame, uint32_t max_frame, uint8_t **out, size_t *out_len)
{
    size_t body = kpu__ipc__v1__frame__get_packed_size(frame);
    uint8_t *buf;

    if (!max_frame)
        max_frame = KIPC_DEFAULT_MAX_FRAME;
    if (body > max_frame)
        return -1;
    buf = malloc(KIPC_HEADER_SIZE + body);
    if (!buf)
        return -1;
    kipc_put_header(buf, (uint32_t)body);
    kpu__ipc__v1__frame__pack(frame, buf + KIPC_HEADER_SIZE);
    *out = buf;
    *out_len = KIPC_HEADER_SIZE + body;
    return 0;
}

Kpu__Ipc__V1__Frame *kipc_unpack(const uint8_t *body, size_t len)
{
    return kpu__ipc__v1__frame__unpack(NULL, len, body);
}
