/* SPDX-License-Identifier: MIT */
/*
 * libkpu-client internals shared by its source files (prefix kpu_client__): the client
 * struct, the synchronous request engine, the one-block result builder and the JSON
 * renderer of protobuf-c messages. Never installed.
 */
#ifndef KPU_CLIENT_INTERNAL_H
#define KPU_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kipc.h"
#include "kpu/client.h"
#include "kpu/ipc/v1/ipc.pb-c.h"

#define KPU_CLIENT__DEFAULT_TIMEOUT_MS 5000
#define KPU_CLIENT__DEFAULT_RECONNECT_MIN_MS 100
#define KPU_CLIENT__DEFAULT_RECONNECT_MAX_MS 5000
/* Largest frame accepted from the daemon: replies (snapshots, pages) may exceed what it
 * accepts from us. Matches the daemon's reply cap (daemon/ipc/ipc_server.c). */
#define KPU_CLIENT__MAX_RX_FRAME (64u * 1024u * 1024u)
/* Events held while a synchronous call waits; beyond this the oldest are dropped. */
#define KPU_CLIENT__MAX_HELD_EVENTS 4096u

struct kpu_client__sub {
    uint32_t id;                  /* local id given to the user, stable */
    uint32_t server_id;           /* id on the current connection, 0 when not (yet) subscribed */
    Kpu__Ipc__V1__Subscribe *req; /* what to send on (re)subscribe; owned */
    kpu_client_event_cb cb;
    void *user_data;
    uint64_t local_dropped; /* held events dropped by the library */
};

struct kpu_client__held {
    struct kpu_client__held *next;
    Kpu__Ipc__V1__Frame *frame;
    uint32_t local_id; /* the subscription it belongs to (server ids change on reconnect) */
};

struct kpu_client {
    char *path;
    char *client_name;
    int timeout_ms;
    int reconnect;
    int reconnect_min_ms, reconnect_max_ms;
    int backoff_ms;
    int64_t reconnect_at_ms; /* monotonic ms; 0 = none scheduled */
    kpu_client_state_cb state_cb;
    void *user_data;
    /* Interim AgentInfo responses of the call in progress (kpu_client_agent_control_progress):
     * handed to this, which returns nonzero to stop waiting. NULL: interim frames skipped. */
    int (*interim_fn)(kpu_client_t *c, const Kpu__Ipc__V1__Frame *f, void *arg);
    void *interim_arg;

    int fd; /* -1 when disconnected */
    struct kipc_reader rd;
    uint8_t *inbuf; /* bytes received and not yet given to rd */
    size_t inpos, inlen;
    uint8_t *wbuf; /* unsent bytes */
    size_t wlen, woff, wcap;
    uint32_t next_request_id;

    Kpu__Ipc__V1__ServerHello *hello; /* of the current connection */
    struct kpu_client_server_info info;
    char instance_id[33];
    int have_instance;

    struct kpu_client__sub **subs;
    size_t n_subs;
    uint32_t next_sub_id;

    struct kpu_client__held *held_head, *held_tail;
    size_t n_held;

    Kpu__Ipc__V1__Frame *last_reply; /* kept for kpu_client_last_reply_json */
    char *err_text, *err_hint;
    int stop;
    int in_reconnect;
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t kpu_client__now_ms(void);

/* Set the last daemon error text/hint (NULL clears). */
void kpu_client__set_error(kpu_client_t *c, const char *text, const char *hint);

/* Map a wire StatusCode to a KPU_CLIENT_E* value (OK -> 0). */
int kpu_client__status_to_err(int code);

/*
 * kpu_client__call - send req (its request_id is assigned here) and wait for the
 * response with the same id. On success *ret is the response to free with
 * kpu__ipc__v1__frame__free_unpacked; a Status reply with code OK is a success too; a
 * failed Status is turned into its error (text and hint kept). expect is the body case
 * wanted (0 = any). Returns 0 or a negative KPU_CLIENT_E*.
 */
int kpu_client__call(kpu_client_t *c, Kpu__Ipc__V1__Frame *req, int expect,
                     Kpu__Ipc__V1__Frame **ret);

/* Keep resp as the last reply (frees the previous one). Takes resp. */
void kpu_client__keep_reply(kpu_client_t *c, Kpu__Ipc__V1__Frame *resp);

/* Close the socket; with reconnect schedule a retry; call the state callback. */
void kpu_client__disconnect(kpu_client_t *c, int err);

/* Ensure a connection (reconnecting at once if allowed). Returns 0 or a negative code. */
int kpu_client__ensure(kpu_client_t *c);

/* Fill a wire Filter from a public one. Pointers into storage (caller's arrays) are used
 * as they are; the casts are safe because packing never writes. */
void kpu_client__filter_to_wire(const struct kpu_client_filter *in, Kpu__Ipc__V1__Filter *out,
                                Kpu__Ipc__V1__Rect *rect);

/* CRC-32C (Castagnoli) as the link protocol uses it (docs/protocol.md §1). */
uint32_t kpu_client__crc32c(const void *data, size_t len);

/*
 * One-block results. A blob is filled in two passes over the same code: with base NULL it
 * only measures; then the block is allocated and the pass repeats, writing. Strings and
 * arrays are appended after the fixed part.
 */
struct kpu_client__blob {
    char *base;
    size_t used;
    size_t cap;
};

/* Reserve size bytes aligned for any type; returns the pointer (NULL when measuring). */
void *kpu_client__blob_alloc(struct kpu_client__blob *b, size_t size);
/* Copy a string (NULL becomes ""); returns the copy, or "" when measuring. */
const char *kpu_client__blob_str(struct kpu_client__blob *b, const char *s);

/* Converters used by calls and events: copy wire messages into public structs whose
 * strings and arrays live in b. */
void kpu_client__conv_device(struct kpu_client__blob *b, const Kpu__Ipc__V1__DeviceInfo *in,
                             struct kpu_client_device *out);
void kpu_client__conv_box(struct kpu_client__blob *b, const Kpu__Ipc__V1__Box *in,
                          struct kpu_client_box *out);

/*
 * kpu_client__json - render msg (any protobuf-c message) as JSON into a new malloc()ed
 * NUL-terminated string. Returns NULL on allocation failure.
 */
char *kpu_client__json(const ProtobufCMessage *msg);

/* Render one oneof member of a Frame as {"<member>":{...}}. */
char *kpu_client__json_frame_body(const Kpu__Ipc__V1__Frame *f);

#endif /* KPU_CLIENT_INTERNAL_H */
