/* SPDX-License-Identifier: MIT */
/*
 * POSIX HAL: the uart. Over file descriptors (stdin/stdout, an inherited socketpair), a
 * pty created here (so the daemon's tty transport is exercised for real), or memory for
 * unit tests. Fault injection (hal_posix.h) applies to what the agent writes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hal/hal.h"
#include "hal_posix.h"
#include "hal_posix_int.h"

#define MEM_RX_CAP (4u * 1024u * 1024u)
#define MEM_TX_CAP (8u * 1024u * 1024u)
#define GARBAGE_MAX 32u   /* longest burst of noise the garbage fault writes */
#define SIM_BAUD 2000000u /* what the sim reports: the rate the real boards run at */

enum mode { MODE_MEM, MODE_FDS };

static struct {
    enum mode mode;
    int rfd, wfd, slave_fd;
    uint32_t baud, last_baud;
    /* memory mode */
    uint8_t *rx;
    size_t rx_head, rx_tail;
    int rx_closed;
    uint8_t *tx;
    size_t tx_len;
    /* faults */
    double p_drop, p_corrupt, p_dup, p_garbage;
    long stall_ms, stall_at, reboot_after, silent_after;
    unsigned long frames;
    uint64_t rng;
    uint8_t scratch[2 * 8192];
} u = {.rfd = -1,
       .wfd = -1,
       .slave_fd = -1,
       .baud = SIM_BAUD,
       .stall_at = -1,
       .reboot_after = -1,
       .silent_after = -1,
       .rng = 0x9e3779b97f4a7c15ull};

static uint64_t rnd(void)
{
    /* xorshift64* (Marsaglia 2003; Vigna's multiplier) */
    u.rng ^= u.rng >> 12;
    u.rng ^= u.rng << 25;
    u.rng ^= u.rng >> 27;
    return u.rng * 0x2545f4914f6cdd1dull;
}

static int chance(double p)
{
    return p > 0.0 && (double)(rnd() >> 11) * (1.0 / 9007199254740992.0) < p;
}

void kfa_posix_uart_seed(uint64_t seed)
{
    u.rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static int mem_alloc(void)
{
    if (!u.rx)
        u.rx = malloc(MEM_RX_CAP);
    if (!u.tx)
        u.tx = malloc(MEM_TX_CAP);
    return u.rx && u.tx ? 0 : -1;
}

void kfa_posix_uart_use_mem(void)
{
    u.mode = MODE_MEM;
    (void)mem_alloc();
    u.rx_head = u.rx_tail = u.tx_len = 0;
    u.rx_closed = 0;
}

int kfa_posix_uart_use_fds(int rfd, int wfd)
{
    int fl = fcntl(rfd, F_GETFL);

    if (fl < 0 || fcntl(rfd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    u.mode = MODE_FDS;
    u.rfd = rfd;
    u.wfd = wfd;
    return 0;
}

int kfa_posix_uart_use_pty(char *path, size_t cap)
{
    struct termios t;
    const char *name;
    int m = posix_openpt(O_RDWR | O_NOCTTY);

    if (m < 0)
        return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0 || !(name = ptsname(m)) || strlen(name) >= cap)
        goto fail;
    strcpy(path, name);
    /* Hold the slave open: otherwise reads on the master fail with EIO until the host
     * opens it. Raw mode, so the link bytes pass unchanged before the host sets termios. */
    u.slave_fd = open(path, O_RDWR | O_NOCTTY);
    if (u.slave_fd < 0 || tcgetattr(u.slave_fd, &t) != 0)
        goto fail;
    cfmakeraw(&t);
    if (tcsetattr(u.slave_fd, TCSANOW, &t) != 0)
        goto fail;
    return kfa_posix_uart_use_fds(m, m);
fail:
    close(m);
    return -1;
}

int kfa_posix_inject_rx(const void *buf, size_t len)
{
    if (mem_alloc() != 0)
        return -1;
    if (u.rx_head == u.rx_tail)
        u.rx_head = u.rx_tail = 0;
    if (len > MEM_RX_CAP - u.rx_tail) {
        memmove(u.rx, u.rx + u.rx_head, u.rx_tail - u.rx_head);
        u.rx_tail -= u.rx_head;
        u.rx_head = 0;
        if (len > MEM_RX_CAP - u.rx_tail)
            return -1;
    }
    memcpy(u.rx + u.rx_tail, buf, len);
    u.rx_tail += len;
    return 0;
}

void kfa_posix_close_rx(void)
{
    u.rx_closed = 1;
}

size_t kfa_posix_take_tx(uint8_t *buf, size_t cap)
{
    size_t n = u.tx_len < cap ? u.tx_len : cap;

    if (n == 0)
        return 0;
    memcpy(buf, u.tx, n);
    memmove(u.tx, u.tx + n, u.tx_len - n);
    u.tx_len -= n;
    return n;
}

size_t kfa_posix_tx_pending(void)
{
    return u.tx_len;
}

static int parse_rate(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);

    if (end == v || *end || !(x >= 0.0 && x <= 1.0))
        return -1;
    *out = x;
    return 0;
}

static int parse_count(const char *v, long *out)
{
    char *end;
    long x = strtol(v, &end, 10);

    if (end == v || *end || x < 0)
        return -1;
    *out = x;
    return 0;
}

int kfa_posix_set_fault(const char *spec)
{
    char buf[256], *save = NULL, *tok;
    double drop = 0, corrupt = 0, dup = 0, garbage = 0;
    long stall_ms = 0, stall_at = -1, reboot = -1, silent = -1;

    if (strlen(spec) >= sizeof(buf))
        return -1;
    strcpy(buf, spec);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *at;
        int r;

        if (!eq)
            return -1;
        *eq++ = '\0';
        if (strcmp(tok, "drop") == 0)
            r = parse_rate(eq, &drop);
        else if (strcmp(tok, "corrupt") == 0)
            r = parse_rate(eq, &corrupt);
        else if (strcmp(tok, "dup") == 0)
            r = parse_rate(eq, &dup);
        else if (strcmp(tok, "garbage") == 0)
            r = parse_rate(eq, &garbage);
        else if (strcmp(tok, "stall") == 0) {
            at = strchr(eq, '@');
            if (!at)
                return -1;
            *at++ = '\0';
            r = parse_count(eq, &stall_ms) | parse_count(at, &stall_at);
        } else if (strcmp(tok, "reboot-after") == 0)
            r = parse_count(eq, &reboot);
        else if (strcmp(tok, "silent-after") == 0)
            r = parse_count(eq, &silent);
        else
            return -1;
        if (r != 0)
            return -1;
    }
    u.p_drop = drop;
    u.p_corrupt = corrupt;
    u.p_dup = dup;
    u.p_garbage = garbage;
    u.stall_ms = stall_ms;
    u.stall_at = stall_at;
    u.reboot_after = reboot;
    u.silent_after = silent;
    u.frames = 0;
    return 0;
}

/* Write everything, waiting for room; KFA_HAL_E_CLOSED if the peer went away. */
static int raw_write(const uint8_t *p, size_t len)
{
    if (u.mode == MODE_MEM) {
        if (mem_alloc() != 0 || len > MEM_TX_CAP - u.tx_len)
            return KFA_HAL_E_AGAIN;
        memcpy(u.tx + u.tx_len, p, len);
        u.tx_len += len;
        return 0;
    }
    while (len > 0) {
        ssize_t n = write(u.wfd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = {u.wfd, POLLOUT, 0};

                (void)poll(&pfd, 1, 100);
                continue;
            }
            return (errno == EPIPE || errno == ECONNRESET || errno == EIO) ? KFA_HAL_E_CLOSED
                                                                           : KFA_HAL_E_IO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int kfa_hal_uart_read(uint8_t *buf, size_t cap)
{
    if (u.mode == MODE_MEM) {
        size_t n = u.rx_tail - u.rx_head;

        if (n == 0)
            return u.rx_closed ? KFA_HAL_E_CLOSED : 0;
        if (n > cap)
            n = cap;
        memcpy(buf, u.rx + u.rx_head, n);
        u.rx_head += n;
        return (int)n;
    }
    for (;;) {
        ssize_t n = read(u.rfd, buf, cap);

        if (n > 0)
            return (int)n;
        if (n == 0)
            return KFA_HAL_E_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        return KFA_HAL_E_CLOSED;
    }
}

int kfa_hal_uart_write(const uint8_t *buf, size_t len)
{
    size_t out = 0;
    int r;

    u.frames++;
    if (u.silent_after >= 0 && u.frames > (unsigned long)u.silent_after)
        return (int)len;
    if (u.stall_at >= 0 && u.frames == (unsigned long)u.stall_at)
        kfa_posix_stall_ms((uint32_t)u.stall_ms);
    if (chance(u.p_garbage)) {
        uint8_t junk[GARBAGE_MAX];
        size_t n = 1 + rnd() % GARBAGE_MAX;

        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rnd();
        r = raw_write(junk, n);
        if (r < 0)
            return r;
    }
    if (u.p_drop > 0 || u.p_corrupt > 0 || u.p_dup > 0) {
        for (size_t i = 0; i < len; i++) {
            uint8_t b = buf[i];

            if (out + 2 > sizeof(u.scratch)) {
                r = raw_write(u.scratch, out);
                if (r < 0)
                    return r;
                out = 0;
            }
            if (chance(u.p_drop))
                continue;
            if (chance(u.p_corrupt))
                b ^= (uint8_t)(1u << (rnd() % 8));
            u.scratch[out++] = b;
            if (chance(u.p_dup))
                u.scratch[out++] = b;
        }
        r = raw_write(u.scratch, out);
    } else {
        r = raw_write(buf, len);
    }
    if (r < 0)
        return r;
    if (u.reboot_after >= 0 && u.frames == (unsigned long)u.reboot_after) {
        u.reboot_after = -1;
        kfa_posix_set_reset_cause(KFA_RESET_WATCHDOG);
        kfa_posix_reboot();
    }
    return (int)len;
}

int kfa_hal_uart_set_baud(uint32_t baud)
{
    if (baud == 0)
        return KFA_HAL_E_RANGE;
    u.last_baud = baud;
    u.baud = baud; /* a socket or pty has no line rate; remember what was asked */
    return 0;
}

uint32_t kfa_hal_uart_baud(void)
{
    return u.baud;
}

uint32_t kfa_posix_last_baud(void)
{
    return u.last_baud;
}

int kfa_posix_uart_rx_fd(void)
{
    return u.mode == MODE_FDS ? u.rfd : -1;
}

int kfa_posix_uart_rx_ready(void)
{
    return u.mode == MODE_MEM && (u.rx_tail > u.rx_head || u.rx_closed);
}
