/* SPDX-License-Identifier: MIT */
/*
 * The usb transport: kpud drives the board's USB-UART bridge itself through libusb (no
 * kernel tty), so it can find boards by VID/PID, follow them across unplug and replug by
 * their USB port path, pulse DTR/RTS with the board's reset profile and load the agent
 * through the K210 ROM ISP.
 *
 * One struct kpud_usb (the "hub") owns the libusb context for the daemon: libusb's file
 * descriptors are watched by uv_poll handles on the daemon's loop and its timeouts by a
 * uv_timer, so there is no libusb event thread. Hotplug arrivals and removals come from
 * libusb's hotplug callbacks (which need udevd on Debian's libusb build). Each matching
 * port becomes one struct kpud_transport of kind "usb", handed to the device manager
 * through new_port; the agent's HELLO then tells whether the port is a kpud board.
 *
 * Two-port bridges (FT2232: 0403:6010) get one transport per interface by default, keys
 * "<path>:if0" and "<path>:if1": usually one port carries the K210's UART and the other
 * something else (JTAG, another UART). A port whose far end never completes HELLO within
 * give_back_ms of its link coming up is given back: kpud cancels its transfers, releases
 * the interface (libusb re-attaches the kernel driver it detached, so ftdi_sio's ttyUSB
 * comes back) and tells its owner through the given_back hook. Such a port is probed again
 * only when the device is plugged in again (a hotplug arrival). A port that completed
 * HELLO once is never given back: a board that goes quiet later is reset and retried.
 */
#ifndef KPUD_TRANSPORT_USB_H
#define KPUD_TRANSPORT_USB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "transport.h"

struct kpud_usb;

struct kpud_usb_opts {
    uint32_t baud;             /* 0 = 115200 */
    const char *allow;         /* comma list of "vvvv:pppp" or "usb:<port path>" patterns
                                  ("*" ends a prefix); NULL or "" = every known bridge */
    const char *deny;          /* same syntax; wins over allow */
    const char *reset_profile; /* "dan", "kd233", "goE", "goD"; NULL/"auto" = dan on CH34x,
                                  goE on FTDI */
    int interface;             /* two-port bridges: 0 (A) or 1 (B) alone; -1 = auto: every
                                  interface, each HELLO'd on its own */
    const char *agent_image;   /* boot this image into SRAM through the ROM ISP whenever a
                                  board is opened (agent_boot = sram); NULL = do not */
    uint32_t isp_baud;         /* 0: the ROM ISP runs at 115200; else it is asked for this
                                  rate after its greeting (kflash's stage-0 CHANGE_BAUD) */
    uint32_t backoff_min_ms;   /* 0 = 200: reopen after a failed open */
    uint32_t backoff_max_ms;   /* 0 = 5000 */
    uint32_t give_back_ms;     /* a port whose agent never answered HELLO this long after its
                                  link came up is given back; 0 = never */
};

struct kpud_usb_hooks {
    /*
     * A matching port appeared for the first time: the hook takes ownership of t (not
     * started; it normally gives it to a new session). Returns 0, or a negative errno and
     * then t has been closed by the hook.
     */
    int (*new_port)(void *ctx, struct kpud_transport *t);
    /*
     * A port was given back to its kernel driver (no agent answered HELLO within
     * give_back_ms; reason is the sentence that was logged). Its link is down and it will
     * deliver nothing more; the hook should close t (it is still owned by the hook's
     * side). Runs from a loop timer, never from inside libusb's event handling. May be
     * NULL: the port then stays given back until its device is plugged in again.
     */
    void (*given_back)(void *ctx, struct kpud_transport *t, const char *reason);
    void *ctx;
};

/*
 * kpud_usb_open - create the libusb context, join it to loop, register for hotplug and
 * enumerate the bridges already present (new_port runs from the loop, not from inside
 * this call). Returns 0 and sets *ret, or a negative errno (-ENOSYS: libusb cannot be
 * initialised on this system, the message is logged).
 */
int kpud_usb_open(uv_loop_t *loop, const struct kpud_usb_opts *opts,
                  const struct kpud_usb_hooks *hooks, struct kpud_usb **ret);

/*
 * kpud_usb_close - stop discovery; once every usb transport has been closed by its owner,
 * release libusb and call done (may be NULL). The hub is freed then.
 */
void kpud_usb_close(struct kpud_usb *u, void (*done)(void *arg), void *arg);

/* kpud_usb_port_count - usb transports alive (for tests and logs). */
unsigned kpud_usb_port_count(const struct kpud_usb *u);

/*
 * kpud_usb_match - whether a device vid:pid at port path passes the allow and deny lists
 * (pure; exposed for the unit tests). Returns 1 or 0.
 */
int kpud_usb_match(const char *allow, const char *deny, uint16_t vid, uint16_t pid,
                   const char *path);

/* Progress and completion of an agent boot. status 0 or a negative errno. */
typedef void (*kpud_usb_boot_cb)(void *user, int done, int status, uint32_t permille);

/*
 * kpud_transport_usb_boot_agent - reset the board of usb transport t into its ROM ISP, load
 * image (len bytes, copied) into SRAM and start it. The link goes down for the duration
 * and comes back up afterwards, so the session above re-handshakes with the new agent.
 * cb (may be NULL) reports progress and the end. Returns 0 if started, -ENOTSUP if t is
 * not a usb transport, -ENOTCONN without a device, -EBUSY while a boot runs, -ENOMEM.
 */
int kpud_transport_usb_boot_agent(struct kpud_transport *t, const uint8_t *image, size_t len,
                                  kpud_usb_boot_cb cb, void *user);

/*
 * kpud_transport_usb_agent_seen - the session on t completed a HELLO: its far end is a
 * kpud agent, so the port is never given back (until its device is unplugged and a new one
 * arrives). Does nothing for a transport that is not usb.
 */
void kpud_transport_usb_agent_seen(struct kpud_transport *t);

#endif
