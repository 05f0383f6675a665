/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for klink framing (proto/klink.c): CRC-32C vectors, round trips at every
 * payload size, every two-way split of the stream, bit flips, garbage, oversize frames.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "klink.h"

/* Deterministic pseudo-random bytes (xorshift32) so failures reproduce. */
static uint32_t rng_state = 0x12345678u;

static uint32_t rnd(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static void fill_random(uint8_t *p, size_t n, int zero_heavy)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd();
        /* Zero-heavy payloads exercise COBS block boundaries. */
        p[i] = (zero_heavy && (r & 3u) == 0) ? 0 : (uint8_t)(r >> 8);
    }
}

static uint8_t decbuf[KLINK_MAX_FRAME];

/* Decode a whole stream; return the number of frames, copying the last one out. */
static int decode_all(struct klink_decoder *dec, const uint8_t *s, size_t n,
                      struct klink_frame *last, uint8_t *last_payload)
{
    int frames = 0;
    struct klink_frame f;

    while (n) {
        if (klink_decode(dec, &s, &n, &f)) {
            frames++;
            if (last) {
                *last = f;
                memcpy(last_payload, f.payload, f.payload_len);
            }
        }
    }
    return frames;
}

START_TEST(crc32c_known_vectors)
{
    /* RFC 3720 appendix B.4 test vectors for CRC-32C. */
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xFF, sizeof(ones));
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    ck_assert_uint_eq(klink_crc32c(0, zeros, 32), 0x8A9136AAu);
    ck_assert_uint_eq(klink_crc32c(0, ones, 32), 0x62A8AB43u);
    ck_assert_uint_eq(klink_crc32c(0, inc, 32), 0x46DD794Eu);
    /* The classic check value for "123456789". */
    ck_assert_uint_eq(klink_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Incremental equals one-shot, at every split point and odd alignments. */
    uint8_t buf[301];
    fill_random(buf, sizeof(buf), 0);
    uint32_t whole = klink_crc32c(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut++)
        ck_assert_uint_eq(klink_crc32c(klink_crc32c(0, buf, cut), buf + cut, sizeof(buf) - cut),
                          whole);
}
END_TEST

START_TEST(round_trip_every_size)
{
    static uint8_t payload[KLINK_MAX_PAYLOAD], wire[KLINK_MAX_ENCODED],
        out_payload[KLINK_MAX_PAYLOAD];
    struct klink_decoder dec;
    struct klink_frame f;
    int zero_heavy = _i;

    klink_decoder_init(&dec, decbuf, sizeof(decbuf));
    for (size_t n = 0; n <= KLINK_MAX_PAYLOAD; n += (n < 600 ? 1 : 37)) {
        fill_random(payload, n, zero_heavy);
        uint16_t seq = (uint16_t)rnd(), ref = (uint16_t)rnd();
        size_t w = klink_encode(5, KLINK_FLAG_RESPONSE, seq, ref, payload, n, wire, sizeof(wire));
        ck_assert_uint_gt(w, 0);
        ck_assert_uint_le(w, klink_encoded_size_max(n));
        /* Only the last byte of a frame is the delimiter. */
        ck_assert_ptr_null(memchr(wire, 0, w - 1));
        ck_assert_uint_eq(wire[w - 1], 0);
        ck_assert_int_eq(decode_all(&dec, wire, w, &f, out_payload), 1);
        ck_assert_uint_eq(f.type, 5);
        ck_assert_uint_eq(f.flags, KLINK_FLAG_RESPONSE);
        ck_assert_uint_eq(f.seq, seq);
        ck_assert_uint_eq(f.ref, ref);
        ck_assert_uint_eq(f.payload_len, n);
        ck_assert_mem_eq(out_payload, payload, n);
    }
    ck_assert_uint_eq(dec.stats.crc_errors + dec.stats.malformed + dec.stats.oversize, 0);
}
END_TEST

START_TEST(max_payload_exact_and_over)
{
    static uint8_t payload[KLINK_MAX_PAYLOAD + 1], wire[KLINK_MAX_ENCODED + 64];
    fill_random(payload, sizeof(payload), 0);
    ck_assert_uint_gt(klink_encode(1, 0, 0, 0, payload, KLINK_MAX_PAYLOAD, wire, sizeof(wire)), 0);
    ck_assert_uint_eq(klink_encode(1, 0, 0, 0, payload, KLINK_MAX_PAYLOAD + 1, wire, sizeof(wire)),
                      0);
    /* Output buffer one byte short is refused, never overrun. */
    size_t need = klink_encoded_size_max(100);
    memset(wire, 0xAA, sizeof(wire));
    ck_assert_uint_eq(klink_encode(1, 0, 0, 0, payload, 100, wire, need - 1), 0);
    ck_assert_uint_eq(klink_encode(1, 0, 0, 0, NULL, 10, wire, sizeof(wire)), 0);
}
END_TEST

START_TEST(every_two_way_split)
{
    uint8_t payload[700], wire[800], out_payload[700];
    struct klink_decoder dec;
    struct klink_frame f;

    fill_random(payload, sizeof(payload), 1);
    size_t w = klink_encode(9, 0, 77, 0, payload, sizeof(payload), wire, sizeof(wire));
    ck_assert_uint_gt(w, 0);
    for (size_t cut = 0; cut <= w; cut++) {
        klink_decoder_init(&dec, decbuf, sizeof(decbuf));
        int n = decode_all(&dec, wire, cut, &f, out_payload);
        n += decode_all(&dec, wire + cut, w - cut, &f, out_payload);
        ck_assert_int_eq(n, 1);
        ck_assert_uint_eq(f.payload_len, sizeof(payload));
        ck_assert_mem_eq(out_payload, payload, sizeof(payload));
    }
}
END_TEST

START_TEST(byte_at_a_time)
{
    uint8_t payload[300], wire[400];
    struct klink_decoder dec;
    struct klink_frame f;
    int frames = 0;

    fill_random(payload, sizeof(payload), 1);
    size_t w = klink_encode(2, 0, 1, 0, payload, sizeof(payload), wire, sizeof(wire));
    klink_decoder_init(&dec, decbuf, sizeof(decbuf));
    for (size_t i = 0; i < w; i++) {
        const uint8_t *p = wire + i;
        size_t n = 1;
        frames += klink_decode(&dec, &p, &n, &f);
        ck_assert_uint_eq(n, 0);
    }
    ck_assert_int_eq(frames, 1);
    ck_assert_mem_eq(f.payload, payload, sizeof(payload));
}
END_TEST

START_TEST(decode_stops_after_each_frame)
{
    uint8_t wire[3 * 64];
    size_t w = 0;
    struct klink_decoder dec;
    struct klink_frame f;

    for (uint16_t s = 0; s < 3; s++)
        w += klink_encode(3, 0, s, 0, (const uint8_t *)"abc", 3, wire + w, sizeof(wire) - w);
    klink_decoder_init(&dec, decbuf, sizeof(decbuf));
    const uint8_t *p = wire;
    size_t n = w;
    for (uint16_t s = 0; s < 3; s++) {
        ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 1);
        ck_assert_uint_eq(f.seq, s);
    }
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 0);
}
END_TEST

START_TEST(every_bit_flip_is_caught)
{
    uint8_t payload[200], wire[300], bad[300], tail[64];
    struct klink_decoder dec;
    struct klink_frame f;

    fill_random(payload, sizeof(payload), 1);
    size_t w = klink_encode(4, 0, 10, 0, payload, sizeof(payload), wire, sizeof(wire));
    size_t tw = klink_encode(4, 0, 11, 0, (const uint8_t *)"ok", 2, tail, sizeof(tail));
    for (size_t bit = 0; bit < (w - 1) * 8; bit++) {
        memcpy(bad, wire, w);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        klink_decoder_init(&dec, decbuf, sizeof(decbuf));
        const uint8_t *p = bad;
        size_t n = w;
        /* The damaged frame must never be delivered... */
        while (n) {
            int got = klink_decode(&dec, &p, &n, &f);
            ck_assert_msg(!got, "bit %zu: corrupted frame delivered", bit);
        }
        ck_assert_uint_ge(dec.stats.crc_errors + dec.stats.malformed, 1);
        /* ...and the next good frame still is. */
        p = tail;
        n = tw;
        ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 1);
        ck_assert_uint_eq(f.seq, 11);
    }
}
END_TEST

START_TEST(garbage_before_between_inside)
{
    uint8_t payload[120], frame[200], stream[2000], out_payload[200];
    struct klink_decoder dec;
    struct klink_frame f;
    size_t fw, s = 0;

    fill_random(payload, sizeof(payload), 1);
    fw = klink_encode(6, 0, 1, 0, payload, sizeof(payload), frame, sizeof(frame));
    /* Boot-ROM noise before anything (no delimiter in it). */
    memcpy(stream + s, "\x7f\x45\x4c\x46 ROM boot v1.2 \r\n", 20);
    s += 20;
    stream[s++] = 0;
    memcpy(stream + s, frame, fw);
    s += fw;
    /* Garbage between frames, ending in a delimiter. */
    for (int i = 0; i < 50; i++)
        stream[s++] = (uint8_t)(rnd() | 1u);
    stream[s++] = 0;
    /* A frame cut short by a delimiter in its middle (garbage inside). */
    memcpy(stream + s, frame, fw / 2);
    s += fw / 2;
    stream[s++] = 0;
    memcpy(stream + s, frame, fw);
    s += fw;
    klink_decoder_init(&dec, decbuf, sizeof(decbuf));
    ck_assert_int_eq(decode_all(&dec, stream, s, &f, out_payload), 2);
    ck_assert_mem_eq(out_payload, payload, sizeof(payload));
    ck_assert_uint_eq(dec.stats.frames_ok, 2);
    /* noise, garbage run and truncated frame: three bad frames, each before a good one or
     * not: all counted, and the discarded bytes add up. */
    ck_assert_uint_eq(dec.stats.crc_errors + dec.stats.malformed, 3);
    ck_assert_uint_eq(dec.stats.bytes_discarded, 20 + 50 + fw / 2);
    ck_assert_uint_eq(dec.stats.resyncs, 2);
    ck_assert_uint_eq(dec.stats.bytes_in, s);
}
END_TEST

START_TEST(oversize_is_discarded_without_overrun)
{
    /* A small decoder buffer with a guard region behind it. */
    uint8_t region[64 + 32], big[2000], wire[2100], ok[64];
    struct klink_decoder dec;
    struct klink_frame f;

    memset(region, 0xCD, sizeof(region));
    fill_random(big, sizeof(big), 0);
    klink_decoder_init(&dec, region, 64);
    size_t w = klink_encode(7, 0, 1, 0, big, 1000, wire, sizeof(wire));
    size_t ow = klink_encode(7, 0, 2, 0, big, 20, ok, sizeof(ok));
    const uint8_t *p = wire;
    size_t n = w;
    ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 0);
    ck_assert_uint_eq(dec.stats.oversize, 1);
    for (size_t i = 64; i < sizeof(region); i++)
        ck_assert_uint_eq(region[i], 0xCD);
    p = ok;
    n = ow;
    ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 1);
    ck_assert_uint_eq(f.seq, 2);
    ck_assert_mem_eq(f.payload, big, 20);
    /* A never-ending run without delimiter keeps the decoder bounded too. */
    klink_decoder_init(&dec, region, 64);
    for (int i = 0; i < 100000; i++) {
        uint8_t b = 0x55;
        const uint8_t *q = &b;
        size_t m = 1;
        klink_decode(&dec, &q, &m, &f);
    }
    ck_assert_uint_le(dec.len, dec.cap + 1);
    for (size_t i = 64; i < sizeof(region); i++)
        ck_assert_uint_eq(region[i], 0xCD);
}
END_TEST

START_TEST(short_frames_are_malformed)
{
    struct klink_decoder dec;
    struct klink_frame f;
    /* COBS of 3 bytes + delimiter: too short for header + CRC. */
    const uint8_t s[] = {0x04, 1, 2, 3, 0x00, 0x00, 0x00};
    const uint8_t *p = s;
    size_t n = sizeof(s);

    klink_decoder_init(&dec, decbuf, sizeof(decbuf));
    ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 0);
    ck_assert_uint_eq(dec.stats.malformed, 1);
    /* Repeated delimiters are idle fill, not errors. */
    ck_assert_uint_eq(dec.stats.crc_errors, 0);
    ck_assert_uint_eq(dec.stats.bytes_discarded, 4);
}
END_TEST

START_TEST(reset_drops_partial_frame)
{
    uint8_t wire[64];
    struct klink_decoder dec;
    struct klink_frame f;
    size_t w = klink_encode(1, 0, 5, 0, (const uint8_t *)"hello", 5, wire, sizeof(wire));
    const uint8_t *p = wire;
    size_t n = w / 2;

    klink_decoder_init(&dec, decbuf, sizeof(decbuf));
    ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 0);
    klink_decoder_reset(&dec);
    ck_assert_uint_eq(dec.stats.bytes_discarded, w / 2);
    p = wire;
    n = w;
    ck_assert_int_eq(klink_decode(&dec, &p, &n, &f), 1);
    ck_assert_mem_eq(f.payload, "hello", 5);
}
END_TEST

static Suite *klink_suite(void)
{
    Suite *s = suite_create("klink");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, crc32c_known_vectors);
    tcase_add_loop_test(tc, round_trip_every_size, 0, 2);
    tcase_add_test(tc, max_payload_exact_and_over);
    tcase_add_test(tc, every_two_way_split);
    tcase_add_test(tc, byte_at_a_time);
    tcase_add_test(tc, decode_stops_after_each_frame);
    tcase_add_test(tc, every_bit_flip_is_caught);
    tcase_add_test(tc, garbage_before_between_inside);
    tcase_add_test(tc, oversize_is_discarded_without_overrun);
    tcase_add_test(tc, short_frames_are_malformed);
    tcase_add_test(tc, reset_drops_partial_frame);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(klink_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
