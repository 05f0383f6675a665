/* SPDX-License-Identifier: MIT */
/*
 * kpud's IPC server (contract in ipc_server.h, wire in docs/protocol.md §3-4): the
 * listening uv_pipe_t, one connection per client with its framing reader, role, handshake
 * state, subscriptions and outgoing queue, and the hand-off of every other request to the
 * backend.
 *
 * Outgoing data. Every message is packed once into its own buffer (an "out" item). A new
 * item on an idle connection is written at once with uv_try_write; whatever the kernel
 * does not take waits in the connection's queue and goes out through uv_write, one item
 * in flight at a time. Responses are never dropped (a client that floods requests without
 * reading has its reading paused instead); events are bounded by queue_messages and
 * queue_bytes, and when full the OLDEST queued event is dropped and counted on its
 * subscription. Before the next event of that subscription leaves, a Dropped notice with
 * the count goes out. latest_only subscriptions replace their queued event of the same
 * device instead of adding one.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include "ipc_server.h"

#include "ipc_internal.h"
#include "kipc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* glibc's <sys/queue.h> lacks the _SAFE iterators of the BSDs. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                                 \
    for ((var) = TAILQ_FIRST(head); (var) && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

#define IPC_PROTOCOL_MAJOR 1u
#define IPC_PROTOCOL_MINOR 1u
#define IPC_DEFAULT_MAX_FRAME (1024u * 1024u)
#define IPC_DEFAULT_MAX_CLIENTS 64u
#define IPC_DEFAULT_MAX_SUBS 16u
#define IPC_DEFAULT_QUEUE_MESSAGES 1024u
#define IPC_DEFAULT_QUEUE_BYTES (4u * 1024u * 1024u)
#define IPC_DEFAULT_PAGE_ROWS 1000u
/* Replies (a snapshot, a query page) may be larger than what the server accepts. */
#define IPC_MAX_REPLY (64u * 1024u * 1024u)
#define IPC_LISTEN_BACKLOG 128
#define IPC_READ_BUF 16384
/* Reading pauses while this many backend requests are pending on one connection... */
#define IPC_MAX_PENDING_REQUESTS 64u
/* ...or this many response bytes wait to be written (a client that does not read). */
#define IPC_MAX_RESPONSE_BYTES (8u * 1024u * 1024u)
/* What a queued response costs against IPC_MAX_RESPONSE_BYTES: its bytes plus its
 * bookkeeping, so a flood of tiny answers (Pongs) is bounded by memory, not by payload. */
#define OUT_COST(o) ((o)->len + sizeof(struct out))
/* Filter lists longer than this are refused (every client-controlled resource has a limit). */
#define IPC_MAX_FILTER_ITEMS 256u
/* Devices a rate-limited subscription remembers; the least recent is forgotten. */
#define IPC_RATE_SLOTS 16u
#define IPC_MAX_GROUPS 256u
#define IPC_INSTANCE_ID_LEN 16u

enum out_kind {
    OUT_RESPONSE, /* never dropped */
    OUT_EVENT,    /* droppable while queued */
};

struct out {
    TAILQ_ENTRY(out) link;
    enum out_kind kind;
    uint8_t *buf;
    size_t len;
    size_t off;         /* bytes already written */
    uint32_t sub_id;    /* OUT_EVENT: the subscription */
    uint32_t frame_seq; /* OUT_EVENT: detection frame_seq, for Dropped.first_frame_seq */
    char *device;       /* OUT_EVENT: device id, for latest_only */
};
TAILQ_HEAD(out_queue, out);

struct rate_slot {
    char *device;
    uint64_t last_ns; /* monotonic time of the last delivered event */
    uint64_t used;    /* LRU stamp */
};

struct sub {
    uint32_t id;
    Kpu__Ipc__V1__Subscribe *req; /* owned copy of the request (filter etc.) */
    uint64_t dropped;             /* dropped since the last Dropped notice */
    uint32_t first_dropped_seq;
    struct rate_slot rate[IPC_RATE_SLOTS];
    uint64_t rate_clock;
};

struct conn;

struct kpud_ipc_request {
    TAILQ_ENTRY(kpud_ipc_request) link;
    struct conn *c; /* NULL once the connection is gone: the reply is dropped */
    uint32_t request_id;
    Kpu__Ipc__V1__Role role;
    Kpu__Ipc__V1__Frame *frame;
};
TAILQ_HEAD(req_list, kpud_ipc_request);

struct conn {
    uv_pipe_t pipe; /* first: the handle's data points back here anyway */
    LIST_ENTRY(conn) link;
    struct kpud_ipc_server *srv;
    struct kipc_reader rd;
    Kpu__Ipc__V1__Role role;
    uid_t uid;
    pid_t pid;
    int hello_done;
    uint32_t minor;        /* negotiated protocol minor */
    int closing;           /* uv_close called */
    int close_after_flush; /* fatal error sent: close once the queue is written */
    int reading;
    struct out_queue q;
    size_t ev_count, ev_bytes; /* queued droppable events */
    size_t resp_bytes;         /* queued responses */
    uv_write_t wreq;
    struct out *inflight; /* the item uv_write is writing, or NULL */
    struct sub **subs;
    size_t n_subs;
    uint32_t next_sub_id;
    struct req_list pending;
    size_t n_pending;
    uint8_t rbuf[IPC_READ_BUF];
};

struct kpud_ipc_server {
    uv_loop_t *loop;
    uv_pipe_t listener;
    struct kpud_ipc_opts o;
    char *path;
    char *server_version;
    char **features;
    size_t n_features;
    int created_path; /* we bound the socket file and remove it on close */
    LIST_HEAD(, conn) conns;
    struct kpud_ipc_stats st;
    uint8_t instance_id[IPC_INSTANCE_ID_LEN];
    uint64_t boot_time_ns;
    int closing;
    unsigned open_handles;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static uint64_t now_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void out_free(struct out *o)
{
    if (!o)
        return;
    free(o->buf);
    free(o->device);
    free(o);
}

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_update_reading(struct conn *c);

/* ------------------------------------------------------------------------------------- */
/* Sending */

static struct sub *conn_find_sub(struct conn *c, uint32_t id)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (c->subs[i]->id == id)
            return c->subs[i];
    return NULL;
}

static void queue_remove(struct conn *c, struct out *o)
{
    TAILQ_REMOVE(&c->q, o, link);
    if (o->kind == OUT_EVENT) {
        c->ev_count--;
        c->ev_bytes -= o->len;
    } else {
        c->resp_bytes -= OUT_COST(o);
    }
}

/* Pack frame into a new out item. Returns NULL when too large or out of memory. */
static struct out *out_pack(const Kpu__Ipc__V1__Frame *f, enum out_kind kind, uint32_t limit)
{
    struct out *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->kind = kind;
    if (kipc_pack(f, limit, &o->buf, &o->len) < 0) {
        free(o);
        return NULL;
    }
    return o;
}

static void write_cb(uv_write_t *wr, int status)
{
    struct conn *c = wr->data;
    struct out *o = c->inflight;

    c->inflight = NULL;
    if (o) {
        if (o->kind == OUT_EVENT)
            c->srv->st.events_sent++;
        out_free(o);
    }
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
    conn_update_reading(c);
}

/* Build and put a Dropped notice for s at the head of the queue, before its next event. */
static int queue_dropped_notice(struct conn *c, struct sub *s)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__Dropped d = KPU__IPC__V1__DROPPED__INIT;
    struct out *o;

    d.subscription_id = s->id;
    d.count = s->dropped;
    d.first_frame_seq = s->first_dropped_seq;
    f.body_case = KPU__IPC__V1__FRAME__BODY_DROPPED;
    f.dropped = &d;
    o = out_pack(&f, OUT_RESPONSE, 0);
    if (!o)
        return -ENOMEM;
    s->dropped = 0;
    TAILQ_INSERT_HEAD(&c->q, o, link);
    c->resp_bytes += OUT_COST(o);
    return 0;
}

/*
 * Write what can be written: try_write items from the head until the kernel refuses,
 * then hand the rest of the head item to uv_write. One uv_write at a time, so queued
 * events behind it stay droppable.
 */
static void conn_flush(struct conn *c)
{
    while (!c->closing && !c->inflight && !TAILQ_EMPTY(&c->q)) {
        struct out *o = TAILQ_FIRST(&c->q);
        uv_buf_t b;
        int n;

        if (o->kind == OUT_EVENT && o->off == 0) {
            struct sub *s = conn_find_sub(c, o->sub_id);
            if (s && s->dropped) {
                if (queue_dropped_notice(c, s) < 0) {
                    conn_close(c);
                    return;
                }
                continue;
            }
        }
        b = uv_buf_init((char *)o->buf + o->off, (unsigned)(o->len - o->off));
        n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
        if (n == (int)b.len) {
            queue_remove(c, o);
            if (o->kind == OUT_EVENT)
                c->srv->st.events_sent++;
            out_free(o);
            continue;
        }
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        if (n > 0) {
            o->off += (size_t)n;
            b = uv_buf_init((char *)o->buf + o->off, (unsigned)(o->len - o->off));
        }
        queue_remove(c, o);
        c->inflight = o;
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, write_cb) < 0) {
            c->inflight = NULL;
            out_free(o);
            conn_close(c);
            return;
        }
    }
    if (!c->closing && c->close_after_flush && !c->inflight && TAILQ_EMPTY(&c->q))
        conn_close(c);
}

/* Queue a response (never dropped) and start writing. */
static void conn_send_response(struct conn *c, struct out *o)
{
    if (c->closing) {
        out_free(o);
        return;
    }
    TAILQ_INSERT_TAIL(&c->q, o, link);
    c->resp_bytes += OUT_COST(o);
    conn_flush(c);
}

static void conn_send_frame(struct conn *c, Kpu__Ipc__V1__Frame *f)
{
    struct out *o = out_pack(f, OUT_RESPONSE, IPC_MAX_REPLY);
    if (!o) {
        conn_close(c);
        return;
    }
    conn_send_response(c, o);
}

static void conn_send_status(struct conn *c, uint32_t request_id, Kpu__Ipc__V1__StatusCode code,
                             const char *text, const char *hint)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__Status s = KPU__IPC__V1__STATUS__INIT;

    s.code = code;
    s.text = (char *)(text ? text : "");
    s.hint = (char *)(hint ? hint : "");
    f.request_id = request_id;
    f.body_case = KPU__IPC__V1__FRAME__BODY_STATUS;
    f.status = &s;
    conn_send_frame(c, &f);
}

/* Send a status and close once it is written: the stream is no longer trustworthy. */
static void conn_fatal(struct conn *c, uint32_t request_id, Kpu__Ipc__V1__StatusCode code,
                       const char *text, const char *hint)
{
    struct out *o, *t;

    if (c->closing || c->close_after_flush)
        return;
    /* Queued events no longer matter; the status must not wait behind them. */
    TAILQ_FOREACH_SAFE(o, &c->q, link, t)
    {
        if (o->kind == OUT_EVENT) {
            queue_remove(c, o);
            out_free(o);
        }
    }
    c->close_after_flush = 1;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = 0;
    }
    conn_send_status(c, request_id, code, text, hint);
    if (!c->closing)
        conn_flush(c);
}

/* Drop the oldest queued event (never the one being written). Returns 0 if none. */
static int drop_oldest_event(struct conn *c)
{
    struct out *o;

    TAILQ_FOREACH(o, &c->q, link)
    {
        if (o->kind == OUT_EVENT && o->off == 0) {
            struct sub *s = conn_find_sub(c, o->sub_id);
            if (s) {
                if (s->dropped == 0)
                    s->first_dropped_seq = o->frame_seq;
                s->dropped++;
            }
            c->srv->st.events_dropped++;
            queue_remove(c, o);
            out_free(o);
            return 1;
        }
    }
    return 0;
}

/* Queue an event for s, applying latest_only and the queue bounds. Takes o. */
static void conn_send_event(struct conn *c, struct sub *s, struct out *o)
{
    const struct kpud_ipc_opts *op = &c->srv->o;

    o->kind = OUT_EVENT;
    o->sub_id = s->id;
    if (s->req->latest_only && o->device) {
        struct out *q, *t;
        TAILQ_FOREACH_SAFE(q, &c->q, link, t)
        {
            if (q->kind == OUT_EVENT && q->off == 0 && q->sub_id == s->id && q->device &&
                strcmp(q->device, o->device) == 0) {
                queue_remove(c, q);
                out_free(q);
            }
        }
    }
    while ((c->ev_count + 1 > op->queue_messages || c->ev_bytes + o->len > op->queue_bytes) &&
           drop_oldest_event(c))
        ;
    if (o->len > op->queue_bytes && !TAILQ_EMPTY(&c->q)) {
        /* Larger than the whole budget while others wait: it cannot be queued. */
        if (s->dropped == 0)
            s->first_dropped_seq = o->frame_seq;
        s->dropped++;
        c->srv->st.events_dropped++;
        out_free(o);
        return;
    }
    TAILQ_INSERT_TAIL(&c->q, o, link);
    c->ev_count++;
    c->ev_bytes += o->len;
    conn_flush(c);
}

/* ------------------------------------------------------------------------------------- */
/* Reading and dispatch */

static void conn_update_reading(struct conn *c);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static void sub_free(struct sub *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < IPC_RATE_SLOTS; i++)
        free(s->rate[i].device);
    if (s->req)
        kpu__ipc__v1__subscribe__free_unpacked(s->req, NULL);
    free(s);
}

static void handle_subscribe(struct conn *c, Kpu__Ipc__V1__Frame *f)
{
    Kpu__Ipc__V1__Subscribe *rq = f->subscribe;
    Kpu__Ipc__V1__Frame r = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__Subscribed ok = KPU__IPC__V1__SUBSCRIBED__INIT;
    const char *bad;
    struct sub *s, **ns;
    uint8_t *tmp;
    size_t len;

    if (c->n_subs >= c->srv->o.max_subscriptions) {
        char text[96];
        snprintf(text, sizeof(text), "too many subscriptions on this connection (limit %u)",
                 c->srv->o.max_subscriptions);
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__LIMIT_EXCEEDED, text,
                         "unsubscribe first, or combine filters into one subscription");
        return;
    }
    bad = kpud_ipc_filter_validate(rq->filter, IPC_MAX_FILTER_ITEMS);
    if (!bad && (isnan(rq->max_rate_hz) || rq->max_rate_hz < 0.0f))
        bad = "max_rate_hz must be 0 (unlimited) or positive";
    if (bad) {
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT, bad, NULL);
        return;
    }
    s = calloc(1, sizeof(*s));
    ns = realloc(c->subs, (c->n_subs + 1) * sizeof(*ns));
    if (!s || !ns) {
        free(s);
        if (ns)
            c->subs = ns;
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__INTERNAL, "out of memory",
                         NULL);
        return;
    }
    c->subs = ns;
    /* Keep an owned copy: the frame is freed after dispatch. */
    len = kpu__ipc__v1__subscribe__get_packed_size(rq);
    tmp = malloc(len ? len : 1);
    if (tmp) {
        kpu__ipc__v1__subscribe__pack(rq, tmp);
        s->req = kpu__ipc__v1__subscribe__unpack(NULL, len, tmp);
        free(tmp);
    }
    if (!s->req) {
        free(s);
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__INTERNAL, "out of memory",
                         NULL);
        return;
    }
    s->id = ++c->next_sub_id;
    if (s->id == 0)
        s->id = ++c->next_sub_id;
    c->subs[c->n_subs++] = s;
    ok.subscription_id = s->id;
    r.request_id = f->request_id;
    r.body_case = KPU__IPC__V1__FRAME__BODY_SUBSCRIBED;
    r.subscribed = &ok;
    conn_send_frame(c, &r);
}

static void handle_unsubscribe(struct conn *c, Kpu__Ipc__V1__Frame *f)
{
    uint32_t id = f->unsubscribe->subscription_id;
    struct out *o, *t;

    for (size_t i = 0; i < c->n_subs; i++) {
        if (c->subs[i]->id != id)
            continue;
        sub_free(c->subs[i]);
        c->subs[i] = c->subs[--c->n_subs];
        TAILQ_FOREACH_SAFE(o, &c->q, link, t)
        {
            if (o->kind == OUT_EVENT && o->sub_id == id) {
                queue_remove(c, o);
                out_free(o);
            }
        }
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__OK, "unsubscribed", NULL);
        return;
    }
    conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__NOT_FOUND,
                     "no such subscription on this connection", NULL);
}

static void handle_ping(struct conn *c, Kpu__Ipc__V1__Frame *f)
{
    Kpu__Ipc__V1__Frame r = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__Pong p = KPU__IPC__V1__PONG__INIT;

    p.client_time_ns = f->ping->client_time_ns;
    p.server_time_ns = now_real_ns();
    r.request_id = f->request_id;
    r.body_case = KPU__IPC__V1__FRAME__BODY_PONG;
    r.pong = &p;
    conn_send_frame(c, &r);
}

static void handle_client_hello(struct conn *c, Kpu__Ipc__V1__Frame *f)
{
    const Kpu__Ipc__V1__ClientHello *h = f->client_hello;

    if (h->protocol_major != IPC_PROTOCOL_MAJOR) {
        char text[128];
        snprintf(text, sizeof(text), "client speaks kpu.ipc v%u.%u, this kpud speaks v%u.%u",
                 h->protocol_major, h->protocol_minor, IPC_PROTOCOL_MAJOR, IPC_PROTOCOL_MINOR);
        conn_fatal(c, f->request_id, KPU__IPC__V1__STATUS_CODE__PROTOCOL_MISMATCH, text,
                   "install a libkpu-client / kpuctl that matches this kpud");
        return;
    }
    c->hello_done = 1;
    c->minor = h->protocol_minor > IPC_PROTOCOL_MINOR ? IPC_PROTOCOL_MINOR : h->protocol_minor;
    /* A hello with a request id is acknowledged, so the client knows it was accepted. */
    if (f->request_id)
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__OK, "welcome", NULL);
}

static int is_request_body(Kpu__Ipc__V1__Frame__BodyCase bc)
{
    return bc >= KPU__IPC__V1__FRAME__BODY_PING && bc <= KPU__IPC__V1__FRAME__BODY_AGENT_CONTROL;
}

/* Handle one decoded frame; takes f. */
static void conn_dispatch(struct conn *c, Kpu__Ipc__V1__Frame *f)
{
    struct kpud_ipc_server *srv = c->srv;
    struct kpud_ipc_request *req;

    if (f->body_case == KPU__IPC__V1__FRAME__BODY__NOT_SET) {
        if (f->base.n_unknown_fields > 0) {
            /* A body from a newer minor that this server does not know. */
            conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST,
                             "request not understood by this kpud",
                             "upgrade kpud, or use a request this version lists");
        } else {
            srv->st.protocol_errors++;
            conn_fatal(c, f->request_id, KPU__IPC__V1__STATUS_CODE__MALFORMED,
                       "frame without a body", NULL);
        }
        goto done;
    }
    if (f->body_case == KPU__IPC__V1__FRAME__BODY_CLIENT_HELLO) {
        handle_client_hello(c, f);
        goto done;
    }
    if (!c->hello_done) {
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT,
                         "ClientHello expected first", "send ClientHello after ServerHello");
        goto done;
    }
    if (!is_request_body(f->body_case)) {
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST,
                         "not a request (responses and events go from kpud to clients)", NULL);
        goto done;
    }
    if (f->request_id == 0) {
        conn_send_status(c, 0, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT,
                         "request_id must be non-zero on requests", NULL);
        goto done;
    }
    if (kpud_ipc_is_admin_request(f) && c->role != KPU__IPC__V1__ROLE__ROLE_ADMIN) {
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__PERMISSION_DENIED,
                         "this request needs the admin role",
                         "run as root or as a member of kpud's admin group (e.g. kpu-admin)");
        goto done;
    }
    switch (f->body_case) {
    case KPU__IPC__V1__FRAME__BODY_PING:
        handle_ping(c, f);
        goto done;
    case KPU__IPC__V1__FRAME__BODY_SUBSCRIBE:
        handle_subscribe(c, f);
        goto done;
    case KPU__IPC__V1__FRAME__BODY_UNSUBSCRIBE:
        handle_unsubscribe(c, f);
        goto done;
    default:
        break;
    }
    if (!srv->o.backend || !srv->o.backend->request) {
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST,
                         "this kpud does not serve that request", NULL);
        goto done;
    }
    req = calloc(1, sizeof(*req));
    if (!req) {
        conn_send_status(c, f->request_id, KPU__IPC__V1__STATUS_CODE__INTERNAL, "out of memory",
                         NULL);
        goto done;
    }
    req->c = c;
    req->request_id = f->request_id;
    req->role = c->role;
    req->frame = f;
    TAILQ_INSERT_TAIL(&c->pending, req, link);
    c->n_pending++;
    conn_update_reading(c);
    srv->o.backend->request(srv->o.backend_ctx, req, f);
    return;
done:
    kpu__ipc__v1__frame__free_unpacked(f, NULL);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = nread > 0 ? (size_t)nread : 0;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    while (!c->closing && !c->close_after_flush) {
        const uint8_t *body;
        size_t blen;
        Kpu__Ipc__V1__Frame *f;
        int r = kipc_reader_feed(&c->rd, &p, &n, &body, &blen);

        if (r == KIPC_NEED_MORE)
            break;
        if (r == KIPC_E_TOO_LARGE) {
            char text[96];
            c->srv->st.protocol_errors++;
            snprintf(text, sizeof(text), "frame of %u bytes exceeds the limit of %u",
                     c->rd.too_large_len, c->srv->o.max_frame);
            conn_fatal(c, 0, KPU__IPC__V1__STATUS_CODE__FRAME_TOO_LARGE, text,
                       "split large uploads into chunks (ModelUploadChunk)");
            break;
        }
        if (r < 0) {
            conn_fatal(c, 0, KPU__IPC__V1__STATUS_CODE__INTERNAL, "out of memory", NULL);
            break;
        }
        f = kipc_unpack(body, blen);
        if (!f) {
            c->srv->st.protocol_errors++;
            conn_fatal(c, 0, KPU__IPC__V1__STATUS_CODE__MALFORMED,
                       "bytes do not decode as a kpu.ipc.v1.Frame",
                       "the client is not speaking kpu.ipc.v1; the connection closes");
            break;
        }
        conn_dispatch(c, f);
    }
    /* Answers the server gives itself (Pong, Subscribed, errors) count too: a client that
     * floods requests without reading stops being read once its answers reach the bound. */
    if (!c->closing)
        conn_update_reading(c);
}

/* Pause reading while the client has too much outstanding; resume when it drains. */
static void conn_update_reading(struct conn *c)
{
    int want = !c->closing && !c->close_after_flush && c->n_pending < IPC_MAX_PENDING_REQUESTS &&
               c->resp_bytes < IPC_MAX_RESPONSE_BYTES;

    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) == 0)
            c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = 0;
    }
}

/* ------------------------------------------------------------------------------------- */
/* Connections */

static void server_handle_closed(struct kpud_ipc_server *srv);

static void conn_close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct kpud_ipc_server *srv = c->srv;
    struct out *o;

    while ((o = TAILQ_FIRST(&c->q))) {
        TAILQ_REMOVE(&c->q, o, link);
        out_free(o);
    }
    out_free(c->inflight);
    for (size_t i = 0; i < c->n_subs; i++)
        sub_free(c->subs[i]);
    free(c->subs);
    kipc_reader_free(&c->rd);
    free(c);
    server_handle_closed(srv);
}

static void conn_close(struct conn *c)
{
    struct kpud_ipc_request *req;

    if (c->closing)
        return;
    c->closing = 1;
    c->reading = 0;
    /* Pending requests stay valid for the backend; their replies become no-ops. */
    while ((req = TAILQ_FIRST(&c->pending))) {
        TAILQ_REMOVE(&c->pending, req, link);
        req->c = NULL;
    }
    c->n_pending = 0;
    LIST_REMOVE(c, link);
    c->srv->st.clients--;
    uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
}

static void send_server_hello(struct conn *c)
{
    struct kpud_ipc_server *srv = c->srv;
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__ServerHello h = KPU__IPC__V1__SERVER_HELLO__INIT;

    h.protocol_major = IPC_PROTOCOL_MAJOR;
    h.protocol_minor = IPC_PROTOCOL_MINOR;
    h.server_version = srv->server_version;
    h.features = srv->features;
    h.n_features = srv->n_features;
    h.max_frame = srv->o.max_frame;
    h.max_subscriptions = srv->o.max_subscriptions;
    h.max_page_rows = srv->o.max_page_rows;
    h.queue_messages = srv->o.queue_messages;
    h.queue_bytes = srv->o.queue_bytes;
    h.instance_id.data = srv->instance_id;
    h.instance_id.len = sizeof(srv->instance_id);
    h.boot_time_ns = srv->boot_time_ns;
    h.role = c->role;
    f.body_case = KPU__IPC__V1__FRAME__BODY_SERVER_HELLO;
    f.server_hello = &h;
    conn_send_frame(c, &f);
}

static Kpu__Ipc__V1__Role peer_role(struct kpud_ipc_server *srv, struct conn *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    gid_t groups[IPC_MAX_GROUPS];
    struct kpud_ipc_peer peer;
    uv_os_fd_t fd;
    int n;

    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return srv->o.everyone_admin ? KPU__IPC__V1__ROLE__ROLE_ADMIN
                                     : KPU__IPC__V1__ROLE__ROLE_NONE;
    c->uid = cred.uid;
    c->pid = cred.pid;
    memset(&peer, 0, sizeof(peer));
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    n = 0;
    if (!srv->o.everyone_admin && cred.uid != 0)
        n = kpud_ipc_peer_groups(cred.pid, cred.uid, cred.gid, groups, IPC_MAX_GROUPS);
    peer.groups = groups;
    peer.n_groups = n > 0 ? (size_t)n : 0;
    return kpud_ipc_role_decide(&peer, srv->o.reader_gid, srv->o.admin_gid, srv->o.everyone_admin);
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct kpud_ipc_server *srv = ls->data;
    struct conn *c;

    if (status < 0 || srv->closing)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    TAILQ_INIT(&c->q);
    TAILQ_INIT(&c->pending);
    kipc_reader_init(&c->rd, srv->o.max_frame);
    if (uv_pipe_init(srv->loop, &c->pipe, 0) < 0) {
        free(c);
        return;
    }
    c->pipe.data = c;
    srv->open_handles++;
    LIST_INSERT_HEAD(&srv->conns, c, link);
    srv->st.clients++;
    if (uv_accept(ls, (uv_stream_t *)&c->pipe) < 0) {
        conn_close(c);
        return;
    }
    srv->st.connections++;
    c->role = peer_role(srv, c);
    if (srv->st.clients > srv->o.max_clients) {
        char text[80];
        srv->st.refused++;
        snprintf(text, sizeof(text), "too many clients (limit %u)", srv->o.max_clients);
        conn_fatal(c, 0, KPU__IPC__V1__STATUS_CODE__LIMIT_EXCEEDED, text,
                   "close other kpuctl watchers, or raise the daemon's max_clients");
        return;
    }
    if (c->role == KPU__IPC__V1__ROLE__ROLE_NONE) {
        srv->st.refused++;
        conn_fatal(c, 0, KPU__IPC__V1__STATUS_CODE__PERMISSION_DENIED,
                   "this user may not talk to kpud",
                   "add yourself to kpud's reader group (e.g. kpu), then log in again");
        return;
    }
    send_server_hello(c);
    conn_update_reading(c);
}

/* ------------------------------------------------------------------------------------- */
/* Replies */

void kpud_ipc_reply(struct kpud_ipc_request *req, Kpu__Ipc__V1__Frame *frame)
{
    struct conn *c = req->c;

    if (c) {
        struct out *o;
        TAILQ_REMOVE(&c->pending, req, link);
        c->n_pending--;
        frame->request_id = req->request_id;
        o = out_pack(frame, OUT_RESPONSE, IPC_MAX_REPLY);
        if (o)
            conn_send_response(c, o);
        else
            conn_send_status(c, req->request_id, KPU__IPC__V1__STATUS_CODE__INTERNAL,
                             "reply too large to send", NULL);
        if (!c->closing)
            conn_update_reading(c);
    }
    kpu__ipc__v1__frame__free_unpacked(req->frame, NULL);
    free(req);
}

void kpud_ipc_reply_interim(struct kpud_ipc_request *req, Kpu__Ipc__V1__Frame *frame)
{
    struct conn *c = req->c;
    struct out *o;

    /* Clients that said protocol 1.0 expect exactly one response per request. */
    if (!c || c->closing || c->minor < 1)
        return;
    frame->request_id = req->request_id;
    o = out_pack(frame, OUT_RESPONSE, IPC_MAX_REPLY);
    if (o)
        conn_send_response(c, o);
}

void kpud_ipc_reply_status(struct kpud_ipc_request *req, Kpu__Ipc__V1__StatusCode code,
                           const char *text, const char *hint)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__Status s = KPU__IPC__V1__STATUS__INIT;

    s.code = code;
    s.text = (char *)(text ? text : "");
    s.hint = (char *)(hint ? hint : "");
    f.body_case = KPU__IPC__V1__FRAME__BODY_STATUS;
    f.status = &s;
    kpud_ipc_reply(req, &f);
}

Kpu__Ipc__V1__Role kpud_ipc_request_role(const struct kpud_ipc_request *req)
{
    return req->role;
}

/* ------------------------------------------------------------------------------------- */
/* Publishing */

static int sub_rate_ok(struct sub *s, const char *dev, uint64_t now)
{
    uint64_t period;
    struct rate_slot *slot = NULL, *lru = &s->rate[0];

    if (!(s->req->max_rate_hz > 0.0f))
        return 1;
    period = (uint64_t)(1e9 / (double)s->req->max_rate_hz);
    for (size_t i = 0; i < IPC_RATE_SLOTS; i++) {
        struct rate_slot *r = &s->rate[i];
        if (r->device && strcmp(r->device, dev) == 0) {
            slot = r;
            break;
        }
        if (!r->device || r->used < lru->used)
            lru = r;
    }
    if (slot && now - slot->last_ns < period)
        return 0;
    if (!slot) {
        char *d = strdup(dev);
        if (!d)
            return 1;
        free(lru->device);
        lru->device = d;
        slot = lru;
    }
    slot->last_ns = now;
    slot->used = ++s->rate_clock;
    return 1;
}

void kpud_ipc_publish_detection(struct kpud_ipc_server *srv, const Kpu__Ipc__V1__DetectionEvent *ev)
{
    Kpu__Ipc__V1__Box **boxes = NULL;
    const char *dev = ev->device ? ev->device : "";
    uint64_t now = 0;
    struct conn *c, *next;

    if (!srv || srv->closing)
        return;
    if (ev->n_boxes) {
        boxes = malloc(ev->n_boxes * sizeof(*boxes));
        if (!boxes)
            return;
    }
    /* A failed write closes (and unlinks) a connection mid-walk: keep the next one first. */
    for (c = LIST_FIRST(&srv->conns); c; c = next) {
        next = LIST_NEXT(c, link);
        if (!c->hello_done || c->close_after_flush)
            continue;
        for (size_t i = 0; i < c->n_subs && !c->closing; i++) {
            struct sub *s = c->subs[i];
            const Kpu__Ipc__V1__Filter *flt = s->req->filter;
            Kpu__Ipc__V1__DetectionEvent copy = *ev;
            Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
            size_t nb = 0;
            struct out *o;

            if (!kpud_ipc_filter_device(flt, dev))
                continue;
            for (size_t b = 0; b < ev->n_boxes; b++)
                if (ev->boxes[b] && kpud_ipc_filter_box(flt, ev->boxes[b]))
                    boxes[nb++] = ev->boxes[b];
            if (nb == 0 && !s->req->include_empty)
                continue;
            if (!now)
                now = now_mono_ns();
            if (!sub_rate_ok(s, dev, now))
                continue;
            copy.subscription_id = s->id;
            copy.boxes = boxes;
            copy.n_boxes = nb;
            f.body_case = KPU__IPC__V1__FRAME__BODY_DETECTION;
            f.detection = &copy;
            o = out_pack(&f, OUT_EVENT, IPC_MAX_REPLY);
            if (!o)
                continue;
            o->frame_seq = ev->frame_seq;
            if (s->req->latest_only)
                o->device = strdup(dev);
            conn_send_event(c, s, o);
        }
    }
    free(boxes);
}

void kpud_ipc_publish_device(struct kpud_ipc_server *srv, const Kpu__Ipc__V1__DeviceEvent *ev)
{
    const char *dev = ev->device && ev->device->id ? ev->device->id : "";
    struct conn *c, *next;

    if (!srv || srv->closing)
        return;
    for (c = LIST_FIRST(&srv->conns); c; c = next) {
        next = LIST_NEXT(c, link);
        if (!c->hello_done || c->close_after_flush)
            continue;
        for (size_t i = 0; i < c->n_subs && !c->closing; i++) {
            struct sub *s = c->subs[i];
            Kpu__Ipc__V1__DeviceEvent copy = *ev;
            Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
            struct out *o;

            if (!s->req->device_events || !kpud_ipc_filter_device(s->req->filter, dev))
                continue;
            copy.subscription_id = s->id;
            f.body_case = KPU__IPC__V1__FRAME__BODY_DEVICE_EVENT;
            f.device_event = &copy;
            o = out_pack(&f, OUT_EVENT, IPC_MAX_REPLY);
            if (o)
                conn_send_event(c, s, o);
        }
    }
}

/* ------------------------------------------------------------------------------------- */
/* Server */

static void server_free(struct kpud_ipc_server *srv)
{
    for (size_t i = 0; i < srv->n_features; i++)
        free(srv->features[i]);
    free(srv->features);
    free(srv->server_version);
    free(srv->path);
    free(srv);
}

static void server_handle_closed(struct kpud_ipc_server *srv)
{
    if (--srv->open_handles == 0 && srv->closing) {
        void (*cb)(void *) = srv->close_cb;
        void *arg = srv->close_arg;
        server_free(srv);
        if (cb)
            cb(arg);
    }
}

static void listener_close_cb(uv_handle_t *h)
{
    server_handle_closed(h->data);
}

/* A socket file nobody listens on is left over from a crash: remove it. */
static int remove_stale_socket(const char *path)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, r;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (r == 0)
        return -EADDRINUSE;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

static void random_bytes(uint8_t *out, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, out, len) : -1;

    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)len) {
        /* No urandom: time and pid still make a restart visible. */
        uint64_t t = now_real_ns() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < len; i++)
            out[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)i;
    }
}

int kpud_ipc_server_open(uv_loop_t *loop, const struct kpud_ipc_opts *opts,
                         struct kpud_ipc_server **ret)
{
    struct kpud_ipc_server *srv;
    int r;

    if (!loop || !opts || !ret || (opts->listen_fd < 0 && !opts->path))
        return -EINVAL;
    if (opts->listen_fd < 0 && strlen(opts->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    srv->o = *opts;
    srv->o.max_frame = opts->max_frame ? opts->max_frame : IPC_DEFAULT_MAX_FRAME;
    srv->o.max_clients = opts->max_clients ? opts->max_clients : IPC_DEFAULT_MAX_CLIENTS;
    srv->o.max_subscriptions =
        opts->max_subscriptions ? opts->max_subscriptions : IPC_DEFAULT_MAX_SUBS;
    srv->o.queue_messages =
        opts->queue_messages ? opts->queue_messages : IPC_DEFAULT_QUEUE_MESSAGES;
    srv->o.queue_bytes = opts->queue_bytes ? opts->queue_bytes : IPC_DEFAULT_QUEUE_BYTES;
    srv->o.max_page_rows = opts->max_page_rows ? opts->max_page_rows : IPC_DEFAULT_PAGE_ROWS;
    srv->path = strdup(opts->path ? opts->path : "");
    srv->server_version = strdup(opts->server_version ? opts->server_version : "");
    if (!srv->path || !srv->server_version) {
        r = -ENOMEM;
        goto fail_free;
    }
    if (opts->features) {
        size_t n = 0;
        while (opts->features[n])
            n++;
        srv->features = calloc(n ? n : 1, sizeof(char *));
        if (!srv->features) {
            r = -ENOMEM;
            goto fail_free;
        }
        for (size_t i = 0; i < n; i++) {
            srv->features[i] = strdup(opts->features[i]);
            if (!srv->features[i]) {
                r = -ENOMEM;
                goto fail_free;
            }
            srv->n_features++;
        }
    }
    srv->o.path = srv->path;
    srv->o.server_version = srv->server_version;
    srv->o.features = NULL;
    LIST_INIT(&srv->conns);
    random_bytes(srv->instance_id, sizeof(srv->instance_id));
    srv->boot_time_ns = now_real_ns();

    r = uv_pipe_init(loop, &srv->listener, 0);
    if (r < 0)
        goto fail_free;
    srv->listener.data = srv;
    srv->open_handles = 1;
    if (opts->listen_fd >= 0) {
        r = uv_pipe_open(&srv->listener, opts->listen_fd);
        if (r < 0)
            goto fail_close;
    } else {
        r = remove_stale_socket(srv->path);
        if (r < 0)
            goto fail_close;
        r = uv_pipe_bind(&srv->listener, srv->path);
        if (r < 0)
            goto fail_close;
        srv->created_path = 1;
        if (chmod(srv->path, 0660) < 0) {
            r = -errno;
            goto fail_close;
        }
        /* Best effort: readers reach the socket through its group. Needs privileges. */
        if (opts->reader_gid != (gid_t)-1 && chown(srv->path, (uid_t)-1, opts->reader_gid) < 0)
            (void)0;
    }
    r = uv_listen((uv_stream_t *)&srv->listener, IPC_LISTEN_BACKLOG, on_connection);
    if (r < 0)
        goto fail_close;
    *ret = srv;
    return 0;

fail_close:
    if (srv->created_path)
        unlink(srv->path);
    /* The handle is freed by the loop; close synchronously by running it once. */
    srv->closing = 1;
    uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
    return r;
fail_free:
    server_free(srv);
    return r;
}

void kpud_ipc_server_close(struct kpud_ipc_server *srv, void (*cb)(void *arg), void *arg)
{
    struct conn *c;

    if (!srv || srv->closing)
        return;
    srv->closing = 1;
    srv->close_cb = cb;
    srv->close_arg = arg;
    while ((c = LIST_FIRST(&srv->conns)))
        conn_close(c);
    if (srv->created_path)
        unlink(srv->path);
    uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
}

void kpud_ipc_server_stats(const struct kpud_ipc_server *srv, struct kpud_ipc_stats *out)
{
    *out = srv->st;
}

unsigned kpud_ipc_server_subscriptions(const struct kpud_ipc_server *srv)
{
    const struct conn *c;
    unsigned n = 0;

    LIST_FOREACH(c, &srv->conns, link)
    n += (unsigned)c->n_subs;
    return n;
}
