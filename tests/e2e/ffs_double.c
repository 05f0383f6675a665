/* SPDX-License-Identifier: MIT */
/* Shared parts of the e2e USB bridge doubles (see ffs_double.h). */
#include "ffs_double.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/usb/functionfs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static const char *log_name = "double";
static double t0;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

double ffs_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void ffs_log_init(const char *name)
{
    log_name = name;
    t0 = ffs_now();
}

void ffs_log(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&log_lock);
    printf("[%s %8.3f] ", log_name, ffs_now() - t0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
}

int ffs_open_backend(const char *tty)
{
    struct termios t;
    int fd = open(tty, O_RDWR | O_NOCTTY);

    if (fd < 0) {
        perror(tty);
        return -1;
    }
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        cfsetspeed(&t, B115200);
        tcsetattr(fd, TCSANOW, &t);
    }
    return fd;
}

void ffs_write_all(int fd, const uint8_t *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

int ffs_open_ep0(const char *dir, const void *desc, size_t desc_len, const void *strings,
                 size_t strings_len)
{
    int fd = ffs_open_ep(dir, 0);

    if (fd < 0)
        return -1;
    if (write(fd, desc, desc_len) < 0 || write(fd, strings, strings_len) < 0) {
        perror("descriptors");
        close(fd);
        return -1;
    }
    return fd;
}

int ffs_open_ep(const char *dir, int num)
{
    char path[256];
    int fd;

    snprintf(path, sizeof(path), "%s/ep%d", dir, num);
    fd = open(path, O_RDWR);
    if (fd < 0)
        perror(path);
    return fd;
}

void ffs_ep0_stall(int ep0, const struct usb_ctrlrequest *c)
{
    uint8_t b = 0;

    if (c->bRequestType & USB_DIR_IN) {
        if (read(ep0, &b, 0) < 0) { /* the expected outcome: the request stalled */
        }
    } else if (write(ep0, &b, 0) < 0) {
    }
}

void ffs_ep0_reply(int ep0, const void *buf, size_t n, uint16_t wlength)
{
    if (write(ep0, buf, n < wlength ? n : wlength) < 0)
        perror("ep0 write");
}

void ffs_ep0_out_data(int ep0, uint16_t wlength)
{
    uint8_t buf[64];

    if (wlength && read(ep0, buf, wlength > sizeof(buf) ? sizeof(buf) : wlength) < 0)
        perror("ep0 read");
}

void ffs_ep0_out_ack(int ep0, uint16_t wlength)
{
    uint8_t b = 0;

    if (!wlength && read(ep0, &b, 0) < 0)
        perror("ep0 status");
}

int ffs_ep0_loop(int ep0, void (*setup)(int ep0, const struct usb_ctrlrequest *c))
{
    static const char *const names[] = {"BIND",  "UNBIND",  "ENABLE", "DISABLE",
                                        "SETUP", "SUSPEND", "RESUME"};

    for (;;) {
        struct usb_functionfs_event ev;
        ssize_t n = read(ep0, &ev, sizeof(ev));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("ep0 read");
            return 1;
        }
        if (ev.type == FUNCTIONFS_SETUP)
            setup(ep0, &ev.u.setup);
        else
            LOG("event %s", ev.type < 7 ? names[ev.type] : "?");
    }
}
