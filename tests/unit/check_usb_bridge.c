/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the USB bridge encodings (daemon/link/usb_*.c) against vectors derived
 * from the Linux kernel's drivers: ch341.c ch341_get_divisor / ch341_set_baudrate_lcr and
 * ftdi_sio.c ftdi_232bm_baud_base_to_divisor / ftdi_2232h_baud_base_to_divisor /
 * change_speed. The tables below were computed by running the kernel's integer
 * arithmetic by hand (a throwaway script transcribing those functions), not with the code
 * under test; two CH340 words (9600 and 115200 baud) were also seen on the wire when the
 * unmodified Linux ch341 driver configured the FunctionFS CH340 double
 * (usb-bridges.md §2d: 0x82/0xb2 and 0x83/0xcc).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "usb_bridge.h"

struct baud_vec {
    uint32_t baud;
    uint16_t ch34x;         /* register word, bit 7 not set */
    uint16_t ch34x_limited; /* with the limited-prescaler quirk */
    uint32_t ftdi_bm;       /* FT232BM/R/2232C encoded divisor */
    uint32_t ftdi_h;        /* FT2232H encoded divisor */
};

static const struct baud_vec vecs[] = {
    {300u, 0xD900u, 0xD900u, 0x02710u, 0x02710u},
    {600u, 0x6401u, 0x6401u, 0x01388u, 0x01388u},
    {1200u, 0xB201u, 0xB201u, 0x009C4u, 0x22710u},
    {2400u, 0xD901u, 0xD901u, 0x004E2u, 0x21388u},
    {4800u, 0x6402u, 0x6402u, 0x00271u, 0x209C4u},
    {9600u, 0xB202u, 0xB202u, 0x04138u, 0x204E2u},
    {19200u, 0xD902u, 0xD902u, 0x0809Cu, 0x20271u},
    {38400u, 0x6403u, 0x6403u, 0x0C04Eu, 0x24138u},
    {57600u, 0x9803u, 0x9803u, 0x0C034u, 0x300D0u},
    {115200u, 0xCC03u, 0xCC03u, 0x0001Au, 0x2C068u},
    {230400u, 0xE603u, 0xE603u, 0x0000Du, 0x2C034u},
    {460800u, 0xF303u, 0xF303u, 0x04006u, 0x2001Au},
    {500000u, 0xF403u, 0xF403u, 0x00006u, 0x20018u},
    {576000u, 0xEB07u, 0xEB07u, 0x08005u, 0x3C014u},
    {921600u, 0xF307u, 0xF307u, 0x08003u, 0x2000Du},
    {1000000u, 0xFA03u, 0xFA03u, 0x00003u, 0x2000Cu},
    {1500000u, 0xFC03u, 0xFC03u, 0x00002u, 0x20008u},
    {2000000u, 0xFD03u, 0xFD03u, 0x00001u, 0x20006u},
    {3000000u, 0xFE03u, 0xFE03u, 0x00000u, 0x20004u},
    /* Non-standard rates where the quirk and the clamps matter. */
    {110u, 0x2B04u, 0x9500u, 0x1FFFFu, 0x1FFFFu}, /* BM divisor clamped to 17 bits */
    {200u, 0x8B04u, 0xC500u, 0x03A98u, 0x03A98u},
};
#define NVECS (sizeof(vecs) / sizeof(vecs[0]))
#define NSTANDARD 19u /* the standard rates, 300 to 3,000,000 */

START_TEST(test_ch34x_divisor_vectors)
{
    for (size_t i = 0; i < NVECS; i++) {
        ck_assert_msg(kpud_ch34x_divisor(vecs[i].baud, 0) == vecs[i].ch34x,
                      "%u baud: 0x%04x, kernel 0x%04x", vecs[i].baud,
                      kpud_ch34x_divisor(vecs[i].baud, 0), vecs[i].ch34x);
        ck_assert_msg(kpud_ch34x_divisor(vecs[i].baud, 1) == vecs[i].ch34x_limited,
                      "%u baud limited: 0x%04x", vecs[i].baud, kpud_ch34x_divisor(vecs[i].baud, 1));
    }
}
END_TEST

START_TEST(test_ch34x_clamp_and_accuracy)
{
    /* ch341.c clamps to CH341_MIN_BPS..CH341_MAX_BPS. */
    ck_assert_int_eq(kpud_ch34x_divisor(1, 0), kpud_ch34x_divisor(46, 0));
    ck_assert_int_eq(kpud_ch34x_divisor(4000000, 0), 0xFE03);
    ck_assert_int_eq(kpud_ch34x_actual_baud(0xFE03), 3000000);
    ck_assert_int_eq(kpud_ch34x_actual_baud(0xCC83), 115385); /* bit 7 ignored */
    ck_assert_int_eq(kpud_ch34x_actual_baud(0xB282), 9615);
    ck_assert_int_eq(kpud_ch34x_actual_baud(0xFF03), 0); /* divisor 1 is not valid */
    /* Every standard rate within 3.5 % (the worst, 921600 -> 923077, is 0.2 %). */
    for (size_t i = 0; i < NSTANDARD; i++) {
        double a = kpud_ch34x_actual_baud((uint16_t)kpud_ch34x_divisor(vecs[i].baud, 0));
        double e = (a - vecs[i].baud) / vecs[i].baud;
        ck_assert_msg(e < 0.035 && e > -0.035, "%u baud -> %.0f", vecs[i].baud, a);
    }
}
END_TEST

START_TEST(test_ch34x_modem_bytes)
{
    /* ch341_set_handshake sends ~control; DTR = bit 5, RTS = bit 6. */
    ck_assert_uint_eq(kpud_ch34x_modem_value(0, 0), 0xFFFF);
    ck_assert_uint_eq(kpud_ch34x_modem_value(1, 0), 0xFFDF);
    ck_assert_uint_eq(kpud_ch34x_modem_value(0, 1), 0xFFBF);
    ck_assert_uint_eq(kpud_ch34x_modem_value(1, 1), 0xFF9F);
}
END_TEST

static struct kpud_bridge make_bridge(uint16_t vid, uint16_t pid, uint16_t bcd, uint8_t iface,
                                      uint16_t mps)
{
    struct kpud_bridge b;
    const struct kpud_bridge_id *id = kpud_bridge_lookup(vid, pid);
    ck_assert_ptr_nonnull(id);
    ck_assert_int_eq(kpud_bridge_init(&b, id, bcd, iface, mps), 0);
    return b;
}

static void expect_req(const struct kpud_usb_req *r, uint8_t type, uint8_t req, uint16_t value,
                       uint16_t index)
{
    ck_assert_msg(r->request_type == type && r->request == req && r->value == value &&
                      r->index == index,
                  "got %02x %02x %04x %04x, want %02x %02x %04x %04x", r->request_type, r->request,
                  r->value, r->index, type, req, value, index);
}

START_TEST(test_ch34x_sequences)
{
    struct kpud_bridge b = make_bridge(0x1a86, 0x7523, 0x0264, 0, 32);
    struct kpud_usb_seq s;
    uint8_t ver[2] = {0x31, 0x00};

    ck_assert_str_eq(b.ops->name, "ch340");
    ck_assert_int_eq(b.ops->probe(&b, &s), 0);
    ck_assert_uint_eq(s.n, 2);
    expect_req(&s.req[0], 0xC0, 0x5F, 0, 0);
    ck_assert_uint_eq(s.req[0].length, 2);
    expect_req(&s.req[1], 0xC0, 0x95, 0x0005, 0);
    b.ops->on_reply(&b, &s.req[0], ver, 2);
    b.ops->on_reply(&b, &s.req[1], ver, 2); /* break register answered: full chip */
    ck_assert_uint_eq(b.version, 0x31);
    ck_assert_int_eq(b.limited_prescaler, 0);

    /* ch341_configure order: SERIAL_INIT, divisor (bit 7 for version > 0x27), LCR (version
     * >= 0x30), then flow control off and both lines released. */
    ck_assert_int_eq(b.ops->open(&b, 115200, &s), 0);
    ck_assert_uint_eq(s.n, 5);
    expect_req(&s.req[0], 0x40, 0xA1, 0, 0);
    expect_req(&s.req[1], 0x40, 0x9A, 0x1312, 0xCC83);
    expect_req(&s.req[2], 0x40, 0x9A, 0x2518, 0x00C3);
    expect_req(&s.req[3], 0x40, 0x9A, 0x2727, 0x0000);
    expect_req(&s.req[4], 0x40, 0xA4, 0xFFFF, 0);

    ck_assert_int_eq(b.ops->set_lines(&b, 0, 1, &s), 0);
    ck_assert_uint_eq(s.n, 1);
    expect_req(&s.req[0], 0x40, 0xA4, 0xFFBF, 0);

    /* An old chip (0x27): no bit 7, no LCR write; a stalled break read sets the quirk. */
    ver[0] = 0x27;
    b.ops->probe(&b, &s);
    b.ops->on_reply(&b, &s.req[0], ver, 2);
    b.ops->on_reply(&b, &s.req[1], NULL, -1);
    ck_assert_int_eq(b.limited_prescaler, 1);
    ck_assert_int_eq(b.ops->set_baud(&b, 110, &s), 0);
    ck_assert_uint_eq(s.n, 1);
    expect_req(&s.req[0], 0x40, 0x9A, 0x1312, 0x9500);
}
END_TEST

START_TEST(test_ftdi_divisor_vectors)
{
    uint32_t enc;

    for (size_t i = 0; i < NVECS; i++) {
        ck_assert_int_eq(kpud_ftdi_divisor(vecs[i].baud, 0, &enc), 0);
        ck_assert_msg(enc == vecs[i].ftdi_bm, "%u baud BM: 0x%05x, kernel 0x%05x", vecs[i].baud,
                      enc, vecs[i].ftdi_bm);
        ck_assert_int_eq(kpud_ftdi_divisor(vecs[i].baud, 1, &enc), 0);
        ck_assert_msg(enc == vecs[i].ftdi_h, "%u baud H: 0x%05x, kernel 0x%05x", vecs[i].baud, enc,
                      vecs[i].ftdi_h);
    }
    /* BM-class chips stop at 3 Mbaud; H-series go to 12 Mbaud. */
    ck_assert_int_eq(kpud_ftdi_divisor(3000001, 0, &enc), -EINVAL);
    ck_assert_int_eq(kpud_ftdi_divisor(12000000, 1, &enc), 0);
    ck_assert_uint_eq(enc, 0x20000); /* divisor 1.0 on the 12 MHz reference */
    ck_assert_int_eq(kpud_ftdi_divisor(12000001, 1, &enc), -EINVAL);
    ck_assert_int_eq(kpud_ftdi_divisor(0, 0, &enc), -EINVAL);
}
END_TEST

START_TEST(test_ftdi_actual_baud)
{
    /* Inverse as ftdi_232bm_divisor_base_to_baud / ftdi_2232h_divisor_base_to_baud. */
    ck_assert_uint_eq(kpud_ftdi_actual_baud(0x0001A, 0), 115385);
    ck_assert_uint_eq(kpud_ftdi_actual_baud(0x00000, 0), 3000000);
    ck_assert_uint_eq(kpud_ftdi_actual_baud(0x00001, 0), 2000000);
    ck_assert_uint_eq(kpud_ftdi_actual_baud(0x2C068, 1), 115246);
    for (size_t i = 0; i < NSTANDARD; i++) {
        double a = kpud_ftdi_actual_baud(vecs[i].ftdi_bm, 0);
        double e = (a - vecs[i].baud) / vecs[i].baud;
        ck_assert_msg(e < 0.03 && e > -0.03, "%u baud -> %.0f", vecs[i].baud, a);
    }
}
END_TEST

START_TEST(test_ftdi_requests)
{
    uint16_t v, i;
    struct kpud_usb_seq s;
    struct kpud_bridge a, bb, h, ft;

    /* change_speed: single port wIndex = enc >> 16; multi-port (enc >> 16) << 8 | channel. */
    kpud_ftdi_baud_request(0x0C04E, 0, &v, &i);
    ck_assert_uint_eq(v, 0xC04E);
    ck_assert_uint_eq(i, 0x0000);
    kpud_ftdi_baud_request(0x1AA2C, 0, &v, &i);
    ck_assert_uint_eq(v, 0xAA2C);
    ck_assert_uint_eq(i, 0x0001);
    kpud_ftdi_baud_request(0x1AA2C, 2, &v, &i);
    ck_assert_uint_eq(i, 0x0102);
    kpud_ftdi_baud_request(0x2C068, 1, &v, &i);
    ck_assert_uint_eq(v, 0xC068);
    ck_assert_uint_eq(i, 0x0201);

    /* update_mctrl words. */
    ck_assert_uint_eq(kpud_ftdi_modem_value(0, 0), 0x0300);
    ck_assert_uint_eq(kpud_ftdi_modem_value(1, 0), 0x0301);
    ck_assert_uint_eq(kpud_ftdi_modem_value(0, 1), 0x0302);
    ck_assert_uint_eq(kpud_ftdi_modem_value(1, 1), 0x0303);

    ft = make_bridge(0x0403, 0x6001, 0x0400, 0, 64);
    ck_assert_int_eq(ft.chip, KPUD_BRIDGE_FT232);
    ck_assert_int_eq(ft.channel, 0);
    ck_assert_int_eq(ft.ops->open(&ft, 115200, &s), 0);
    ck_assert_uint_eq(s.n, 8);
    expect_req(&s.req[0], 0x40, 0x00, 0, 0);
    expect_req(&s.req[1], 0x40, 0x03, 0x001A, 0);
    expect_req(&s.req[2], 0x40, 0x04, 0x0008, 0);
    expect_req(&s.req[3], 0x40, 0x02, 0, 0);
    expect_req(&s.req[4], 0x40, 0x01, 0x0300, 0);
    expect_req(&s.req[5], 0x40, 0x09, 2, 0);

    /* FT2232: interface B is channel 2; bcdDevice 0x0700 is the H-series clock. */
    a = make_bridge(0x0403, 0x6010, 0x0500, 0, 64);
    bb = make_bridge(0x0403, 0x6010, 0x0500, 1, 64);
    h = make_bridge(0x0403, 0x6010, 0x0700, 1, 512);
    ck_assert_int_eq(a.channel, 1);
    ck_assert_int_eq(bb.channel, 2);
    ck_assert_int_eq(a.chip, KPUD_BRIDGE_FT2232C);
    ck_assert_int_eq(h.chip, KPUD_BRIDGE_FT2232H);
    ck_assert_int_eq(bb.ops->set_baud(&bb, 1500000, &s), 0);
    expect_req(&s.req[0], 0x40, 0x03, 0x0002, 0x0002);
    ck_assert_int_eq(h.ops->set_baud(&h, 1500000, &s), 0);
    expect_req(&s.req[0], 0x40, 0x03, 0x0008, 0x0202);
    ck_assert_int_eq(bb.ops->set_lines(&bb, 1, 0, &s), 0);
    expect_req(&s.req[0], 0x40, 0x01, 0x0301, 0x0002);
    ck_assert_int_eq(a.ops->set_baud(&a, 4000000, &s), -EINVAL);
    ck_assert_int_eq(kpud_bridge_init(&a, kpud_bridge_lookup(0x0403, 0x6001), 0, 1, 64),
                     -EINVAL); /* FT232 has no port B */
    ck_assert_ptr_null(kpud_bridge_lookup(0x1234, 0x5678));
}
END_TEST

/* Build a bulk IN transfer of packets of mps bytes, each "M L" + payload bytes. */
static size_t make_stream(uint8_t *buf, size_t mps, size_t payload, uint8_t *expect, size_t *np)
{
    size_t n = 0, p = 0;
    uint8_t c = 0;
    while (p < payload) {
        size_t k = payload - p < mps - 2 ? payload - p : mps - 2;
        buf[n++] = 0x11;
        buf[n++] = 0x60;
        for (size_t j = 0; j < k; j++) {
            expect[p++] = c;
            buf[n++] = c++;
        }
    }
    *np = p;
    return n;
}

START_TEST(test_ftdi_strip_every_boundary)
{
    static uint8_t buf[4096], out[4096], expect[4096];
    const size_t mpss[] = {64, 512};

    /* Every payload size around every packet boundary, for both packet sizes. */
    for (size_t m = 0; m < 2; m++) {
        size_t mps = mpss[m];
        for (size_t payload = 0; payload <= 3 * (mps - 2) + 1; payload++) {
            size_t np, len = make_stream(buf, mps, payload, expect, &np);
            uint8_t modem = 0, line = 0;
            size_t n = kpud_ftdi_strip(buf, len, mps, out, &modem, &line);
            ck_assert_uint_eq(n, payload);
            ck_assert_int_eq(memcmp(out, expect, n), 0);
            if (len) {
                ck_assert_uint_eq(modem, 0x11);
                ck_assert_uint_eq(line, 0x60);
            }
        }
    }
}
END_TEST

START_TEST(test_ftdi_strip_status_only_and_alias)
{
    uint8_t buf[200];
    size_t n;
    struct kpud_bridge b = make_bridge(0x0403, 0x6001, 0x0600, 0, 64);

    /* Idle chip: status-only packets every latency period carry nothing. */
    buf[0] = 0x01;
    buf[1] = 0x60;
    ck_assert_uint_eq(kpud_ftdi_strip(buf, 2, 64, buf, NULL, NULL), 0);
    /* A 1-byte runt is malformed and dropped. */
    ck_assert_uint_eq(kpud_ftdi_strip(buf, 1, 64, buf, NULL, NULL), 0);
    /* 64 + 64 + 3 bytes, stripped in place through the driver, line error counted. */
    memset(buf, 'x', sizeof(buf));
    buf[0] = 0x01;
    buf[1] = 0x60;
    buf[64] = 0x01;
    buf[65] = 0x62; /* overrun */
    buf[128] = 0x01;
    buf[129] = 0x60;
    buf[130] = 'y';
    n = b.ops->rx(&b, buf, 131, buf);
    ck_assert_uint_eq(n, 62 + 62 + 1);
    ck_assert_uint_eq(buf[123], 'x');
    ck_assert_uint_eq(buf[124], 'y');
    ck_assert_uint_eq(b.line_errors, 1);
    ck_assert_uint_eq(b.line_status, 0x60);
    ck_assert_uint_eq(kpud_ftdi_strip(buf, 10, 2, buf, NULL, NULL), 0); /* nonsense mps */
}
END_TEST

START_TEST(test_cp210x_requests)
{
    struct kpud_bridge b = make_bridge(0x10c4, 0xea60, 0x0100, 0, 64);
    struct kpud_usb_seq s;

    ck_assert_int_eq(b.ops->open(&b, 115200, &s), 0);
    ck_assert_uint_eq(s.n, 4);
    expect_req(&s.req[0], 0x41, 0x00, 1, 0);
    expect_req(&s.req[1], 0x41, 0x1E, 0, 0);
    ck_assert_uint_eq(s.req[1].length, 4);
    ck_assert_uint_eq(s.req[1].data[0] | s.req[1].data[1] << 8 | s.req[1].data[2] << 16, 115200);
    expect_req(&s.req[2], 0x41, 0x03, 0x0800, 0);
    expect_req(&s.req[3], 0x41, 0x07, 0x0300, 0);
    ck_assert_int_eq(b.ops->set_lines(&b, 1, 1, &s), 0);
    expect_req(&s.req[0], 0x41, 0x07, 0x0303, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("usb_bridge");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_ch34x_divisor_vectors);
    tcase_add_test(tc, test_ch34x_clamp_and_accuracy);
    tcase_add_test(tc, test_ch34x_modem_bytes);
    tcase_add_test(tc, test_ch34x_sequences);
    tcase_add_test(tc, test_ftdi_divisor_vectors);
    tcase_add_test(tc, test_ftdi_actual_baud);
    tcase_add_test(tc, test_ftdi_requests);
    tcase_add_test(tc, test_ftdi_strip_every_boundary);
    tcase_add_test(tc, test_ftdi_strip_status_only_and_alias);
    tcase_add_test(tc, test_cp210x_requests);
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
