/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the IPC framing and kpu.ipc.v1 Frame decoding as the daemon and the
 * client library see them: bytes arrive in chunks (first byte = chunk size), the reader
 * enforces a small frame limit, and every frame that decodes must re-pack and decode
 * again to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_FRAME 65536u

/* protobuf-c 1.4 keeps fields it does not know (even an over-long encoding of the invalid
 * field number 0) and re-emits them in a form it then refuses itself. kpud never re-packs
 * what a client sent, so the round-trip property is only asserted for frames without
 * unknown fields at any depth. */
static int has_unknown(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    if (m->n_unknown_fields)
        return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *member = (const char *)m + fd->offset;
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        /* A oneof member is only meaningful when it is the active case. */
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const char *)m + fd->quantifier_offset) != fd->id)
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + fd->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)member;
            for (size_t k = 0; k < n; k++)
                if (has_unknown(arr[k]))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
            if (sub && has_unknown(sub))
                return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kipc_reader r;
    size_t chunk;

    if (size < 1)
        return 0;
    chunk = (size_t)data[0] * 4 + 1;
    data++;
    size--;
    kipc_reader_init(&r, FUZZ_MAX_FRAME);
    while (size) {
        size_t n = size < chunk ? size : chunk, left = n;
        const uint8_t *p = data;
        const uint8_t *body;
        size_t blen;
        int rc;

        while (left && (rc = kipc_reader_feed(&r, &p, &left, &body, &blen)) == KIPC_FRAME) {
            if (blen > FUZZ_MAX_FRAME)
                abort();
            Kpu__Ipc__V1__Frame *f = kipc_unpack(body, blen);
            if (!f)
                continue;
            if (has_unknown(&f->base)) {
                kpu__ipc__v1__frame__free_unpacked(f, NULL);
                continue;
            }
            uint8_t *w1 = NULL, *w2 = NULL;
            size_t l1, l2;
            if (kipc_pack(f, 0, &w1, &l1) == 0) {
                Kpu__Ipc__V1__Frame *g = kipc_unpack(w1 + KIPC_HEADER_SIZE, l1 - KIPC_HEADER_SIZE);
                if (!g)
                    abort();
                if (kipc_pack(g, 0, &w2, &l2) != 0 || l1 != l2 || memcmp(w1, w2, l1) != 0)
                    abort();
                kpu__ipc__v1__frame__free_unpacked(g, NULL);
            }
            free(w1);
            free(w2);
            kpu__ipc__v1__frame__free_unpacked(f, NULL);
        }
        if (r.error)
            break;
        data += n;
        size -= n;
    }
    kipc_reader_free(&r);
    return 0;
}
