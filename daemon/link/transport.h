/* SPDX-License-Identifier: MIT */
/*
 * The device link transport: how kpud moves bytes to and from one board. A struct of
 * function pointers, like libusb's os backend: the session code above it knows nothing of
 * ttys, child processes or captures.
 *
 *   sim     kpu-agent-sim in a child process over a socketpair (restarted with backoff)
 *   tty     a serial device (/dev/ttyUSB*, /dev/ttyACM*, a pty): termios, DTR/RTS, exclusive
 *   replay  a recorded .kcap capture played back
 *   usb     libusb driving the bridge chip directly (a later issue)
 *
 * Every function is called on the loop thread and never blocks. Received bytes and link
 * state changes come back through the callbacks in struct kpud_transport.
 */
#ifndef KPUD_TRANSPORT_H
#define KPUD_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct kpud_transport;

struct kpud_transport_ops {
    const char *kind; /* "sim", "tty", "replay", "usb" */

    /*
     * start - begin: open the port / spawn the child / open the capture. Returns 0 if the
     * attempt started (link_up follows when bytes can flow; a failure is reported through
     * link_down and retried by the transport with backoff), or a negative errno for a
     * configuration error that no retry can fix. Called once.
     */
    int (*start)(struct kpud_transport *t);

    /*
     * write - queue len bytes for the board (copied). Returns 0, -ENOTCONN while the link
     * is down, or -ENOBUFS when more than the transport's queue bound is pending (the
     * caller counts the loss; the link is slow or stuck).
     */
    int (*write)(struct kpud_transport *t, const uint8_t *buf, size_t len);

    /*
     * reset - reset the board: DTR/RTS sequence on a serial bridge (into the ISP loader
     * when to_isp), kill and restart for the simulator, nothing for a replay.
     * Asynchronous: link_down / link_up report what happens. Returns 0 or -ENOTSUP.
     */
    int (*reset)(struct kpud_transport *t, int to_isp);

    /* set_baud - change the line rate (serial only). Returns 0 or a negative errno. */
    int (*set_baud)(struct kpud_transport *t, uint32_t baud);

    /*
     * close - stop and release everything. The transport calls t->closed (if set) once
     * its libuv handles are closed; after that the memory is freed by the transport and t
     * must not be used.
     */
    void (*close)(struct kpud_transport *t);
};

struct kpud_transport {
    const struct kpud_transport_ops *ops;
    uv_loop_t *loop;
    /* Filled by the transport. */
    char path[256];  /* tty path, sim description, capture file */
    char bridge[16]; /* "ch340", "ft2232", "" */
    int up;          /* link is up */
    /* Set by the user before start(). */
    void (*data)(struct kpud_transport *t, const uint8_t *buf, size_t len);
    void (*link_up)(struct kpud_transport *t);
    void (*link_down)(struct kpud_transport *t, const char *reason);
    void (*closed)(struct kpud_transport *t);
    /* The transport will deliver nothing more, ever (a capture has been played to its
     * end). May be NULL. */
    void (*ended)(struct kpud_transport *t);
    void *user;
};

/* Options of the sim transport. */
struct kpud_sim_opts {
    const char *agent_path;  /* kpu-agent-sim executable */
    const char *const *args; /* extra arguments after "serve --fd 3", NULL-terminated */
    uint32_t backoff_min_ms; /* 0 = 200 */
    uint32_t backoff_max_ms; /* 0 = 5000 */
};

/*
 * kpud_transport_sim_new - a transport that runs agent_path "serve --fd 3" args... in a
 * child process connected through a socketpair, restarting it with exponential backoff
 * when it exits. Returns 0 and sets *ret (not started), or a negative errno.
 */
int kpud_transport_sim_new(uv_loop_t *loop, const struct kpud_sim_opts *opts,
                           struct kpud_transport **ret);

/* Options of the tty transport. */
struct kpud_tty_opts {
    const char *path;          /* /dev/ttyUSB0, a pty slave, ... */
    uint32_t baud;             /* 0 = 115200 */
    const char *reset_profile; /* DTR/RTS sequence name: "none", "generic", "dan", ... */
    uint32_t backoff_min_ms;   /* 0 = 200 */
    uint32_t backoff_max_ms;   /* 0 = 5000 */
};

/*
 * kpud_transport_tty_new - a serial transport: opens path exclusively (TIOCEXCL + flock),
 * raw 8N1 at baud, reopens with backoff when the device vanishes. Returns 0 and sets *ret
 * (not started), or a negative errno (-EINVAL for an unsupported baud or profile).
 */
int kpud_transport_tty_new(uv_loop_t *loop, const struct kpud_tty_opts *opts,
                           struct kpud_transport **ret);

/* Options of the replay transport. */
struct kpud_replay_opts {
    const char *path; /* .kcap file */
    double speed;     /* 1.0 = recorded pace, 0 = as fast as possible */
    int loop;         /* start again at the end */
};

/*
 * kpud_transport_replay_new - a transport that plays the agent-to-host bytes of a capture
 * with their recorded timing; what the host writes is discarded. At the end of the
 * capture the link goes down with reason "end of capture" (or restarts when loop is set).
 * Returns 0 and sets *ret (not started), or a negative errno (-EINVAL for a file that is
 * not a capture; the message is logged).
 */
int kpud_transport_replay_new(uv_loop_t *loop, const struct kpud_replay_opts *opts,
                              struct kpud_transport **ret);

#endif
