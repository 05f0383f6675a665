/* SPDX-License-Identifier: MIT */
/*
 * Cross-codec tests: the host (protobuf-c) and the firmware (nanopb) codecs of
 * kpu.link.v1 must stay byte-compatible. For every message type, random messages within
 * the link.options bounds go
 *
 *   protobuf-c encode (A) -> nanopb decode -> nanopb encode (B) -> protobuf-c decode ->
 *   protobuf-c encode (C)
 *
 * and A == B == C: nanopb reads what protobuf-c writes and writes the same bytes, and
 * protobuf-c reads what nanopb writes. Both emit canonical proto3 (fields in number
 * order, zero scalars omitted, repeated scalars packed), so byte equality is value
 * equality. Also checks every bound keeps messages within one klink payload.
 */
#include <check.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

#include "klink.h"
#include "kpu/link/v1/link.pb.h"
#include "link_types.h"
#include "proto_random.h"

struct nanopb_entry {
    uint8_t type;
    const pb_msgdesc_t *fields;
    size_t struct_size;
    size_t max_encoded; /* nanopb's computed maximum */
};

#define N(enumval, msg)                                                                            \
    {                                                                                              \
        KPU__LINK__V1__MSG_TYPE__##enumval, msg##_fields, sizeof(msg), msg##_size                  \
    }

static const struct nanopb_entry nanopb_types[] = {
    N(MSG_HOST_HELLO, kpu_link_v1_HostHello),
    N(MSG_AGENT_HELLO, kpu_link_v1_AgentHello),
    N(MSG_CONFIGURE, kpu_link_v1_Configure),
    N(MSG_STREAM_CONTROL, kpu_link_v1_StreamControl),
    N(MSG_DETECTION_FRAME, kpu_link_v1_DetectionFrame),
    N(MSG_HEARTBEAT, kpu_link_v1_Heartbeat),
    N(MSG_STATUS, kpu_link_v1_Status),
    N(MSG_SNAPSHOT_REQUEST, kpu_link_v1_SnapshotRequest),
    N(MSG_SNAPSHOT_CHUNK, kpu_link_v1_SnapshotChunk),
    N(MSG_SNAPSHOT_CREDIT, kpu_link_v1_SnapshotCredit),
    N(MSG_MODEL_UPLOAD_BEGIN, kpu_link_v1_ModelUploadBegin),
    N(MSG_MODEL_UPLOAD_CHUNK, kpu_link_v1_ModelUploadChunk),
    N(MSG_MODEL_UPLOAD_COMMIT, kpu_link_v1_ModelUploadCommit),
    N(MSG_MODEL_UPLOAD_STATE, kpu_link_v1_ModelUploadState),
    N(MSG_MODEL_LIST, kpu_link_v1_ModelListRequest),
    N(MSG_MODEL_LIST_REPLY, kpu_link_v1_ModelList),
    N(MSG_MODEL_SELECT, kpu_link_v1_ModelSelect),
    N(MSG_MODEL_DELETE, kpu_link_v1_ModelDelete),
    N(MSG_RESET, kpu_link_v1_Reset),
    N(MSG_LOG_LINE, kpu_link_v1_LogLine),
    N(MSG_SET_BAUD, kpu_link_v1_SetBaud),
    N(MSG_CONFIG_GET, kpu_link_v1_ConfigGet),
    N(MSG_IMAGE_WRITE_BEGIN, kpu_link_v1_ImageWriteBegin),
    N(MSG_IMAGE_WRITE_CHUNK, kpu_link_v1_ModelUploadChunk),
    N(MSG_IMAGE_WRITE_COMMIT, kpu_link_v1_ImageWriteCommit),
};
#define N_TYPES (sizeof(nanopb_types) / sizeof(nanopb_types[0]))

#define ROUNDS 300

static void setup(void)
{
    ck_assert_int_gt(proto_random_load_options(KPU_LINK_OPTIONS), 10);
}

START_TEST(table_covers_every_type)
{
    /* Every MsgType the host knows has a nanopb twin, and the reverse. */
    unsigned known = 0;
    for (unsigned t = 1; t < klink_type_count(); t++) {
        if (!klink_type_descriptor((uint8_t)t))
            continue;
        known++;
        int found = 0;
        for (size_t i = 0; i < N_TYPES; i++)
            found |= nanopb_types[i].type == t;
        ck_assert_msg(found, "type %u (%s) has no nanopb entry", t, klink_type_name((uint8_t)t));
    }
    ck_assert_uint_eq(known, N_TYPES);
    /* And the enum in the .proto has no value the table lacks. */
    ck_assert_uint_eq(kpu__link__v1__msg_type__descriptor.n_values - 1, N_TYPES);
}
END_TEST

START_TEST(bounds_fit_one_frame)
{
    for (size_t i = 0; i < N_TYPES; i++)
        ck_assert_msg(nanopb_types[i].max_encoded <= KLINK_MAX_PAYLOAD,
                      "%s can reach %zu bytes > KLINK_MAX_PAYLOAD",
                      klink_type_name(nanopb_types[i].type), nanopb_types[i].max_encoded);
}
END_TEST

START_TEST(round_trip_all_types)
{
    const struct nanopb_entry *e = &nanopb_types[_i];
    const ProtobufCMessageDescriptor *d = klink_type_descriptor(e->type);
    static uint8_t a[8192], b[8192], c[8192];
    static uint64_t nano_struct[16384]; /* aligned scratch for any nanopb struct */

    ck_assert_ptr_nonnull(d);
    ck_assert_uint_le(e->struct_size, sizeof(nano_struct));
    proto_random_seed(0xC0DEC000u + (uint32_t)_i);
    for (int round = 0; round < ROUNDS; round++) {
        ProtobufCMessage *m = proto_random_new(d);
        ck_assert_ptr_nonnull(m);
        size_t alen = protobuf_c_message_get_packed_size(m);
        ck_assert_uint_le(alen, e->max_encoded);
        ck_assert_uint_eq(protobuf_c_message_pack(m, a), alen);

        memset(nano_struct, 0, sizeof(nano_struct));
        pb_istream_t is = pb_istream_from_buffer(a, alen);
        ck_assert_msg(pb_decode(&is, e->fields, nano_struct), "%s: nanopb decode: %s", d->name,
                      PB_GET_ERROR(&is));
        pb_ostream_t os = pb_ostream_from_buffer(b, sizeof(b));
        ck_assert_msg(pb_encode(&os, e->fields, nano_struct), "%s: nanopb encode: %s", d->name,
                      PB_GET_ERROR(&os));
        ck_assert_uint_eq(os.bytes_written, alen);
        ck_assert_msg(memcmp(a, b, alen) == 0, "%s round %d: nanopb re-encoding differs", d->name,
                      round);

        ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, os.bytes_written, b);
        ck_assert_ptr_nonnull(m2);
        size_t clen = protobuf_c_message_pack(m2, c);
        ck_assert_uint_eq(clen, alen);
        ck_assert_mem_eq(c, a, alen);
        protobuf_c_message_free_unpacked(m2, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}
END_TEST

START_TEST(detection_frame_values)
{
    /* A hand-built frame, checked field by field on the nanopb side. */
    Kpu__Link__V1__DetectionFrame f = KPU__LINK__V1__DETECTION_FRAME__INIT;
    Kpu__Link__V1__Box b0 = KPU__LINK__V1__BOX__INIT, b1 = KPU__LINK__V1__BOX__INIT;
    Kpu__Link__V1__Box *boxes[2] = {&b0, &b1};
    uint8_t buf[256];
    kpu_link_v1_DetectionFrame n = kpu_link_v1_DetectionFrame_init_zero;

    f.frame_seq = 4000000000u;
    f.device_time_us = 123456789012345ull;
    f.model_crc = 0xDEADBEEFu;
    f.image_width = 320;
    f.image_height = 240;
    f.kpu_us = 8123;
    b0.class_id = 0;
    b0.score = 0.875f;
    b0.x = -3;
    b0.y = 31;
    b0.w = 64;
    b0.h = 86;
    b1.class_id = 14;
    b1.score = 0.5f;
    b1.x = 300;
    b1.y = 200;
    b1.w = 20;
    b1.h = 40;
    f.n_boxes = 2;
    f.boxes = boxes;
    size_t len = kpu__link__v1__detection_frame__pack(&f, buf);
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    ck_assert(pb_decode(&is, kpu_link_v1_DetectionFrame_fields, &n));
    ck_assert_uint_eq(n.frame_seq, 4000000000u);
    ck_assert_uint_eq(n.device_time_us, 123456789012345ull);
    ck_assert_uint_eq(n.model_crc, 0xDEADBEEFu);
    ck_assert_uint_eq(n.boxes_count, 2);
    ck_assert_int_eq(n.boxes[0].x, -3);
    ck_assert_float_eq(n.boxes[0].score, 0.875f);
    ck_assert_uint_eq(n.boxes[1].class_id, 14);
    ck_assert_uint_eq(n.boxes[1].h, 40);
    ck_assert_uint_eq(n.kpu_us, 8123);
}
END_TEST

START_TEST(nanopb_rejects_over_bound)
{
    /* protobuf-c can write more boxes than the firmware's static array holds: nanopb
     * must refuse cleanly, not overflow. */
    Kpu__Link__V1__DetectionFrame f = KPU__LINK__V1__DETECTION_FRAME__INIT;
    Kpu__Link__V1__Box b = KPU__LINK__V1__BOX__INIT;
    Kpu__Link__V1__Box *boxes[40];
    uint8_t buf[2048];
    kpu_link_v1_DetectionFrame n;

    b.class_id = 1;
    b.w = 5;
    for (int i = 0; i < 40; i++)
        boxes[i] = &b;
    f.n_boxes = 40;
    f.boxes = boxes;
    size_t len = kpu__link__v1__detection_frame__pack(&f, buf);
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    ck_assert(!pb_decode(&is, kpu_link_v1_DetectionFrame_fields, &n));
}
END_TEST

static Suite *crosscodec_suite(void)
{
    Suite *s = suite_create("crosscodec");
    TCase *tc = tcase_create("link");

    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, table_covers_every_type);
    tcase_add_test(tc, bounds_fit_one_frame);
    tcase_add_loop_test(tc, round_trip_all_types, 0, (int)N_TYPES);
    tcase_add_test(tc, detection_frame_values);
    tcase_add_test(tc, nanopb_rejects_over_bound);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crosscodec_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
