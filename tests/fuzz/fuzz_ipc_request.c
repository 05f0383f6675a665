/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: bytes from a local client through kpud's real IPC server
 * (daemon/ipc/ipc_server.h: framing, handshake, roles, subscriptions, limits, dispatch)
 * into the deterministic test backend (daemon/ipc/test_backend.h), over a real Unix socket
 * on a real libuv loop. The first input byte sets the chunk size the rest is written in;
 * the rest is what the client sends (seeds: a ClientHello followed by each request).
 * Between chunks the loop runs and the client reads. After the input the client closes.
 * Properties: no crash or leak; every byte the server sends is a well-formed frame
 * sequence (ServerHello first); the server drops the connection afterwards and keeps
 * accepting (the next input connects again).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc_server.h"
#include "kipc.h"
#include "test_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_FRAME 65536u /* the server's frame limit here: oversize lengths are cheap */
#define FUZZ_MAX_SPINS 2000   /* loop turns to wait for the server to finish with a client */

static uv_loop_t loop;
static struct kpud_ipc_server *srv;
static struct tb *tb;
static char sock_path[108];

static char sock_dir[64];

/* Leave no socket folder behind in /tmp. */
static void remove_socket(void)
{
    unlink(sock_path);
    rmdir(sock_dir);
}

static void setup(void)
{
    static const char *const features[] = {"query", "config", "retention", "record", NULL};
    struct kpud_ipc_opts o;
    char dir[] = "/tmp/kpu-fuzz-ipc-XXXXXX";

    if (!mkdtemp(dir) || uv_loop_init(&loop) != 0)
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
    snprintf(sock_dir, sizeof(sock_dir), "%s", dir);
    atexit(remove_socket);
    tb = tb_new(&loop);
    if (!tb)
        abort();
    memset(&o, 0, sizeof(o));
    o.path = sock_path;
    o.listen_fd = -1;
    o.reader_gid = (gid_t)-1;
    o.admin_gid = (gid_t)-1;
    o.everyone_admin = 1; /* reach the admin requests too */
    o.max_frame = FUZZ_MAX_FRAME;
    o.max_clients = 4;
    o.server_version = "fuzz";
    o.features = features;
    o.backend = tb_backend();
    o.backend_ctx = tb;
    if (kpud_ipc_server_open(&loop, &o, &srv) < 0)
        abort();
    tb_set_server(tb, srv);
}

/* Read what the server sent; check it frames and decodes. Returns 0, or -1 at EOF. */
static int drain(int fd, struct kipc_reader *rd, int *frames)
{
    uint8_t buf[16384];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        const uint8_t *p = buf;
        size_t left;

        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        left = (size_t)n;
        while (left) {
            const uint8_t *body;
            size_t blen;
            Kpu__Ipc__V1__Frame *f;
            int r = kipc_reader_feed(rd, &p, &left, &body, &blen);
            if (r == KIPC_NEED_MORE)
                break;
            if (r != KIPC_FRAME)
                abort(); /* the server sent a length beyond any reply limit */
            f = kipc_unpack(body, blen);
            if (!f)
                abort(); /* the server sent bytes that are not a Frame */
            if (*frames == 0 && f->body_case != KPU__IPC__V1__FRAME__BODY_SERVER_HELLO)
                abort();
            (*frames)++;
            kpu__ipc__v1__frame__free_unpacked(f, NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sa;
    struct kipc_reader rd;
    struct kpud_ipc_stats st;
    size_t chunk;
    int fd, frames = 0, eof = 0;

    if (!srv)
        setup();
    if (size < 1)
        return 0;
    chunk = (size_t)data[0] * 8 + 1;
    data++;
    size--;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        abort(); /* the server stopped accepting */
    kipc_reader_init(&rd, 64u * 1024u * 1024u);

    while (size && !eof) {
        size_t n = size < chunk ? size : chunk;
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno != EAGAIN)
            break; /* the server closed on us (a fatal error was sent) */
        if (w > 0) {
            data += w;
            size -= (size_t)w;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        eof = drain(fd, &rd, &frames) < 0;
    }
    /* Let the server answer what it has, then hang up. */
    for (int i = 0; i < 20 && !eof; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        eof = drain(fd, &rd, &frames) < 0;
    }
    close(fd);
    kipc_reader_free(&rd);
    for (int i = 0; i < FUZZ_MAX_SPINS; i++) {
        kpud_ipc_server_stats(srv, &st);
        if (st.clients == 0)
            break;
        uv_run(&loop, UV_RUN_NOWAIT);
        if (i > 10)
            poll(NULL, 0, 1); /* delayed backend replies: let their timers come due */
    }
    kpud_ipc_server_stats(srv, &st);
    if (st.clients != 0)
        abort(); /* a closed client was never cleaned up */
    return 0;
}
