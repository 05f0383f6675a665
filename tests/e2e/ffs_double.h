/* SPDX-License-Identifier: MIT */
/*
 * What the e2e USB bridge doubles (ch340_double, ft2232_double) share: a time-stamped log,
 * the backend tty the agent sits behind, and FunctionFS plumbing (ep0 with its descriptors,
 * endpoint files, the ep0 event loop). Linux Documentation/usb/functionfs.rst and
 * include/uapi/linux/usb/functionfs.h give the interface.
 */
#ifndef KPU_E2E_FFS_DOUBLE_H
#define KPU_E2E_FFS_DOUBLE_H

#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <stddef.h>
#include <stdint.h>

/* ffs_now - seconds of the monotonic clock. */
double ffs_now(void);

/* ffs_log_init - name the double in every log line; starts the log's clock. */
void ffs_log_init(const char *name);

/* ffs_log - one line "[name   seconds] text" on stdout, flushed; safe from any thread. */
void ffs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define LOG(...) ffs_log(__VA_ARGS__)

/* ffs_open_backend - open tty raw at 115200 (the agent's side). fd, or -1 (reported). */
int ffs_open_backend(const char *tty);

/* ffs_write_all - write n bytes of buf to fd; stops quietly on an error (a gone peer). */
void ffs_write_all(int fd, const uint8_t *buf, size_t n);

/*
 * ffs_open_ep0 - open dir/ep0 and write the descriptors and strings blobs (the
 * FUNCTIONFS_*_MAGIC structures). fd, or -1 (reported).
 */
int ffs_open_ep0(const char *dir, const void *desc, size_t desc_len, const void *strings,
                 size_t strings_len);

/* FFS_STRINGS - the strings blob ep0 takes after the descriptors: one US-English string
 * (the interface name), as functionfs.h's usb_functionfs_strings_head describes. */
#define FFS_STRINGS(var, text)                                                                     \
    static const struct {                                                                          \
        struct usb_functionfs_strings_head header;                                                 \
        struct {                                                                                   \
            __le16 code;                                                                           \
            const char str1[sizeof(text)];                                                         \
        } __attribute__((packed)) lang0;                                                           \
    } __attribute__((packed)) var = {                                                              \
        .header = {.magic = FUNCTIONFS_STRINGS_MAGIC,                                              \
                   .length = sizeof(var),                                                          \
                   .str_count = 1,                                                                 \
                   .lang_count = 1},                                                               \
        .lang0 = {0x0409, text},                                                                   \
    }

/* ffs_open_ep - open dir/ep<num> (after ep0 is set up). fd, or -1 (reported). */
int ffs_open_ep(const char *dir, int num);

/* ffs_ep0_stall - refuse the control request c (FunctionFS: a read on an IN setup, a
 * write on an OUT setup, stalls it). */
void ffs_ep0_stall(int ep0, const struct usb_ctrlrequest *c);

/* ffs_ep0_reply - the data stage of an IN request: n bytes of buf, at most wlength. */
void ffs_ep0_reply(int ep0, const void *buf, size_t n, uint16_t wlength);

/* ffs_ep0_out_data - take (and drop) the data stage of an OUT request of wlength bytes. */
void ffs_ep0_out_data(int ep0, uint16_t wlength);

/* ffs_ep0_out_ack - the status stage of an OUT request without data (wlength 0). */
void ffs_ep0_out_ack(int ep0, uint16_t wlength);

/*
 * ffs_ep0_loop - read ep0 events for ever: SETUP goes to setup, the others are logged.
 * Returns 1 when ep0 fails.
 */
int ffs_ep0_loop(int ep0, void (*setup)(int ep0, const struct usb_ctrlrequest *c));

#endif
