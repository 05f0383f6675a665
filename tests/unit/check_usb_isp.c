/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the K210 ROM ISP client (daemon/link/isp.c): SLIP framing, CRC-32,
 * request layout (as kflash.py packs it: '<HH' op, 0; '<I' crc32 of payload; payload),
 * and whole runs against a simulated boot ROM that checks every frame, answers, drops
 * answers and damages frames on request.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "isp.h"

START_TEST(test_crc32)
{
    /* The CRC-32 check value (zlib crc32(b"123456789")). */
    ck_assert_uint_eq(kpud_isp_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(kpud_isp_crc32(NULL, 0), 0);
}
END_TEST

START_TEST(test_slip_encode)
{
    const uint8_t in[] = {0x01, 0xC0, 0x02, 0xDB, 0x03};
    const uint8_t want[] = {0xC0, 0x01, 0xDB, 0xDC, 0x02, 0xDB, 0xDD, 0x03, 0xC0};
    uint8_t out[32];

    ck_assert_uint_eq(kpud_slip_encode(in, sizeof(in), out, sizeof(out)), sizeof(want));
    ck_assert_int_eq(memcmp(out, want, sizeof(want)), 0);
    ck_assert_uint_eq(kpud_slip_encode(in, sizeof(in), out, 5), 0); /* no room */
    ck_assert_uint_eq(kpud_slip_encode(NULL, 0, out, 2), 2);
}
END_TEST

START_TEST(test_slip_decode_noise_and_roundtrip)
{
    static struct kpud_slip_dec d;
    uint8_t frame[300], enc[700];
    size_t n;
    int got = 0;
    /* Boot-ROM noise, a frame, a broken escape frame, back-to-back frames. */
    const uint8_t noise[] = {'r', 'o', 'm', 0x0D, 0x0A};
    const uint8_t broken[] = {0xC0, 0x11, 0xDB, 0x55, 0x22, 0xC0};

    memset(&d, 0, sizeof(d));
    kpud_slip_dec_reset(&d);
    for (size_t i = 0; i < sizeof(noise); i++)
        ck_assert_int_eq(kpud_slip_dec_push(&d, noise[i]), 0);
    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = (uint8_t)(i * 37 + (i % 3 ? 0xC0 : 0xDB));
    n = kpud_slip_encode(frame, sizeof(frame), enc, sizeof(enc));
    ck_assert_uint_gt(n, sizeof(frame));
    for (size_t i = 0; i < n; i++) {
        if (kpud_slip_dec_push(&d, enc[i])) {
            got++;
            ck_assert_uint_eq(d.len, sizeof(frame));
            ck_assert_int_eq(memcmp(d.buf, frame, sizeof(frame)), 0);
        }
    }
    ck_assert_int_eq(got, 1);
    for (size_t i = 0; i < sizeof(broken); i++)
        ck_assert_int_eq(kpud_slip_dec_push(&d, broken[i]), 0);
    ck_assert_uint_eq(d.errors, 1);
    /* "C0 AA C0 BB C0": two frames sharing the middle END. */
    ck_assert_int_eq(kpud_slip_dec_push(&d, 0xC0), 0);
    ck_assert_int_eq(kpud_slip_dec_push(&d, 0xAA), 0);
    ck_assert_int_eq(kpud_slip_dec_push(&d, 0xC0), 1);
    ck_assert_uint_eq(d.len, 1);
    ck_assert_uint_eq(d.buf[0], 0xAA);
    ck_assert_int_eq(kpud_slip_dec_push(&d, 0xBB), 0);
    ck_assert_int_eq(kpud_slip_dec_push(&d, 0xC0), 1);
    ck_assert_uint_eq(d.len, 1);
    ck_assert_uint_eq(d.buf[0], 0xBB);
}
END_TEST

START_TEST(test_slip_overlong)
{
    static struct kpud_slip_dec d;
    memset(&d, 0, sizeof(d));
    kpud_slip_dec_push(&d, 0xC0);
    for (size_t i = 0; i < sizeof(d.buf) + 10; i++)
        ck_assert_int_eq(kpud_slip_dec_push(&d, 0x41), 0);
    ck_assert_int_eq(kpud_slip_dec_push(&d, 0xC0), 0);
    ck_assert_uint_eq(d.errors, 1);
    kpud_slip_dec_push(&d, 0x42);
    ck_assert_int_eq(kpud_slip_dec_push(&d, 0xC0), 1);
}
END_TEST

START_TEST(test_request_layout)
{
    /* kflash boot(0x80000000): pack('<II', addr, 0), crc32 of that, pack('<HH', 0xc5, 0). */
    const uint8_t payload[] = {0x00, 0x00, 0x00, 0x80, 0, 0, 0, 0};
    uint8_t out[32];
    uint32_t crc = kpud_isp_crc32(payload, sizeof(payload));
    uint16_t op;
    const uint8_t *p;
    size_t plen;

    ck_assert_uint_eq(kpud_isp_request(0xC5, payload, sizeof(payload), out, sizeof(out)), 16);
    ck_assert_uint_eq(out[0], 0xC5);
    ck_assert_uint_eq(out[1], 0x00);
    ck_assert_uint_eq(out[2], 0x00);
    ck_assert_uint_eq(out[3], 0x00);
    ck_assert_uint_eq(out[4] | out[5] << 8 | out[6] << 16 | (uint32_t)out[7] << 24, crc);
    ck_assert_int_eq(memcmp(out + 8, payload, 8), 0);
    ck_assert_int_eq(kpud_isp_parse_request(out, 16, &op, &p, &plen), 0);
    ck_assert_uint_eq(op, 0xC5);
    ck_assert_uint_eq(plen, 8);
    out[9] ^= 1;
    ck_assert_int_eq(kpud_isp_parse_request(out, 16, &op, &p, &plen), -EILSEQ);
    ck_assert_int_eq(kpud_isp_parse_request(out, 7, &op, &p, &plen), -EBADMSG);
    ck_assert_uint_eq(kpud_isp_request(0xC5, payload, sizeof(payload), out, 15), 0);
}
END_TEST

START_TEST(test_profiles)
{
    const struct kpud_isp_profile *p = kpud_isp_profile_find("dan");
    ck_assert_ptr_nonnull(p);
    /* kflash reset_to_isp_dan: (DTR,RTS) = (0,0) (0,1) (1,0). */
    ck_assert_int_eq(p->to_isp[1].dtr, 0);
    ck_assert_int_eq(p->to_isp[1].rts, 1);
    ck_assert_int_eq(p->to_isp[2].dtr, 1);
    ck_assert_int_eq(p->to_isp[2].rts, 0);
    ck_assert_ptr_nonnull(kpud_isp_profile_find("goE"));
    ck_assert_ptr_nonnull(kpud_isp_profile_find("kd233"));
    ck_assert_ptr_nonnull(kpud_isp_profile_find("goD"));
    ck_assert_ptr_null(kpud_isp_profile_find("nope"));
    ck_assert_ptr_eq(kpud_isp_profile_at(0), p);
    ck_assert_ptr_null(kpud_isp_profile_at(4));
}
END_TEST

/* ---- a simulated boot ROM ---- */

struct rom {
    struct kpud_slip_dec dec;
    uint8_t mem[64 * 1024];
    int lines[8][2];
    int nlines;
    int greeted, booted;
    uint32_t boot_addr;
    int drop_every;    /* drop every Nth answer to a memory write (0 = never) */
    int corrupt_frame; /* damage the Nth memory frame on the way (1-based, 0 = never) */
    int silent;        /* never answer */
    int writes;
    /* Line rates: bytes the host sends at another rate than the ROM listens at are noise
     * to it (dropped here). 0 means 115200. */
    uint32_t rom_baud, host_baud;
    uint32_t change_value; /* the value CHANGE_BAUD carried */
    int deaf_to_change;    /* the ROM ignores CHANGE_BAUD and stays at 115200 */
    int host_switches;     /* set_baud calls */
    int greeted_after_change;
    uint8_t reply[64];
    size_t reply_len;
    int dones, status;
    uint32_t last_progress;
};

/* Two UART rates within 1 % of each other talk. */
static int same_rate(uint32_t a, uint32_t b)
{
    return (uint64_t)a * 100u >= (uint64_t)b * 99u && (uint64_t)a * 100u <= (uint64_t)b * 101u;
}

static void rom_answer(struct rom *r, uint8_t op, uint8_t status)
{
    uint8_t raw[2] = {op, status};
    r->reply_len = kpud_slip_encode(raw, 2, r->reply, sizeof(r->reply));
}

static void rom_rx(struct rom *r, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint16_t op;
        const uint8_t *p;
        size_t plen;
        int bad;

        if (!same_rate(r->rom_baud ? r->rom_baud : 115200, r->host_baud ? r->host_baud : 115200))
            continue; /* framing errors at the wrong rate */
        if (!kpud_slip_dec_push(&r->dec, buf[i]))
            continue;
        if (r->silent)
            continue;
        /* The greeting is a NOP whose "crc" field is zero; take it as kflash sends it. */
        if (r->dec.len >= 2 && r->dec.buf[0] == KPUD_ISP_OP_NOP) {
            r->greeted++;
            r->greeted_after_change += r->change_value != 0;
            rom_answer(r, KPUD_ISP_OP_NOP, KPUD_ISP_STATUS_OK);
            continue;
        }
        bad = kpud_isp_parse_request(r->dec.buf, r->dec.len, &op, &p, &plen) < 0;
        if (op == KPUD_ISP_OP_MEMORY_WRITE) {
            uint32_t addr, n;
            r->writes++;
            if (r->corrupt_frame && r->writes == r->corrupt_frame)
                bad = 1;
            if (bad) {
                rom_answer(r, KPUD_ISP_OP_MEMORY_WRITE, KPUD_ISP_STATUS_BAD_DATA_CHECKSUM);
                continue;
            }
            ck_assert_uint_ge(plen, 8);
            addr = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
            n = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;
            ck_assert_uint_eq(n, plen - 8);
            ck_assert_uint_le(n, KPUD_ISP_CHUNK);
            ck_assert_uint_ge(addr, KPUD_ISP_SRAM_BASE);
            ck_assert_uint_le(addr - KPUD_ISP_SRAM_BASE + n, sizeof(r->mem));
            memcpy(r->mem + (addr - KPUD_ISP_SRAM_BASE), p + 8, n);
            if (r->drop_every && r->writes % r->drop_every == 0)
                continue;
            rom_answer(r, KPUD_ISP_OP_MEMORY_WRITE, KPUD_ISP_STATUS_OK);
        } else if (op == KPUD_ISP_OP_CHANGE_BAUD && !bad) {
            /* kflash change_baudrate_stage0: u32 0, u32 4, u32 value; no answer. */
            ck_assert_uint_eq(plen, 12);
            ck_assert_uint_eq(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24, 0);
            ck_assert_uint_eq(p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24, 4);
            r->change_value = p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24;
            /* The ROM's clock makes the rate it runs at 38/38.6 of the value. */
            if (!r->deaf_to_change)
                r->rom_baud = (uint32_t)((uint64_t)r->change_value * 380u / 386u);
        } else if (op == KPUD_ISP_OP_MEMORY_BOOT && !bad) {
            r->booted++;
            r->boot_addr = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
        }
    }
}

static struct rom *g_rom;
static struct kpud_isp g_isp;
static uint64_t g_now;

static void io_write(void *u, const uint8_t *buf, size_t len)
{
    rom_rx(u, buf, len);
}

static void io_lines(void *u, int dtr, int rts)
{
    struct rom *r = u;
    ck_assert_int_lt(r->nlines, 8);
    r->lines[r->nlines][0] = dtr;
    r->lines[r->nlines][1] = rts;
    r->nlines++;
}

static void io_baud(void *u, uint32_t baud)
{
    struct rom *r = u;
    r->host_switches++;
    r->host_baud = baud;
}

static void io_done(void *u, int status)
{
    struct rom *r = u;
    r->dones++;
    r->status = status;
}

static void io_progress(void *u, uint32_t pm)
{
    struct rom *r = u;
    ck_assert_uint_ge(pm, r->last_progress);
    r->last_progress = pm;
}

/* Run the client to completion: deliver the ROM's answers, advance time to deadlines. */
static uint32_t g_isp_baud; /* kpud_isp_opts.baud for the next run() */

static void run(struct rom *r, const uint8_t *img, size_t len, const char *profile)
{
    struct kpud_isp_opts o = {
        .profile = profile ? kpud_isp_profile_find(profile) : NULL,
        .image = img,
        .image_len = len,
        .baud = g_isp_baud,
    };
    struct kpud_isp_io io = {.write = io_write,
                             .set_lines = io_lines,
                             .set_baud = io_baud,
                             .progress = io_progress,
                             .done = io_done,
                             .user = r};
    int guard = 0;

    g_now = 1000;
    ck_assert_int_eq(kpud_isp_start(&g_isp, &o, &io, g_now), 0);
    while (r->dones == 0 && guard++ < 100000) {
        if (r->reply_len) {
            uint8_t buf[64];
            size_t n = r->reply_len;
            memcpy(buf, r->reply, n);
            r->reply_len = 0;
            g_now += 1;
            kpud_isp_feed(&g_isp, buf, n, g_now);
            continue;
        }
        ck_assert_uint_ne(kpud_isp_deadline(&g_isp), 0);
        if (g_now < kpud_isp_deadline(&g_isp))
            g_now = kpud_isp_deadline(&g_isp);
        kpud_isp_tick(&g_isp, g_now);
    }
    ck_assert_int_eq(r->dones, 1);
}

static uint8_t *make_image(size_t len)
{
    uint8_t *img = malloc(len);
    ck_assert_ptr_nonnull(img);
    for (size_t i = 0; i < len; i++)
        img[i] = (uint8_t)(i * 131 + (i >> 8)); /* includes 0xC0 and 0xDB bytes */
    return img;
}

START_TEST(test_client_boot_dan)
{
    struct rom *r = calloc(1, sizeof(*r));
    size_t len = 5 * 1024 + 77;
    uint8_t *img = make_image(len);

    g_rom = r;
    run(r, img, len, "dan");
    ck_assert_int_eq(r->status, 0);
    /* The reset into ISP, as the CH340 double must see it. */
    ck_assert_int_eq(r->nlines, 3);
    ck_assert_int_eq(r->lines[1][0], 0);
    ck_assert_int_eq(r->lines[1][1], 1);
    ck_assert_int_eq(r->lines[2][0], 1);
    ck_assert_int_eq(r->lines[2][1], 0);
    ck_assert_int_eq(r->greeted, 1);
    ck_assert_int_eq(r->writes, 6);
    ck_assert_int_eq(memcmp(r->mem, img, len), 0);
    ck_assert_int_eq(r->booted, 1);
    ck_assert_uint_eq(r->boot_addr, KPUD_ISP_SRAM_BASE);
    ck_assert_uint_eq(r->last_progress, 1000);
    /* Three steps of 100 ms before the greeting. */
    ck_assert_uint_ge(g_now, 1000 + 300);
    free(img);
    free(r);
}
END_TEST

START_TEST(test_client_retries)
{
    struct rom *r = calloc(1, sizeof(*r));
    size_t len = 8 * 1024;
    uint8_t *img = make_image(len);

    r->drop_every = 3;    /* answers lost: the frame is sent again after the timeout */
    r->corrupt_frame = 2; /* a damaged frame: bad checksum, sent again at once */
    run(r, img, len, NULL);
    ck_assert_int_eq(r->status, 0);
    ck_assert_int_eq(r->nlines, 0);
    ck_assert_int_eq(memcmp(r->mem, img, len), 0);
    ck_assert_int_eq(r->booted, 1);
    ck_assert_uint_gt(g_isp.frames_retried, 2);
    free(img);
    free(r);
}
END_TEST

START_TEST(test_client_silent_rom)
{
    struct rom *r = calloc(1, sizeof(*r));
    uint8_t img[16] = {1};

    r->silent = 1;
    run(r, img, sizeof(img), "goE");
    ck_assert_int_eq(r->status, -ETIMEDOUT);
    ck_assert_int_eq(r->booted, 0);
    ck_assert_uint_eq(kpud_isp_deadline(&g_isp), 0);
    free(r);
}
END_TEST

START_TEST(test_client_rejects)
{
    struct rom *r = calloc(1, sizeof(*r));
    uint8_t img[3000];
    struct kpud_isp_opts o = {.image = img, .image_len = 0};
    struct kpud_isp_io io = {.write = io_write, .set_lines = io_lines, .done = io_done, .user = r};

    memset(img, 0xC0, sizeof(img));
    ck_assert_int_eq(kpud_isp_start(&g_isp, &o, &io, 0), -EINVAL);
    o.image_len = 7u * 1024 * 1024;
    ck_assert_int_eq(kpud_isp_start(&g_isp, &o, &io, 0), -EINVAL);
    /* Every frame damaged: gives up with -EIO after the retries. */
    r->corrupt_frame = 0;
    free(r);
}
END_TEST

/* kflash's stage-0 rate change: after the first greeting the client asks the ROM for the
 * rate (value fudged by 38.6/38), switches its own side after the settle time, greets
 * again at the new rate and loads the image there. */
START_TEST(test_client_baud_change)
{
    struct rom *r = calloc(1, sizeof(*r));
    size_t len = 3 * 1024 + 5;
    uint8_t *img = make_image(len);

    g_isp_baud = 1500000;
    run(r, img, len, "goE");
    g_isp_baud = 0;
    ck_assert_int_eq(r->status, 0);
    ck_assert_uint_eq(r->change_value, 1523684); /* int(1500000 * 38.6 / 38) */
    ck_assert_int_eq(r->host_switches, 1);
    ck_assert_uint_eq(r->host_baud, 1500000);
    ck_assert_int_ge(r->greeted_after_change, 1);
    ck_assert_int_eq(memcmp(r->mem, img, len), 0);
    ck_assert_int_eq(r->booted, 1);
    free(img);
    free(r);
}
END_TEST

/* A ROM that does not follow the change: the greeting at the new rate is never answered and
 * the run ends with -EPROTO (not a silent hang, and no image sent into the void). */
START_TEST(test_client_baud_change_not_followed)
{
    struct rom *r = calloc(1, sizeof(*r));
    uint8_t img[2048];

    memset(img, 0x5a, sizeof(img));
    r->deaf_to_change = 1;
    g_isp_baud = 1500000;
    run(r, img, sizeof(img), NULL);
    g_isp_baud = 0;
    ck_assert_int_eq(r->status, -EPROTO);
    ck_assert_int_eq(r->writes, 0);
    ck_assert_int_eq(r->booted, 0);
    free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("usb_isp");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_crc32);
    tcase_add_test(tc, test_slip_encode);
    tcase_add_test(tc, test_slip_decode_noise_and_roundtrip);
    tcase_add_test(tc, test_slip_overlong);
    tcase_add_test(tc, test_request_layout);
    tcase_add_test(tc, test_profiles);
    tcase_add_test(tc, test_client_boot_dan);
    tcase_add_test(tc, test_client_retries);
    tcase_add_test(tc, test_client_silent_rom);
    tcase_add_test(tc, test_client_baud_change);
    tcase_add_test(tc, test_client_baud_change_not_followed);
    tcase_add_test(tc, test_client_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
