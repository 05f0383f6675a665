/* SPDX-License-Identifier: MIT */
/*
 * libkpu-client connection engine: connecting and the handshake, the non-blocking socket
 * with its send buffer and framing reader, synchronous request/response with a deadline,
 * events held during synchronous calls, the bring-your-own-loop entry points, reconnect
 * with backoff and automatic re-subscribe, and subscriptions.
 */
#define _GNU_SOURCE
#include "client_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define INBUF_SIZE 65536u
#define DEFAULT_SOCKET "/run/kpud/kpud.sock"
#define SOCKET_NAME "kpud.sock"
#define TEXT_MAX 256

static _Thread_local char open_text[TEXT_MAX];
static _Thread_local char open_hint[TEXT_MAX];

KPU_CLIENT_EXPORT const char *kpu_client_open_error_text(void)
{
    return open_text;
}

KPU_CLIENT_EXPORT const char *kpu_client_open_error_hint(void)
{
    return open_hint;
}

void kpu_client__set_error(kpu_client_t *c, const char *text, const char *hint)
{
    free(c->err_text);
    free(c->err_hint);
    c->err_text = text && *text ? strdup(text) : NULL;
    c->err_hint = hint && *hint ? strdup(hint) : NULL;
}

KPU_CLIENT_EXPORT const char *kpu_client_last_error_text(const kpu_client_t *c)
{
    return c && c->err_text ? c->err_text : "";
}

KPU_CLIENT_EXPORT const char *kpu_client_last_error_hint(const kpu_client_t *c)
{
    return c && c->err_hint ? c->err_hint : "";
}

KPU_CLIENT_EXPORT int kpu_client_default_socket(char *buf, size_t size)
{
    const char *env = getenv("KPUD_SOCKET");
    int n;

    if (!buf || !size)
        return KPU_CLIENT_EINVAL;
    if (env && *env) {
        n = snprintf(buf, size, "%s", env);
    } else {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        n = -1;
        if (geteuid() != 0 && xdg && *xdg) {
            n = snprintf(buf, size, "%s/%s", xdg, SOCKET_NAME);
            if (n >= 0 && (size_t)n < size && access(buf, F_OK) != 0)
                n = -1;
        }
        if (n < 0)
            n = snprintf(buf, size, "%s", DEFAULT_SOCKET);
    }
    if (n < 0 || (size_t)n >= size)
        return KPU_CLIENT_ETOOBIG;
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* Socket I/O */

static int errno_to_err(int e)
{
    switch (e) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
        return KPU_CLIENT_ECONNECT;
    case EACCES:
    case EPERM:
        return KPU_CLIENT_EACCES;
    case ENOMEM:
    case ENOBUFS:
        return KPU_CLIENT_ENOMEM;
    case EPIPE:
    case ECONNRESET:
        return KPU_CLIENT_ECLOSED;
    default:
        return KPU_CLIENT_EIO;
    }
}

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;

    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left;
    if (deadline < 0)
        return -1;
    left = deadline - kpu_client__now_ms();
    if (left < 0)
        return 0;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static int64_t deadline_for(const kpu_client_t *c)
{
    if (c->timeout_ms < 0)
        return -1;
    return kpu_client__now_ms() + c->timeout_ms;
}

static int socket_connect(const char *path, int64_t deadline, int *ret_fd)
{
    struct sockaddr_un sa;
    int fd, r;
    size_t n = strlen(path);

    if (n >= sizeof(sa.sun_path))
        return KPU_CLIENT_EINVAL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno_to_err(errno);
    r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r < 0 && (errno == EAGAIN || errno == EINPROGRESS)) {
        /* Backlog full: wait for the listener to catch up. */
        int err = 0;
        socklen_t len = sizeof(err);
        r = wait_fd(fd, POLLOUT, remaining_ms(deadline));
        if (r == 0) {
            close(fd);
            return KPU_CLIENT_ETIMEDOUT;
        }
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            close(fd);
            return errno_to_err(err ? err : errno);
        }
        r = 0;
    }
    if (r < 0) {
        int e = errno;
        close(fd);
        return errno_to_err(e);
    }
    *ret_fd = fd;
    return 0;
}

static int wbuf_append(kpu_client_t *c, const uint8_t *data, size_t len)
{
    if (c->woff && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        uint8_t *nb;
        if (c->woff) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        while (cap < c->wlen + len)
            cap *= 2;
        if (cap > c->wcap) {
            nb = realloc(c->wbuf, cap);
            if (!nb)
                return KPU_CLIENT_ENOMEM;
            c->wbuf = nb;
            c->wcap = cap;
        }
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    return 0;
}

/* Write what the socket takes now. Returns 0 or a negative code. */
static int flush_some(kpu_client_t *c)
{
    while (c->fd >= 0 && c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return errno_to_err(errno);
        }
        c->woff += (size_t)n;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    return 0;
}

/* Take one frame from what has arrived. Returns 1 with *out, 0 when nothing is complete,
 * or a negative code (connection unusable). Never blocks. */
static int read_frame(kpu_client_t *c, Kpu__Ipc__V1__Frame **out)
{
    for (;;) {
        while (c->inpos < c->inlen) {
            const uint8_t *p = c->inbuf + c->inpos, *body;
            size_t n = c->inlen - c->inpos, blen;
            int r = kipc_reader_feed(&c->rd, &p, &n, &body, &blen);
            c->inpos = c->inlen - n;
            if (r == KIPC_FRAME) {
                *out = kipc_unpack(body, blen);
                if (!*out)
                    return KPU_CLIENT_EPROTO;
                return 1;
            }
            if (r == KIPC_E_TOO_LARGE)
                return KPU_CLIENT_ETOOBIG;
            if (r < 0)
                return KPU_CLIENT_ENOMEM;
        }
        c->inpos = c->inlen = 0;
        if (c->fd < 0)
            return KPU_CLIENT_ENOTCONN;
        {
            ssize_t n = recv(c->fd, c->inbuf, INBUF_SIZE, MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                return errno_to_err(errno);
            }
            if (n == 0)
                return KPU_CLIENT_ECLOSED;
            c->inlen = (size_t)n;
        }
    }
}

/* Wait until a frame arrives or the deadline passes (flushing writes meanwhile). */
static int wait_frame(kpu_client_t *c, int64_t deadline, Kpu__Ipc__V1__Frame **out)
{
    for (;;) {
        int r = flush_some(c);
        short ev = POLLIN;
        if (r < 0)
            return r;
        r = read_frame(c, out);
        if (r != 0)
            return r;
        if (c->woff < c->wlen)
            ev |= POLLOUT;
        r = wait_fd(c->fd, ev, remaining_ms(deadline));
        if (r == 0)
            return KPU_CLIENT_ETIMEDOUT;
        if (r < 0)
            return errno_to_err(errno);
    }
}

static int is_event(const Kpu__Ipc__V1__Frame *f)
{
    return f->body_case == KPU__IPC__V1__FRAME__BODY_DETECTION ||
           f->body_case == KPU__IPC__V1__FRAME__BODY_DEVICE_EVENT ||
           f->body_case == KPU__IPC__V1__FRAME__BODY_DROPPED;
}

static uint32_t event_server_sub(const Kpu__Ipc__V1__Frame *f)
{
    switch (f->body_case) {
    case KPU__IPC__V1__FRAME__BODY_DETECTION:
        return f->detection->subscription_id;
    case KPU__IPC__V1__FRAME__BODY_DEVICE_EVENT:
        return f->device_event->subscription_id;
    case KPU__IPC__V1__FRAME__BODY_DROPPED:
        return f->dropped->subscription_id;
    default:
        return 0;
    }
}

static struct kpu_client__sub *sub_by_local(kpu_client_t *c, uint32_t id)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (c->subs[i]->id == id)
            return c->subs[i];
    return NULL;
}

static struct kpu_client__sub *sub_by_server(kpu_client_t *c, uint32_t id)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (id && c->subs[i]->server_id == id)
            return c->subs[i];
    return NULL;
}

/* Keep an event for the next kpu_client_process(). Takes f. */
static void hold_event(kpu_client_t *c, Kpu__Ipc__V1__Frame *f)
{
    struct kpu_client__sub *s = sub_by_server(c, event_server_sub(f));
    struct kpu_client__held *h;

    if (!s) {
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
        return;
    }
    if (c->n_held >= KPU_CLIENT__MAX_HELD_EVENTS) {
        struct kpu_client__held *old = c->held_head;
        struct kpu_client__sub *os = sub_by_local(c, old->local_id);
        c->held_head = old->next;
        if (!c->held_head)
            c->held_tail = NULL;
        c->n_held--;
        if (os && old->frame->body_case == KPU__IPC__V1__FRAME__BODY_DROPPED)
            os->local_dropped += old->frame->dropped->count;
        else if (os)
            os->local_dropped++;
        kpu__ipc__v1__frame__free_unpacked(old->frame, NULL);
        free(old);
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        s->local_dropped++;
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
        return;
    }
    h->frame = f;
    h->local_id = s->id;
    if (c->held_tail)
        c->held_tail->next = h;
    else
        c->held_head = h;
    c->held_tail = h;
    c->n_held++;
}

static void free_held(kpu_client_t *c)
{
    while (c->held_head) {
        struct kpu_client__held *h = c->held_head;
        c->held_head = h->next;
        kpu__ipc__v1__frame__free_unpacked(h->frame, NULL);
        free(h);
    }
    c->held_tail = NULL;
    c->n_held = 0;
}

/* ------------------------------------------------------------------------------------- */
/* Requests */

static int send_frame(kpu_client_t *c, Kpu__Ipc__V1__Frame *f)
{
    uint8_t *buf;
    size_t len;
    uint32_t limit = c->hello ? c->hello->max_frame : 0;
    int r;

    if (kpu__ipc__v1__frame__get_packed_size(f) > (limit ? limit : KIPC_DEFAULT_MAX_FRAME))
        return KPU_CLIENT_ETOOBIG;
    if (kipc_pack(f, limit, &buf, &len) < 0)
        return KPU_CLIENT_ENOMEM;
    r = wbuf_append(c, buf, len);
    free(buf);
    if (r < 0)
        return r;
    return flush_some(c);
}

/* A Status with request id 0 outside a call: the daemon is about to close on us. */
static int fatal_status(kpu_client_t *c, const Kpu__Ipc__V1__Status *s)
{
    kpu_client__set_error(c, s->text, s->hint);
    return s->code == KPU__IPC__V1__STATUS_CODE__OK ? KPU_CLIENT_ECLOSED
                                                    : kpu_client__status_to_err(s->code);
}

/* Send req and wait for its response, holding events. No reconnect. */
static int call_raw(kpu_client_t *c, Kpu__Ipc__V1__Frame *req, int expect, int64_t deadline,
                    Kpu__Ipc__V1__Frame **ret)
{
    uint32_t id;
    int r;

    if (c->fd < 0)
        return KPU_CLIENT_ENOTCONN;
    id = ++c->next_request_id;
    if (id == 0)
        id = ++c->next_request_id;
    req->request_id = id;
    r = send_frame(c, req);
    if (r < 0)
        return r;
    for (;;) {
        Kpu__Ipc__V1__Frame *f = NULL;
        r = wait_frame(c, deadline, &f);
        if (r < 0)
            return r;
        if (is_event(f)) {
            hold_event(c, f);
            continue;
        }
        if (f->request_id == 0 && f->body_case == KPU__IPC__V1__FRAME__BODY_STATUS) {
            r = fatal_status(c, f->status);
            kpu__ipc__v1__frame__free_unpacked(f, NULL);
            return r;
        }
        if (f->request_id != id) {
            /* The answer to an earlier call that timed out. */
            kpu__ipc__v1__frame__free_unpacked(f, NULL);
            continue;
        }
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_AGENT_INFO && f->agent_info->in_progress) {
            /* Progress of a long request (protocol 1.1): the daemon is working on it, so the
             * timeout restarts. */
            int stop = c->interim_fn ? c->interim_fn(c, f, c->interim_arg) : 0;
            kpu__ipc__v1__frame__free_unpacked(f, NULL);
            if (stop)
                return KPU_CLIENT_ECANCELED;
            deadline = deadline_for(c);
            continue;
        }
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_STATUS) {
            r = kpu_client__status_to_err(f->status->code);
            if (r < 0) {
                kpu_client__set_error(c, f->status->text, f->status->hint);
                kpu__ipc__v1__frame__free_unpacked(f, NULL);
                return r;
            }
            if (expect && expect != KPU__IPC__V1__FRAME__BODY_STATUS) {
                kpu__ipc__v1__frame__free_unpacked(f, NULL);
                return KPU_CLIENT_EPROTO;
            }
        } else if (expect && (int)f->body_case != expect) {
            kpu__ipc__v1__frame__free_unpacked(f, NULL);
            return KPU_CLIENT_EPROTO;
        }
        *ret = f;
        return 0;
    }
}

static int is_conn_error(int r)
{
    return r == KPU_CLIENT_ECLOSED || r == KPU_CLIENT_EIO || r == KPU_CLIENT_EPROTO ||
           r == KPU_CLIENT_ETOOBIG || r == KPU_CLIENT_ENOTCONN;
}

int kpu_client__call(kpu_client_t *c, Kpu__Ipc__V1__Frame *req, int expect,
                     Kpu__Ipc__V1__Frame **ret)
{
    int r;

    kpu_client__set_error(c, NULL, NULL);
    r = kpu_client__ensure(c);
    if (r < 0)
        return r;
    r = call_raw(c, req, expect, deadline_for(c), ret);
    /* A broken stream (or a daemon that closes on us) cannot carry further calls. */
    if (r < 0 && is_conn_error(r))
        kpu_client__disconnect(c, r);
    return r;
}

void kpu_client__keep_reply(kpu_client_t *c, Kpu__Ipc__V1__Frame *resp)
{
    if (c->last_reply)
        kpu__ipc__v1__frame__free_unpacked(c->last_reply, NULL);
    c->last_reply = resp;
}

KPU_CLIENT_EXPORT int kpu_client_last_reply_json(const kpu_client_t *c, char **ret_json)
{
    const ProtobufCFieldDescriptor *fd;
    const ProtobufCMessage *body;
    char *s;

    if (!c || !ret_json || !c->last_reply)
        return KPU_CLIENT_EINVAL;
    fd = protobuf_c_message_descriptor_get_field(&kpu__ipc__v1__frame__descriptor,
                                                 (unsigned)c->last_reply->body_case);
    if (!fd)
        return KPU_CLIENT_EINVAL;
    body = *(const ProtobufCMessage *const *)((const char *)c->last_reply + fd->offset);
    if (!body)
        return KPU_CLIENT_EINVAL;
    s = kpu_client__json(body);
    if (!s)
        return KPU_CLIENT_ENOMEM;
    *ret_json = s;
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* Connecting */

static void drop_connection(kpu_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    kipc_reader_free(&c->rd);
    kipc_reader_init(&c->rd, KPU_CLIENT__MAX_RX_FRAME);
    c->inpos = c->inlen = 0;
    c->woff = c->wlen = 0;
    if (c->hello)
        kpu__ipc__v1__server_hello__free_unpacked(c->hello, NULL);
    c->hello = NULL;
    memset(&c->info, 0, sizeof(c->info));
    for (size_t i = 0; i < c->n_subs; i++)
        c->subs[i]->server_id = 0;
}

static void fill_info(kpu_client_t *c)
{
    const Kpu__Ipc__V1__ServerHello *h = c->hello;
    struct kpu_client_server_info *in = &c->info;
    static const char hex[] = "0123456789abcdef";
    size_t n = h->instance_id.len < 16 ? h->instance_id.len : 16;

    memset(in, 0, sizeof(*in));
    in->server_version = h->server_version ? h->server_version : "";
    in->protocol_major = h->protocol_major;
    in->protocol_minor = h->protocol_minor;
    in->role = (int)h->role;
    in->max_frame = h->max_frame;
    in->max_subscriptions = h->max_subscriptions;
    in->max_page_rows = h->max_page_rows;
    in->queue_messages = h->queue_messages;
    in->queue_bytes = h->queue_bytes;
    for (size_t i = 0; i < n; i++) {
        in->instance_id[2 * i] = hex[h->instance_id.data[i] >> 4];
        in->instance_id[2 * i + 1] = hex[h->instance_id.data[i] & 15];
    }
    in->boot_time_ns = h->boot_time_ns;
    in->n_features = h->n_features;
    in->features = (const char *const *)h->features;
}

/* Connect and do the handshake. Sets *restarted when the daemon's instance changed. */
static int connect_handshake(kpu_client_t *c, int *restarted)
{
    int64_t deadline = deadline_for(c);
    Kpu__Ipc__V1__Frame *f = NULL, hello = KPU__IPC__V1__FRAME__INIT, *resp = NULL;
    Kpu__Ipc__V1__ClientHello ch = KPU__IPC__V1__CLIENT_HELLO__INIT;
    int r;

    r = socket_connect(c->path, deadline, &c->fd);
    if (r < 0) {
        c->fd = -1;
        return r;
    }
    r = wait_frame(c, deadline, &f);
    if (r < 0)
        goto fail;
    if (f->body_case == KPU__IPC__V1__FRAME__BODY_STATUS) {
        r = fatal_status(c, f->status);
        goto fail;
    }
    if (f->body_case != KPU__IPC__V1__FRAME__BODY_SERVER_HELLO) {
        r = KPU_CLIENT_EPROTO;
        goto fail;
    }
    if (f->server_hello->protocol_major != KPU_CLIENT_PROTOCOL_MAJOR) {
        char text[128];
        snprintf(text, sizeof(text), "kpud speaks kpu.ipc v%u.%u, this library v%d.%d",
                 f->server_hello->protocol_major, f->server_hello->protocol_minor,
                 KPU_CLIENT_PROTOCOL_MAJOR, KPU_CLIENT_PROTOCOL_MINOR);
        kpu_client__set_error(c, text, "install a libkpu-client that matches this kpud");
        r = KPU_CLIENT_EVERSION;
        goto fail;
    }
    c->hello = f->server_hello;
    f->server_hello = NULL;
    f->body_case = KPU__IPC__V1__FRAME__BODY__NOT_SET;
    kpu__ipc__v1__frame__free_unpacked(f, NULL);
    f = NULL;

    ch.protocol_major = KPU_CLIENT_PROTOCOL_MAJOR;
    ch.protocol_minor = KPU_CLIENT_PROTOCOL_MINOR;
    ch.client_name = c->client_name;
    ch.library_version = (char *)KPU_CLIENT_VERSION_STRING;
    hello.body_case = KPU__IPC__V1__FRAME__BODY_CLIENT_HELLO;
    hello.client_hello = &ch;
    r = call_raw(c, &hello, KPU__IPC__V1__FRAME__BODY_STATUS, deadline, &resp);
    if (r < 0)
        goto fail;
    kpu__ipc__v1__frame__free_unpacked(resp, NULL);
    fill_info(c);
    *restarted = c->have_instance && strcmp(c->instance_id, c->info.instance_id) != 0;
    memcpy(c->instance_id, c->info.instance_id, sizeof(c->instance_id));
    c->have_instance = 1;
    return 0;
fail:
    if (f)
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
    drop_connection(c);
    return r;
}

static int resubscribe(kpu_client_t *c, struct kpu_client__sub *s)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp = NULL;
    int r;

    f.body_case = KPU__IPC__V1__FRAME__BODY_SUBSCRIBE;
    f.subscribe = s->req;
    r = call_raw(c, &f, KPU__IPC__V1__FRAME__BODY_SUBSCRIBED, deadline_for(c), &resp);
    if (r < 0)
        return r;
    s->server_id = resp->subscribed->subscription_id;
    kpu__ipc__v1__frame__free_unpacked(resp, NULL);
    return 0;
}

static void schedule_reconnect(kpu_client_t *c)
{
    if (!c->reconnect)
        return;
    if (!c->backoff_ms)
        c->backoff_ms = c->reconnect_min_ms;
    c->reconnect_at_ms = kpu_client__now_ms() + c->backoff_ms;
    c->backoff_ms =
        c->backoff_ms * 2 > c->reconnect_max_ms ? c->reconnect_max_ms : c->backoff_ms * 2;
}

/* One reconnect attempt now: connect, handshake, restore subscriptions. */
static int try_reconnect(kpu_client_t *c)
{
    int restarted = 0, r;

    c->in_reconnect = 1;
    c->reconnect_at_ms = 0;
    r = connect_handshake(c, &restarted);
    for (size_t i = 0; r == 0 && i < c->n_subs; i++)
        r = resubscribe(c, c->subs[i]);
    c->in_reconnect = 0;
    if (r < 0) {
        drop_connection(c);
        schedule_reconnect(c);
        return r;
    }
    c->backoff_ms = 0;
    if (c->state_cb)
        c->state_cb(c, KPU_CLIENT_STATE_CONNECTED, 0, restarted, c->user_data);
    return 0;
}

void kpu_client__disconnect(kpu_client_t *c, int err)
{
    if (c->fd < 0)
        return;
    drop_connection(c);
    schedule_reconnect(c);
    if (c->state_cb)
        c->state_cb(c, KPU_CLIENT_STATE_DISCONNECTED, err, 0, c->user_data);
}

int kpu_client__ensure(kpu_client_t *c)
{
    if (c->fd >= 0)
        return 0;
    if (!c->reconnect || c->in_reconnect)
        return KPU_CLIENT_ENOTCONN;
    return try_reconnect(c);
}

KPU_CLIENT_EXPORT int kpu_client_open(const struct kpu_client_opts *opts, kpu_client_t **ret_client)
{
    struct kpu_client_opts o;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    kpu_client_t *c;
    int restarted, r;

    open_text[0] = open_hint[0] = '\0';
    if (!ret_client)
        return KPU_CLIENT_EINVAL;
    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    if (o.socket_path) {
        if (strlen(o.socket_path) >= sizeof(path))
            return KPU_CLIENT_EINVAL;
        strcpy(path, o.socket_path);
    } else if (kpu_client_default_socket(path, sizeof(path)) < 0) {
        return KPU_CLIENT_EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return KPU_CLIENT_ENOMEM;
    c->fd = -1;
    c->path = strdup(path);
    c->client_name = strdup(o.client_name ? o.client_name : "libkpu-client");
    c->inbuf = malloc(INBUF_SIZE);
    if (!c->path || !c->client_name || !c->inbuf) {
        r = KPU_CLIENT_ENOMEM;
        goto fail;
    }
    c->timeout_ms = o.timeout_ms ? o.timeout_ms : KPU_CLIENT__DEFAULT_TIMEOUT_MS;
    c->reconnect = o.reconnect != 0;
    c->reconnect_min_ms =
        o.reconnect_min_ms > 0 ? o.reconnect_min_ms : KPU_CLIENT__DEFAULT_RECONNECT_MIN_MS;
    c->reconnect_max_ms =
        o.reconnect_max_ms > 0 ? o.reconnect_max_ms : KPU_CLIENT__DEFAULT_RECONNECT_MAX_MS;
    if (c->reconnect_max_ms < c->reconnect_min_ms)
        c->reconnect_max_ms = c->reconnect_min_ms;
    c->state_cb = o.state_cb;
    c->user_data = o.user_data;
    kipc_reader_init(&c->rd, KPU_CLIENT__MAX_RX_FRAME);
    r = connect_handshake(c, &restarted);
    if (r < 0) {
        snprintf(open_text, sizeof(open_text), "%s", c->err_text ? c->err_text : "");
        snprintf(open_hint, sizeof(open_hint), "%s", c->err_hint ? c->err_hint : "");
        goto fail;
    }
    *ret_client = c;
    return 0;
fail:
    c->reconnect = 0;
    kpu_client_close(c);
    return r;
}

static void sub_free(struct kpu_client__sub *s)
{
    if (!s)
        return;
    if (s->req)
        kpu__ipc__v1__subscribe__free_unpacked(s->req, NULL);
    free(s);
}

KPU_CLIENT_EXPORT void kpu_client_close(kpu_client_t *c)
{
    if (!c)
        return;
    drop_connection(c);
    kipc_reader_free(&c->rd);
    free_held(c);
    for (size_t i = 0; i < c->n_subs; i++)
        sub_free(c->subs[i]);
    free(c->subs);
    if (c->last_reply)
        kpu__ipc__v1__frame__free_unpacked(c->last_reply, NULL);
    free(c->err_text);
    free(c->err_hint);
    free(c->wbuf);
    free(c->inbuf);
    free(c->path);
    free(c->client_name);
    free(c);
}

KPU_CLIENT_EXPORT const char *kpu_client_socket_path(const kpu_client_t *c)
{
    return c ? c->path : NULL;
}

KPU_CLIENT_EXPORT const struct kpu_client_server_info *kpu_client_server_info(const kpu_client_t *c)
{
    if (!c || c->fd < 0 || !c->hello)
        return NULL;
    return &c->info;
}

KPU_CLIENT_EXPORT int kpu_client_set_timeout(kpu_client_t *c, int timeout_ms)
{
    if (!c)
        return KPU_CLIENT_EINVAL;
    c->timeout_ms = timeout_ms ? timeout_ms : KPU_CLIENT__DEFAULT_TIMEOUT_MS;
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* Subscriptions and events */

void kpu_client__filter_to_wire(const struct kpu_client_filter *in, Kpu__Ipc__V1__Filter *out,
                                Kpu__Ipc__V1__Rect *rect)
{
    kpu__ipc__v1__filter__init(out);
    kpu__ipc__v1__rect__init(rect);
    if (!in)
        return;
    out->devices = (char **)in->devices;
    out->n_devices = in->devices ? in->n_devices : 0;
    out->class_ids = (uint32_t *)in->class_ids;
    out->n_class_ids = in->class_ids ? in->n_class_ids : 0;
    out->labels = (char **)in->labels;
    out->n_labels = in->labels ? in->n_labels : 0;
    out->min_score = in->min_score;
    if (in->has_region) {
        rect->x = in->region.x;
        rect->y = in->region.y;
        rect->w = in->region.w;
        rect->h = in->region.h;
        out->region = rect;
    }
}

static int filter_ok(const struct kpu_client_filter *f)
{
    if (!f)
        return 1;
    for (size_t i = 0; f->devices && i < f->n_devices; i++)
        if (!f->devices[i])
            return 0;
    for (size_t i = 0; f->labels && i < f->n_labels; i++)
        if (!f->labels[i])
            return 0;
    return 1;
}

KPU_CLIENT_EXPORT int kpu_client_subscribe(kpu_client_t *c, const struct kpu_client_filter *filter,
                                           const struct kpu_client_sub_opts *opts,
                                           kpu_client_event_cb cb, void *user_data,
                                           uint32_t *ret_id)
{
    Kpu__Ipc__V1__Subscribe sr = KPU__IPC__V1__SUBSCRIBE__INIT;
    Kpu__Ipc__V1__Filter wf;
    Kpu__Ipc__V1__Rect rect;
    struct kpu_client__sub *s, **ns;
    uint8_t *tmp;
    size_t len;
    int r;

    if (!c || !cb || !filter_ok(filter))
        return KPU_CLIENT_EINVAL;
    kpu_client__filter_to_wire(filter, &wf, &rect);
    sr.filter = &wf;
    if (opts) {
        sr.max_rate_hz = opts->max_rate_hz;
        sr.latest_only = opts->latest_only != 0;
        sr.include_empty = opts->include_empty != 0;
        sr.device_events = opts->device_events != 0;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return KPU_CLIENT_ENOMEM;
    /* An owned copy, re-sent on every reconnect. */
    len = kpu__ipc__v1__subscribe__get_packed_size(&sr);
    tmp = malloc(len ? len : 1);
    if (tmp) {
        kpu__ipc__v1__subscribe__pack(&sr, tmp);
        s->req = kpu__ipc__v1__subscribe__unpack(NULL, len, tmp);
        free(tmp);
    }
    ns = realloc(c->subs, (c->n_subs + 1) * sizeof(*ns));
    if (ns)
        c->subs = ns;
    if (!s->req || !ns) {
        sub_free(s);
        return KPU_CLIENT_ENOMEM;
    }
    s->cb = cb;
    s->user_data = user_data;
    s->id = ++c->next_sub_id;
    kpu_client__set_error(c, NULL, NULL);
    r = kpu_client__ensure(c);
    if (r == 0)
        r = resubscribe(c, s);
    if (r < 0) {
        if (is_conn_error(r))
            kpu_client__disconnect(c, r);
        sub_free(s);
        return r;
    }
    c->subs[c->n_subs++] = s;
    if (ret_id)
        *ret_id = s->id;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_unsubscribe(kpu_client_t *c, uint32_t id)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp = NULL;
    Kpu__Ipc__V1__Unsubscribe u = KPU__IPC__V1__UNSUBSCRIBE__INIT;
    struct kpu_client__sub *s = NULL;
    struct kpu_client__held **pp;
    uint32_t server_id = 0;
    int r = 0;

    if (!c)
        return KPU_CLIENT_EINVAL;
    for (size_t i = 0; i < c->n_subs; i++) {
        if (c->subs[i]->id == id) {
            s = c->subs[i];
            c->subs[i] = c->subs[--c->n_subs];
            break;
        }
    }
    if (!s)
        return KPU_CLIENT_ENOTFOUND;
    server_id = s->server_id;
    sub_free(s);
    /* Forget its held events. */
    pp = &c->held_head;
    c->held_tail = NULL;
    while (*pp) {
        struct kpu_client__held *h = *pp;
        if (h->local_id == id) {
            *pp = h->next;
            kpu__ipc__v1__frame__free_unpacked(h->frame, NULL);
            free(h);
            c->n_held--;
        } else {
            c->held_tail = h;
            pp = &h->next;
        }
    }
    if (c->fd >= 0 && server_id) {
        u.subscription_id = server_id;
        f.body_case = KPU__IPC__V1__FRAME__BODY_UNSUBSCRIBE;
        f.unsubscribe = &u;
        r = kpu_client__call(c, &f, KPU__IPC__V1__FRAME__BODY_STATUS, &resp);
        if (resp)
            kpu__ipc__v1__frame__free_unpacked(resp, NULL);
    }
    return r;
}

#define BOXES_ON_STACK 64

static void dispatch_event(kpu_client_t *c, struct kpu_client__sub *s, Kpu__Ipc__V1__Frame *f)
{
    struct kpu_client_event ev;
    struct kpu_client_detection det;
    struct kpu_client_device dev;
    struct kpu_client_box stack[BOXES_ON_STACK], *boxes = stack;

    memset(&ev, 0, sizeof(ev));
    ev.subscription_id = s->id;
    ev.priv_ = f;
    if (s->local_dropped && f->body_case != KPU__IPC__V1__FRAME__BODY_DROPPED) {
        struct kpu_client_event d;
        memset(&d, 0, sizeof(d));
        d.type = KPU_CLIENT_EVENT_DROPPED;
        d.subscription_id = s->id;
        d.dropped_count = s->local_dropped;
        s->local_dropped = 0;
        s->cb(c, &d, s->user_data);
    }
    switch (f->body_case) {
    case KPU__IPC__V1__FRAME__BODY_DETECTION: {
        const Kpu__Ipc__V1__DetectionEvent *e = f->detection;
        memset(&det, 0, sizeof(det));
        if (e->n_boxes > BOXES_ON_STACK) {
            boxes = calloc(e->n_boxes, sizeof(*boxes));
            if (!boxes) {
                s->local_dropped++;
                return;
            }
        }
        for (size_t i = 0; i < e->n_boxes; i++) {
            const Kpu__Ipc__V1__Box *b = e->boxes[i];
            boxes[i] = (struct kpu_client_box){
                .class_id = b->class_id,
                .label = b->label ? b->label : "",
                .score = b->score,
                .x = b->x,
                .y = b->y,
                .w = b->w,
                .h = b->h,
            };
        }
        det.device = e->device ? e->device : "";
        det.frame_seq = e->frame_seq;
        det.device_time_us = e->device_time_us;
        det.host_time_ns = e->host_time_ns;
        det.model = e->model ? e->model : "";
        det.image_width = e->image_width;
        det.image_height = e->image_height;
        det.kpu_us = e->kpu_us;
        det.n_boxes = e->n_boxes;
        det.boxes = boxes;
        ev.type = KPU_CLIENT_EVENT_DETECTION;
        ev.detection = &det;
        break;
    }
    case KPU__IPC__V1__FRAME__BODY_DEVICE_EVENT: {
        static const Kpu__Ipc__V1__DeviceInfo empty = KPU__IPC__V1__DEVICE_INFO__INIT;
        const Kpu__Ipc__V1__DeviceInfo *d =
            f->device_event->device ? f->device_event->device : &empty;
        struct kpu_client__blob b = {0};
        /* A measuring blob fills the numbers; the strings then point into the frame, which
         * outlives the callback. */
        kpu_client__conv_device(&b, d, &dev);
        dev.id = d->id ? d->id : "";
        dev.transport = d->transport ? d->transport : "";
        dev.path = d->path ? d->path : "";
        dev.bridge = d->bridge ? d->bridge : "";
        dev.board = d->board ? d->board : "";
        dev.agent_version = d->agent_version ? d->agent_version : "";
        dev.sensor = d->sensor ? d->sensor : "";
        dev.model = d->model ? d->model : "";
        dev.last_error = d->last_error ? d->last_error : "";
        dev.reset_cause = d->reset_cause ? d->reset_cause : "";
        ev.type = KPU_CLIENT_EVENT_DEVICE;
        ev.device = &dev;
        ev.reason = f->device_event->reason ? f->device_event->reason : "";
        break;
    }
    case KPU__IPC__V1__FRAME__BODY_DROPPED:
        ev.type = KPU_CLIENT_EVENT_DROPPED;
        ev.dropped_count = f->dropped->count + s->local_dropped;
        ev.first_frame_seq = f->dropped->first_frame_seq;
        s->local_dropped = 0;
        break;
    default:
        return;
    }
    s->cb(c, &ev, s->user_data);
    if (boxes != stack)
        free(boxes);
}

/* Deliver held events. A callback may unsubscribe or call synchronously. */
static void dispatch_held(kpu_client_t *c)
{
    size_t budget = c->n_held; /* events held by calls made from callbacks wait a turn */

    while (budget-- && c->held_head && !c->stop) {
        struct kpu_client__held *h = c->held_head;
        struct kpu_client__sub *s;

        c->held_head = h->next;
        if (!c->held_head)
            c->held_tail = NULL;
        c->n_held--;
        s = sub_by_local(c, h->local_id);
        if (s)
            dispatch_event(c, s, h->frame);
        kpu__ipc__v1__frame__free_unpacked(h->frame, NULL);
        free(h);
    }
}

KPU_CLIENT_EXPORT int kpu_client_get_fd(const kpu_client_t *c)
{
    if (!c)
        return KPU_CLIENT_EINVAL;
    return c->fd >= 0 ? c->fd : KPU_CLIENT_ENOTCONN;
}

KPU_CLIENT_EXPORT int kpu_client_want_write(const kpu_client_t *c)
{
    return c && c->fd >= 0 && c->woff < c->wlen;
}

KPU_CLIENT_EXPORT int kpu_client_next_timeout_ms(const kpu_client_t *c)
{
    int64_t left;

    if (!c)
        return -1;
    if (c->held_head)
        return 0;
    if (c->fd >= 0 || !c->reconnect_at_ms)
        return -1;
    left = c->reconnect_at_ms - kpu_client__now_ms();
    if (left <= 0)
        return 0;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

KPU_CLIENT_EXPORT int kpu_client_process(kpu_client_t *c)
{
    int r = 0;

    if (!c)
        return KPU_CLIENT_EINVAL;
    if (c->fd < 0) {
        if (c->reconnect && c->reconnect_at_ms && kpu_client__now_ms() >= c->reconnect_at_ms)
            try_reconnect(c);
        if (c->fd < 0) {
            dispatch_held(c);
            return c->reconnect ? 0 : KPU_CLIENT_ENOTCONN;
        }
    }
    r = flush_some(c);
    while (r == 0) {
        Kpu__Ipc__V1__Frame *f = NULL;
        r = read_frame(c, &f);
        if (r <= 0)
            break;
        r = 0;
        if (is_event(f)) {
            hold_event(c, f);
        } else if (f->request_id == 0 && f->body_case == KPU__IPC__V1__FRAME__BODY_STATUS) {
            r = fatal_status(c, f->status);
            kpu__ipc__v1__frame__free_unpacked(f, NULL);
        } else {
            kpu__ipc__v1__frame__free_unpacked(f, NULL); /* late answer of a timed-out call */
        }
        if (c->n_held >= KPU_CLIENT__MAX_HELD_EVENTS)
            break;
    }
    if (r < 0)
        kpu_client__disconnect(c, r);
    dispatch_held(c);
    if (r < 0 && !c->reconnect)
        return r;
    return 0;
}

KPU_CLIENT_EXPORT void kpu_client_stop(kpu_client_t *c)
{
    if (c)
        c->stop = 1;
}

KPU_CLIENT_EXPORT int kpu_client_run(kpu_client_t *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : kpu_client__now_ms() + timeout_ms;

    if (!c)
        return KPU_CLIENT_EINVAL;
    for (;;) {
        struct pollfd p;
        int wait, next, r;

        if (c->stop) {
            c->stop = 0;
            return 0;
        }
        r = kpu_client_process(c);
        if (r < 0)
            return r;
        if (c->stop) {
            c->stop = 0;
            return 0;
        }
        wait = remaining_ms(deadline);
        if (deadline >= 0 && wait == 0)
            return 0;
        next = kpu_client_next_timeout_ms(c);
        if (next >= 0 && (wait < 0 || next < wait))
            wait = next;
        p.fd = c->fd;
        p.events = POLLIN | (kpu_client_want_write(c) ? POLLOUT : 0);
        p.revents = 0;
        if (c->fd < 0 && wait < 0)
            return KPU_CLIENT_ENOTCONN;
        if (poll(&p, c->fd >= 0 ? 1 : 0, wait) < 0 && errno != EINTR)
            return KPU_CLIENT_EIO;
    }
}
