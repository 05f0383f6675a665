/* SPDX-License-Identifier: MIT */
/*
 * The usb transport and its hub (see transport_usb.h).
 *
 * libusb joins the libuv loop as its documentation's "more advanced option" describes
 * (libusb io.c, and shared/research/usb-bridges.md §1.5): every fd from
 * libusb_get_pollfds() gets a uv_poll_t, fds added or removed later arrive through
 * libusb_set_pollfd_notifiers(), readiness calls libusb_handle_events_timeout_completed()
 * with a zero timeout, and libusb_get_next_timeout() arms a uv_timer when libusb cannot
 * handle timeouts through its own timerfd. All transfers are asynchronous: control
 * requests from the bridge drivers run one after the other, two bulk IN transfers stay
 * in flight, one bulk OUT transfer drains the write queue.
 *
 * A port (struct usb_port) is keyed by its USB port path and interface, so a board that
 * is unplugged and plugged back in the same socket reconnects to the same transport and
 * session. Hotplug callbacks only record what happened; the work is done from a uv_timer
 * of zero delay, outside libusb's event handling. Likewise transfer callbacks never close
 * or open a device handle: libusb reaps with its open_devs_lock held, so a libusb_close()
 * from a callback deadlocked kpud on the first unplug; port_release() defers to the end
 * of handle_events().
 *
 * Giving a port back (see transport_usb.h): a per-port uv_timer (never libusb's event
 * handling) runs out the HELLO budget, cancels the port's transfers and lets the last
 * transfer callback ask for port_release(), which therefore runs deferred too. The
 * interface was claimed with auto-detach on, so libusb_release_interface() re-attaches
 * the kernel driver (libusb_set_auto_detach_kernel_driver(3): "re-attached when the
 * interface is released"; libusb 1.0.26 linux_usbfs.c op_release_interface calls
 * op_attach_kernel_driver, i.e. USBDEVFS_CONNECT, when auto-detach is on).
 */
#include "transport_usb.h"

#include <errno.h>
#include <libusb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "isp.h"
#include "log.h"
#include "usb_bridge.h"

#define USB_CTRL_TIMEOUT_MS 1000u /* the kernel drivers' DEFAULT_TIMEOUT / WDR_TIMEOUT */
#define USB_IN_XFERS 2u           /* keep the bridge's FIFO drained while one completes */
#define USB_IN_SIZE 4096u         /* a multiple of 64 and 512: FTDI headers stay aligned */
#define USB_OUT_SIZE 4096u
#define USB_WQ_MAX (64u * 1024u) /* pending output bound, as the tty transport */
#define USB_STEP_MS 100u         /* kflash holds each DTR/RTS step 0.1 s */
#define USB_MAX_PORTS 16u
#define USB_PENDING_MAX 32u

struct kpud_usb;

enum port_state {
    PORT_NO_DEVICE = 0, /* waiting for the board to (re)appear */
    PORT_OPENING,       /* running the bridge's probe and open requests */
    PORT_UP,            /* bytes flow */
    PORT_GONE,          /* device lost or failed: cancelling, then release */
};

struct usb_port {
    struct kpud_transport t; /* first: the transport API casts */
    struct kpud_usb *hub;
    struct usb_port *next;
    char key[48]; /* port path + interface */
    uint16_t vid, pid;
    const struct kpud_bridge_id *id;
    struct kpud_bridge bridge;
    uint8_t iface;
    uint8_t ep_in, ep_out;
    libusb_device *dev;           /* referenced while attached */
    libusb_device_handle *handle; /* open while attached */
    enum port_state state;
    int started;         /* start() was called */
    int closing;         /* close() was called */
    int inflight;        /* transfers submitted and not completed */
    int release_pending; /* port_release() asked for inside libusb's event handling */
    int agent_seen;      /* a session completed HELLO over this port (and device) */
    int given_back;      /* HELLO budget ran out: interface released for good */
    uv_timer_t giveback_timer;
    /* control request queue */
    struct kpud_usb_seq seq;
    unsigned seq_pos;
    int seq_probe; /* the running list is the probe (replies go to on_reply) */
    void (*seq_done)(struct usb_port *p, int status);
    struct libusb_transfer *ctrl;
    uint8_t ctrl_buf[LIBUSB_CONTROL_SETUP_SIZE + KPUD_USB_REQ_DATA_MAX];
    /* bulk */
    struct libusb_transfer *in[USB_IN_XFERS];
    uint8_t in_buf[USB_IN_XFERS][USB_IN_SIZE];
    struct libusb_transfer *out;
    uint8_t out_buf[USB_OUT_SIZE];
    int out_busy;
    uint8_t wq[USB_WQ_MAX];
    size_t wq_len;
    /* DTR/RTS sequences */
    const struct kpud_isp_profile *profile;
    uv_timer_t step_timer;
    const struct kpud_isp_step *steps;
    unsigned step, nsteps;
    /* reopen backoff */
    uv_timer_t retry_timer;
    uint32_t backoff;
    /* ISP */
    struct kpud_isp isp;
    int isp_active;
    uv_timer_t isp_timer;
    uint8_t *isp_image;
    size_t isp_len;
    kpud_usb_boot_cb boot_cb;
    void *boot_user;
    int isp_restore_baud; /* the ISP ran at its own rate: back to the port's once drained */
    int handles_open;
    char last_error[96];
};

struct poll_ent {
    struct kpud_usb *hub;
    uv_poll_t poll;
    int fd;
    int active;
    struct poll_ent *next;
};

struct pending {
    libusb_device *dev; /* referenced */
    int arrived;        /* 1 arrival, 0 removal */
};

struct kpud_usb {
    uv_loop_t *loop;
    libusb_context *ctx;
    struct kpud_usb_opts o;
    char *allow, *deny, *profile_name, *agent_image;
    uint8_t *image; /* agent_image contents, loaded once */
    size_t image_len;
    struct kpud_usb_hooks hooks;
    struct poll_ent *polls;
    uv_timer_t timeout_timer;
    uv_timer_t work_timer; /* deferred hotplug work */
    int hotplug;
    libusb_hotplug_callback_handle hp_handle;
    struct pending pending[USB_PENDING_MAX];
    unsigned npending;
    struct usb_port *ports;
    unsigned nports;
    int closing;
    int handles_open;
    int in_events; /* inside libusb_handle_events_*(): libusb holds its open_devs_lock */
    void (*done)(void *arg);
    void *done_arg;
};

static void hub_maybe_free(struct kpud_usb *u);
static void port_open_device(struct usb_port *p);
static void port_lost(struct usb_port *p, const char *why);
static void hub_rearm(struct kpud_usb *u);
static void schedule_retry(struct usb_port *p);
static void port_release(struct usb_port *p);

static uint64_t now_ms(struct kpud_usb *u)
{
    return uv_now(u->loop);
}

/* ------------------------------------------------------------------ allow / deny lists */

/* One pattern: "vvvv:pppp" (hex), or "usb:..." port path; a trailing '*' matches any rest;
 * "*" alone matches everything. */
static int pattern_match(const char *pat, size_t n, uint16_t vid, uint16_t pid, const char *path)
{
    char vp[10];

    if (n == 1 && pat[0] == '*')
        return 1;
    if (n >= 4 && strncmp(pat, "usb:", 4) == 0) {
        if (pat[n - 1] == '*')
            return strncmp(path, pat, n - 1) == 0;
        return strlen(path) == n && strncmp(path, pat, n) == 0;
    }
    snprintf(vp, sizeof(vp), "%04x:%04x", vid, pid);
    if (pat[n - 1] == '*')
        return n - 1 <= strlen(vp) && strncasecmp(vp, pat, n - 1) == 0;
    return n == 9 && strncasecmp(vp, pat, 9) == 0;
}

static int list_match(const char *list, uint16_t vid, uint16_t pid, const char *path)
{
    const char *p = list;

    while (p && *p) {
        size_t n;
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        n = strcspn(p, ", \t");
        if (n && pattern_match(p, n, vid, pid, path))
            return 1;
        p += n;
    }
    return 0;
}

int kpud_usb_match(const char *allow, const char *deny, uint16_t vid, uint16_t pid,
                   const char *path)
{
    if (deny && *deny && list_match(deny, vid, pid, path))
        return 0;
    if (allow && *allow)
        return list_match(allow, vid, pid, path);
    return 1;
}

/* ----------------------------------------------------------------- libusb <-> libuv */

/* Run the releases that transfer callbacks asked for (port_release), now that libusb no
 * longer holds its locks. A release can free its port, so rescan from the head each time. */
static void run_deferred_releases(struct kpud_usb *u)
{
    for (;;) {
        struct usb_port *p = u->ports;
        while (p && !p->release_pending)
            p = p->next;
        if (!p)
            return;
        p->release_pending = 0;
        port_release(p);
    }
}

static void handle_events(struct kpud_usb *u)
{
    struct timeval zero = {0, 0};

    if (!u->ctx)
        return;
    /* Transfer callbacks run from here with libusb's open_devs_lock held (libusb 1.0.26
     * linux_usbfs.c op_handle_events locks it around reaping, POLLERR disconnects
     * included); libusb_close() and libusb_open() take that lock too, so calling them
     * from a callback deadlocks: releases wait for run_deferred_releases(). */
    u->in_events++;
    libusb_handle_events_timeout_completed(u->ctx, &zero, NULL);
    u->in_events--;
    if (!u->in_events)
        run_deferred_releases(u);
    if (u->ctx)
        hub_rearm(u);
}

static void timeout_cb(uv_timer_t *t)
{
    handle_events(t->data);
}

/* libusb keeps its own timers in a timerfd on Linux (pollfds_handle_timeouts); elsewhere
 * ask for the next deadline and wake up for it. */
static void hub_rearm(struct kpud_usb *u)
{
    struct timeval tv;

    if (!u->ctx || u->closing > 1 || libusb_pollfds_handle_timeouts(u->ctx))
        return;
    if (libusb_get_next_timeout(u->ctx, &tv) == 1) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)(tv.tv_usec + 999) / 1000u;
        uv_timer_start(&u->timeout_timer, timeout_cb, ms, 0);
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct poll_ent *e = h->data;
    handle_events(e->hub);
}

static void hub_handle_closed(uv_handle_t *h)
{
    struct kpud_usb *u = h->data;
    u->handles_open--;
    hub_maybe_free(u);
}

static void poll_closed(uv_handle_t *h)
{
    struct poll_ent *e = h->data;
    struct kpud_usb *u = e->hub;
    free(e);
    u->handles_open--;
    hub_maybe_free(u);
}

static void LIBUSB_CALL pollfd_added(int fd, short events, void *user)
{
    struct kpud_usb *u = user;
    struct poll_ent *e = calloc(1, sizeof(*e));
    int uve = ((events & POLLIN) ? UV_READABLE : 0) | ((events & POLLOUT) ? UV_WRITABLE : 0);

    if (!e) {
        log_err("usb: out of memory watching a libusb fd");
        return;
    }
    e->hub = u;
    e->fd = fd;
    if (uv_poll_init(u->loop, &e->poll, fd) < 0) {
        log_err("usb: cannot watch libusb fd %d", fd);
        free(e);
        return;
    }
    e->poll.data = e;
    e->active = 1;
    e->next = u->polls;
    u->polls = e;
    u->handles_open++;
    uv_poll_start(&e->poll, uve ? uve : UV_READABLE, poll_cb);
}

static void poll_drop(struct kpud_usb *u, struct poll_ent *e)
{
    e->active = 0;
    uv_poll_stop(&e->poll);
    uv_close((uv_handle_t *)&e->poll, poll_closed);
}

static void LIBUSB_CALL pollfd_removed(int fd, void *user)
{
    struct kpud_usb *u = user;

    for (struct poll_ent **pe = &u->polls; *pe; pe = &(*pe)->next) {
        if ((*pe)->fd == fd) {
            struct poll_ent *e = *pe;
            *pe = e->next;
            poll_drop(u, e);
            return;
        }
    }
}

/* --------------------------------------------------------------------- port helpers */

static struct usb_port *port_of(struct kpud_transport *t)
{
    return (struct usb_port *)t;
}

static void port_link_down(struct usb_port *p, const char *reason)
{
    if (p->t.up) {
        p->t.up = 0;
        if (!p->given_back) /* a give-back has logged its own line */
            log_warn("usb %s: link down: %s", p->t.path, reason);
        if (p->t.link_down)
            p->t.link_down(&p->t, reason);
    }
}

static void giveback_cb(uv_timer_t *tm);

static void port_link_up(struct usb_port *p)
{
    uint32_t budget = p->hub->o.give_back_ms;

    if (!p->t.up && p->state == PORT_UP && !p->isp_active) {
        p->t.up = 1;
        /* The HELLO budget runs from the first time bytes can flow (after any agent boot,
         * failed or not) and is not restarted by link flaps. */
        if (budget && !p->agent_seen && !p->given_back && !p->closing &&
            !uv_is_active((uv_handle_t *)&p->giveback_timer))
            uv_timer_start(&p->giveback_timer, giveback_cb, budget, 0);
        if (p->t.link_up)
            p->t.link_up(&p->t);
    }
}

static void port_free_if_done(struct usb_port *p)
{
    struct kpud_usb *u = p->hub;

    if (!p->closing || p->handles_open || p->inflight || p->handle)
        return;
    for (struct usb_port **pp = &u->ports; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    u->nports--;
    if (p->t.closed)
        p->t.closed(&p->t);
    for (unsigned i = 0; i < USB_IN_XFERS; i++)
        libusb_free_transfer(p->in[i]);
    libusb_free_transfer(p->out);
    libusb_free_transfer(p->ctrl);
    free(p->isp_image);
    free(p);
    hub_maybe_free(u);
}

/* Give the device back once nothing is in flight: release the interface (libusb
 * re-attaches the kernel driver it detached), close, drop the reference. */
static void port_release(struct usb_port *p)
{
    if (p->inflight)
        return;
    if (p->hub->in_events) {
        p->release_pending = 1; /* handle_events() comes back to it */
        return;
    }
    if (p->handle) {
        libusb_release_interface(p->handle, p->iface);
        libusb_close(p->handle);
        p->handle = NULL;
    }
    if (p->state == PORT_GONE) {
        p->state = PORT_NO_DEVICE;
        /* Still plugged in (a failure, not an unplug): try again after a pause. */
        if (p->dev && p->started && !p->closing && !p->given_back)
            schedule_retry(p);
    }
    port_free_if_done(p);
}

static void xfer_done(struct usb_port *p)
{
    p->inflight--;
    if (p->state == PORT_GONE || p->closing)
        port_release(p);
}

static void cancel_all(struct usb_port *p)
{
    for (unsigned i = 0; i < USB_IN_XFERS; i++)
        libusb_cancel_transfer(p->in[i]); /* NOT_FOUND for idle ones: fine */
    libusb_cancel_transfer(p->out);
    libusb_cancel_transfer(p->ctrl);
}

/* The device vanished or failed: link down, cancel, release, wait for it to return. */
static void port_lost(struct usb_port *p, const char *why)
{
    if (p->state == PORT_GONE || p->state == PORT_NO_DEVICE) {
        port_release(p);
        return;
    }
    snprintf(p->last_error, sizeof(p->last_error), "%s", why);
    if (p->isp_active) {
        p->isp_active = 0;
        kpud_isp_cancel(&p->isp);
        uv_timer_stop(&p->isp_timer);
        if (p->boot_cb)
            p->boot_cb(p->boot_user, 1, -ENODEV, 0);
        p->boot_cb = NULL;
    }
    uv_timer_stop(&p->step_timer);
    p->state = PORT_GONE;
    p->wq_len = 0;
    port_link_down(p, why);
    cancel_all(p);
    port_release(p);
}

/* "usb:1-2:if0" -> "1-2:if0", for the one line a give-back logs. */
static const char *short_path(const struct usb_port *p)
{
    return strncmp(p->t.path, "usb:", 4) == 0 ? p->t.path + 4 : p->t.path;
}

/* The HELLO budget ran out: no kpud agent on this port. Stop using it, release the
 * interface (the kernel driver comes back, see the top of this file) and tell the owner,
 * who closes the transport. */
static void giveback_cb(uv_timer_t *tm)
{
    struct usb_port *p = tm->data;
    struct kpud_usb *u = p->hub;
    uint32_t ms = u->o.give_back_ms;
    char reason[128];

    if (p->agent_seen || p->given_back || p->closing)
        return;
    if (ms % 1000u == 0)
        snprintf(reason, sizeof(reason),
                 "no kpud agent answered HELLO in %u s; port given back to the kernel driver",
                 ms / 1000u);
    else
        snprintf(reason, sizeof(reason),
                 "no kpud agent answered HELLO in %u ms; port given back to the kernel driver", ms);
    log_notice("usb %s: %s", short_path(p), reason);
    p->given_back = 1;
    uv_timer_stop(&p->retry_timer);
    if (p->state == PORT_UP || p->state == PORT_OPENING) {
        port_lost(p, reason); /* link down with this reason, cancel, release when idle */
    } else {
        port_link_down(p, reason);
        port_release(p);
    }
    if (u->hooks.given_back)
        u->hooks.given_back(u->hooks.ctx, &p->t, reason);
}

void kpud_transport_usb_agent_seen(struct kpud_transport *t)
{
    struct usb_port *p;

    if (!t || strcmp(t->ops->kind, "usb") != 0)
        return;
    p = port_of(t);
    if (!p->agent_seen && !p->given_back)
        log_debug("usb %s: kpud agent answered HELLO; the port is kept", short_path(p));
    p->agent_seen = 1;
    uv_timer_stop(&p->giveback_timer);
}

/* ------------------------------------------------------------------ control requests */

static void seq_next(struct usb_port *p);

static void LIBUSB_CALL ctrl_cb(struct libusb_transfer *x)
{
    struct usb_port *p = x->user_data;
    const struct kpud_usb_req *r = &p->seq.req[p->seq_pos];
    int ok = x->status == LIBUSB_TRANSFER_COMPLETED;

    if (x->status == LIBUSB_TRANSFER_NO_DEVICE) {
        xfer_done(p);
        port_lost(p, "unplugged");
        return;
    }
    if (p->state == PORT_GONE || p->closing) {
        xfer_done(p);
        return;
    }
    p->inflight--;
    if (p->seq_probe && (ok || (r->tag & 0x80u)))
        p->bridge.ops->on_reply(&p->bridge, r, libusb_control_transfer_get_data(x),
                                ok ? x->actual_length : -1);
    if (!ok && !(r->tag & 0x80u)) {
        void (*done)(struct usb_port *, int) = p->seq_done;
        log_warn("usb %s: control request %02x/%02x failed (%s)", p->t.path, r->request_type,
                 r->request,
                 libusb_error_name(x->status == LIBUSB_TRANSFER_STALL ? LIBUSB_ERROR_PIPE
                                                                      : LIBUSB_ERROR_IO));
        p->seq_done = NULL;
        p->seq.n = 0;
        if (done)
            done(p, -EIO);
        return;
    }
    p->seq_pos++;
    seq_next(p);
}

static void seq_next(struct usb_port *p)
{
    const struct kpud_usb_req *r;
    int rc;

    if (p->seq_pos >= p->seq.n) {
        void (*done)(struct usb_port *, int) = p->seq_done;
        p->seq_done = NULL;
        p->seq.n = 0;
        if (done)
            done(p, 0);
        return;
    }
    r = &p->seq.req[p->seq_pos];
    libusb_fill_control_setup(p->ctrl_buf, r->request_type, r->request, r->value, r->index,
                              r->length);
    if (!(r->request_type & LIBUSB_ENDPOINT_IN) && r->length)
        memcpy(p->ctrl_buf + LIBUSB_CONTROL_SETUP_SIZE, r->data, r->length);
    libusb_fill_control_transfer(p->ctrl, p->handle, p->ctrl_buf, ctrl_cb, p, USB_CTRL_TIMEOUT_MS);
    rc = libusb_submit_transfer(p->ctrl);
    if (rc < 0) {
        port_lost(p, libusb_error_name(rc));
        return;
    }
    p->inflight++;
}

/* Run a request list; done(p, status) when it ends. A list runs only when none runs. */
static int seq_run(struct usb_port *p, const struct kpud_usb_seq *s, int probe,
                   void (*done)(struct usb_port *p, int status))
{
    if (!p->handle || p->state == PORT_GONE)
        return -ENOTCONN;
    if (p->seq.n)
        return -EBUSY;
    p->seq = *s;
    p->seq_pos = 0;
    p->seq_probe = probe;
    p->seq_done = done;
    if (s->n == 0) {
        p->seq_done = NULL;
        if (done)
            done(p, 0);
        return 0;
    }
    seq_next(p);
    return 0;
}

/* ------------------------------------------------------------------------ bulk data */

static void deliver(struct usb_port *p, const uint8_t *buf, size_t n)
{
    if (!n)
        return;
    if (p->isp_active) {
        kpud_isp_feed(&p->isp, buf, n, now_ms(p->hub));
        return;
    }
    if (p->t.up && p->t.data)
        p->t.data(&p->t, buf, n);
}

static void LIBUSB_CALL in_cb(struct libusb_transfer *x)
{
    struct usb_port *p = x->user_data;
    int rc;

    /* We cancel only after leaving PORT_UP (port_lost, close): a cancellation seen while up
     * is the kernel killing the URB as the device goes away. */
    if (x->status == LIBUSB_TRANSFER_NO_DEVICE ||
        (x->status == LIBUSB_TRANSFER_CANCELLED && p->state == PORT_UP && !p->closing)) {
        xfer_done(p);
        port_lost(p, "unplugged");
        return;
    }
    if (p->state != PORT_UP || p->closing || x->status == LIBUSB_TRANSFER_CANCELLED) {
        xfer_done(p);
        return;
    }
    p->inflight--;
    if (x->status == LIBUSB_TRANSFER_COMPLETED) {
        size_t n = p->bridge.ops->rx(&p->bridge, x->buffer, (size_t)x->actual_length, x->buffer);
        deliver(p, x->buffer, n);
    } else if (x->status != LIBUSB_TRANSFER_TIMED_OUT) {
        port_lost(p, x->status == LIBUSB_TRANSFER_STALL ? "bulk IN stalled" : "bulk IN error");
        return;
    }
    if (p->state != PORT_UP || p->closing)
        return; /* the data callback closed or reset us */
    rc = libusb_submit_transfer(x);
    if (rc < 0) {
        port_lost(p, libusb_error_name(rc));
        return;
    }
    p->inflight++;
}

static void out_kick(struct usb_port *p);
static int usb_set_baud(struct kpud_transport *t, uint32_t baud);
static int port_set_rate(struct usb_port *p, uint32_t baud,
                         void (*done)(struct usb_port *p, int status));
static void isp_restore_when_drained(struct usb_port *p);

static void LIBUSB_CALL out_cb(struct libusb_transfer *x)
{
    struct usb_port *p = x->user_data;

    p->out_busy = 0;
    /* We cancel only after leaving PORT_UP (port_lost, close): a cancellation seen while up
     * is the kernel killing the URB as the device goes away. */
    if (x->status == LIBUSB_TRANSFER_NO_DEVICE ||
        (x->status == LIBUSB_TRANSFER_CANCELLED && p->state == PORT_UP && !p->closing)) {
        xfer_done(p);
        port_lost(p, "unplugged");
        return;
    }
    if (p->state != PORT_UP || p->closing || x->status == LIBUSB_TRANSFER_CANCELLED) {
        xfer_done(p);
        return;
    }
    p->inflight--;
    if (x->status != LIBUSB_TRANSFER_COMPLETED) {
        port_lost(p, "bulk OUT error");
        return;
    }
    /* A short write (actual < length) leaves the rest at the head of the queue. */
    if ((size_t)x->actual_length < (size_t)x->length) {
        size_t rest = (size_t)(x->length - x->actual_length);
        if (p->wq_len + rest <= sizeof(p->wq)) {
            memmove(p->wq + rest, p->wq, p->wq_len);
            memcpy(p->wq, p->out_buf + x->actual_length, rest);
            p->wq_len += rest;
        }
    }
    out_kick(p);
    isp_restore_when_drained(p);
}

static void out_kick(struct usb_port *p)
{
    size_t n;
    int rc;

    if (p->out_busy || !p->wq_len || p->state != PORT_UP)
        return;
    n = p->wq_len < sizeof(p->out_buf) ? p->wq_len : sizeof(p->out_buf);
    memcpy(p->out_buf, p->wq, n);
    memmove(p->wq, p->wq + n, p->wq_len - n);
    p->wq_len -= n;
    libusb_fill_bulk_transfer(p->out, p->handle, p->ep_out, p->out_buf, (int)n, out_cb, p, 0);
    /* A FunctionFS double completes a read only on a short packet (usb-bridges.md §2d);
     * real bridges ignore the zero-length packet. */
    p->out->flags = LIBUSB_TRANSFER_ADD_ZERO_PACKET;
    rc = libusb_submit_transfer(p->out);
    if (rc < 0) {
        port_lost(p, libusb_error_name(rc));
        return;
    }
    p->out_busy = 1;
    p->inflight++;
}

static int queue_bytes(struct usb_port *p, const uint8_t *buf, size_t len)
{
    if (p->wq_len + len > sizeof(p->wq))
        return -ENOBUFS;
    memcpy(p->wq + p->wq_len, buf, len);
    p->wq_len += len;
    out_kick(p);
    return 0;
}

/* ------------------------------------------------------------------- DTR/RTS steps */

static void step_cb(uv_timer_t *tm);

static void lines_done(struct usb_port *p, int status)
{
    if (status < 0)
        port_lost(p, "modem control request failed");
}

static void set_lines(struct usb_port *p, int dtr, int rts)
{
    struct kpud_usb_seq s;

    p->bridge.ops->set_lines(&p->bridge, dtr, rts, &s);
    if (seq_run(p, &s, 0, lines_done) == -EBUSY)
        log_warn("usb %s: DTR/RTS change dropped (control queue busy)", p->t.path);
}

static void step_cb(uv_timer_t *tm)
{
    struct usb_port *p = tm->data;

    if (p->state != PORT_UP || p->step >= p->nsteps)
        return;
    set_lines(p, p->steps[p->step].dtr, p->steps[p->step].rts);
    p->step++;
    if (p->step < p->nsteps)
        uv_timer_start(&p->step_timer, step_cb, USB_STEP_MS, 0);
}

/* ---------------------------------------------------------------------------- ISP */

static void isp_timer_cb(uv_timer_t *tm);

static void isp_arm(struct usb_port *p)
{
    uint64_t d = kpud_isp_deadline(&p->isp), now = now_ms(p->hub);
    if (p->isp_active && d)
        uv_timer_start(&p->isp_timer, isp_timer_cb, d > now ? d - now : 0, 0);
}

static void isp_timer_cb(uv_timer_t *tm)
{
    struct usb_port *p = tm->data;
    if (!p->isp_active)
        return;
    kpud_isp_tick(&p->isp, now_ms(p->hub));
    isp_arm(p);
}

static void isp_write(void *user, const uint8_t *buf, size_t len)
{
    struct usb_port *p = user;
    if (queue_bytes(p, buf, len) < 0)
        log_warn("usb %s: ISP frame dropped (queue full)", p->t.path);
    isp_arm(p);
}

static void isp_lines(void *user, int dtr, int rts)
{
    struct usb_port *p = user;
    set_lines(p, dtr, rts);
    isp_arm(p);
}

static void isp_progress(void *user, uint32_t permille)
{
    struct usb_port *p = user;
    if (p->boot_cb)
        p->boot_cb(p->boot_user, 0, 0, permille);
}

static void isp_rate_restored(struct usb_port *p, int status)
{
    if (status < 0)
        log_warn("usb %s: cannot switch the bridge back after the ISP", p->t.path);
    if (p->state == PORT_UP && !p->closing)
        port_link_up(p);
}

static void isp_restore_now(uv_timer_t *tm)
{
    struct usb_port *p = tm->data;

    if (p->state != PORT_UP || p->closing)
        return;
    if (port_set_rate(p, p->hub->o.baud ? p->hub->o.baud : 115200, isp_rate_restored) < 0)
        isp_rate_restored(p, -EIO);
}

/* The boot frame has left the host; the bridge may still be shifting it out at the ISP
 * rate, so the rate changes back only after the settle time (kflash's 50 ms). */
static void isp_restore_when_drained(struct usb_port *p)
{
    if (!p->isp_restore_baud || p->out_busy || p->wq_len)
        return;
    p->isp_restore_baud = 0;
    uv_timer_stop(&p->isp_timer);
    uv_timer_start(&p->isp_timer, isp_restore_now, KPUD_ISP_BAUD_SETTLE_MS, 0);
}

static void isp_done(void *user, int status)
{
    struct usb_port *p = user;
    kpud_usb_boot_cb cb = p->boot_cb;

    p->isp_active = 0;
    uv_timer_stop(&p->isp_timer);
    if (status == 0)
        log_info("usb %s: agent image (%zu bytes) loaded into SRAM and started", p->t.path,
                 p->isp_len);
    else
        log_warn("usb %s: agent boot through the ROM ISP failed: %s", p->t.path, strerror(-status));
    p->boot_cb = NULL;
    if (cb)
        cb(p->boot_user, 1, status, status == 0 ? 1000 : 0);
    if (p->isp.baud_changed && p->state == PORT_UP) {
        /* The agent starts at the port's rate, not the ISP's: switch back once the boot
         * frame has left (a control request would overtake queued bulk data), and let the
         * session talk only after that. */
        p->isp_restore_baud = 1;
        isp_restore_when_drained(p);
        return;
    }
    port_link_up(p);
}

/* The ROM was asked for another rate: the bridge follows (the same control requests as a
 * SetBaud, queued behind nothing: the ISP waits KPUD_ISP_BAUD_SETTLE_MS before it). */
static void isp_baud(void *user, uint32_t baud)
{
    struct usb_port *p = user;

    log_info("usb %s: ROM ISP at %u baud", p->t.path, baud);
    if (usb_set_baud(&p->t, baud) < 0)
        log_warn("usb %s: cannot switch the bridge to %u baud for the ISP", p->t.path, baud);
    isp_arm(p);
}

static int isp_begin(struct usb_port *p, const uint8_t *image, size_t len)
{
    struct kpud_isp_opts o = {
        .profile = p->profile, .image = image, .image_len = len, .baud = p->hub->o.isp_baud};
    struct kpud_isp_io io = {.write = isp_write,
                             .set_lines = isp_lines,
                             .set_baud = isp_baud,
                             .progress = isp_progress,
                             .done = isp_done,
                             .user = p};
    int r;

    r = kpud_isp_start(&p->isp, &o, &io, now_ms(p->hub));
    if (r < 0)
        return r;
    p->isp_active = 1;
    p->isp_len = len;
    log_info("usb %s: loading the agent (%zu bytes) through the ROM ISP, reset profile %s",
             p->t.path, len, p->profile->name);
    isp_arm(p);
    return 0;
}

int kpud_transport_usb_boot_agent(struct kpud_transport *t, const uint8_t *image, size_t len,
                                  kpud_usb_boot_cb cb, void *user)
{
    struct usb_port *p;
    uint8_t *copy;
    int r;

    if (!t || strcmp(t->ops->kind, "usb") != 0)
        return -ENOTSUP;
    p = port_of(t);
    if (p->state != PORT_UP)
        return -ENOTCONN;
    if (p->isp_active)
        return -EBUSY;
    copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, image, len);
    free(p->isp_image);
    p->isp_image = copy;
    port_link_down(p, "agent boot");
    p->boot_cb = cb;
    p->boot_user = user;
    r = isp_begin(p, p->isp_image, len);
    if (r < 0) {
        p->boot_cb = NULL;
        port_link_up(p);
    }
    return r;
}

/* ------------------------------------------------------------------------ open flow */

static void retry_cb(uv_timer_t *tm)
{
    struct usb_port *p = tm->data;
    if (p->dev && p->state == PORT_NO_DEVICE && !p->handle)
        port_open_device(p);
}

static void schedule_retry(struct usb_port *p)
{
    struct kpud_usb *u = p->hub;
    uint32_t max = u->o.backoff_max_ms ? u->o.backoff_max_ms : 5000;

    uv_timer_start(&p->retry_timer, retry_cb, p->backoff, 0);
    p->backoff = p->backoff * 2 > max ? max : p->backoff * 2;
}

static void open_done(struct usb_port *p, int status)
{
    struct kpud_usb *u = p->hub;

    if (status < 0) {
        port_lost(p, "bridge configuration failed"); /* retried once released */
        return;
    }
    p->state = PORT_UP;
    p->backoff = u->o.backoff_min_ms ? u->o.backoff_min_ms : 200;
    for (unsigned i = 0; i < USB_IN_XFERS; i++) {
        int rc;
        libusb_fill_bulk_transfer(p->in[i], p->handle, p->ep_in, p->in_buf[i], USB_IN_SIZE, in_cb,
                                  p, 0);
        rc = libusb_submit_transfer(p->in[i]);
        if (rc < 0) {
            port_lost(p, libusb_error_name(rc));
            return;
        }
        p->inflight++;
    }
    log_info("usb %s: %s (%04x:%04x) open at %u baud, interface %u", p->t.path,
             kpud_bridge_chip_name(p->bridge.chip), p->vid, p->pid, u->o.baud ? u->o.baud : 115200,
             p->iface);
    snprintf(p->t.bridge, sizeof(p->t.bridge), "%s", kpud_bridge_chip_name(p->bridge.chip));
    if (u->image && !p->isp_active) {
        if (isp_begin(p, u->image, u->image_len) == 0)
            return; /* link_up once the agent runs */
    }
    port_link_up(p);
}

static void probe_done(struct usb_port *p, int status)
{
    struct kpud_usb_seq s;
    uint32_t baud = p->hub->o.baud ? p->hub->o.baud : 115200;

    if (status < 0) {
        open_done(p, status);
        return;
    }
    if (p->bridge.chip == KPUD_BRIDGE_CH34X)
        log_debug("usb %s: CH34x version 0x%02x%s", p->t.path, p->bridge.version,
                  p->bridge.limited_prescaler ? ", limited prescaler" : "");
    if (p->bridge.ops->open(&p->bridge, baud, &s) < 0) {
        log_err("usb %s: %u baud is not possible on this bridge", p->t.path, baud);
        open_done(p, -EINVAL);
        return;
    }
    seq_run(p, &s, 0, open_done);
}

/* Find the bulk endpoints of the UART interface from the descriptors. */
static int find_endpoints(struct usb_port *p, uint16_t *mps)
{
    struct libusb_config_descriptor *cfg;
    const struct libusb_interface_descriptor *id;
    int r = libusb_get_active_config_descriptor(p->dev, &cfg);

    if (r < 0)
        return r;
    if (p->iface >= cfg->bNumInterfaces || cfg->interface[p->iface].num_altsetting < 1) {
        libusb_free_config_descriptor(cfg);
        return LIBUSB_ERROR_NOT_FOUND;
    }
    id = &cfg->interface[p->iface].altsetting[0];
    p->ep_in = p->ep_out = 0;
    for (int k = 0; k < id->bNumEndpoints; k++) {
        const struct libusb_endpoint_descriptor *e = &id->endpoint[k];
        if ((e->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_BULK)
            continue;
        if (e->bEndpointAddress & LIBUSB_ENDPOINT_IN) {
            p->ep_in = e->bEndpointAddress;
            *mps = e->wMaxPacketSize;
        } else {
            p->ep_out = e->bEndpointAddress;
        }
    }
    libusb_free_config_descriptor(cfg);
    return p->ep_in && p->ep_out ? 0 : LIBUSB_ERROR_NOT_FOUND;
}

static void port_open_device(struct usb_port *p)
{
    struct libusb_device_descriptor dd;
    struct kpud_usb_seq s;
    uint16_t mps = 64;
    int r;

    if (!p->started || p->closing || !p->dev || p->handle)
        return;
    r = libusb_get_device_descriptor(p->dev, &dd);
    if (r == 0)
        r = find_endpoints(p, &mps);
    if (r == 0)
        r = libusb_open(p->dev, &p->handle);
    if (r == 0) {
        /* Detach ftdi_sio/ch341 while we hold the interface, give it back at release. */
        libusb_set_auto_detach_kernel_driver(p->handle, 1);
        r = libusb_claim_interface(p->handle, p->iface);
        if (r < 0) {
            libusb_close(p->handle);
            p->handle = NULL;
        }
    }
    if (r < 0) {
        if (strcmp(p->last_error, libusb_error_name(r)) != 0)
            log_warn("usb %s: cannot open: %s (retrying)", p->t.path, libusb_error_name(r));
        snprintf(p->last_error, sizeof(p->last_error), "%s", libusb_error_name(r));
        schedule_retry(p);
        return;
    }
    p->last_error[0] = 0;
    kpud_bridge_init(&p->bridge, p->id, dd.bcdDevice, p->iface, mps);
    p->state = PORT_OPENING;
    p->bridge.ops->probe(&p->bridge, &s);
    seq_run(p, &s, 1, probe_done);
}

/* ------------------------------------------------------------------ transport ops */

static int usb_start(struct kpud_transport *t)
{
    struct usb_port *p = port_of(t);
    p->started = 1;
    port_open_device(p);
    return 0;
}

static int usb_write(struct kpud_transport *t, const uint8_t *buf, size_t len)
{
    struct usb_port *p = port_of(t);

    if (!t->up || p->state != PORT_UP)
        return -ENOTCONN;
    return queue_bytes(p, buf, len);
}

static int usb_reset(struct kpud_transport *t, int to_isp)
{
    struct usb_port *p = port_of(t);

    if (p->state != PORT_UP)
        return -ENOTCONN;
    if (p->isp_active)
        return -EBUSY;
    p->steps = to_isp ? p->profile->to_isp : p->profile->to_app;
    p->nsteps = 3;
    p->step = 0;
    log_info("usb %s: DTR/RTS reset%s (profile %s)", p->t.path, to_isp ? " into ISP" : "",
             p->profile->name);
    uv_timer_start(&p->step_timer, step_cb, 0, 0);
    return 0;
}

/* Run the bridge's rate requests; done gets their outcome. 0, -ENOTCONN or -EINVAL. */
static int port_set_rate(struct usb_port *p, uint32_t baud,
                         void (*done)(struct usb_port *p, int status))
{
    struct kpud_usb_seq s;

    if (p->state != PORT_UP)
        return -ENOTCONN;
    if (p->bridge.ops->set_baud(&p->bridge, baud, &s) < 0)
        return -EINVAL;
    return seq_run(p, &s, 0, done);
}

static void baud_done(struct usb_port *p, int status)
{
    if (status < 0)
        log_warn("usb %s: baud change failed", p->t.path);
}

static int usb_set_baud(struct kpud_transport *t, uint32_t baud)
{
    return port_set_rate(port_of(t), baud, baud_done);
}

static void port_handle_closed(uv_handle_t *h)
{
    struct usb_port *p = h->data;
    p->handles_open--;
    port_free_if_done(p);
}

static void usb_close(struct kpud_transport *t)
{
    struct usb_port *p = port_of(t);

    p->closing = 1;
    if (p->isp_active) {
        kpud_usb_boot_cb cb = p->boot_cb;

        p->isp_active = 0;
        p->boot_cb = NULL;
        kpud_isp_cancel(&p->isp);
        if (cb)
            cb(p->boot_user, 1, -ECANCELED, 0); /* its caller answers a client with it */
    }
    uv_close((uv_handle_t *)&p->step_timer, port_handle_closed);
    uv_close((uv_handle_t *)&p->retry_timer, port_handle_closed);
    uv_close((uv_handle_t *)&p->isp_timer, port_handle_closed);
    uv_close((uv_handle_t *)&p->giveback_timer, port_handle_closed);
    if (p->state == PORT_UP || p->state == PORT_OPENING) {
        p->state = PORT_GONE;
        p->t.up = 0;
        cancel_all(p);
    }
    if (p->dev) {
        libusb_unref_device(p->dev);
        p->dev = NULL;
    }
    port_release(p);
}

static const struct kpud_transport_ops usb_ops = {
    .kind = "usb",
    .start = usb_start,
    .write = usb_write,
    .reset = usb_reset,
    .set_baud = usb_set_baud,
    .close = usb_close,
};

/* ------------------------------------------------------------------ discovery */

/* "usb:<bus>-<port>.<port>..." as sysfs names it. */
static void port_path(libusb_device *dev, char *out, size_t n)
{
    uint8_t ports[8];
    int np = libusb_get_port_numbers(dev, ports, sizeof(ports));
    size_t k = (size_t)snprintf(out, n, "usb:%u", libusb_get_bus_number(dev));

    for (int i = 0; i < np && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%c%u", i == 0 ? '-' : '.', ports[i]);
}

static struct usb_port *port_new(struct kpud_usb *u, const char *key, const char *path,
                                 const struct kpud_bridge_id *id, uint16_t vid, uint16_t pid,
                                 uint8_t iface)
{
    struct usb_port *p = calloc(1, sizeof(*p));
    const char *prof = u->profile_name;

    if (!p)
        return NULL;
    p->t.ops = &usb_ops;
    p->t.loop = u->loop;
    snprintf(p->t.path, sizeof(p->t.path), "%s", path);
    snprintf(p->t.bridge, sizeof(p->t.bridge), "%s", id->name);
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->hub = u;
    p->id = id;
    p->vid = vid;
    p->pid = pid;
    p->iface = iface;
    if (!prof || !*prof || strcmp(prof, "auto") == 0)
        prof = id->chip == KPUD_BRIDGE_CH34X ? "dan" : "goE";
    p->profile = kpud_isp_profile_find(prof);
    if (!p->profile)
        p->profile = kpud_isp_profile_find("dan");
    p->backoff = u->o.backoff_min_ms ? u->o.backoff_min_ms : 200;
    p->in[0] = libusb_alloc_transfer(0);
    p->in[1] = libusb_alloc_transfer(0);
    p->out = libusb_alloc_transfer(0);
    p->ctrl = libusb_alloc_transfer(0);
    if (!p->in[0] || !p->in[1] || !p->out || !p->ctrl) {
        for (unsigned i = 0; i < USB_IN_XFERS; i++)
            libusb_free_transfer(p->in[i]);
        libusb_free_transfer(p->out);
        libusb_free_transfer(p->ctrl);
        free(p);
        return NULL;
    }
    uv_timer_init(u->loop, &p->step_timer);
    uv_timer_init(u->loop, &p->retry_timer);
    uv_timer_init(u->loop, &p->isp_timer);
    uv_timer_init(u->loop, &p->giveback_timer);
    p->step_timer.data = p->retry_timer.data = p->isp_timer.data = p->giveback_timer.data = p;
    p->handles_open = 4;
    p->next = u->ports;
    u->ports = p;
    u->nports++;
    return p;
}

/* One interface of a matching device arrived: its port comes back, or a new one is made. */
static void arrive_port(struct kpud_usb *u, libusb_device *dev,
                        const struct libusb_device_descriptor *dd, const struct kpud_bridge_id *id,
                        const char *path, uint8_t iface)
{
    char key[48];
    struct usb_port *p;

    if (id->ports > 1)
        snprintf(key, sizeof(key), "%s:if%u", path, iface);
    else
        snprintf(key, sizeof(key), "%s", path);
    for (p = u->ports; p; p = p->next)
        if (strcmp(p->key, key) == 0 && !p->closing)
            break;
    if (p) {
        if (p->dev == dev)
            return; /* ENUMERATE and a real event may both report it */
        if (p->dev)
            libusb_unref_device(p->dev);
        p->dev = libusb_ref_device(dev);
        p->vid = dd->idVendor;
        p->pid = dd->idProduct;
        /* A new device in the socket: HELLO decides again. */
        p->agent_seen = 0;
        p->given_back = 0;
        log_info("usb %s: %04x:%04x back", key, dd->idVendor, dd->idProduct);
        if (p->state == PORT_NO_DEVICE && !p->handle)
            port_open_device(p);
        return;
    }
    if (u->nports >= USB_MAX_PORTS) {
        log_warn("usb %s: ignored, %u ports already", key, USB_MAX_PORTS);
        return;
    }
    p = port_new(u, key, key, id, dd->idVendor, dd->idProduct, iface);
    if (!p) {
        log_err("usb %s: out of memory", key);
        return;
    }
    p->dev = libusb_ref_device(dev);
    log_info("usb %s: %s %04x:%04x found", key, id->name, dd->idVendor, dd->idProduct);
    if (!u->hooks.new_port || u->hooks.new_port(u->hooks.ctx, &p->t) < 0) {
        if (!u->hooks.new_port)
            usb_close(&p->t);
        return; /* the hook closed it */
    }
}

static void on_arrival(struct kpud_usb *u, libusb_device *dev)
{
    struct libusb_device_descriptor dd;
    const struct kpud_bridge_id *id;
    char path[40];
    unsigned first = 0, last = 0;

    if (libusb_get_device_descriptor(dev, &dd) < 0)
        return;
    id = kpud_bridge_lookup(dd.idVendor, dd.idProduct);
    if (!id)
        return;
    port_path(dev, path, sizeof(path));
    if (!kpud_usb_match(u->allow, u->deny, dd.idVendor, dd.idProduct, path)) {
        log_debug("usb %s: %04x:%04x not allowed by the configuration", path, dd.idVendor,
                  dd.idProduct);
        return;
    }
    /* Two-port bridges: by default every interface gets a port and HELLO tells which one
     * carries the K210 (Sipeed's FT2232 boards use the second: kflash README, "choose the
     * second com port"; the other is given back after the HELLO budget). interface = 0|1
     * picks one alone. */
    if (id->ports > 1) {
        if (u->o.interface >= 0 && u->o.interface < id->ports)
            first = last = (unsigned)u->o.interface;
        else
            last = id->ports - 1u;
    }
    for (unsigned i = first; i <= last && !u->closing; i++)
        arrive_port(u, dev, &dd, id, path, (uint8_t)i);
}

static void on_removal(struct kpud_usb *u, libusb_device *dev)
{
    for (struct usb_port *p = u->ports; p; p = p->next) {
        if (p->dev != dev)
            continue;
        log_info("usb %s: unplugged", p->t.path);
        uv_timer_stop(&p->retry_timer);
        uv_timer_stop(&p->giveback_timer); /* the budget starts again with the next device */
        port_lost(p, "unplugged");
        libusb_unref_device(p->dev);
        p->dev = NULL;
    }
}

static void work_cb(uv_timer_t *tm)
{
    struct kpud_usb *u = tm->data;
    unsigned n = u->npending;
    struct pending batch[USB_PENDING_MAX];

    memcpy(batch, u->pending, n * sizeof(batch[0]));
    u->npending = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!u->closing) {
            if (batch[i].arrived)
                on_arrival(u, batch[i].dev);
            else
                on_removal(u, batch[i].dev);
        }
        libusb_unref_device(batch[i].dev);
    }
}

static int LIBUSB_CALL hotplug_cb(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event ev,
                                  void *user)
{
    struct kpud_usb *u = user;

    if (u->npending == USB_PENDING_MAX) {
        log_warn("usb: hotplug event dropped (burst of more than %u)", USB_PENDING_MAX);
        return 0;
    }
    u->pending[u->npending].dev = libusb_ref_device(dev);
    u->pending[u->npending].arrived = ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
    u->npending++;
    uv_timer_start(&u->work_timer, work_cb, 0, 0);
    return 0;
}

/* Without hotplug support: one scan at start-up. */
static void scan_once(struct kpud_usb *u)
{
    libusb_device **list;
    ssize_t n = libusb_get_device_list(u->ctx, &list);

    for (ssize_t i = 0; i < n; i++)
        hotplug_cb(u->ctx, list[i], LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, u);
    if (n >= 0)
        libusb_free_device_list(list, 1);
}

/* --------------------------------------------------------------------------- hub */

static int load_image(struct kpud_usb *u, const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (!f)
        return -errno;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || n > 6 * 1024 * 1024 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -EFBIG;
    }
    u->image = malloc((size_t)n);
    if (!u->image || fread(u->image, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(u->image);
        u->image = NULL;
        return -EIO;
    }
    fclose(f);
    u->image_len = (size_t)n;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int kpud_usb_open(uv_loop_t *loop, const struct kpud_usb_opts *opts,
                  const struct kpud_usb_hooks *hooks, struct kpud_usb **ret)
{
    struct kpud_usb *u = calloc(1, sizeof(*u));
    const struct libusb_pollfd **fds;
    int r;

    if (!u)
        return -ENOMEM;
    u->loop = loop;
    if (opts)
        u->o = *opts;
    else
        u->o.interface = -1;
    if (hooks)
        u->hooks = *hooks;
    u->allow = dup_or_null(u->o.allow);
    u->deny = dup_or_null(u->o.deny);
    u->profile_name = dup_or_null(u->o.reset_profile);
    u->o.allow = u->o.deny = u->o.reset_profile = u->o.agent_image = NULL;
    if (u->profile_name && strcmp(u->profile_name, "auto") != 0 &&
        !kpud_isp_profile_find(u->profile_name)) {
        log_err("usb: unknown reset profile '%s' (dan, kd233, goE, goD, auto)", u->profile_name);
        r = -EINVAL;
        goto fail;
    }
    if (opts && opts->agent_image && *opts->agent_image) {
        r = load_image(u, opts->agent_image);
        if (r < 0) {
            log_err("usb: agent image %s: %s", opts->agent_image, strerror(-r));
            goto fail;
        }
        log_info("usb: boards get agent %s (%zu bytes) through the ROM ISP when opened",
                 opts->agent_image, u->image_len);
    }
    r = libusb_init(&u->ctx);
    if (r < 0) {
        log_err("usb: libusb_init: %s", libusb_error_name(r));
        u->ctx = NULL;
        r = -ENOSYS;
        goto fail;
    }
    uv_timer_init(loop, &u->timeout_timer);
    uv_timer_init(loop, &u->work_timer);
    u->timeout_timer.data = u->work_timer.data = u;
    u->handles_open = 2;
    libusb_set_pollfd_notifiers(u->ctx, pollfd_added, pollfd_removed, u);
    fds = libusb_get_pollfds(u->ctx);
    for (int i = 0; fds && fds[i]; i++)
        pollfd_added(fds[i]->fd, fds[i]->events, u);
    libusb_free_pollfds(fds);
    if (!libusb_pollfds_handle_timeouts(u->ctx))
        log_debug("usb: libusb timeouts driven by a loop timer");
    u->hotplug = libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG);
    if (u->hotplug) {
        r = libusb_hotplug_register_callback(
            u->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
            LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
            LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb, u, &u->hp_handle);
        if (r < 0) {
            log_warn("usb: hotplug registration failed (%s): scanning once", libusb_error_name(r));
            u->hotplug = 0;
        }
    }
    if (!u->hotplug)
        scan_once(u);
    log_info("usb: watching for bridges%s", u->hotplug ? " (hotplug)" : " (no hotplug)");
    *ret = u;
    return 0;
fail:
    free(u->allow);
    free(u->deny);
    free(u->profile_name);
    free(u->image);
    free(u);
    return r;
}

static void hub_final(struct kpud_usb *u)
{
    void (*done)(void *) = u->done;
    void *arg = u->done_arg;

    free(u->allow);
    free(u->deny);
    free(u->profile_name);
    free(u->image);
    free(u);
    if (done)
        done(arg);
}

/*
 * Shutdown in two steps: once closing and the last port is gone, stop watching libusb and
 * exit it (closing = 2); once the hub's own handles are closed, free it.
 */
static void hub_maybe_free(struct kpud_usb *u)
{
    if (u->closing == 1 && !u->ports) {
        u->closing = 2;
        if (u->hotplug)
            libusb_hotplug_deregister_callback(u->ctx, u->hp_handle);
        for (unsigned i = 0; i < u->npending; i++)
            libusb_unref_device(u->pending[i].dev);
        u->npending = 0;
        libusb_set_pollfd_notifiers(u->ctx, NULL, NULL, NULL);
        while (u->polls) {
            struct poll_ent *e = u->polls;
            u->polls = e->next;
            poll_drop(u, e);
        }
        uv_close((uv_handle_t *)&u->timeout_timer, hub_handle_closed);
        uv_close((uv_handle_t *)&u->work_timer, hub_handle_closed);
        libusb_exit(u->ctx);
        u->ctx = NULL;
        return;
    }
    if (u->closing == 2 && u->handles_open == 0)
        hub_final(u);
}

void kpud_usb_close(struct kpud_usb *u, void (*done)(void *arg), void *arg)
{
    if (!u) {
        if (done)
            done(arg);
        return;
    }
    u->done = done;
    u->done_arg = arg;
    u->closing = 1;
    uv_timer_stop(&u->work_timer);
    hub_maybe_free(u);
}

unsigned kpud_usb_port_count(const struct kpud_usb *u)
{
    return u ? u->nports : 0;
}
