/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: kpu.link.v1 payload decoding with both codecs. The first byte is the frame
 * type, the rest the payload. protobuf-c (host) and nanopb (firmware) must both survive
 * any bytes; whatever nanopb accepts it must re-encode to bytes that protobuf-c decodes
 * and re-encodes identically (the codecs agree on every message the firmware can hold).
 */
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kpu/link/v1/link.pb.h"
#include "link_types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct entry {
    uint8_t type;
    const pb_msgdesc_t *fields;
};

#define E(enumval, msg)                                                                            \
    {                                                                                              \
        KPU__LINK__V1__MSG_TYPE__##enumval, msg##_fields                                           \
    }

static const struct entry entries[] = {
    E(MSG_HOST_HELLO, kpu_link_v1_HostHello),
    E(MSG_AGENT_HELLO, kpu_link_v1_AgentHello),
    E(MSG_CONFIGURE, kpu_link_v1_Configure),
    E(MSG_STREAM_CONTROL, kpu_link_v1_StreamControl),
    E(MSG_DETECTION_FRAME, kpu_link_v1_DetectionFrame),
    E(MSG_HEARTBEAT, kpu_link_v1_Heartbeat),
    E(MSG_STATUS, kpu_link_v1_Status),
    E(MSG_SNAPSHOT_REQUEST, kpu_link_v1_SnapshotRequest),
    E(MSG_SNAPSHOT_CHUNK, kpu_link_v1_SnapshotChunk),
    E(MSG_SNAPSHOT_CREDIT, kpu_link_v1_SnapshotCredit),
    E(MSG_MODEL_UPLOAD_BEGIN, kpu_link_v1_ModelUploadBegin),
    E(MSG_MODEL_UPLOAD_CHUNK, kpu_link_v1_ModelUploadChunk),
    E(MSG_MODEL_UPLOAD_COMMIT, kpu_link_v1_ModelUploadCommit),
    E(MSG_MODEL_UPLOAD_STATE, kpu_link_v1_ModelUploadState),
    E(MSG_MODEL_LIST, kpu_link_v1_ModelListRequest),
    E(MSG_MODEL_LIST_REPLY, kpu_link_v1_ModelList),
    E(MSG_MODEL_SELECT, kpu_link_v1_ModelSelect),
    E(MSG_MODEL_DELETE, kpu_link_v1_ModelDelete),
    E(MSG_RESET, kpu_link_v1_Reset),
    E(MSG_LOG_LINE, kpu_link_v1_LogLine),
    E(MSG_SET_BAUD, kpu_link_v1_SetBaud),
    E(MSG_CONFIG_GET, kpu_link_v1_ConfigGet),
    E(MSG_IMAGE_WRITE_BEGIN, kpu_link_v1_ImageWriteBegin),
    E(MSG_IMAGE_WRITE_CHUNK, kpu_link_v1_ModelUploadChunk),
    E(MSG_IMAGE_WRITE_COMMIT, kpu_link_v1_ImageWriteCommit),
};

static uint64_t scratch[16384];
static uint8_t out[8192], out2[8192];

/*
 * nanopb generates enums without negative values as unsigned, protobuf-c keeps every enum
 * as int32. An enum value of 2^31 or more (only hostile input has one) is therefore
 * 0xF0000000 to nanopb and negative to protobuf-c, which writes it as a 10-byte varint that
 * nanopb refuses. Both stay safe; only the byte-identity property does not hold there.
 */
static int has_negative_enum(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *member = (const char *)m + fd->offset;
        size_t n = 1;

        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)((const char *)m + fd->quantifier_offset);
            member = *(const char *const *)member;
        }
        for (size_t k = 0; k < n && member; k++) {
            if (fd->type == PROTOBUF_C_TYPE_ENUM && ((const int *)member)[k] < 0)
                return 1;
            if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                const ProtobufCMessage *sub = ((const ProtobufCMessage *const *)member)[k];
                if (sub && has_negative_enum(sub))
                    return 1;
            }
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct entry *e;
    const ProtobufCMessageDescriptor *d;

    if (size < 1)
        return 0;
    e = &entries[data[0] % (sizeof(entries) / sizeof(entries[0]))];
    d = klink_type_descriptor(e->type);
    data++;
    size--;

    /* protobuf-c alone: must not crash; if it decodes, it re-packs within bounds. */
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
    if (m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *tmp = malloc(n ? n : 1);
        if (!tmp || protobuf_c_message_pack(m, tmp) != n)
            abort();
        free(tmp);
        protobuf_c_message_free_unpacked(m, NULL);
    }

    /* nanopb: must not crash; what it accepts both codecs re-encode identically. */
    memset(scratch, 0, sizeof(scratch));
    pb_istream_t is = pb_istream_from_buffer(data, size);
    if (!pb_decode(&is, e->fields, scratch))
        return 0;
    pb_ostream_t os = pb_ostream_from_buffer(out, sizeof(out));
    if (!pb_encode(&os, e->fields, scratch))
        abort();
    ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, os.bytes_written, out);
    if (!m2)
        abort();
    size_t n2 = protobuf_c_message_get_packed_size(m2);
    if (n2 > sizeof(out2))
        abort();
    protobuf_c_message_pack(m2, out2);
    if (!has_negative_enum(m2) && (n2 != os.bytes_written || memcmp(out, out2, n2) != 0))
        abort();
    protobuf_c_message_free_unpacked(m2, NULL);
    return 0;
}
