/* SPDX-License-Identifier: MIT */
/*
 * JSON rendering of any protobuf-c message by walking its descriptors
 * (ProtobufCMessageDescriptor / ProtobufCFieldDescriptor, protobuf-c.h), so every
 * kpu.ipc.v1 message gets a JSON form with no per-message code (daemon-anchors.md §5.1:
 * protobuf-c ships no JSON encoder). Used by kpuctl --json through
 * kpu_client_last_reply_json(), kpu_client_event_json() and kpu_client_row_json().
 *
 * Shape: field names as in the .proto; every field is written, defaults included, so the
 * output has a fixed set of keys; enums as their value names ("DEVICE_STATE_STREAMING"),
 * or the number when unknown; 64-bit integers as JSON numbers; floats with 7 significant
 * digits, NaN and infinities as null; bytes as lower-case hex strings; unset messages as
 * null; a oneof writes only its set member.
 */
#include "client_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb {
    char *s;
    size_t len, cap;
    int oom;
};

static void sb_put(struct sb *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *ns;
        while (cap < b->len + n + 1)
            cap *= 2;
        ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *p)
{
    sb_put(b, p, strlen(p));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void sb_str(struct sb *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[7];
        switch (*p) {
        case '"':
            sb_put(b, "\\\"", 2);
            break;
        case '\\':
            sb_put(b, "\\\\", 2);
            break;
        case '\n':
            sb_put(b, "\\n", 2);
            break;
        case '\r':
            sb_put(b, "\\r", 2);
            break;
        case '\t':
            sb_put(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[*p >> 4];
                esc[5] = hex[*p & 15];
                sb_put(b, esc, 6);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

static void emit_message(struct sb *b, const ProtobufCMessage *m);

static void emit_float(struct sb *b, double v, int digits)
{
    if (isnan(v) || isinf(v))
        sb_puts(b, "null");
    else
        sb_printf(b, "%.*g", digits, v);
}

/* One value of field fd stored at p. */
static void emit_value(struct sb *b, const ProtobufCFieldDescriptor *fd, const void *p)
{
    static const char hex[] = "0123456789abcdef";

    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        sb_printf(b, "%d", *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        sb_printf(b, "%u", *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        sb_printf(b, "%lld", (long long)*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        sb_printf(b, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        emit_float(b, *(const float *)p, 7);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        emit_float(b, *(const double *)p, 17);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        sb_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
            (const ProtobufCEnumDescriptor *)fd->descriptor, v);
        if (ev)
            sb_str(b, ev->name);
        else
            sb_printf(b, "%d", v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        sb_str(b, *(char *const *)p);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        sb_put(b, "\"", 1);
        for (size_t i = 0; i < bd->len; i++) {
            char two[2] = {hex[bd->data[i] >> 4], hex[bd->data[i] & 15]};
            sb_put(b, two, 2);
        }
        sb_put(b, "\"", 1);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        emit_message(b, *(const ProtobufCMessage *const *)p);
        break;
    default:
        sb_puts(b, "null");
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *fd)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static void emit_message(struct sb *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d;
    int first = 1;

    if (!m) {
        sb_puts(b, "null");
        return;
    }
    d = m->descriptor;
    sb_put(b, "{", 1);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *base = (const char *)m;

        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
                continue;
        }
        if (!first)
            sb_put(b, ",", 1);
        first = 0;
        sb_str(b, fd->name);
        sb_put(b, ":", 1);
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            const char *arr = *(const char *const *)(base + fd->offset);
            sb_put(b, "[", 1);
            for (size_t k = 0; k < n && arr; k++) {
                if (k)
                    sb_put(b, ",", 1);
                emit_value(b, fd, arr + k * value_size(fd));
            }
            sb_put(b, "]", 1);
        } else {
            emit_value(b, fd, base + fd->offset);
        }
    }
    sb_put(b, "}", 1);
}

char *kpu_client__json(const ProtobufCMessage *msg)
{
    struct sb b = {0};

    emit_message(&b, msg);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

char *kpu_client__json_frame_body(const Kpu__Ipc__V1__Frame *f)
{
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(
        &kpu__ipc__v1__frame__descriptor, (unsigned)f->body_case);
    struct sb b = {0};

    if (!fd)
        return NULL;
    sb_put(&b, "{", 1);
    sb_str(&b, fd->name);
    sb_put(&b, ":", 1);
    emit_message(&b, *(const ProtobufCMessage *const *)((const char *)f + fd->offset));
    sb_put(&b, "}", 1);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
