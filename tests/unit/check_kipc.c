/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the IPC framing (proto/kipc.c): length prefix, splits, limits, round
 * trips of real kpu.ipc.v1 frames.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "kipc.h"

static size_t make_detection(uint8_t **out, int nboxes)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__DetectionEvent ev = KPU__IPC__V1__DETECTION_EVENT__INIT;
    Kpu__Ipc__V1__Box b = KPU__IPC__V1__BOX__INIT;
    Kpu__Ipc__V1__Box *boxes[64];
    size_t len;

    b.class_id = 3;
    b.label = "cat";
    b.score = 0.75f;
    b.x = 10;
    b.y = 20;
    b.w = 30;
    b.h = 40;
    for (int i = 0; i < nboxes; i++)
        boxes[i] = &b;
    ev.device = "a1b2c3";
    ev.frame_seq = 42;
    ev.n_boxes = (size_t)nboxes;
    ev.boxes = boxes;
    f.body_case = KPU__IPC__V1__FRAME__BODY_DETECTION;
    f.detection = &ev;
    ck_assert_int_eq(kipc_pack(&f, 0, out, &len), 0);
    return len;
}

START_TEST(round_trip_with_every_split)
{
    uint8_t *wire;
    size_t n = make_detection(&wire, 5);

    for (size_t cut = 0; cut <= n; cut++) {
        struct kipc_reader r;
        const uint8_t *p = wire, *body = NULL;
        size_t left = cut, blen = 0;
        int got = 0;

        kipc_reader_init(&r, 0);
        if (kipc_reader_feed(&r, &p, &left, &body, &blen) == KIPC_FRAME)
            got++;
        ck_assert_uint_eq(left, 0);
        p = wire + cut;
        left = n - cut;
        if (!got && kipc_reader_feed(&r, &p, &left, &body, &blen) == KIPC_FRAME)
            got++;
        ck_assert_int_eq(got, 1);
        ck_assert_uint_eq(blen, n - KIPC_HEADER_SIZE);
        Kpu__Ipc__V1__Frame *f = kipc_unpack(body, blen);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_DETECTION);
        ck_assert_uint_eq(f->detection->n_boxes, 5);
        ck_assert_str_eq(f->detection->boxes[4]->label, "cat");
        ck_assert_uint_eq(f->detection->frame_seq, 42);
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
        kipc_reader_free(&r);
    }
    free(wire);
}
END_TEST

START_TEST(several_frames_in_one_read)
{
    uint8_t *a, *b, stream[4096];
    size_t na = make_detection(&a, 1), nb = make_detection(&b, 7);
    struct kipc_reader r;
    const uint8_t *p = stream, *body;
    size_t left, blen;

    memcpy(stream, a, na);
    memcpy(stream + na, b, nb);
    left = na + nb;
    kipc_reader_init(&r, 0);
    ck_assert_int_eq(kipc_reader_feed(&r, &p, &left, &body, &blen), KIPC_FRAME);
    ck_assert_uint_eq(blen, na - 4);
    ck_assert_uint_eq(left, nb);
    ck_assert_int_eq(kipc_reader_feed(&r, &p, &left, &body, &blen), KIPC_FRAME);
    ck_assert_uint_eq(blen, nb - 4);
    ck_assert_uint_eq(left, 0);
    ck_assert_int_eq(kipc_reader_feed(&r, &p, &left, &body, &blen), KIPC_NEED_MORE);
    kipc_reader_free(&r);
    free(a);
    free(b);
}
END_TEST

START_TEST(zero_length_frame)
{
    const uint8_t z[4] = {0, 0, 0, 0};
    struct kipc_reader r;
    const uint8_t *p = z, *body = NULL;
    size_t left = 4, blen = 99;

    kipc_reader_init(&r, 0);
    ck_assert_int_eq(kipc_reader_feed(&r, &p, &left, &body, &blen), KIPC_FRAME);
    ck_assert_uint_eq(blen, 0);
    ck_assert_ptr_nonnull(body);
    /* An empty Frame decodes (no body set): dispatch decides it is malformed. */
    Kpu__Ipc__V1__Frame *f = kipc_unpack(body, blen);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY__NOT_SET);
    kpu__ipc__v1__frame__free_unpacked(f, NULL);
    kipc_reader_free(&r);
}
END_TEST

START_TEST(too_large_is_refused_before_allocation)
{
    const uint8_t huge[8] = {0xFF, 0xFF, 0xFF, 0xF0, 1, 2, 3, 4};
    struct kipc_reader r;
    const uint8_t *p = huge, *body;
    size_t left = sizeof(huge), blen;

    kipc_reader_init(&r, 1024);
    ck_assert_int_eq(kipc_reader_feed(&r, &p, &left, &body, &blen), KIPC_E_TOO_LARGE);
    ck_assert_ptr_null(r.buf);
    ck_assert_uint_eq(r.too_large_len, 0xFFFFFFF0u);
    /* Sticky: nothing more is consumed. */
    size_t before = left;
    ck_assert_int_eq(kipc_reader_feed(&r, &p, &left, &body, &blen), KIPC_E_TOO_LARGE);
    ck_assert_uint_eq(left, before);
    kipc_reader_free(&r);

    /* Exactly at the limit is fine. */
    uint8_t at[4 + 1024];
    memset(at, 0, sizeof(at));
    kipc_put_header(at, 1024);
    kipc_reader_init(&r, 1024);
    p = at;
    left = sizeof(at);
    ck_assert_int_eq(kipc_reader_feed(&r, &p, &left, &body, &blen), KIPC_FRAME);
    ck_assert_uint_eq(blen, 1024);
    kipc_reader_free(&r);
}
END_TEST

START_TEST(pack_refuses_over_limit)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__Snapshot s = KPU__IPC__V1__SNAPSHOT__INIT;
    static uint8_t img[5000];
    uint8_t *out = NULL;
    size_t len = 0;

    s.data.data = img;
    s.data.len = sizeof(img);
    f.body_case = KPU__IPC__V1__FRAME__BODY_SNAPSHOT;
    f.snapshot = &s;
    ck_assert_int_eq(kipc_pack(&f, 4096, &out, &len), -1);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(kipc_pack(&f, 8192, &out, &len), 0);
    ck_assert_uint_gt(len, sizeof(img));
    free(out);
}
END_TEST

START_TEST(garbage_does_not_decode)
{
    const uint8_t junk[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    ck_assert_ptr_null(kipc_unpack(junk, sizeof(junk)));
}
END_TEST

static Suite *kipc_suite(void)
{
    Suite *s = suite_create("kipc");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, round_trip_with_every_split);
    tcase_add_test(tc, several_frames_in_one_read);
    tcase_add_test(tc, zero_length_frame);
    tcase_add_test(tc, too_large_is_refused_before_allocation);
    tcase_add_test(tc, pack_refuses_over_limit);
    tcase_add_test(tc, garbage_does_not_decode);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kipc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
