/* SPDX-License-Identifier: MIT */
/*
 * Tests of libkpu-client against a real kpud IPC server (daemon/ipc/) with the
 * deterministic test backend, running in a forked child on a real socket, plus scripted
 * fake servers for the failure paths (wrong major, garbage, silence, hang-up). Expected
 * values are recomputed from the backend's documented tables (test_backend.h), not read
 * back from the library.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kpu/client.h>

#include "ipc_server.h"
#include "kipc.h"
#include "test_backend.h"

#define WAIT_MS 5000
#define PUBLISH_MS 5

static char dir[64], path[128];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a real server in a child process ---- */

struct child {
    struct kpud_ipc_server *srv;
    uint32_t seq;
    uv_timer_t pub;
    uv_signal_t term;
};

static void child_publish(uv_timer_t *t)
{
    struct child *c = t->data;
    Kpu__Ipc__V1__DetectionEvent ev;
    Kpu__Ipc__V1__Box boxes[3], *ptrs[3];
    if (kpud_ipc_server_subscriptions(c->srv) == 0) {
        c->seq = 0;
        return;
    }
    tb_make_detection(&ev, boxes, ptrs, 3, TB_DEVICE_A, ++c->seq);
    kpud_ipc_publish_detection(c->srv, &ev);
}

static void child_term(uv_signal_t *s, int sig)
{
    struct child *c = s->data;
    (void)sig;
    uv_close((uv_handle_t *)&c->pub, NULL);
    uv_close((uv_handle_t *)&c->term, NULL);
    kpud_ipc_server_close(c->srv, NULL, NULL);
}

/* Start the server; returns once the socket accepts connections. */
static pid_t server_start(unsigned delay_ms)
{
    int pfd[2];
    char ok;
    pid_t pid;

    ck_assert_int_eq(pipe(pfd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        uv_loop_t loop;
        struct kpud_ipc_opts o;
        struct child c;
        struct tb *tb;
        close(pfd[0]);
        signal(SIGPIPE, SIG_IGN);
        uv_loop_init(&loop);
        memset(&o, 0, sizeof(o));
        memset(&c, 0, sizeof(c));
        tb = tb_new(&loop);
        tb_set_delay(tb, delay_ms);
        o.path = path;
        o.listen_fd = -1;
        o.reader_gid = o.admin_gid = (gid_t)-1;
        o.everyone_admin = 1;
        o.server_version = "check";
        o.backend = tb_backend();
        o.backend_ctx = tb;
        if (kpud_ipc_server_open(&loop, &o, &c.srv) < 0)
            _exit(1);
        tb_set_server(tb, c.srv);
        uv_timer_init(&loop, &c.pub);
        c.pub.data = &c;
        uv_timer_start(&c.pub, child_publish, PUBLISH_MS, PUBLISH_MS);
        uv_signal_init(&loop, &c.term);
        c.term.data = &c;
        uv_signal_start(&c.term, child_term, SIGTERM);
        ok = 1;
        if (write(pfd[1], &ok, 1) != 1)
            _exit(1);
        close(pfd[1]);
        uv_run(&loop, UV_RUN_DEFAULT);
        tb_free(tb);
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(0);
    }
    close(pfd[1]);
    ck_assert_int_eq(read(pfd[0], &ok, 1), 1);
    close(pfd[0]);
    return pid;
}

static void server_stop(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kpu-cli-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/kpud.sock", dir);
    signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static kpu_client_t *client_open(void)
{
    struct kpu_client_opts o = {0};
    kpu_client_t *c = NULL;
    o.socket_path = path;
    o.client_name = "check_client";
    ck_assert_int_eq(kpu_client_open(&o, &c), 0);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* ---- history expectations, from test_backend.h: row i (1..TB_HISTORY_ROWS) has device A
 * when odd, class i % 3, label tb_label(class), score (i % 100) / 100, time base + i ms. */
static int64_t row_time(uint32_t i)
{
    return TB_TIME_BASE_NS + (int64_t)i * 1000000ll;
}

START_TEST(test_sync_basics)
{
    pid_t pid = server_start(0);
    kpu_client_t *c = client_open();
    const struct kpu_client_server_info *si = kpu_client_server_info(c);
    struct kpu_client_device *devs, *one;
    struct kpu_client_stats st;
    uint64_t rtt;
    int64_t srv_time;
    size_t n;
    char *json;

    ck_assert_ptr_nonnull(si);
    ck_assert_str_eq(si->server_version, "check");
    ck_assert_uint_eq(si->protocol_major, KPU_CLIENT_PROTOCOL_MAJOR);
    ck_assert_int_eq(si->role, KPU_CLIENT_ROLE_ADMIN);
    ck_assert_int_eq(strlen(si->instance_id), 32);
    ck_assert_str_eq(kpu_client_socket_path(c), path);
    ck_assert_int_eq(kpu_client_ping(c, &rtt, &srv_time), 0);
    ck_assert_int_gt(srv_time, 0);
    ck_assert_int_eq(kpu_client_list_devices(c, &devs, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(devs[0].id, TB_DEVICE_A);
    ck_assert_int_eq(devs[0].state, KPU_CLIENT_DEVICE_STREAMING);
    ck_assert_str_eq(kpu_client_device_state_name(devs[1].state), "idle");
    ck_assert_int_eq(kpu_client_last_reply_json(c, &json), 0);
    ck_assert_ptr_nonnull(strstr(json, "\"state\":\"DEVICE_STATE_IDLE\""));
    kpu_client_free(json);
    kpu_client_free(devs);
    ck_assert_int_eq(kpu_client_get_device(c, TB_DEVICE_B, &one), 0);
    ck_assert_str_eq(one->id, TB_DEVICE_B);
    ck_assert_str_eq(one->reset_cause, "power-on");
    kpu_client_free(one);
    ck_assert_int_eq(kpu_client_get_device(c, "nope", &one), KPU_CLIENT_ENODEV);
    ck_assert_ptr_nonnull(strstr(kpu_client_last_error_text(c), "nope"));
    ck_assert_int_gt(strlen(kpu_client_last_error_hint(c)), 0);
    ck_assert_int_eq(kpu_client_get_stats(c, &st), 0);
    ck_assert_uint_eq(st.clients, 1);
    ck_assert_uint_eq(st.db_rows, TB_HISTORY_ROWS);
    kpu_client_close(c);
    server_stop(pid);
}
END_TEST

struct rows {
    uint64_t n;
    uint64_t last_id;
    int ordered;
    int stop_after;
};

static int row_cb(kpu_client_t *c, const struct kpu_client_row *r, void *ud)
{
    struct rows *s = ud;
    (void)c;
    if (s->n && r->id >= s->last_id)
        s->ordered = 0;
    if (strcmp(r->box.label, "cat") != 0 || r->box.class_id != 2 ||
        r->time_ns != row_time((uint32_t)r->id))
        s->ordered = 0;
    s->last_id = r->id;
    s->n++;
    return s->stop_after && s->n == (uint64_t)s->stop_after;
}

START_TEST(test_query_paging)
{
    pid_t pid = server_start(0);
    kpu_client_t *c = client_open();
    const char *labels[] = {"cat"};
    struct kpu_client_filter f = {0};
    struct kpu_client_query q = {0};
    struct rows s = {0, 0, 1, 0};
    kpu_client_query_iter_t *it;
    const struct kpu_client_row *row;
    uint64_t expect = 0, seen = 0, prev = 0;
    int r;

    /* Expected: class 2 rows in [row 100, row 2000). */
    for (uint32_t i = 1; i <= TB_HISTORY_ROWS; i++)
        if (i % 3 == 2 && row_time(i) >= row_time(100) && row_time(i) < row_time(2000))
            expect++;
    f.labels = labels;
    f.n_labels = 1;
    q.filter = &f;
    q.since_ns = row_time(100);
    q.until_ns = row_time(2000);
    q.page_rows = 7; /* many pages */
    r = kpu_client_query(c, &q, row_cb, &s);
    ck_assert_int_eq(r, (int)expect);
    ck_assert_uint_eq(s.n, expect);
    ck_assert(s.ordered);
    /* The iterator, oldest first, sees the same rows ascending. */
    q.oldest_first = 1;
    ck_assert_int_eq(kpu_client_query_iter_open(c, &q, &it), 0);
    while ((r = kpu_client_query_iter_next(it, &row)) == 1) {
        ck_assert_uint_gt(row->id, prev);
        prev = row->id;
        seen++;
        if (seen == 1) {
            char *json;
            ck_assert_int_eq(kpu_client_row_json(row, &json), 0);
            ck_assert_ptr_nonnull(strstr(json, "\"label\":\"cat\""));
            kpu_client_free(json);
        }
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(seen, expect);
    ck_assert_int_eq(kpu_client_query_iter_next(it, &row), 0);
    kpu_client_query_iter_close(it);
    /* max_rows caps, and a callback can stop. */
    q.max_rows = 10;
    memset(&s, 0, sizeof(s));
    s.ordered = 1;
    ck_assert_int_eq(kpu_client_query(c, &q, row_cb, &s), 10);
    q.max_rows = 0;
    memset(&s, 0, sizeof(s));
    s.stop_after = 3;
    ck_assert_int_eq(kpu_client_query(c, &q, row_cb, &s), KPU_CLIENT_ECANCELED);
    ck_assert_uint_eq(s.n, 3);
    /* The connection still works after a cancelled query. */
    ck_assert_int_eq(kpu_client_ping(c, NULL, NULL), 0);
    kpu_client_close(c);
    server_stop(pid);
}
END_TEST

static int progress_cb(kpu_client_t *c, uint64_t done, uint64_t total, void *ud)
{
    uint64_t *last = ud;
    (void)c;
    ck_assert_uint_ge(done, *last);
    ck_assert_uint_le(done, total);
    *last = done;
    return 0;
}

START_TEST(test_sync_admin_calls)
{
    pid_t pid = server_start(0);
    kpu_client_t *c = client_open();
    struct kpu_client_snapshot *snap;
    struct kpu_client_config *cfg, set;
    struct kpu_client_model *models;
    struct kpu_client_retention ret = {7 * 86400, 1 << 30}, got;
    struct kpu_client_retention_report rep;
    struct kpu_client_record_state *rs;
    struct kpu_client_agent_info *ai;
    const char *labels[] = {"face"};
    struct kpu_client_filter f = {0};
    uint8_t *blob;
    uint64_t last = 0, expect;
    size_t n, size = 200000;
    int found = 0;

    ck_assert_int_eq(kpu_client_snapshot(c, TB_DEVICE_A, KPU_CLIENT_IMAGE_RGB888_PLANAR, &snap), 0);
    ck_assert_uint_eq(snap->size, (size_t)3 * snap->width * snap->height);
    ck_assert_uint_eq(snap->n_boxes, 1);
    ck_assert_str_eq(snap->boxes[0].label, "face");
    kpu_client_free(snap);
    ck_assert_int_eq(kpu_client_snapshot(c, TB_DEVICE_B, 0, &snap), KPU_CLIENT_EOFFLINE);

    ck_assert_int_eq(kpu_client_config_get(c, TB_DEVICE_A, &cfg), 0);
    ck_assert_uint_eq(cfg->n_anchors, 10);
    kpu_client_free(cfg);
    memset(&set, 0, sizeof(set));
    set.device = TB_DEVICE_A;
    set.threshold = 0.8f;
    set.has_roi = 1;
    set.roi.w = 100;
    set.roi.h = 50;
    ck_assert_int_eq(
        kpu_client_config_set(c, &set, KPU_CLIENT_CFG_THRESHOLD | KPU_CLIENT_CFG_ROI, 0, &cfg), 0);
    ck_assert_float_eq(cfg->threshold, 0.8f);
    ck_assert_int_eq(cfg->has_roi, 1);
    ck_assert_uint_eq(cfg->roi.h, 50);
    ck_assert_float_eq(cfg->nms, 0.3f); /* untouched */
    kpu_client_free(cfg);
    set.threshold = 2.0f;
    ck_assert_int_eq(kpu_client_config_set(c, &set, KPU_CLIENT_CFG_THRESHOLD, 0, NULL),
                     KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_config_set(c, &set, 0, 0, NULL), KPU_CLIENT_EINVAL);

    blob = malloc(size);
    for (size_t i = 0; i < size; i++)
        blob[i] = (uint8_t)(i * 7 + 3);
    ck_assert_int_eq(
        kpu_client_model_upload(c, TB_DEVICE_A, "big", blob, size, "name: big", progress_cb, &last),
        0);
    ck_assert_uint_eq(last, size);
    free(blob);
    ck_assert_int_eq(kpu_client_model_list(c, NULL, &models, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(models[i].name, "big") == 0) {
            found = 1;
            ck_assert_uint_eq(models[i].size, size);
            ck_assert_uint_eq(models[i].n_devices, 1);
            ck_assert_str_eq(models[i].devices[0], TB_DEVICE_A);
        }
    ck_assert(found);
    kpu_client_free(models);
    ck_assert_int_eq(kpu_client_model_select(c, TB_DEVICE_A, "nope"), KPU_CLIENT_ENOMODEL);
    ck_assert_int_eq(kpu_client_model_select(c, TB_DEVICE_A, "big"), 0);
    ck_assert_int_eq(kpu_client_model_delete(c, NULL, "big"), KPU_CLIENT_EBUSY);
    ck_assert_int_eq(kpu_client_reset(c, TB_DEVICE_A, 1), 0);
    ck_assert_int_eq(kpu_client_reset(c, "x", 0), KPU_CLIENT_ENODEV);

    ck_assert_int_eq(kpu_client_retention_set(c, &ret, &got), 0);
    ck_assert_uint_eq(got.max_bytes, 1u << 30);
    ck_assert_int_eq(kpu_client_retention_get(c, &got), 0);
    ck_assert_uint_eq(got.max_age_s, 7 * 86400);
    ck_assert_int_eq(kpu_client_retention_apply(c, 1, &rep), 0);
    ck_assert_int_eq(rep.dry_run, 1);
    f.labels = labels;
    f.n_labels = 1;
    expect = 0;
    for (uint32_t i = 1; i <= TB_HISTORY_ROWS; i++)
        expect += i % 3 == 0;
    ck_assert_int_eq(kpu_client_delete_history(c, &f, 0, 0, 1, &rep), 0);
    ck_assert_uint_eq(rep.rows_deleted, expect);

    ck_assert_int_eq(kpu_client_record_start(c, TB_DEVICE_B, "b.kcap", "note", &rs), 0);
    ck_assert_int_eq(rs->recording, 1);
    ck_assert_str_eq(rs->path, "b.kcap");
    kpu_client_free(rs);
    ck_assert_int_eq(kpu_client_record_start(c, TB_DEVICE_B, "b.kcap", NULL, NULL),
                     KPU_CLIENT_EBUSY);
    ck_assert_int_eq(kpu_client_record_stop(c, TB_DEVICE_B, NULL), 0);
    ck_assert_int_eq(kpu_client_agent_control(c, TB_DEVICE_A, KPU_CLIENT_AGENT_VERSION, &ai), 0);
    ck_assert_str_eq(ai->agent_version, "0.1.0");
    kpu_client_free(ai);
    ck_assert_int_eq(kpu_client_agent_control(c, TB_DEVICE_A, 9, &ai), KPU_CLIENT_EINVAL);
    kpu_client_close(c);
    server_stop(pid);
}
END_TEST

struct evs {
    int det;
    uint32_t first_seq, last_seq;
    int gaps;
    int bad_boxes;
    int json_ok;
    int stop_at;
};

static void ev_cb(kpu_client_t *c, const struct kpu_client_event *ev, void *ud)
{
    struct evs *e = ud;
    if (ev->type != KPU_CLIENT_EVENT_DETECTION)
        return;
    if (e->det == 0) {
        char *json;
        e->first_seq = ev->detection->frame_seq;
        if (kpu_client_event_json(ev, &json) == 0) {
            e->json_ok = strncmp(json, "{\"detection\":{", 14) == 0;
            kpu_client_free(json);
        }
    } else if (ev->detection->frame_seq != e->last_seq + 1) {
        e->gaps++;
    }
    /* The subscription filters to label "person": one box of the three. */
    if (ev->detection->n_boxes != 1 || strcmp(ev->detection->boxes[0].label, "person") != 0)
        e->bad_boxes++;
    e->last_seq = ev->detection->frame_seq;
    e->det++;
    if (e->stop_at && e->det == e->stop_at)
        kpu_client_stop(c);
}

/* Drive the client with poll() on its fd until n detections arrived. */
static void poll_until(kpu_client_t *c, struct evs *e, int n)
{
    int64_t deadline = now_ms() + WAIT_MS;
    while (e->det < n) {
        struct pollfd p = {.fd = kpu_client_get_fd(c), .events = POLLIN};
        int t = kpu_client_next_timeout_ms(c);
        ck_assert_msg(now_ms() < deadline, "events did not arrive");
        if (kpu_client_want_write(c))
            p.events |= POLLOUT;
        poll(&p, 1, t < 0 || t > 100 ? 100 : t);
        ck_assert_int_eq(kpu_client_process(c), 0);
    }
}

START_TEST(test_subscribe_process)
{
    pid_t pid = server_start(0);
    kpu_client_t *c = client_open();
    const char *labels[] = {"person"};
    struct kpu_client_filter f = {0};
    struct evs e = {0};
    uint32_t id;

    f.labels = labels;
    f.n_labels = 1;
    ck_assert_int_eq(kpu_client_subscribe(c, &f, NULL, ev_cb, &e, &id), 0);
    ck_assert_uint_ne(id, 0);
    ck_assert_int_ge(kpu_client_get_fd(c), 0);
    poll_until(c, &e, 5);
    ck_assert_int_eq(e.gaps, 0);
    ck_assert_int_eq(e.bad_boxes, 0);
    ck_assert(e.json_ok);
    /* Events that arrive during a synchronous call are kept, not lost. */
    ck_assert_int_eq(kpu_client_ping(c, NULL, NULL), 0);
    e.stop_at = e.det + 5;
    ck_assert_int_eq(kpu_client_run(c, WAIT_MS), 0);
    ck_assert_int_eq(e.det, e.stop_at);
    ck_assert_int_eq(e.gaps, 0);
    ck_assert_int_eq(kpu_client_unsubscribe(c, id), 0);
    ck_assert_int_eq(kpu_client_unsubscribe(c, id), KPU_CLIENT_ENOTFOUND);
    kpu_client_close(c);
    server_stop(pid);
}
END_TEST

struct states {
    int down, up, restarted;
};

static void state_cb(kpu_client_t *c, int state, int err, int restarted, void *ud)
{
    struct states *s = ud;
    (void)c;
    if (state == KPU_CLIENT_STATE_DISCONNECTED) {
        ck_assert_int_lt(err, 0);
        s->down++;
    } else {
        s->up++;
        s->restarted += restarted;
    }
}

START_TEST(test_reconnect_resubscribe)
{
    pid_t pid = server_start(0);
    struct kpu_client_opts o = {0};
    struct states st = {0};
    const char *labels[] = {"person"};
    struct kpu_client_filter f = {0};
    struct evs e = {0};
    kpu_client_t *c;
    char old_instance[33];
    int64_t deadline;

    o.socket_path = path;
    o.reconnect = 1;
    o.reconnect_min_ms = 10;
    o.reconnect_max_ms = 50;
    o.state_cb = state_cb;
    o.user_data = &st;
    ck_assert_int_eq(kpu_client_open(&o, &c), 0);
    memcpy(old_instance, kpu_client_server_info(c)->instance_id, sizeof(old_instance));
    f.labels = labels;
    f.n_labels = 1;
    ck_assert_int_eq(kpu_client_subscribe(c, &f, NULL, ev_cb, &e, NULL), 0);
    poll_until(c, &e, 3);
    server_stop(pid);
    /* The loss is noticed and a retry scheduled; calls fail meanwhile without aborting. */
    deadline = now_ms() + WAIT_MS;
    while (st.down == 0) {
        ck_assert_msg(now_ms() < deadline, "disconnect not noticed");
        ck_assert_int_eq(kpu_client_process(c), 0);
        poll(NULL, 0, 5);
    }
    ck_assert_int_lt(kpu_client_get_fd(c), 0);
    ck_assert_int_ge(kpu_client_next_timeout_ms(c), 0);
    ck_assert_int_eq(kpu_client_ping(c, NULL, NULL), KPU_CLIENT_ECONNECT);
    pid = server_start(0);
    e.det = 0; /* the new daemon's frame_seq starts again */
    poll_until(c, &e, 3);
    ck_assert_int_eq(st.up, 1);
    ck_assert_int_eq(st.restarted, 1);
    ck_assert_str_ne(kpu_client_server_info(c)->instance_id, old_instance);
    ck_assert_int_eq(e.first_seq, 1);
    ck_assert_int_eq(e.bad_boxes, 0);
    kpu_client_close(c);
    server_stop(pid);
}
END_TEST

START_TEST(test_timeout_then_late_reply_ignored)
{
    pid_t pid = server_start(300);
    kpu_client_t *c = client_open();
    struct kpu_client_device *d;
    size_t n;

    ck_assert_int_eq(kpu_client_set_timeout(c, 50), 0);
    ck_assert_int_eq(kpu_client_list_devices(c, &d, &n), KPU_CLIENT_ETIMEDOUT);
    /* Ping is answered by the server itself; the late ListDevices reply is skipped. */
    ck_assert_int_eq(kpu_client_set_timeout(c, 2000), 0);
    ck_assert_int_eq(kpu_client_ping(c, NULL, NULL), 0);
    ck_assert_int_eq(kpu_client_get_device(c, TB_DEVICE_A, &d), 0);
    ck_assert_str_eq(d->id, TB_DEVICE_A);
    kpu_client_free(d);
    kpu_client_close(c);
    server_stop(pid);
}
END_TEST

/* ---- scripted fake servers ---- */

enum fake { FAKE_MAJOR2, FAKE_GARBAGE, FAKE_HANGUP, FAKE_SILENT, FAKE_LIMIT };

static pid_t fake_start(enum fake how)
{
    struct sockaddr_un sa;
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    pid_t pid;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(ls, 4), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__ServerHello h = KPU__IPC__V1__SERVER_HELLO__INIT;
        Kpu__Ipc__V1__Status s = KPU__IPC__V1__STATUS__INIT;
        uint8_t *buf;
        size_t len;
        char junk[64];
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            _exit(1);
        switch (how) {
        case FAKE_MAJOR2:
            h.protocol_major = 2;
            h.server_version = (char *)"future";
            f.body_case = KPU__IPC__V1__FRAME__BODY_SERVER_HELLO;
            f.server_hello = &h;
            kipc_pack(&f, 0, &buf, &len);
            if (write(fd, buf, len) < 0)
                _exit(1);
            break;
        case FAKE_GARBAGE:
            if (write(fd, "\0\0\0\4\xff\xff\xff\xff", 8) < 0)
                _exit(1);
            break;
        case FAKE_LIMIT:
            s.code = KPU__IPC__V1__STATUS_CODE__LIMIT_EXCEEDED;
            s.text = (char *)"too many clients";
            s.hint = (char *)"close some";
            f.body_case = KPU__IPC__V1__FRAME__BODY_STATUS;
            f.status = &s;
            kipc_pack(&f, 0, &buf, &len);
            if (write(fd, buf, len) < 0)
                _exit(1);
            break;
        case FAKE_HANGUP:
            close(fd);
            _exit(0);
        case FAKE_SILENT:
            while (read(fd, junk, sizeof(junk)) > 0)
                ;
            break;
        }
        /* Wait for the client to go away, then leave. */
        while (read(fd, junk, sizeof(junk)) > 0)
            ;
        _exit(0);
    }
    close(ls);
    return pid;
}

static void fake_stop(pid_t pid)
{
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    unlink(path);
}

static int open_err(int timeout_ms)
{
    struct kpu_client_opts o = {0};
    kpu_client_t *c = (kpu_client_t *)0x1;
    int r;
    o.socket_path = path;
    o.timeout_ms = timeout_ms;
    r = kpu_client_open(&o, &c);
    ck_assert_ptr_eq(c, (kpu_client_t *)0x1); /* untouched on failure */
    return r;
}

START_TEST(test_open_failures)
{
    pid_t pid;

    ck_assert_int_eq(open_err(0), KPU_CLIENT_ECONNECT); /* no socket file */
    pid = fake_start(FAKE_MAJOR2);
    ck_assert_int_eq(open_err(0), KPU_CLIENT_EVERSION);
    ck_assert_ptr_nonnull(strstr(kpu_client_open_error_text(), "v2"));
    fake_stop(pid);
    pid = fake_start(FAKE_GARBAGE);
    ck_assert_int_eq(open_err(0), KPU_CLIENT_EPROTO);
    fake_stop(pid);
    pid = fake_start(FAKE_HANGUP);
    ck_assert_int_eq(open_err(0), KPU_CLIENT_ECLOSED);
    fake_stop(pid);
    pid = fake_start(FAKE_SILENT);
    ck_assert_int_eq(open_err(100), KPU_CLIENT_ETIMEDOUT);
    fake_stop(pid);
    pid = fake_start(FAKE_LIMIT);
    ck_assert_int_eq(open_err(0), KPU_CLIENT_ELIMIT);
    ck_assert_str_eq(kpu_client_open_error_hint(), "close some");
    fake_stop(pid);
}
END_TEST

START_TEST(test_argument_errors_and_names)
{
    struct kpu_client_opts o = {0};
    char longpath[200], buf[8];
    kpu_client_t *c;
    static const int codes[] = {
#define XX(name, value, text) value,
        KPU_CLIENT_ERRNO_MAP(XX)
#undef XX
    };

    ck_assert_int_eq(kpu_client_open(NULL, NULL), KPU_CLIENT_EINVAL);
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = 0;
    o.socket_path = longpath;
    ck_assert_int_eq(kpu_client_open(&o, &c), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_default_socket(NULL, 0), KPU_CLIENT_EINVAL);
    setenv("KPUD_SOCKET", "/some/where/long.sock", 1);
    ck_assert_int_eq(kpu_client_default_socket(buf, sizeof(buf)), KPU_CLIENT_ETOOBIG);
    {
        char p[128];
        ck_assert_int_eq(kpu_client_default_socket(p, sizeof(p)), 0);
        ck_assert_str_eq(p, "/some/where/long.sock");
    }
    unsetenv("KPUD_SOCKET");
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_int_lt(codes[i], 0);
        ck_assert_str_ne(kpu_client_strerror(codes[i]), "unknown error");
        ck_assert_str_ne(kpu_client_err_name(codes[i]), "UNKNOWN");
        for (size_t j = 0; j < i; j++)
            ck_assert_int_ne(codes[i], codes[j]);
    }
    ck_assert_str_eq(kpu_client_err_name(KPU_CLIENT_ETIMEDOUT), "TIMEDOUT");
    ck_assert_str_eq(kpu_client_strerror(-9999), "unknown error");
    ck_assert_uint_eq(kpu_client_version(), KPU_CLIENT_VERSION_HEX);
    ck_assert_str_eq(kpu_client_version_string(), KPU_CLIENT_VERSION_STRING);
    /* NULL clients and arguments give EINVAL, never a crash. */
    ck_assert_int_eq(kpu_client_ping(NULL, NULL, NULL), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_list_devices(NULL, NULL, NULL), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_get_fd(NULL), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_process(NULL), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_subscribe(NULL, NULL, NULL, NULL, NULL, NULL), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_last_reply_json(NULL, NULL), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_event_json(NULL, NULL), KPU_CLIENT_EINVAL);
    ck_assert_int_eq(kpu_client_row_json(NULL, NULL), KPU_CLIENT_EINVAL);
    kpu_client_close(NULL);
    kpu_client_free(NULL);
    kpu_client_query_iter_close(NULL);
}
END_TEST

START_TEST(test_disconnected_without_reconnect)
{
    pid_t pid = server_start(0);
    kpu_client_t *c = client_open();
    struct kpu_client_stats st;
    int64_t deadline = now_ms() + WAIT_MS;
    int r;

    server_stop(pid);
    /* The hang-up shows in process(); afterwards every call says so. */
    do {
        r = kpu_client_process(c);
        ck_assert_msg(now_ms() < deadline, "hang-up not noticed");
        if (r == 0)
            poll(NULL, 0, 5);
    } while (r == 0);
    ck_assert(r == KPU_CLIENT_ECLOSED || r == KPU_CLIENT_EIO);
    ck_assert_int_eq(kpu_client_process(c), KPU_CLIENT_ENOTCONN);
    ck_assert_int_eq(kpu_client_get_fd(c), KPU_CLIENT_ENOTCONN);
    ck_assert_int_eq(kpu_client_get_stats(c, &st), KPU_CLIENT_ENOTCONN);
    ck_assert_ptr_null(kpu_client_server_info(c));
    ck_assert_int_eq(kpu_client_run(c, 10), KPU_CLIENT_ENOTCONN);
    kpu_client_close(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client");
    TCase *t = tcase_create("client");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_sync_basics);
    tcase_add_test(t, test_query_paging);
    tcase_add_test(t, test_sync_admin_calls);
    tcase_add_test(t, test_subscribe_process);
    tcase_add_test(t, test_reconnect_resubscribe);
    tcase_add_test(t, test_timeout_then_late_reply_ignored);
    tcase_add_test(t, test_open_failures);
    tcase_add_test(t, test_argument_errors_and_names);
    tcase_add_test(t, test_disconnected_without_reconnect);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
