/* SPDX-License-Identifier: MIT */
/*
 * The replay transport: plays the agent-to-host side of a .kcap capture into the session
 * as if a board sent it, at the recorded pace (scaled by speed) or as fast as possible.
 * Host-to-agent bytes are accepted and discarded. Markers in the capture ("link down",
 * "link up") replay as link state changes, so an unplug mid-frame replays faithfully.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kcap.h"
#include "log.h"
#include "transport.h"

struct replay {
    struct kpud_transport t;
    uint8_t *file;
    size_t size;
    struct kcap_reader rd;
    double speed;
    int loop_forever;
    uv_timer_t timer;
    uv_idle_t idle; /* "more records right away": runs once per loop turn, after I/O */
    int open_handles;
    uint64_t t0_ms; /* loop time when the capture (re)started */
    struct kcap_record pending;
    int have_pending;
    int closing;
    int finished;
};

static void replay_step(uv_timer_t *tm);

static void replay_idle(uv_idle_t *h)
{
    struct replay *s = h->data;
    uv_idle_stop(h);
    replay_step(&s->timer);
}

static void rewind_capture(struct replay *s)
{
    char err[128];
    /* Validated at creation, so this cannot fail now. */
    kcap_reader_open(&s->rd, s->file, s->size, err, sizeof(err));
    s->t0_ms = uv_now(s->t.loop);
    s->have_pending = 0;
}

static void go_down(struct replay *s, const char *reason)
{
    if (s->t.up) {
        s->t.up = 0;
        if (s->t.link_down)
            s->t.link_down(&s->t, reason);
    }
}

static void go_up(struct replay *s)
{
    if (!s->t.up) {
        s->t.up = 1;
        if (s->t.link_up)
            s->t.link_up(&s->t);
    }
}

/* Deliver every record that is due, then sleep until the next one. */
static void replay_step(uv_timer_t *tm)
{
    struct replay *s = tm->data;
    int budget = 256; /* records per loop turn, so a fast replay does not starve the loop */

    while (!s->closing && budget-- > 0) {
        if (!s->have_pending) {
            int r = kcap_reader_next(&s->rd, &s->pending);
            if (r <= 0) {
                if (r < 0 || s->rd.truncated)
                    log_warn("replay %s: capture %s", s->t.path,
                             r < 0 ? "has a bad record; stopping there"
                                   : "ends in a partial record");
                if (s->loop_forever) {
                    rewind_capture(s);
                    continue;
                }
                s->finished = 1;
                go_down(s, "end of capture");
                if (s->t.ended)
                    s->t.ended(&s->t);
                return;
            }
            s->have_pending = 1;
        }
        if (s->speed > 0) {
            uint64_t due = s->t0_ms + (uint64_t)((double)s->pending.t_us / 1000.0 / s->speed);
            uint64_t now = uv_now(s->t.loop);
            if (due > now) {
                uv_timer_start(&s->timer, replay_step, due - now, 0);
                return;
            }
        }
        s->have_pending = 0;
        switch (s->pending.dir) {
        case KCAP_AGENT_TO_HOST:
            go_up(s);
            if (s->t.data)
                s->t.data(&s->t, s->pending.data, s->pending.len);
            break;
        case KCAP_MARKER:
            if (s->pending.len >= 9 && memcmp(s->pending.data, "link down", 9) == 0)
                go_down(s, "link down in capture");
            else if (s->pending.len >= 7 && memcmp(s->pending.data, "link up", 7) == 0)
                go_up(s);
            break;
        case KCAP_HOST_TO_AGENT:
            break; /* what the host said then; the live session says its own */
        }
    }
    /* Not a 0 ms timer: libuv < 1.45 runs a timer re-armed with 0 from its own callback
     * again in the same timers phase, so a fast replay would never let the loop poll its
     * sockets (clients, the store's thread-pool completions) at all. An idle handle runs
     * once per loop turn and makes that turn's poll non-blocking. */
    if (!s->closing)
        uv_idle_start(&s->idle, replay_idle);
}

static int replay_start(struct kpud_transport *t)
{
    struct replay *s = (struct replay *)t;
    rewind_capture(s);
    go_up(s);
    uv_timer_start(&s->timer, replay_step, 0, 0);
    return 0;
}

static int replay_write(struct kpud_transport *t, const uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
    return t->up ? 0 : -ENOTCONN;
}

static int replay_reset(struct kpud_transport *t, int to_isp)
{
    (void)t;
    (void)to_isp;
    return -ENOTSUP;
}

static int replay_set_baud(struct kpud_transport *t, uint32_t baud)
{
    (void)t;
    (void)baud;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    struct replay *s = h->data;
    if (--s->open_handles > 0)
        return;
    if (s->t.closed)
        s->t.closed(&s->t);
    free(s->file);
    free(s);
}

static void replay_close(struct kpud_transport *t)
{
    struct replay *s = (struct replay *)t;
    s->closing = 1;
    uv_timer_stop(&s->timer);
    uv_idle_stop(&s->idle);
    uv_close((uv_handle_t *)&s->timer, timer_closed);
    uv_close((uv_handle_t *)&s->idle, timer_closed);
}

static const struct kpud_transport_ops replay_ops = {
    .kind = "replay",
    .start = replay_start,
    .write = replay_write,
    .reset = replay_reset,
    .set_baud = replay_set_baud,
    .close = replay_close,
};

int kpud_transport_replay_new(uv_loop_t *loop, const struct kpud_replay_opts *opts,
                              struct kpud_transport **ret)
{
    struct replay *s;
    char err[128];
    int r;

    if (!opts || !opts->path)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    r = kcap_load_file(opts->path, &s->file, &s->size);
    if (r < 0) {
        log_err("replay %s: %s", opts->path, strerror(-r));
        free(s);
        return r;
    }
    r = kcap_reader_open(&s->rd, s->file, s->size, err, sizeof(err));
    if (r < 0) {
        log_err("replay %s: %s", opts->path, err);
        free(s->file);
        free(s);
        return r;
    }
    s->t.ops = &replay_ops;
    s->t.loop = loop;
    snprintf(s->t.path, sizeof(s->t.path), "%s", opts->path);
    s->speed = opts->speed < 0 ? 0 : opts->speed;
    s->loop_forever = opts->loop;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    s->open_handles = 2;
    *ret = &s->t;
    return 0;
}
