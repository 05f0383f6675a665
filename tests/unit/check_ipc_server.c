/* SPDX-License-Identifier: MIT */
/*
 * Tests of kpud's IPC server (daemon/ipc/): a real server on a real Unix socket in a temp
 * directory, the deterministic test backend, and raw clients that speak kipc framing by
 * hand, so every malformed input can be sent. The server's loop runs in the test process;
 * helpers pump it while they wait for an answer (with a deadline, never a fixed sleep).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc_internal.h"
#include "ipc_server.h"
#include "kipc.h"
#include "test_backend.h"

#define WAIT_MS 5000

struct fx {
    uv_loop_t loop;
    char dir[64];
    char path[128];
    struct tb *tb;
    struct kpud_ipc_server *srv;
    struct kpud_ipc_opts o;
};

static struct fx F;
static int g_pump = 1; /* 0 in forked children: only the parent runs the server */

static void pump(void)
{
    if (g_pump)
        uv_run(&F.loop, UV_RUN_NOWAIT);
}

static void fx_start(struct kpud_ipc_opts *o)
{
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    snprintf(F.dir, sizeof(F.dir), "/tmp/kpu-ipc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(F.dir));
    snprintf(F.path, sizeof(F.path), "%s/kpud.sock", F.dir);
    F.tb = tb_new(&F.loop);
    ck_assert_ptr_nonnull(F.tb);
    if (o)
        F.o = *o;
    else
        memset(&F.o, 0, sizeof(F.o));
    F.o.path = F.path;
    F.o.listen_fd = -1;
    if (!o) {
        F.o.reader_gid = (gid_t)-1;
        F.o.admin_gid = (gid_t)-1;
        F.o.everyone_admin = 1;
    }
    F.o.server_version = "test";
    F.o.backend = tb_backend();
    F.o.backend_ctx = F.tb;
    ck_assert_int_eq(kpud_ipc_server_open(&F.loop, &F.o, &F.srv), 0);
    tb_set_server(F.tb, F.srv);
}

static struct kpud_ipc_opts default_opts(void)
{
    struct kpud_ipc_opts o;
    memset(&o, 0, sizeof(o));
    o.reader_gid = (gid_t)-1;
    o.admin_gid = (gid_t)-1;
    o.everyone_admin = 1;
    return o;
}

static void fx_stop(void)
{
    kpud_ipc_server_close(F.srv, NULL, NULL);
    tb_free(F.tb);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&F.loop), 0);
    rmdir(F.dir);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A raw client: blocking connect, non-blocking reads driven with the loop pumped. */
struct rc {
    int fd;
    struct kipc_reader rd;
    uint8_t buf[65536];
    size_t pos, len;
    int eof;
};

static void rc_open_fd(struct rc *c)
{
    struct sockaddr_un sa;
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c->fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, F.path);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    kipc_reader_init(&c->rd, 64u * 1024u * 1024u);
}

static void rc_close(struct rc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    kipc_reader_free(&c->rd);
}

static void rc_send_raw(struct rc *c, const void *p, size_t n)
{
    const uint8_t *b = p;
    int64_t deadline = now_ms() + WAIT_MS;
    while (n) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            pump();
            ck_assert_msg(now_ms() < deadline, "send stuck");
            continue;
        }
        ck_assert_int_gt(w, 0);
        b += w;
        n -= (size_t)w;
    }
}

static void rc_send(struct rc *c, Kpu__Ipc__V1__Frame *f)
{
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(kipc_pack(f, 0, &buf, &len), 0);
    rc_send_raw(c, buf, len);
    free(buf);
}

/* Next frame, pumping the server loop; NULL on EOF or after timeout_ms. */
static Kpu__Ipc__V1__Frame *rc_recv_t(struct rc *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        while (c->pos < c->len) {
            const uint8_t *p = c->buf + c->pos, *body;
            size_t n = c->len - c->pos, blen;
            int r = kipc_reader_feed(&c->rd, &p, &n, &body, &blen);
            c->pos = c->len - n;
            ck_assert_int_ge(r, 0);
            if (r == KIPC_FRAME) {
                Kpu__Ipc__V1__Frame *f = kipc_unpack(body, blen);
                ck_assert_ptr_nonnull(f);
                return f;
            }
        }
        c->pos = c->len = 0;
        {
            ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
            if (n == 0) {
                c->eof = 1;
                return NULL;
            }
            if (n > 0) {
                c->len = (size_t)n;
                continue;
            }
            if (errno == ECONNRESET) {
                c->eof = 1;
                return NULL;
            }
            ck_assert_int_eq(errno, EAGAIN);
        }
        if (now_ms() >= deadline)
            return NULL;
        pump();
        {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            poll(&p, 1, 1); /* wake on data; the server loop is pumped every round */
        }
    }
}

static Kpu__Ipc__V1__Frame *rc_recv(struct rc *c)
{
    Kpu__Ipc__V1__Frame *f = rc_recv_t(c, WAIT_MS);
    ck_assert_msg(f != NULL, "no frame from the server");
    return f;
}

static void rc_expect_eof(struct rc *c)
{
    Kpu__Ipc__V1__Frame *f = rc_recv_t(c, WAIT_MS);
    ck_assert_msg(f == NULL && c->eof, "connection should be closed");
}

static void frame_free(Kpu__Ipc__V1__Frame *f)
{
    kpu__ipc__v1__frame__free_unpacked(f, NULL);
}

static void rc_hello_major(struct rc *c, uint32_t major, uint32_t id)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__ClientHello h = KPU__IPC__V1__CLIENT_HELLO__INIT;
    h.protocol_major = major;
    h.client_name = (char *)"check";
    f.request_id = id;
    f.body_case = KPU__IPC__V1__FRAME__BODY_CLIENT_HELLO;
    f.client_hello = &h;
    rc_send(c, &f);
}

/* Connect, read ServerHello (returned role), send ClientHello and read its OK. */
static int rc_open(struct rc *c)
{
    Kpu__Ipc__V1__Frame *f;
    int role;
    rc_open_fd(c);
    f = rc_recv(c);
    ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_SERVER_HELLO);
    role = (int)f->server_hello->role;
    frame_free(f);
    rc_hello_major(c, 1, 1);
    f = rc_recv(c);
    ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_STATUS);
    ck_assert_int_eq(f->status->code, KPU__IPC__V1__STATUS_CODE__OK);
    ck_assert_uint_eq(f->request_id, 1);
    frame_free(f);
    return role;
}

static void rc_ping(struct rc *c, uint32_t id)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *r;
    Kpu__Ipc__V1__Ping p = KPU__IPC__V1__PING__INIT;
    p.client_time_ns = 4242;
    f.request_id = id;
    f.body_case = KPU__IPC__V1__FRAME__BODY_PING;
    f.ping = &p;
    rc_send(c, &f);
    r = rc_recv(c);
    ck_assert_int_eq(r->body_case, KPU__IPC__V1__FRAME__BODY_PONG);
    ck_assert_uint_eq(r->request_id, id);
    ck_assert_uint_eq(r->pong->client_time_ns, 4242);
    frame_free(r);
}

/* Expect a Status with code on the next frame. */
static void rc_expect_status(struct rc *c, uint32_t id, int code)
{
    Kpu__Ipc__V1__Frame *r = rc_recv(c);
    ck_assert_int_eq(r->body_case, KPU__IPC__V1__FRAME__BODY_STATUS);
    ck_assert_int_eq(r->status->code, code);
    ck_assert_uint_eq(r->request_id, id);
    ck_assert_ptr_nonnull(r->status->text);
    ck_assert_int_gt(strlen(r->status->text), 0);
    frame_free(r);
}

static uint32_t rc_subscribe(struct rc *c, uint32_t id, Kpu__Ipc__V1__Subscribe *s)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *r;
    uint32_t sid;
    f.request_id = id;
    f.body_case = KPU__IPC__V1__FRAME__BODY_SUBSCRIBE;
    f.subscribe = s;
    rc_send(c, &f);
    r = rc_recv(c);
    ck_assert_int_eq(r->body_case, KPU__IPC__V1__FRAME__BODY_SUBSCRIBED);
    ck_assert_uint_eq(r->request_id, id);
    sid = r->subscribed->subscription_id;
    ck_assert_uint_ne(sid, 0);
    frame_free(r);
    return sid;
}

static void publish(const char *dev, uint32_t seq, size_t nboxes)
{
    Kpu__Ipc__V1__DetectionEvent ev;
    Kpu__Ipc__V1__Box boxes[32], *ptrs[32];
    tb_make_detection(&ev, boxes, ptrs, nboxes, dev, seq);
    kpud_ipc_publish_detection(F.srv, &ev);
}

/* ------------------------------------------------------------------------------------- */

START_TEST(test_hello_and_ping)
{
    struct rc c;
    Kpu__Ipc__V1__Frame *f;

    fx_start(NULL);
    rc_open_fd(&c);
    f = rc_recv(&c);
    ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_SERVER_HELLO);
    ck_assert_uint_eq(f->request_id, 0);
    ck_assert_uint_eq(f->server_hello->protocol_major, 1);
    ck_assert_str_eq(f->server_hello->server_version, "test");
    ck_assert_uint_eq(f->server_hello->max_frame, 1024 * 1024);
    ck_assert_uint_eq(f->server_hello->max_subscriptions, 16);
    ck_assert_uint_eq(f->server_hello->queue_messages, 1024);
    ck_assert_uint_eq(f->server_hello->instance_id.len, 16);
    ck_assert_int_eq(f->server_hello->role, KPU__IPC__V1__ROLE__ROLE_ADMIN);
    frame_free(f);
    rc_hello_major(&c, 1, 7);
    rc_expect_status(&c, 7, KPU__IPC__V1__STATUS_CODE__OK);
    rc_ping(&c, 8);
    {
        struct stat st;
        ck_assert_int_eq(stat(F.path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0660);
    }
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_request_before_hello_and_bad_ids)
{
    struct rc c;
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *r;
    Kpu__Ipc__V1__Ping p = KPU__IPC__V1__PING__INIT;

    fx_start(NULL);
    rc_open_fd(&c);
    frame_free(rc_recv(&c)); /* ServerHello */
    f.request_id = 3;
    f.body_case = KPU__IPC__V1__FRAME__BODY_PING;
    f.ping = &p;
    rc_send(&c, &f);
    rc_expect_status(&c, 3, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT);
    rc_hello_major(&c, 1, 4);
    rc_expect_status(&c, 4, KPU__IPC__V1__STATUS_CODE__OK);
    f.request_id = 0;
    rc_send(&c, &f);
    rc_expect_status(&c, 0, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT);
    /* A response body sent as a request. */
    {
        Kpu__Ipc__V1__Frame g = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__Pong po = KPU__IPC__V1__PONG__INIT;
        g.request_id = 5;
        g.body_case = KPU__IPC__V1__FRAME__BODY_PONG;
        g.pong = &po;
        rc_send(&c, &g);
        rc_expect_status(&c, 5, KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST);
    }
    /* A body from a future minor: field 99 (length-delimited, empty) plus request_id 6. */
    {
        static const uint8_t raw[] = {0, 0, 0, 4, 0x08, 0x06, 0x9a, 0x06};
        uint8_t msg[sizeof(raw) + 1];
        memcpy(msg, raw, sizeof(raw));
        msg[sizeof(raw)] = 0x00; /* length 0 of field 99 (tag 0x9a 0x06) */
        msg[3] = 5;
        rc_send_raw(&c, msg, sizeof(msg));
        rc_expect_status(&c, 6, KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST);
    }
    rc_ping(&c, 9); /* still open */
    r = NULL;
    (void)r;
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_version_mismatch_closes)
{
    struct rc c, d;
    Kpu__Ipc__V1__Frame *f;

    fx_start(NULL);
    rc_open(&d);
    rc_open_fd(&c);
    frame_free(rc_recv(&c));
    rc_hello_major(&c, 2, 11);
    f = rc_recv(&c);
    ck_assert_int_eq(f->status->code, KPU__IPC__V1__STATUS_CODE__PROTOCOL_MISMATCH);
    ck_assert_uint_eq(f->request_id, 11);
    ck_assert_ptr_nonnull(strstr(f->status->text, "v2"));
    ck_assert_int_gt(strlen(f->status->hint), 0);
    frame_free(f);
    rc_expect_eof(&c);
    rc_ping(&d, 2); /* the other client is unaffected */
    rc_close(&c);
    rc_close(&d);
    fx_stop();
}
END_TEST

START_TEST(test_oversize_length_closes)
{
    struct rc c, d;
    static const uint8_t hdr[4] = {0xff, 0xff, 0xff, 0xff};
    struct kpud_ipc_stats st;

    fx_start(NULL);
    rc_open(&d);
    rc_open(&c);
    rc_send_raw(&c, hdr, sizeof(hdr));
    rc_expect_status(&c, 0, KPU__IPC__V1__STATUS_CODE__FRAME_TOO_LARGE);
    rc_expect_eof(&c);
    rc_ping(&d, 2);
    kpud_ipc_server_stats(F.srv, &st);
    ck_assert_uint_eq(st.protocol_errors, 1);
    ck_assert_uint_eq(st.clients, 1);
    rc_close(&c);
    rc_close(&d);
    fx_stop();
}
END_TEST

START_TEST(test_custom_frame_limit)
{
    struct kpud_ipc_opts o = default_opts();
    struct rc c;
    uint8_t big[4 + 300];

    o.max_frame = 256;
    fx_start(&o);
    rc_open(&c);
    memset(big, 0, sizeof(big));
    kipc_put_header(big, 300);
    rc_send_raw(&c, big, sizeof(big));
    rc_expect_status(&c, 0, KPU__IPC__V1__STATUS_CODE__FRAME_TOO_LARGE);
    rc_expect_eof(&c);
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_truncated_frame_then_close)
{
    struct rc c, d;
    uint8_t part[4 + 10];
    struct kpud_ipc_stats st;

    fx_start(NULL);
    rc_open(&c);
    memset(part, 0x08, sizeof(part));
    kipc_put_header(part, 100);
    rc_send_raw(&c, part, sizeof(part));
    rc_close(&c);
    rc_open(&d); /* the server still accepts and answers */
    rc_ping(&d, 2);
    kpud_ipc_server_stats(F.srv, &st);
    ck_assert_uint_eq(st.clients, 1);
    ck_assert_uint_eq(st.connections, 2);
    rc_close(&d);
    fx_stop();
}
END_TEST

START_TEST(test_garbage_closes)
{
    struct rc c, d;
    uint8_t junk[4 + 6] = {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

    fx_start(NULL);
    rc_open(&d);
    rc_open(&c);
    rc_send_raw(&c, junk, sizeof(junk));
    rc_expect_status(&c, 0, KPU__IPC__V1__STATUS_CODE__MALFORMED);
    rc_expect_eof(&c);
    rc_ping(&d, 2);
    rc_close(&c);
    rc_close(&d);
    fx_stop();
}
END_TEST

START_TEST(test_empty_frame_is_malformed)
{
    struct rc c;
    uint8_t empty[4] = {0, 0, 0, 0};

    fx_start(NULL);
    rc_open(&c);
    rc_send_raw(&c, empty, sizeof(empty));
    rc_expect_status(&c, 0, KPU__IPC__V1__STATUS_CODE__MALFORMED);
    rc_expect_eof(&c);
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_too_many_subscriptions)
{
    struct kpud_ipc_opts o = default_opts();
    Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    struct rc c;

    o.max_subscriptions = 2;
    fx_start(&o);
    rc_open(&c);
    rc_subscribe(&c, 2, &s);
    rc_subscribe(&c, 3, &s);
    f.request_id = 4;
    f.body_case = KPU__IPC__V1__FRAME__BODY_SUBSCRIBE;
    f.subscribe = &s;
    rc_send(&c, &f);
    rc_expect_status(&c, 4, KPU__IPC__V1__STATUS_CODE__LIMIT_EXCEEDED);
    rc_ping(&c, 5);
    ck_assert_uint_eq(kpud_ipc_server_subscriptions(F.srv), 2);
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_bad_subscription_values)
{
    Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
    Kpu__Ipc__V1__Filter flt = KPU__IPC__V1__FILTER__INIT;
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    struct rc c;

    fx_start(NULL);
    rc_open(&c);
    flt.min_score = 1.5f;
    s.filter = &flt;
    f.request_id = 2;
    f.body_case = KPU__IPC__V1__FRAME__BODY_SUBSCRIBE;
    f.subscribe = &s;
    rc_send(&c, &f);
    rc_expect_status(&c, 2, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT);
    flt.min_score = 0;
    s.max_rate_hz = -1.0f;
    f.request_id = 3;
    rc_send(&c, &f);
    rc_expect_status(&c, 3, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT);
    ck_assert_uint_eq(kpud_ipc_server_subscriptions(F.srv), 0);
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_too_many_clients)
{
    struct kpud_ipc_opts o = default_opts();
    struct rc a, b, c;
    struct kpud_ipc_stats st;

    o.max_clients = 2;
    fx_start(&o);
    rc_open(&a);
    rc_open(&b);
    rc_open_fd(&c);
    rc_expect_status(&c, 0, KPU__IPC__V1__STATUS_CODE__LIMIT_EXCEEDED);
    rc_expect_eof(&c);
    rc_ping(&a, 2);
    kpud_ipc_server_stats(F.srv, &st);
    ck_assert_uint_eq(st.refused, 1);
    ck_assert_uint_eq(st.clients, 2);
    rc_close(&c);
    rc_close(&b);
    /* A place freed up: a new client gets in. */
    {
        int64_t deadline = now_ms() + WAIT_MS;
        do {
            pump();
            kpud_ipc_server_stats(F.srv, &st);
        } while (st.clients != 1 && now_ms() < deadline);
        ck_assert_uint_eq(st.clients, 1);
    }
    rc_open(&c);
    rc_ping(&c, 2);
    rc_close(&a);
    rc_close(&c);
    fx_stop();
}
END_TEST

/* Read frames until the Pong of id; count detection events and return the last. */
static int drain_until_pong(struct rc *c, uint32_t id, uint32_t *seqs, int max, uint64_t *dropped)
{
    int n = 0;
    for (;;) {
        Kpu__Ipc__V1__Frame *f = rc_recv(c);
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_PONG && f->request_id == id) {
            frame_free(f);
            return n;
        }
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_DETECTION) {
            if (n < max)
                seqs[n] = f->detection->frame_seq;
            n++;
        } else if (f->body_case == KPU__IPC__V1__FRAME__BODY_DROPPED && dropped) {
            *dropped += f->dropped->count;
        }
        frame_free(f);
    }
}

static void send_ping(struct rc *c, uint32_t id)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__Ping p = KPU__IPC__V1__PING__INIT;
    f.request_id = id;
    f.body_case = KPU__IPC__V1__FRAME__BODY_PING;
    f.ping = &p;
    rc_send(c, &f);
}

START_TEST(test_filters)
{
    Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
    Kpu__Ipc__V1__Filter flt = KPU__IPC__V1__FILTER__INIT;
    Kpu__Ipc__V1__Rect region = KPU__IPC__V1__RECT__INIT;
    char *lab[] = {(char *)"person"};
    char *devb[] = {(char *)TB_DEVICE_B};
    uint32_t cls[] = {2};
    struct rc c;
    uint32_t id_label, id_dev, id_region, id_score, id_class;
    Kpu__Ipc__V1__Frame *f;

    fx_start(NULL);
    rc_open(&c);
    s.filter = &flt;
    flt.labels = lab;
    flt.n_labels = 1;
    id_label = rc_subscribe(&c, 2, &s);
    memset(&flt, 0, sizeof(flt));
    kpu__ipc__v1__filter__init(&flt);
    flt.devices = devb;
    flt.n_devices = 1;
    id_dev = rc_subscribe(&c, 3, &s);
    kpu__ipc__v1__filter__init(&flt);
    /* Box k has its centre at (18 + 20k, 18 + 10k): only box 1 (38, 28) is inside. */
    region.x = 30;
    region.y = 20;
    region.w = 20;
    region.h = 20;
    flt.region = &region;
    id_region = rc_subscribe(&c, 4, &s);
    kpu__ipc__v1__filter__init(&flt);
    flt.min_score = 0.65f; /* box k scores 0.5 + 0.1k: only box 2 */
    id_score = rc_subscribe(&c, 5, &s);
    kpu__ipc__v1__filter__init(&flt);
    flt.class_ids = cls;
    flt.n_class_ids = 1;
    id_class = rc_subscribe(&c, 6, &s);

    publish(TB_DEVICE_A, 1, 3);
    publish(TB_DEVICE_B, 2, 0); /* no boxes and include_empty off: nobody gets it */
    publish(TB_DEVICE_B, 3, 1); /* one face box, device B */
    send_ping(&c, 7);
    {
        int got_label = 0, got_dev = 0, got_region = 0, got_score = 0, got_class = 0;
        for (;;) {
            f = rc_recv(&c);
            if (f->body_case == KPU__IPC__V1__FRAME__BODY_PONG) {
                frame_free(f);
                break;
            }
            ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_DETECTION);
            {
                const Kpu__Ipc__V1__DetectionEvent *e = f->detection;
                uint32_t sid = e->subscription_id;
                if (sid == id_label) {
                    got_label++;
                    ck_assert_uint_eq(e->frame_seq, 1);
                    ck_assert_uint_eq(e->n_boxes, 1);
                    ck_assert_str_eq(e->boxes[0]->label, "person");
                } else if (sid == id_dev) {
                    got_dev++;
                    ck_assert_str_eq(e->device, TB_DEVICE_B);
                    ck_assert_uint_eq(e->frame_seq, 3);
                } else if (sid == id_region) {
                    got_region++;
                    ck_assert_uint_eq(e->n_boxes, 1);
                    ck_assert_int_eq(e->boxes[0]->x, 30);
                } else if (sid == id_score) {
                    got_score++;
                    ck_assert_uint_eq(e->n_boxes, 1);
                    ck_assert_uint_eq(e->boxes[0]->class_id, 2);
                } else if (sid == id_class) {
                    got_class++;
                    ck_assert_uint_eq(e->n_boxes, 1);
                    ck_assert_str_eq(e->boxes[0]->label, "cat");
                } else {
                    ck_abort_msg("event for unknown subscription %u", sid);
                }
            }
            frame_free(f);
        }
        ck_assert_int_eq(got_label, 1);
        ck_assert_int_eq(got_dev, 1);
        ck_assert_int_eq(got_region, 1);
        ck_assert_int_eq(got_score, 1);
        ck_assert_int_eq(got_class, 1);
    }
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_include_empty_and_device_events)
{
    Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
    Kpu__Ipc__V1__DeviceEvent dev = KPU__IPC__V1__DEVICE_EVENT__INIT;
    Kpu__Ipc__V1__DeviceInfo info = KPU__IPC__V1__DEVICE_INFO__INIT;
    struct rc c;
    Kpu__Ipc__V1__Frame *f;
    uint32_t sid;

    fx_start(NULL);
    rc_open(&c);
    s.include_empty = 1;
    s.device_events = 1;
    sid = rc_subscribe(&c, 2, &s);
    publish(TB_DEVICE_A, 9, 0);
    info.id = (char *)TB_DEVICE_A;
    info.state = KPU__IPC__V1__DEVICE_STATE__DEVICE_STATE_LOST;
    dev.device = &info;
    dev.reason = (char *)"unplugged";
    kpud_ipc_publish_device(F.srv, &dev);
    f = rc_recv(&c);
    ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_DETECTION);
    ck_assert_uint_eq(f->detection->frame_seq, 9);
    ck_assert_uint_eq(f->detection->n_boxes, 0);
    frame_free(f);
    f = rc_recv(&c);
    ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_DEVICE_EVENT);
    ck_assert_uint_eq(f->device_event->subscription_id, sid);
    ck_assert_str_eq(f->device_event->reason, "unplugged");
    ck_assert_int_eq(f->device_event->device->state, KPU__IPC__V1__DEVICE_STATE__DEVICE_STATE_LOST);
    frame_free(f);
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_unsubscribe)
{
    Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
    Kpu__Ipc__V1__Unsubscribe u = KPU__IPC__V1__UNSUBSCRIBE__INIT;
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    struct rc c;
    uint32_t seqs[4];

    fx_start(NULL);
    rc_open(&c);
    u.subscription_id = rc_subscribe(&c, 2, &s);
    f.request_id = 3;
    f.body_case = KPU__IPC__V1__FRAME__BODY_UNSUBSCRIBE;
    f.unsubscribe = &u;
    rc_send(&c, &f);
    rc_expect_status(&c, 3, KPU__IPC__V1__STATUS_CODE__OK);
    f.request_id = 4;
    rc_send(&c, &f);
    rc_expect_status(&c, 4, KPU__IPC__V1__STATUS_CODE__NOT_FOUND);
    publish(TB_DEVICE_A, 1, 1);
    send_ping(&c, 5);
    ck_assert_int_eq(drain_until_pong(&c, 5, seqs, 4, NULL), 0);
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_rate_limit)
{
    Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
    struct rc c;
    uint32_t seqs[16];
    int n;

    fx_start(NULL);
    rc_open(&c);
    s.max_rate_hz = 0.5f; /* one event per 2 s per device: the burst below fits in one window */
    rc_subscribe(&c, 2, &s);
    for (uint32_t i = 1; i <= 5; i++) {
        publish(TB_DEVICE_A, i, 1);
        publish(TB_DEVICE_B, 100 + i, 1);
    }
    send_ping(&c, 3);
    n = drain_until_pong(&c, 3, seqs, 16, NULL);
    ck_assert_int_eq(n, 2); /* the first of each device */
    ck_assert_uint_eq(seqs[0], 1);
    ck_assert_uint_eq(seqs[1], 101);
    rc_close(&c);
    fx_stop();
}
END_TEST

#define BURST 3000u

/* Publish BURST big events while client b keeps up and client a does not read. */
static void slow_client_run(int latest_only, uint32_t queue_messages, uint64_t *a_events,
                            uint64_t *a_dropped, uint32_t *a_last)
{
    struct kpud_ipc_opts o = default_opts();
    Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
    struct rc a, b;
    uint32_t next_b = 1, expect_a = 1;
    struct kpud_ipc_stats st;
    uint64_t gaps = 0;

    o.queue_messages = queue_messages;
    fx_start(&o);
    rc_open(&a);
    rc_open(&b);
    s.latest_only = latest_only;
    rc_subscribe(&a, 2, &s);
    s.latest_only = 0;
    rc_subscribe(&b, 2, &s);
    for (uint32_t i = 1; i <= BURST; i++) {
        Kpu__Ipc__V1__Frame *f;
        publish(TB_DEVICE_A, i, 32);
        /* b reads everything as it comes: it must see every event, in order. */
        while ((f = rc_recv_t(&b, 0)) != NULL) {
            ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_DETECTION);
            ck_assert_uint_eq(f->detection->frame_seq, next_b);
            next_b++;
            frame_free(f);
        }
    }
    send_ping(&b, 3);
    {
        uint32_t seqs[1];
        int n = drain_until_pong(&b, 3, seqs, 0, NULL);
        next_b += (uint32_t)n;
    }
    ck_assert_uint_eq(next_b, BURST + 1);

    /* Now a reads: every gap in its sequence is announced by a Dropped notice first. */
    *a_events = *a_dropped = 0;
    send_ping(&a, 3);
    for (;;) {
        Kpu__Ipc__V1__Frame *f = rc_recv(&a);
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_PONG) {
            frame_free(f);
            break;
        }
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_DROPPED) {
            ck_assert_uint_gt(f->dropped->count, 0);
            ck_assert_uint_eq(f->dropped->first_frame_seq, expect_a);
            *a_dropped += f->dropped->count;
            expect_a += (uint32_t)f->dropped->count;
        } else {
            ck_assert_int_eq(f->body_case, KPU__IPC__V1__FRAME__BODY_DETECTION);
            if (!latest_only)
                ck_assert_uint_eq(f->detection->frame_seq, expect_a);
            else if (f->detection->frame_seq != expect_a)
                gaps += f->detection->frame_seq - expect_a;
            expect_a = f->detection->frame_seq + 1;
            *a_last = f->detection->frame_seq;
            (*a_events)++;
        }
        frame_free(f);
    }
    kpud_ipc_server_stats(F.srv, &st);
    ck_assert_uint_eq(st.events_dropped, *a_dropped);
    if (latest_only)
        ck_assert_uint_gt(gaps, 0);
    rc_close(&a);
    rc_close(&b);
    fx_stop();
}

START_TEST(test_slow_client_drops_oldest)
{
    uint64_t ev, dr;
    uint32_t last = 0;

    slow_client_run(0, 16, &ev, &dr, &last);
    ck_assert_uint_gt(dr, 0);
    ck_assert_uint_eq(ev + dr, BURST);
    ck_assert_uint_eq(last, BURST); /* the newest survive */
}
END_TEST

START_TEST(test_latest_only)
{
    uint64_t ev, dr;
    uint32_t last = 0;

    slow_client_run(1, 1024, &ev, &dr, &last);
    ck_assert_uint_eq(dr, 0); /* replaced, not dropped */
    ck_assert_uint_lt(ev, BURST);
    ck_assert_uint_eq(last, BURST);
}
END_TEST

START_TEST(test_backend_delay_and_disconnect)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *r;
    Kpu__Ipc__V1__ListDevices ld = KPU__IPC__V1__LIST_DEVICES__INIT;
    struct rc c, d;
    int64_t deadline;

    fx_start(NULL);
    tb_set_delay(F.tb, 30);
    rc_open(&c);
    rc_open(&d);
    f.body_case = KPU__IPC__V1__FRAME__BODY_LIST_DEVICES;
    f.list_devices = &ld;
    f.request_id = 21;
    rc_send(&c, &f);
    f.request_id = 22;
    rc_send(&d, &f);
    send_ping(&c, 23); /* answered by the server at once, before the delayed reply */
    r = rc_recv(&c);
    ck_assert_int_eq(r->body_case, KPU__IPC__V1__FRAME__BODY_PONG);
    frame_free(r);
    r = rc_recv(&c);
    ck_assert_int_eq(r->body_case, KPU__IPC__V1__FRAME__BODY_DEVICE_LIST);
    ck_assert_uint_eq(r->request_id, 21);
    ck_assert_uint_eq(r->device_list->n_devices, 2);
    frame_free(r);
    rc_close(&d); /* gone before its reply: the reply is dropped */
    deadline = now_ms() + WAIT_MS;
    while (tb_requests(F.tb) < 2 && now_ms() < deadline)
        pump();
    rc_ping(&c, 24);
    rc_close(&c);
    fx_stop();
}
END_TEST

START_TEST(test_stale_socket_replaced_live_refused)
{
    struct kpud_ipc_server *second = NULL;
    int fd;
    struct sockaddr_un sa;

    fx_start(NULL);
    /* A live server at the path: a second one must refuse. */
    ck_assert_int_eq(kpud_ipc_server_open(&F.loop, &F.o, &second), -EADDRINUSE);
    pump();
    fx_stop();
    /* A stale socket file (bound, nobody listening) is replaced. */
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    ck_assert_ptr_nonnull(mkdtemp(strcpy(F.dir, "/tmp/kpu-ipc-XXXXXX")));
    snprintf(F.path, sizeof(F.path), "%s/kpud.sock", F.dir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, F.path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    F.tb = tb_new(&F.loop);
    F.o.path = F.path;
    ck_assert_int_eq(kpud_ipc_server_open(&F.loop, &F.o, &F.srv), 0);
    {
        struct rc c;
        rc_open(&c);
        rc_ping(&c, 2);
        rc_close(&c);
    }
    fx_stop();
}
END_TEST

/* ---- roles ---- */

/* In a child: drop to uid/gid (with supplementary groups), connect, report the role in
 * the exit status (role + 1, or 10 + status code when refused), and for readers check
 * that an admin request is denied while the connection stays usable. */
static int role_child(uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
    struct rc c;
    Kpu__Ipc__V1__Frame *f;
    int role;

    if (setgroups(n, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
        return 99;
    rc_open_fd(&c);
    f = rc_recv_t(&c, WAIT_MS);
    if (!f)
        return 98;
    if (f->body_case == KPU__IPC__V1__FRAME__BODY_STATUS) {
        int code = (int)f->status->code;
        frame_free(f);
        f = rc_recv_t(&c, WAIT_MS);
        return f ? 97 : 10 + code; /* must be closed after the status */
    }
    role = (int)f->server_hello->role;
    frame_free(f);
    rc_hello_major(&c, 1, 1);
    frame_free(rc_recv(&c));
    if (role == KPU__IPC__V1__ROLE__ROLE_READER) {
        Kpu__Ipc__V1__Frame q = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__ResetDevice rd = KPU__IPC__V1__RESET_DEVICE__INIT;
        rd.device = (char *)TB_DEVICE_A;
        q.request_id = 2;
        q.body_case = KPU__IPC__V1__FRAME__BODY_RESET_DEVICE;
        q.reset_device = &rd;
        rc_send(&c, &q);
        f = rc_recv(&c);
        if (f->body_case != KPU__IPC__V1__FRAME__BODY_STATUS ||
            f->status->code != KPU__IPC__V1__STATUS_CODE__PERMISSION_DENIED || !f->status->hint[0])
            return 96;
        frame_free(f);
        rc_ping(&c, 3);
    }
    rc_close(&c);
    return role + 1;
}

/* The child blocks on its socket while this process pumps the server. */
static int run_role_child(uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
    int64_t deadline = now_ms() + WAIT_MS * 2;
    int status = 0;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        g_pump = 0; /* the server lives in the parent */
        _exit(role_child(uid, gid, groups, n));
    }
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        ck_assert_msg(now_ms() < deadline, "role child hangs");
        pump();
        poll(NULL, 0, 1);
    }
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_roles)
{
    struct kpud_ipc_opts o = default_opts();
    const gid_t none[1] = {0}, admins[1] = {4243}, readers[1] = {4242};

    if (geteuid() != 0) {
        printf("test_roles: skipped, needs root to switch uid in a child\n");
        return;
    }
    o.everyone_admin = 0;
    o.reader_gid = (gid_t)-1;
    o.admin_gid = 4243;
    fx_start(&o);
    /* The server's socket is 0660: let the test uid reach it through the directory. */
    chmod(F.dir, 0755);
    chmod(F.path, 0666);
    {
        struct rc c;
        ck_assert_int_eq(rc_open(&c), KPU__IPC__V1__ROLE__ROLE_ADMIN); /* root */
        rc_close(&c);
    }
    ck_assert_int_eq(run_role_child(12345, 12345, none, 0), KPU__IPC__V1__ROLE__ROLE_READER + 1);
    ck_assert_int_eq(run_role_child(12345, 12345, admins, 1), KPU__IPC__V1__ROLE__ROLE_ADMIN + 1);
    fx_stop();

    o.reader_gid = 4242;
    fx_start(&o);
    chmod(F.dir, 0755);
    chmod(F.path, 0666);
    ck_assert_int_eq(run_role_child(12345, 12345, none, 0),
                     10 + KPU__IPC__V1__STATUS_CODE__PERMISSION_DENIED);
    ck_assert_int_eq(run_role_child(12345, 12345, readers, 1), KPU__IPC__V1__ROLE__ROLE_READER + 1);
    ck_assert_int_eq(run_role_child(12345, 4242, none, 0), KPU__IPC__V1__ROLE__ROLE_READER + 1);
    {
        struct kpud_ipc_stats st;
        kpud_ipc_server_stats(F.srv, &st);
        ck_assert_uint_eq(st.refused, 1);
    }
    fx_stop();
}
END_TEST

START_TEST(test_role_decide_and_admin_table)
{
    gid_t g[2] = {5, 7};
    struct kpud_ipc_peer p = {.pid = 1, .uid = 1000, .gid = 100, .groups = g, .n_groups = 2};
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__AgentControl ac = KPU__IPC__V1__AGENT_CONTROL__INIT;

    ck_assert_int_eq(kpud_ipc_role_decide(&p, (gid_t)-1, (gid_t)-1, 0),
                     KPU__IPC__V1__ROLE__ROLE_READER);
    ck_assert_int_eq(kpud_ipc_role_decide(&p, 9, (gid_t)-1, 0), KPU__IPC__V1__ROLE__ROLE_NONE);
    ck_assert_int_eq(kpud_ipc_role_decide(&p, 7, (gid_t)-1, 0), KPU__IPC__V1__ROLE__ROLE_READER);
    ck_assert_int_eq(kpud_ipc_role_decide(&p, 9, 100, 0), KPU__IPC__V1__ROLE__ROLE_ADMIN);
    ck_assert_int_eq(kpud_ipc_role_decide(&p, 9, 5, 0), KPU__IPC__V1__ROLE__ROLE_ADMIN);
    ck_assert_int_eq(kpud_ipc_role_decide(&p, 9, 9, 1), KPU__IPC__V1__ROLE__ROLE_ADMIN);
    p.uid = 0;
    ck_assert_int_eq(kpud_ipc_role_decide(&p, 9, 9, 0), KPU__IPC__V1__ROLE__ROLE_ADMIN);

    f.body_case = KPU__IPC__V1__FRAME__BODY_QUERY;
    ck_assert_int_eq(kpud_ipc_is_admin_request(&f), 0);
    f.body_case = KPU__IPC__V1__FRAME__BODY_SET_CONFIG;
    ck_assert_int_eq(kpud_ipc_is_admin_request(&f), 1);
    f.body_case = KPU__IPC__V1__FRAME__BODY_AGENT_CONTROL;
    f.agent_control = &ac;
    ck_assert_int_eq(kpud_ipc_is_admin_request(&f), 0);
    ac.action = KPU__IPC__V1__AGENT_ACTION__AGENT_FLASH;
    ck_assert_int_eq(kpud_ipc_is_admin_request(&f), 1);
    {
        gid_t mine[64];
        int n = kpud_ipc_peer_groups(getpid(), getuid(), getgid(), mine, 64);
        ck_assert_int_ge(n, 0);
        ck_assert_int_eq(n, getgroups(0, NULL) > 64 ? 64 : getgroups(0, NULL));
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ipc_server");
    TCase *t = tcase_create("server");
    tcase_add_test(t, test_hello_and_ping);
    tcase_add_test(t, test_request_before_hello_and_bad_ids);
    tcase_add_test(t, test_version_mismatch_closes);
    tcase_add_test(t, test_oversize_length_closes);
    tcase_add_test(t, test_custom_frame_limit);
    tcase_add_test(t, test_truncated_frame_then_close);
    tcase_add_test(t, test_garbage_closes);
    tcase_add_test(t, test_empty_frame_is_malformed);
    tcase_add_test(t, test_too_many_subscriptions);
    tcase_add_test(t, test_bad_subscription_values);
    tcase_add_test(t, test_too_many_clients);
    tcase_add_test(t, test_filters);
    tcase_add_test(t, test_include_empty_and_device_events);
    tcase_add_test(t, test_unsubscribe);
    tcase_add_test(t, test_rate_limit);
    tcase_add_test(t, test_slow_client_drops_oldest);
    tcase_add_test(t, test_latest_only);
    tcase_add_test(t, test_backend_delay_and_disconnect);
    tcase_add_test(t, test_stale_socket_replaced_live_refused);
    tcase_add_test(t, test_roles);
    tcase_add_test(t, test_role_decide_and_admin_table);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    signal(SIGPIPE, SIG_IGN); /* the server's contract: libuv writes with write(2) */
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
