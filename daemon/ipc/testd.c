/* SPDX-License-Identifier: MIT */
/*
 * kpud-ipc-testd: the IPC server with the deterministic test backend, as a process, for
 * tests that exec real clients (kpuctl golden tests, the examples). Not installed.
 *
 *   kpud-ipc-testd --socket PATH [--publish-ms N] [--boxes N] [--no-everyone-admin]
 *                  [--reader-gid G] [--admin-gid G] [--delay-ms N]
 *
 * Prints "ready" on stdout once the socket listens. With --publish-ms it publishes a
 * detection of TB_DEVICE_A every N ms while someone is subscribed; frame_seq restarts
 * at 1 whenever nobody is, so a lone watcher always sees the same sequence. SIGTERM or
 * SIGINT stops it cleanly. Meant for one watcher at a time: a new connection restarts
 * the sequence.
 */
#include "ipc_server.h"
#include "test_backend.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TESTD_MAX_BOXES 8u

struct testd {
    struct kpud_ipc_server *srv;
    struct tb *tb;
    uv_timer_t pub;
    uv_signal_t sigterm, sigint;
    uint32_t seq;
    uint64_t connections; /* accepted so far, at the last tick */
    unsigned boxes;
};

static void on_publish(uv_timer_t *t)
{
    struct testd *d = t->data;
    Kpu__Ipc__V1__DetectionEvent ev;
    Kpu__Ipc__V1__Box boxes[TESTD_MAX_BOXES], *ptrs[TESTD_MAX_BOXES];
    struct kpud_ipc_stats st;

    /* Every new client sees frame_seq start at 1 (the golden tests rely on it): a new
     * connection, or nobody subscribed, restarts the sequence. */
    kpud_ipc_server_stats(d->srv, &st);
    if (st.connections != d->connections || kpud_ipc_server_subscriptions(d->srv) == 0) {
        d->connections = st.connections;
        d->seq = 0;
        if (kpud_ipc_server_subscriptions(d->srv) == 0)
            return;
    }
    tb_make_detection(&ev, boxes, ptrs, d->boxes, TB_DEVICE_A, ++d->seq);
    kpud_ipc_publish_detection(d->srv, &ev);
}

static void on_closed(void *arg)
{
    (void)arg;
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct testd *d = s->data;
    (void)signum;
    uv_timer_stop(&d->pub);
    uv_close((uv_handle_t *)&d->pub, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    kpud_ipc_server_close(d->srv, on_closed, NULL);
}

int main(int argc, char **argv)
{
    static const char *const features[] = {"snapshot", "record", "test-backend", NULL};
    struct kpud_ipc_opts o;
    struct testd d;
    uv_loop_t *loop = uv_default_loop();
    unsigned publish_ms = 0, delay_ms = 0;
    int r;

    memset(&o, 0, sizeof(o));
    memset(&d, 0, sizeof(d));
    o.listen_fd = -1;
    o.reader_gid = (gid_t)-1;
    o.admin_gid = (gid_t)-1;
    o.everyone_admin = 1;
    o.server_version = "0.1.0-testd";
    o.features = features;
    d.boxes = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-everyone-admin") == 0) {
            o.everyone_admin = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "kpud-ipc-testd: %s needs a value\n", a);
            return 1;
        }
        i++;
        if (strcmp(a, "--socket") == 0)
            o.path = v;
        else if (strcmp(a, "--publish-ms") == 0)
            publish_ms = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--boxes") == 0)
            d.boxes = (unsigned)strtoul(v, NULL, 10) % (TESTD_MAX_BOXES + 1);
        else if (strcmp(a, "--reader-gid") == 0)
            o.reader_gid = (gid_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--admin-gid") == 0)
            o.admin_gid = (gid_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--delay-ms") == 0)
            delay_ms = (unsigned)strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "kpud-ipc-testd: unknown option %s\n", a);
            return 1;
        }
    }
    if (!o.path) {
        fprintf(stderr, "usage: kpud-ipc-testd --socket PATH [options]\n");
        return 1;
    }
    d.tb = tb_new(loop);
    if (!d.tb)
        return 1;
    tb_set_delay(d.tb, delay_ms);
    o.backend = tb_backend();
    o.backend_ctx = d.tb;
    r = kpud_ipc_server_open(loop, &o, &d.srv);
    if (r < 0) {
        fprintf(stderr, "kpud-ipc-testd: %s: %s\n", o.path, strerror(-r));
        return 1;
    }
    tb_set_server(d.tb, d.srv);
    uv_timer_init(loop, &d.pub);
    d.pub.data = &d;
    if (publish_ms)
        uv_timer_start(&d.pub, on_publish, publish_ms, publish_ms);
    uv_signal_init(loop, &d.sigterm);
    uv_signal_init(loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    printf("ready\n");
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    tb_free(d.tb);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
