/* SPDX-License-Identifier: MIT */
/*
 * The tty transport: a serial device driven through the kernel (/dev/ttyUSB* from the
 * ch341 or ftdi_sio driver, /dev/ttyACM*, or a pty such as the one kpu-agent-sim --pty
 * makes). Raw 8N1, exclusive (TIOCEXCL and flock), non-blocking I/O watched by uv_poll.
 * When the device vanishes (unplug: read returns EIO/ENXIO or POLLHUP) the link goes down
 * and the path is reopened with backoff. Reset pulses DTR/RTS without blocking the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "transport.h"
#include "tty_line.h"

#define TTY_WRITE_QUEUE_MAX (64u * 1024u)
#define TTY_RESET_PULSE_MS 100u /* reset held long enough for the K210's POR logic */

struct tty {
    struct kpud_transport t;
    char *path;
    uint32_t baud;
    int fd;
    uv_poll_t poll;
    int poll_active;  /* poll handle initialised and not closing */
    uv_timer_t timer; /* reopen backoff */
    uv_timer_t pulse; /* DTR/RTS reset sequence */
    int pulse_step;
    int pulse_isp;
    int closing;
    int handles_open;
    uint32_t backoff_min, backoff_max, backoff;
    uint8_t wq[TTY_WRITE_QUEUE_MAX]; /* pending output, ring-free: compacted on write */
    size_t wq_len;
    uint8_t rbuf[4096];
    int logged_open_error; /* log each distinct reopen failure once */
};

static void tty_reopen(struct tty *s);

static void reopen_cb(uv_timer_t *tm)
{
    tty_reopen(tm->data);
}

static void free_if_done(struct tty *s)
{
    if (s->closing && s->handles_open == 0) {
        if (s->t.closed)
            s->t.closed(&s->t);
        free(s->path);
        free(s);
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct tty *s = h->data;
    s->handles_open--;
    free_if_done(s);
}

static void poll_closed(uv_handle_t *h)
{
    struct tty *s = h->data;
    s->handles_open--;
    if (s->fd >= 0) {
        close(s->fd); /* after uv_close: libuv must not watch a closed fd */
        s->fd = -1;
    }
    if (!s->closing) {
        uv_timer_start(&s->timer, reopen_cb, s->backoff, 0);
        s->backoff = s->backoff * 2 > s->backoff_max ? s->backoff_max : s->backoff * 2;
    }
    free_if_done(s);
}

static void drop_link(struct tty *s, const char *reason)
{
    if (s->t.up) {
        s->t.up = 0;
        log_warn("tty %s: link down: %s", s->path, reason);
        if (s->t.link_down)
            s->t.link_down(&s->t, reason);
    }
    s->wq_len = 0;
    if (s->poll_active) {
        s->poll_active = 0;
        uv_poll_stop(&s->poll);
        uv_close((uv_handle_t *)&s->poll, poll_closed);
    }
}

static void flush_queue(struct tty *s)
{
    while (s->wq_len) {
        ssize_t n = write(s->fd, s->wq, s->wq_len);
        if (n > 0) {
            memmove(s->wq, s->wq + n, s->wq_len - (size_t)n);
            s->wq_len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        drop_link(s, n < 0 ? strerror(errno) : "write returned 0");
        return;
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct tty *s = h->data;

    if (status < 0) {
        drop_link(s, uv_strerror(status));
        return;
    }
    if (events & UV_READABLE) {
        for (;;) {
            ssize_t n = read(s->fd, s->rbuf, sizeof(s->rbuf));
            if (n > 0) {
                if (s->t.data)
                    s->t.data(&s->t, s->rbuf, (size_t)n);
                if (!s->poll_active)
                    return; /* the callback closed or reset us */
                continue;
            }
            /* 0 is "nothing now" on a tty (VMIN 0 semantics of some drivers); a vanished
             * device reports EIO/ENXIO/ENODEV or POLLHUP. */
            if (n == 0 || errno == EAGAIN || errno == EINTR)
                break;
            drop_link(s, strerror(errno));
            return;
        }
    }
    if (events & UV_DISCONNECT) {
        drop_link(s, "device hung up");
        return;
    }
    if (s->poll_active && (events & UV_WRITABLE))
        flush_queue(s);
    if (s->poll_active)
        uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT | (s->wq_len ? UV_WRITABLE : 0),
                      poll_cb);
}

static void tty_reopen(struct tty *s)
{
    int fd, r;

    if (s->closing || s->poll_active || s->fd >= 0)
        return;
    fd = open(s->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0 && ioctl(fd, TIOCEXCL) < 0 && errno != ENOTTY) {
        r = errno;
        close(fd);
        fd = -1;
        errno = r;
    }
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno;
        close(fd);
        fd = -1;
        errno = r == EWOULDBLOCK ? EBUSY : r;
    }
    if (fd >= 0 && (r = kpud_tty_set_line(fd, s->baud)) < 0) {
        close(fd);
        fd = -1;
        errno = -r;
    }
    if (fd < 0) {
        if (s->logged_open_error != errno)
            log_warn("tty %s: cannot open: %s (retrying)", s->path, strerror(errno));
        s->logged_open_error = errno;
        uv_timer_start(&s->timer, reopen_cb, s->backoff, 0);
        s->backoff = s->backoff * 2 > s->backoff_max ? s->backoff_max : s->backoff * 2;
        return;
    }
    s->logged_open_error = 0;
    s->backoff = s->backoff_min;
    s->fd = fd;
    /* Drop whatever sat in the kernel buffer from before we opened. */
    kpud_tty_flush(fd);
    uv_poll_init(s->t.loop, &s->poll, fd);
    s->poll.data = s;
    s->poll_active = 1;
    s->handles_open++;
    uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, poll_cb);
    log_info("tty %s: open at %u baud", s->path, s->baud);
    s->t.up = 1;
    if (s->t.link_up)
        s->t.link_up(&s->t);
}

static int tty_start(struct kpud_transport *t)
{
    tty_reopen((struct tty *)t);
    return 0;
}

static int tty_write(struct kpud_transport *t, const uint8_t *buf, size_t len)
{
    struct tty *s = (struct tty *)t;

    if (!t->up || s->fd < 0)
        return -ENOTCONN;
    if (s->wq_len == 0) {
        ssize_t n = write(s->fd, buf, len);
        if (n == (ssize_t)len)
            return 0;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            drop_link(s, strerror(errno));
            return -ENOTCONN;
        }
    }
    if (s->wq_len + len > sizeof(s->wq))
        return -ENOBUFS;
    memcpy(s->wq + s->wq_len, buf, len);
    s->wq_len += len;
    uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT | UV_WRITABLE, poll_cb);
    return 0;
}

/* Modem-control lines; on a pty these ioctls fail and reset is a no-op. */
static void set_lines(struct tty *s, int dtr, int rts)
{
    int bits = TIOCM_DTR;
    ioctl(s->fd, dtr ? TIOCMBIS : TIOCMBIC, &bits);
    bits = TIOCM_RTS;
    ioctl(s->fd, rts ? TIOCMBIS : TIOCMBIC, &bits);
}

/*
 * The generic Sipeed wiring (Maix Dock/Bit with CH340, kflash's default "dan" sequence,
 * shared/research/usb-bridges.md): RTS drives the K210's RST through an inverter and DTR
 * its IO16 boot pin. Asserting RTS holds the chip in reset; releasing it with DTR asserted
 * boots the ROM ISP, with DTR released boots the application.
 */
static void pulse_cb(uv_timer_t *tm)
{
    struct tty *s = tm->data;

    if (s->fd < 0)
        return;
    switch (s->pulse_step++) {
    case 0:
        set_lines(s, s->pulse_isp, 1); /* hold in reset, boot pin set for the mode */
        uv_timer_start(&s->pulse, pulse_cb, TTY_RESET_PULSE_MS, 0);
        break;
    case 1:
        set_lines(s, s->pulse_isp, 0); /* release reset: the ROM samples IO16 */
        uv_timer_start(&s->pulse, pulse_cb, TTY_RESET_PULSE_MS, 0);
        break;
    default:
        set_lines(s, 0, 0);
        break;
    }
}

static int tty_reset(struct kpud_transport *t, int to_isp)
{
    struct tty *s = (struct tty *)t;
    if (s->fd < 0)
        return -ENOTCONN;
    s->pulse_step = 0;
    s->pulse_isp = to_isp;
    log_info("tty %s: DTR/RTS reset%s", s->path, to_isp ? " into ISP" : "");
    uv_timer_start(&s->pulse, pulse_cb, 0, 0);
    return 0;
}

static int tty_set_baud(struct kpud_transport *t, uint32_t baud)
{
    struct tty *s = (struct tty *)t;
    int r;

    if (baud < 300 || baud > 4000000)
        return -EINVAL;
    s->baud = baud;
    if (s->fd < 0)
        return 0;
    kpud_tty_drain(s->fd); /* pending output goes at the old rate */
    r = kpud_tty_set_line(s->fd, baud);
    return r;
}

static void tty_close(struct kpud_transport *t)
{
    struct tty *s = (struct tty *)t;

    s->closing = 1;
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->pulse);
    uv_close((uv_handle_t *)&s->timer, handle_closed);
    uv_close((uv_handle_t *)&s->pulse, handle_closed);
    if (s->poll_active) {
        s->poll_active = 0;
        uv_poll_stop(&s->poll);
        uv_close((uv_handle_t *)&s->poll, poll_closed);
    }
    free_if_done(s);
}

static const struct kpud_transport_ops tty_ops = {
    .kind = "tty",
    .start = tty_start,
    .write = tty_write,
    .reset = tty_reset,
    .set_baud = tty_set_baud,
    .close = tty_close,
};

int kpud_transport_tty_new(uv_loop_t *loop, const struct kpud_tty_opts *opts,
                           struct kpud_transport **ret)
{
    struct tty *s;

    if (!opts || !opts->path || !*opts->path)
        return -EINVAL;
    if (opts->baud && (opts->baud < 300 || opts->baud > 4000000))
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->path = strdup(opts->path);
    if (!s->path) {
        free(s);
        return -ENOMEM;
    }
    s->t.ops = &tty_ops;
    s->t.loop = loop;
    snprintf(s->t.path, sizeof(s->t.path), "%s", opts->path);
    s->fd = -1;
    s->baud = opts->baud ? opts->baud : 115200;
    s->backoff_min = opts->backoff_min_ms ? opts->backoff_min_ms : 200;
    s->backoff_max = opts->backoff_max_ms ? opts->backoff_max_ms : 5000;
    s->backoff = s->backoff_min;
    uv_timer_init(loop, &s->timer);
    uv_timer_init(loop, &s->pulse);
    s->timer.data = s;
    s->pulse.data = s;
    s->handles_open = 2;
    *ret = &s->t;
    return 0;
}
