/* SPDX-License-Identifier: MIT */
/*
 * Example: live detections inside a libuv program: a uv_poll_t on the client's fd and a
 * uv_timer_t for its deadlines. The fd changes when the library reconnects, so the poll
 * handle is re-armed after every kpu_client_process().
 *   watch_libuv [count]
 * Build: cc watch_libuv.c $(pkg-config --cflags --libs kpu-client libuv)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, poll */
#include <kpu/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

struct app {
    kpu_client_t *client;
    uv_loop_t *loop;
    uv_poll_t poll;
    int poll_fd; /* fd the poll handle watches, -1 when none */
    int poll_active;
    uv_timer_t timer;
    long left;
    int err;
};

static void rearm(struct app *a);

static void close_poll_cb(uv_handle_t *h)
{
    struct app *a = h->data;
    a->poll_active = 0;
    rearm(a);
}

static void on_event(kpu_client_t *client, const struct kpu_client_event *ev, void *user_data)
{
    struct app *a = user_data;
    (void)client;
    if (ev->type != KPU_CLIENT_EVENT_DETECTION)
        return;
    printf("%s seq %u: %zu boxes\n", ev->detection->device, ev->detection->frame_seq,
           ev->detection->n_boxes);
    fflush(stdout);
    if (--a->left <= 0)
        uv_stop(a->loop);
}

static void process(struct app *a)
{
    int r = kpu_client_process(a->client);
    if (r < 0) {
        a->err = r;
        uv_stop(a->loop);
        return;
    }
    rearm(a);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    process(h->data);
}

static void on_timer(uv_timer_t *t)
{
    process(t->data);
}

/* Watch the current fd (re-creating the poll handle when it changed) and set the timer. */
static void rearm(struct app *a)
{
    int fd = kpu_client_get_fd(a->client);
    int next = kpu_client_next_timeout_ms(a->client);

    if (a->poll_active && a->poll_fd != fd) {
        if (!uv_is_closing((uv_handle_t *)&a->poll))
            uv_close((uv_handle_t *)&a->poll, close_poll_cb);
        return; /* close_poll_cb re-arms */
    }
    if (!a->poll_active && fd >= 0) {
        uv_poll_init(a->loop, &a->poll, fd);
        a->poll.data = a;
        a->poll_fd = fd;
        a->poll_active = 1;
    }
    if (a->poll_active)
        uv_poll_start(&a->poll, UV_READABLE | (kpu_client_want_write(a->client) ? UV_WRITABLE : 0),
                      on_poll);
    if (next >= 0)
        uv_timer_start(&a->timer, on_timer, (uint64_t)next, 0);
    else
        uv_timer_stop(&a->timer);
}

int main(int argc, char **argv)
{
    struct kpu_client_opts opts = {0};
    struct app a = {0};
    int r;

    a.loop = uv_default_loop();
    a.left = argc > 1 ? strtol(argv[1], NULL, 10) : 10;
    a.poll_fd = -1;
    opts.client_name = "watch_libuv";
    opts.reconnect = 1;
    r = kpu_client_open(&opts, &a.client);
    if (r < 0) {
        fprintf(stderr, "kpud: %s\n", kpu_client_strerror(r));
        return 2;
    }
    r = kpu_client_subscribe(a.client, NULL, NULL, on_event, &a, NULL);
    if (r < 0) {
        fprintf(stderr, "subscribe: %s\n", kpu_client_strerror(r));
        kpu_client_close(a.client);
        return 1;
    }
    uv_timer_init(a.loop, &a.timer);
    a.timer.data = &a;
    rearm(&a);
    uv_run(a.loop, UV_RUN_DEFAULT);
    if (a.poll_active && !uv_is_closing((uv_handle_t *)&a.poll))
        uv_close((uv_handle_t *)&a.poll, NULL);
    uv_close((uv_handle_t *)&a.timer, NULL);
    uv_run(a.loop, UV_RUN_DEFAULT);
    kpu_client_close(a.client);
    if (a.err)
        fprintf(stderr, "watch: %s\n", kpu_client_strerror(a.err));
    return a.err ? 1 : 0;
}
