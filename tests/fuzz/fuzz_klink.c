/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the klink streaming decoder. The first byte picks the chunk size the
 * input is fed in. Every frame the decoder delivers must survive a re-encode/decode round
 * trip unchanged, and the decoder's counters must account for every input byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "klink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t buf[KLINK_MAX_FRAME];
static uint8_t buf2[KLINK_MAX_FRAME];
static uint8_t wire[KLINK_MAX_ENCODED];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct klink_decoder dec;
    struct klink_frame f;
    size_t chunk;

    if (size < 1)
        return 0;
    chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    const size_t total = size;
    klink_decoder_init(&dec, buf, sizeof(buf));
    while (size) {
        size_t n = size < chunk ? size : chunk, left = n;
        const uint8_t *p = data;
        while (left) {
            if (!klink_decode(&dec, &p, &left, &f))
                continue;
            size_t w = klink_encode(f.type, f.flags, f.seq, f.ref, f.payload, f.payload_len, wire,
                                    sizeof(wire));
            if (w == 0 || memchr(wire, 0, w - 1))
                abort();
            struct klink_decoder d2;
            struct klink_frame g;
            const uint8_t *q = wire;
            size_t ql = w;
            klink_decoder_init(&d2, buf2, sizeof(buf2));
            if (!klink_decode(&d2, &q, &ql, &g) || ql != 0)
                abort();
            if (g.type != f.type || g.flags != f.flags || g.seq != f.seq || g.ref != f.ref ||
                g.payload_len != f.payload_len || memcmp(g.payload, f.payload, f.payload_len))
                abort();
        }
        data += n;
        size -= n;
    }
    if (dec.stats.bytes_in != total || dec.stats.bytes_discarded > total)
        abort();
    return 0;
}
