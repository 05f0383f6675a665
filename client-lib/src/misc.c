/* SPDX-License-Identifier: MIT */
/*
 * libkpu-client small pieces: error names and texts from the one X-macro table, version,
 * state names, the one-block result builder, CRC-32C and status mapping.
 */
#include "client_internal.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

KPU_CLIENT_EXPORT const char *kpu_client_strerror(int err)
{
    switch (err) {
#define XX(name, value, text)                                                                      \
    case value:                                                                                    \
        return text;
        KPU_CLIENT_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

KPU_CLIENT_EXPORT const char *kpu_client_err_name(int err)
{
    switch (err) {
#define XX(name, value, text)                                                                      \
    case value:                                                                                    \
        return #name;
        KPU_CLIENT_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "OK";
    default:
        return "UNKNOWN";
    }
}

KPU_CLIENT_EXPORT unsigned kpu_client_version(void)
{
    return KPU_CLIENT_VERSION_HEX;
}

KPU_CLIENT_EXPORT const char *kpu_client_version_string(void)
{
    return KPU_CLIENT_VERSION_STRING;
}

KPU_CLIENT_EXPORT const char *kpu_client_device_state_name(int state)
{
    static const char *const names[] = {"unknown",   "probing", "booting", "hello", "configuring",
                                        "streaming", "lost",    "backoff", "idle",  "released"};
    if (state < 0 || (size_t)state >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[state];
}

KPU_CLIENT_EXPORT void kpu_client_free(void *ptr)
{
    free(ptr);
}

int64_t kpu_client__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kpu_client__status_to_err(int code)
{
    switch (code) {
    case KPU__IPC__V1__STATUS_CODE__OK:
        return 0;
    case KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT:
        return KPU_CLIENT_EINVAL;
    case KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST:
        return KPU_CLIENT_EUNSUPPORTED;
    case KPU__IPC__V1__STATUS_CODE__PROTOCOL_MISMATCH:
        return KPU_CLIENT_EVERSION;
    case KPU__IPC__V1__STATUS_CODE__PERMISSION_DENIED:
        return KPU_CLIENT_EACCES;
    case KPU__IPC__V1__STATUS_CODE__NO_SUCH_DEVICE:
        return KPU_CLIENT_ENODEV;
    case KPU__IPC__V1__STATUS_CODE__DEVICE_OFFLINE:
        return KPU_CLIENT_EOFFLINE;
    case KPU__IPC__V1__STATUS_CODE__DEVICE_ERROR:
        return KPU_CLIENT_EDEVICE;
    case KPU__IPC__V1__STATUS_CODE__TIMEOUT:
        return KPU_CLIENT_ETIMEDOUT;
    case KPU__IPC__V1__STATUS_CODE__LIMIT_EXCEEDED:
        return KPU_CLIENT_ELIMIT;
    case KPU__IPC__V1__STATUS_CODE__NO_SUCH_MODEL:
        return KPU_CLIENT_ENOMODEL;
    case KPU__IPC__V1__STATUS_CODE__STORE_ERROR:
        return KPU_CLIENT_ESTORE;
    case KPU__IPC__V1__STATUS_CODE__BUSY:
        return KPU_CLIENT_EBUSY;
    case KPU__IPC__V1__STATUS_CODE__NOT_FOUND:
        return KPU_CLIENT_ENOTFOUND;
    case KPU__IPC__V1__STATUS_CODE__FRAME_TOO_LARGE:
        return KPU_CLIENT_ETOOBIG;
    case KPU__IPC__V1__STATUS_CODE__MALFORMED:
        return KPU_CLIENT_EPROTO;
    case KPU__IPC__V1__STATUS_CODE__INTERNAL:
    default:
        return KPU_CLIENT_EINTERNAL;
    }
}

void *kpu_client__blob_alloc(struct kpu_client__blob *b, size_t size)
{
    const size_t a = alignof(max_align_t);
    size_t at = (b->used + a - 1) / a * a;
    void *p = NULL;

    if (b->base)
        p = b->base + at;
    b->used = at + size;
    if (p)
        memset(p, 0, size);
    return p;
}

const char *kpu_client__blob_str(struct kpu_client__blob *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char *p = NULL;

    if (b->base)
        p = b->base + b->used;
    b->used += n + 1;
    if (!p)
        return "";
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void kpu_client__conv_box(struct kpu_client__blob *b, const Kpu__Ipc__V1__Box *in,
                          struct kpu_client_box *out)
{
    const char *label = kpu_client__blob_str(b, in ? in->label : NULL);

    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    out->label = label;
    if (!in)
        return;
    out->class_id = in->class_id;
    out->score = in->score;
    out->x = in->x;
    out->y = in->y;
    out->w = in->w;
    out->h = in->h;
}

void kpu_client__conv_device(struct kpu_client__blob *b, const Kpu__Ipc__V1__DeviceInfo *in,
                             struct kpu_client_device *out)
{
    struct kpu_client_device d;

    memset(&d, 0, sizeof(d));
    d.id = kpu_client__blob_str(b, in->id);
    d.transport = kpu_client__blob_str(b, in->transport);
    d.path = kpu_client__blob_str(b, in->path);
    d.bridge = kpu_client__blob_str(b, in->bridge);
    d.state = (int)in->state;
    d.board = kpu_client__blob_str(b, in->board);
    d.agent_version = kpu_client__blob_str(b, in->agent_version);
    d.sensor = kpu_client__blob_str(b, in->sensor);
    d.model = kpu_client__blob_str(b, in->model);
    d.image_width = in->image_width;
    d.image_height = in->image_height;
    d.fps = in->fps;
    d.kpu_us = in->kpu_us;
    d.frames = in->frames;
    d.frames_lost = in->frames_lost;
    d.link_errors = in->link_errors;
    d.reconnects = in->reconnects;
    d.last_error = kpu_client__blob_str(b, in->last_error);
    d.connected_since_ns = in->connected_since_ns;
    d.reset_cause = kpu_client__blob_str(b, in->reset_cause);
    if (out)
        *out = d;
}

/* CRC-32C, reflected polynomial 0x82F63B78, init and xorout 0xFFFFFFFF (docs/protocol.md
 * §1, the same CRC the link uses). Bitwise: uploads are rare and small. */
uint32_t kpu_client__crc32c(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t crc = 0xFFFFFFFFu;

    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}
