/* SPDX-License-Identifier: MIT */
/*
 * klink framing: CRC-32C, COBS encoder and the streaming decoder (see klink.h for the
 * wire layout). Freestanding: no allocation, no stdio.
 */
#include "klink.h"

#include <string.h>

/* CRC-32C reflected polynomial (Castagnoli 1993; RFC 3720 appendix B.4). */
#define CRC32C_POLY 0x82F63B78u

/* Slicing-by-8 tables, built on first use (8 KiB of static storage, no allocation). */
static uint32_t crc_table[8][256];
static int crc_table_ready;

static void crc_table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] =
                (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFFu];
    crc_table_ready = 1;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* SSE4.2 has a CRC-32C instruction (Intel SDM vol. 2A, CRC32). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                               size_t len)
{
    uint64_t c = crc;
    while (len && ((uintptr_t)p & 7u)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}

static int have_sse42(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    return cached;
}
#endif

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    if (!crc_table_ready)
        crc_table_build();
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xFFu] ^ crc_table[6][(lo >> 8) & 0xFFu] ^
              crc_table[5][(lo >> 16) & 0xFFu] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFFu];
    return crc;
}

uint32_t klink_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_sse42())
        return ~crc32c_sse42(crc, p, len);
#endif
    return ~crc32c_sw(crc, p, len);
}

size_t klink_encoded_size_max(size_t payload_len)
{
    size_t n = KLINK_HEADER_SIZE + payload_len + KLINK_CRC_SIZE;
    return n + KLINK_COBS_OVERHEAD(n) + 1u;
}

/* COBS encoder over up to three discontiguous input pieces. */
struct cobs_out {
    uint8_t *out;
    size_t pos;      /* next write position */
    size_t code_pos; /* where the current block's code byte goes */
    uint8_t code;    /* 1 + data bytes in the current block */
};

static void cobs_close_block(struct cobs_out *c)
{
    c->out[c->code_pos] = c->code;
    c->code_pos = c->pos++;
    c->code = 1;
}

static void cobs_put(struct cobs_out *c, const uint8_t *src, size_t n)
{
    while (n) {
        /* Copy the run of non-zero bytes that fits in the current block in one go. */
        size_t room = (size_t)(0xFF - c->code);
        size_t run = n < room ? n : room;
        const uint8_t *z = memchr(src, 0x00, run);
        size_t take = z ? (size_t)(z - src) : run;

        memcpy(c->out + c->pos, src, take);
        c->pos += take;
        c->code = (uint8_t)(c->code + take);
        src += take;
        n -= take;
        if (z) {
            cobs_close_block(c); /* the zero itself is implied by the block end */
            src++;
            n--;
        } else if (c->code == 0xFF) {
            cobs_close_block(c); /* full 254-byte block, no zero implied */
        }
    }
}

size_t klink_encode(uint8_t type, uint8_t flags, uint16_t seq, uint16_t ref, const uint8_t *payload,
                    size_t payload_len, uint8_t *out, size_t out_cap)
{
    uint8_t hdr[KLINK_HEADER_SIZE] = {
        type,
        flags,
        (uint8_t)(seq & 0xFFu),
        (uint8_t)(seq >> 8),
        (uint8_t)(ref & 0xFFu),
        (uint8_t)(ref >> 8),
    };
    uint8_t tail[KLINK_CRC_SIZE];
    struct cobs_out c;
    uint32_t crc;

    if (payload_len > KLINK_MAX_PAYLOAD || out_cap < klink_encoded_size_max(payload_len))
        return 0;
    if (payload_len && !payload)
        return 0;

    crc = klink_crc32c(0, hdr, sizeof(hdr));
    if (payload_len)
        crc = klink_crc32c(crc, payload, payload_len);
    tail[0] = (uint8_t)crc;
    tail[1] = (uint8_t)(crc >> 8);
    tail[2] = (uint8_t)(crc >> 16);
    tail[3] = (uint8_t)(crc >> 24);

    c.out = out;
    c.code_pos = 0;
    c.pos = 1;
    c.code = 1;
    cobs_put(&c, hdr, sizeof(hdr));
    if (payload_len)
        cobs_put(&c, payload, payload_len);
    cobs_put(&c, tail, sizeof(tail));
    out[c.code_pos] = c.code;
    out[c.pos++] = 0x00;
    return c.pos;
}

static void discard(struct klink_decoder *dec, size_t n)
{
    dec->stats.bytes_discarded += n;
    dec->dirty = 1;
}

void klink_decoder_init(struct klink_decoder *dec, uint8_t *buf, size_t cap)
{
    memset(dec, 0, sizeof(*dec));
    dec->buf = buf;
    dec->cap = cap;
}

static void start_frame(struct klink_decoder *dec)
{
    dec->len = 0;
    dec->raw_len = 0;
    dec->code = 0;
    dec->remaining = 0;
}

void klink_decoder_reset(struct klink_decoder *dec)
{
    if (dec->raw_len)
        discard(dec, dec->raw_len);
    start_frame(dec);
}

/* A delimiter ended the current frame: validate it. Returns 1 if it is a good frame. */
static int finish_frame(struct klink_decoder *dec, struct klink_frame *frame)
{
    size_t raw = dec->raw_len;
    size_t n = dec->len;
    uint32_t crc, want;

    if (raw == 0)
        return 0; /* back-to-back delimiters: idle fill, not an error */
    if (n > dec->cap) {
        dec->stats.oversize++;
        discard(dec, raw);
        return 0;
    }
    if (dec->remaining != 0 || n < KLINK_HEADER_SIZE + KLINK_CRC_SIZE) {
        dec->stats.malformed++;
        discard(dec, raw);
        return 0;
    }
    crc = klink_crc32c(0, dec->buf, n - KLINK_CRC_SIZE);
    want = (uint32_t)dec->buf[n - 4] | (uint32_t)dec->buf[n - 3] << 8 |
           (uint32_t)dec->buf[n - 2] << 16 | (uint32_t)dec->buf[n - 1] << 24;
    if (crc != want) {
        dec->stats.crc_errors++;
        discard(dec, raw);
        return 0;
    }
    frame->type = dec->buf[0];
    frame->flags = dec->buf[1];
    frame->seq = (uint16_t)(dec->buf[2] | dec->buf[3] << 8);
    frame->ref = (uint16_t)(dec->buf[4] | dec->buf[5] << 8);
    frame->payload = dec->buf + KLINK_HEADER_SIZE;
    frame->payload_len = n - KLINK_HEADER_SIZE - KLINK_CRC_SIZE;
    dec->stats.frames_ok++;
    if (dec->dirty) {
        dec->stats.resyncs++;
        dec->dirty = 0;
    }
    return 1;
}

/* Append one decoded byte; past cap, only count (the frame will be reported oversize). */
static inline void emit(struct klink_decoder *dec, uint8_t b)
{
    if (dec->len < dec->cap)
        dec->buf[dec->len] = b;
    if (dec->len <= dec->cap)
        dec->len++;
}

int klink_decode(struct klink_decoder *dec, const uint8_t **data, size_t *len,
                 struct klink_frame *frame)
{
    const uint8_t *p = *data;
    const uint8_t *end = p + *len;
    int got = 0;

    while (p < end && !got) {
        uint8_t b;

        if (dec->remaining != 0 && *p != 0x00) {
            /* Inside a COBS block: copy the run of data bytes up to the block end, the
             * input end or a (premature) delimiter in one go. */
            size_t run = dec->remaining;
            const uint8_t *z;
            if (run > (size_t)(end - p))
                run = (size_t)(end - p);
            z = memchr(p, 0x00, run);
            if (z)
                run = (size_t)(z - p);
            if (dec->len < dec->cap) {
                size_t room = dec->cap - dec->len;
                memcpy(dec->buf + dec->len, p, run < room ? run : room);
            }
            dec->len += run;
            if (dec->len > dec->cap)
                dec->len = dec->cap + 1; /* oversize: keep counting, bounded */
            dec->raw_len += run;
            dec->remaining = (uint8_t)(dec->remaining - run);
            dec->stats.bytes_in += run;
            p += run;
            continue;
        }
        b = *p++;
        dec->stats.bytes_in++;
        if (b == 0x00) {
            got = finish_frame(dec, frame);
            start_frame(dec);
            continue;
        }
        /* A code byte. The block before it, unless it was a full 254-byte run, stood for
         * a zero in the original data. */
        dec->raw_len++;
        if (dec->code != 0 && dec->code != 0xFF)
            emit(dec, 0x00);
        dec->code = b;
        dec->remaining = (uint8_t)(b - 1);
    }
    *len = (size_t)(end - p);
    *data = p;
    return got;
}
