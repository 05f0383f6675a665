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
    int interface;             /* UART interface on two-port bridges; -1 = auto (B) */
    const char *agent_image;   /* boot this image into SRAM through the ROM ISP whenever a
                                  board is opened (agent_boot = sram); NULL = do not */
    uint32_t backoff_min_ms;   /* 0 = 200: reopen after a failed open */
    uint32_t backoff_max_ms;   /* 0 = 5000 */
};

struct kpud_usb_hooks {
    /*
     * A matching port appeared for the first time: the hook takes ownership of t (not
     * started; it normally gives it to a new session). Returns 0, or a negative errno and
     * then t has been closed by the hook.
     */
    int (*new_port)(void *ctx, struct kpud_transport *t);
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

#endif
