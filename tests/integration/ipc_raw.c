/* SPDX-License-Identifier: MIT */
/*
 * A bare kpu.ipc.v1 client for integration tests (see ipc_raw.h).
 */
#include "ipc_raw.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int raw_connect(struct raw *c, const char *path, int timeout_ms)
{
    struct sockaddr_un sa;
    int64_t end = mono_ms() + timeout_ms;

    memset(c, 0, sizeof(*c));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    for (;;) {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            return -1;
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        close(c->fd);
        c->fd = -1;
        if (mono_ms() >= end)
            return -1;
        poll(NULL, 0, 20); /* the daemon is still creating its socket */
    }
    kipc_reader_init(&c->rd, 0);
    return 0;
}

void raw_close(struct raw *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    kipc_reader_free(&c->rd);
}

int raw_send_bytes(struct raw *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int raw_send(struct raw *c, const Kpu__Ipc__V1__Frame *f)
{
    uint8_t *out;
    size_t len;
    int r;

    if (kipc_pack(f, 0, &out, &len) < 0)
        return -1;
    r = raw_send_bytes(c, out, len);
    free(out);
    return r;
}

int raw_read(struct raw *c, Kpu__Ipc__V1__Frame **out, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;

    for (;;) {
        const uint8_t *p = c->buf + c->off, *body;
        size_t len = c->len - c->off, blen;
        int r = kipc_reader_feed(&c->rd, &p, &len, &body, &blen);

        c->off = (size_t)(p - c->buf);
        if (r < 0)
            return -1;
        if (r == KIPC_FRAME) {
            *out = kpu__ipc__v1__frame__unpack(NULL, blen, body);
            return *out ? 1 : -1;
        }
        /* Need more bytes. */
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int64_t left = end - mono_ms();
        ssize_t n;

        if (left <= 0)
            return 0;
        if (poll(&pfd, 1, (int)left) <= 0)
            return 0;
        n = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (n <= 0)
            return -1;
        c->off = 0;
        c->len = (size_t)n;
    }
}

int raw_wait_closed(struct raw *c, int timeout_ms, int *code)
{
    int64_t end = mono_ms() + timeout_ms;

    for (;;) {
        Kpu__Ipc__V1__Frame *f = NULL;
        int64_t left = end - mono_ms();
        int r = raw_read(c, &f, left > 0 ? (int)left : 0);

        if (r < 0)
            return 1;
        if (r == 0)
            return 0;
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_STATUS && code)
            *code = (int)f->status->code;
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
    }
}

int raw_hello(struct raw *c, uint32_t major, int *role)
{
    Kpu__Ipc__V1__Frame *f = NULL, out = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__ClientHello h = KPU__IPC__V1__CLIENT_HELLO__INIT;

    if (raw_read(c, &f, 5000) != 1)
        return -1;
    if (f->body_case != KPU__IPC__V1__FRAME__BODY_SERVER_HELLO) {
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
        return -1;
    }
    if (role)
        *role = (int)f->server_hello->role;
    kpu__ipc__v1__frame__free_unpacked(f, NULL);
    h.protocol_major = major;
    h.protocol_minor = 0;
    h.client_name = (char *)"check_ipc_daemon";
    out.body_case = KPU__IPC__V1__FRAME__BODY_CLIENT_HELLO;
    out.client_hello = &h;
    return raw_send(c, &out);
}
