/* SPDX-License-Identifier: MIT */
/*
 * The sim transport: kpu-agent-sim in a child process, connected through a socketpair
 * that libuv creates (UV_CREATE_PIPE) and the child sees as fd 3. When the child exits it
 * is restarted with exponential backoff; reset kills it (SIGKILL, like pulling power) and
 * the restart path brings it back.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "transport.h"

#define SIM_MAX_ARGS 64
#define SIM_WRITE_QUEUE_MAX (256u * 1024u) /* bytes pending before writes are refused */
#define SIM_STABLE_MS 10000u               /* a child this old resets the backoff */

struct sim {
    struct kpud_transport t;
    char *argv[SIM_MAX_ARGS + 4];
    uv_process_t proc;
    uv_pipe_t pipe;
    uv_timer_t restart;
    int proc_alive; /* proc handle is active (child running) */
    int pipe_open;  /* pipe handle initialised and not closed */
    int closing;
    int handles_open; /* handles to wait for at close */
    uint32_t backoff_min, backoff_max, backoff;
    uint64_t started_ms;
    size_t queued; /* bytes in pending writes */
    uint8_t rbuf[16384];
};

struct sim_write {
    uv_write_t req;
    struct sim *s;
    size_t len;
    uint8_t data[];
};

static void sim_spawn(struct sim *s);

static void free_if_done(struct sim *s)
{
    if (s->closing && s->handles_open == 0) {
        if (s->t.closed)
            s->t.closed(&s->t);
        for (int i = 0; s->argv[i]; i++)
            free(s->argv[i]);
        free(s);
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct sim *s = h->data;
    s->handles_open--;
    free_if_done(s);
}

static void link_down(struct sim *s, const char *reason)
{
    if (s->t.up) {
        s->t.up = 0;
        if (s->t.link_down)
            s->t.link_down(&s->t, reason);
    }
}

static void restart_cb(uv_timer_t *tm);

static void schedule_restart(struct sim *s)
{
    if (s->closing)
        return;
    log_info("sim: restarting the agent in %u ms", s->backoff);
    uv_timer_start(&s->restart, restart_cb, s->backoff, 0);
    s->backoff = s->backoff * 2 > s->backoff_max ? s->backoff_max : s->backoff * 2;
}

static void pipe_closed(uv_handle_t *h)
{
    struct sim *s = h->data;
    s->handles_open--;
    s->pipe_open = 0;
    free_if_done(s);
}

static void close_pipe(struct sim *s)
{
    if (s->pipe_open && !uv_is_closing((uv_handle_t *)&s->pipe))
        uv_close((uv_handle_t *)&s->pipe, pipe_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sim *s = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)s->rbuf, sizeof(s->rbuf));
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct sim *s = st->data;

    if (n > 0) {
        if (s->t.data)
            s->t.data(&s->t, (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    if (n < 0) {
        /* EOF or error: the child closed its end or died; exit_cb restarts it. */
        uv_read_stop(st);
        link_down(s, n == UV_EOF ? "agent closed the link" : uv_strerror((int)n));
        close_pipe(s);
    }
}

static void exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct sim *s = p->data;
    char why[96];

    s->proc_alive = 0;
    if (sig)
        snprintf(why, sizeof(why), "kpu-agent-sim killed by signal %d", sig);
    else
        snprintf(why, sizeof(why), "kpu-agent-sim exited with status %lld", (long long)status);
    if (!s->closing)
        log_warn("sim: %s", why);
    link_down(s, why);
    close_pipe(s);
    uv_close((uv_handle_t *)p, handle_closed);
    if (s->closing)
        return;
    if (uv_now(s->t.loop) - s->started_ms >= SIM_STABLE_MS)
        s->backoff = s->backoff_min;
    schedule_restart(s);
}

static void restart_cb(uv_timer_t *tm)
{
    struct sim *s = tm->data;
    if (!s->closing && !s->proc_alive)
        sim_spawn(s);
}

static void sim_spawn(struct sim *s)
{
    uv_process_options_t o;
    uv_stdio_container_t stdio[4];
    int r;

    if (s->pipe_open) {
        /* The old pipe is still closing; try again shortly. */
        uv_timer_start(&s->restart, restart_cb, 10, 0);
        return;
    }
    uv_pipe_init(s->t.loop, &s->pipe, 0);
    s->pipe.data = s;
    s->pipe_open = 1;
    s->handles_open++;
    memset(&o, 0, sizeof(o));
    stdio[0].flags = UV_IGNORE;
    /* The agent's diagnostics go where kpud's go. */
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 2;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&s->pipe;
    o.file = s->argv[0];
    o.args = s->argv;
    o.stdio = stdio;
    o.stdio_count = 4;
    o.exit_cb = exit_cb;
    s->proc.data = s;
    r = uv_spawn(s->t.loop, &s->proc, &o);
    if (r < 0) {
        log_err("sim: cannot start %s: %s", s->argv[0], uv_strerror(r));
        /* A failed spawn still initialised the handle: close it. */
        s->handles_open++;
        uv_close((uv_handle_t *)&s->proc, handle_closed);
        close_pipe(s);
        schedule_restart(s);
        return;
    }
    s->handles_open++;
    s->proc_alive = 1;
    s->started_ms = uv_now(s->t.loop);
    s->queued = 0;
    uv_read_start((uv_stream_t *)&s->pipe, alloc_cb, read_cb);
    log_info("sim: started %s (pid %d)", s->argv[0], s->proc.pid);
    s->t.up = 1;
    if (s->t.link_up)
        s->t.link_up(&s->t);
}

static int sim_start(struct kpud_transport *t)
{
    struct sim *s = (struct sim *)t;
    sim_spawn(s);
    return 0;
}

static void write_cb(uv_write_t *req, int status)
{
    struct sim_write *w = (struct sim_write *)req;
    w->s->queued -= w->len;
    free(w);
    (void)status; /* a failed write shows up as EOF/exit on the read side */
}

static int sim_write(struct kpud_transport *t, const uint8_t *buf, size_t len)
{
    struct sim *s = (struct sim *)t;
    struct sim_write *w;
    uv_buf_t b;
    int r;

    if (!t->up || !s->pipe_open)
        return -ENOTCONN;
    b = uv_buf_init((char *)buf, (unsigned)len);
    /* Most writes go straight through; only the rest is copied and queued. */
    if (s->queued == 0) {
        r = uv_try_write((uv_stream_t *)&s->pipe, &b, 1);
        if (r == (int)len)
            return 0;
        if (r > 0) {
            buf += r;
            len -= (size_t)r;
        } else if (r != UV_EAGAIN) {
            return -ENOTCONN;
        }
    }
    if (s->queued + len > SIM_WRITE_QUEUE_MAX)
        return -ENOBUFS;
    w = malloc(sizeof(*w) + len);
    if (!w)
        return -ENOMEM;
    w->s = s;
    w->len = len;
    memcpy(w->data, buf, len);
    b = uv_buf_init((char *)w->data, (unsigned)len);
    r = uv_write(&w->req, (uv_stream_t *)&s->pipe, &b, 1, write_cb);
    if (r < 0) {
        free(w);
        return -ENOTCONN;
    }
    s->queued += len;
    return 0;
}

static int sim_reset(struct kpud_transport *t, int to_isp)
{
    struct sim *s = (struct sim *)t;
    (void)to_isp; /* a simulated board has no ISP loader */
    if (s->proc_alive) {
        log_info("sim: reset (killing pid %d)", s->proc.pid);
        uv_process_kill(&s->proc, SIGKILL);
        s->backoff = s->backoff_min; /* a reset we asked for restarts promptly */
    }
    return 0;
}

static int sim_set_baud(struct kpud_transport *t, uint32_t baud)
{
    (void)t;
    (void)baud;
    return 0; /* a socketpair has no line rate */
}

static void sim_close(struct kpud_transport *t)
{
    struct sim *s = (struct sim *)t;

    s->closing = 1;
    uv_timer_stop(&s->restart);
    uv_close((uv_handle_t *)&s->restart, handle_closed);
    if (s->proc_alive)
        uv_process_kill(&s->proc, SIGTERM); /* exit_cb closes the process handle */
    close_pipe(s);
    free_if_done(s);
}

static const struct kpud_transport_ops sim_ops = {
    .kind = "sim",
    .start = sim_start,
    .write = sim_write,
    .reset = sim_reset,
    .set_baud = sim_set_baud,
    .close = sim_close,
};

int kpud_transport_sim_new(uv_loop_t *loop, const struct kpud_sim_opts *opts,
                           struct kpud_transport **ret)
{
    struct sim *s;
    int n = 0;

    if (!opts || !opts->agent_path)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->t.ops = &sim_ops;
    s->t.loop = loop;
    s->argv[n++] = strdup(opts->agent_path);
    s->argv[n++] = strdup("serve");
    s->argv[n++] = strdup("--fd");
    s->argv[n++] = strdup("3");
    for (int i = 0; opts->args && opts->args[i] && n < SIM_MAX_ARGS + 3; i++)
        s->argv[n++] = strdup(opts->args[i]);
    for (int i = 0; i < n; i++) {
        if (!s->argv[i]) {
            for (int k = 0; k < n; k++)
                free(s->argv[k]);
            free(s);
            return -ENOMEM;
        }
    }
    {
        const char *base = strrchr(opts->agent_path, '/');
        snprintf(s->t.path, sizeof(s->t.path), "sim:%s", base ? base + 1 : opts->agent_path);
    }
    s->backoff_min = opts->backoff_min_ms ? opts->backoff_min_ms : 200;
    s->backoff_max = opts->backoff_max_ms ? opts->backoff_max_ms : 5000;
    s->backoff = s->backoff_min;
    uv_timer_init(loop, &s->restart);
    s->restart.data = s;
    s->handles_open = 1;
    *ret = &s->t;
    return 0;
}
