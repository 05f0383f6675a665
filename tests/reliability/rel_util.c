/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the reliability tests (see rel_util.h).
 */
#include "rel_util.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define REL_START_TIMEOUT_MS 30000
#define REL_MAX_REPLY (64u * 1024u * 1024u) /* what kpud may send in one frame */

void rel_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

uint64_t rel_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

long rel_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int rel_fd_count(pid_t pid)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

const char *rel_write_config(const char *name, const char *text)
{
    const char *path = h_path(name);
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

const char *rel_socket_path(void)
{
    return h_path("kpud.sock");
}

pid_t rel_start_kpud(const char *capture, const char *config, const char *const *extra)
{
    static char replay[600];
    char *argv[40];
    int n = 0, st;
    pid_t pid;

    snprintf(replay, sizeof(replay), "%s/%s", KPU_TEST_REPLAY_DIR, capture);
    argv[n++] = (char *)h_kpud();
    argv[n++] = "--state-dir";
    argv[n++] = (char *)h_path("state");
    argv[n++] = "--socket";
    argv[n++] = (char *)rel_socket_path();
    argv[n++] = "--config";
    argv[n++] = (char *)config;
    argv[n++] = "--replay";
    argv[n++] = replay;
    argv[n++] = "--replay-loop";
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    pid = h_spawn(argv, h_path("kpud.log"));
    for (uint64_t t0 = rel_now_ms(); rel_now_ms() - t0 < REL_START_TIMEOUT_MS;) {
        struct kpu_client_opts o = {.socket_path = rel_socket_path(), .timeout_ms = 2000};
        kpu_client_t *c = NULL;
        ck_assert_msg(h_alive(pid, &st), "kpud exited at start (see %s)", h_path("kpud.log"));
        if (kpu_client_open(&o, &c) == 0) {
            kpu_client_close(c);
            return pid;
        }
        rel_pause_ms(20);
    }
    ck_abort_msg("kpud did not open its socket (see %s)", h_path("kpud.log"));
    return -1;
}

kpu_client_t *rel_client(void)
{
    struct kpu_client_opts o = {.socket_path = rel_socket_path(), .timeout_ms = 10000};
    kpu_client_t *c = NULL;
    int r = kpu_client_open(&o, &c);

    ck_assert_msg(r == 0, "kpu_client_open: %s (%s)", kpu_client_strerror(r),
                  kpu_client_open_error_text());
    return c;
}

int rel_raw_connect(void)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", rel_socket_path());
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

int rel_raw_send(int fd, const Kpu__Ipc__V1__Frame *f)
{
    uint8_t *buf;
    size_t len, off = 0;

    if (kipc_pack(f, 0, &buf, &len) < 0)
        return -1;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return -1;
        }
        off += (size_t)n;
    }
    free(buf);
    return 0;
}

Kpu__Ipc__V1__Frame *rel_raw_recv(int fd, struct kipc_reader *rd, int timeout_ms)
{
    uint64_t t0 = rel_now_ms();

    for (;;) {
        uint8_t b;
        const uint8_t *p = &b, *body;
        size_t left = 1, blen;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left_ms = timeout_ms - (int)(rel_now_ms() - t0);
        int r;

        if (left_ms <= 0 || poll(&pf, 1, left_ms) <= 0)
            return NULL;
        if (read(fd, &b, 1) != 1)
            return NULL;
        r = kipc_reader_feed(rd, &p, &left, &body, &blen);
        if (r == KIPC_FRAME)
            return kipc_unpack(body, blen);
        if (r < 0)
            return NULL;
    }
}

void rel_raw_hello(int fd, uint32_t major)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *in;
    Kpu__Ipc__V1__ClientHello h = KPU__IPC__V1__CLIENT_HELLO__INIT;
    struct kipc_reader rd;

    kipc_reader_init(&rd, REL_MAX_REPLY);
    in = rel_raw_recv(fd, &rd, 10000);
    ck_assert_ptr_nonnull(in);
    ck_assert_int_eq(in->body_case, KPU__IPC__V1__FRAME__BODY_SERVER_HELLO);
    kpu__ipc__v1__frame__free_unpacked(in, NULL);
    kipc_reader_free(&rd);
    h.protocol_major = major;
    h.client_name = "rel-raw";
    f.body_case = KPU__IPC__V1__FRAME__BODY_CLIENT_HELLO;
    f.client_hello = &h;
    ck_assert_int_eq(rel_raw_send(fd, &f), 0);
}

static void count_event(kpu_client_t *c, const struct kpu_client_event *ev, void *user)
{
    struct rel_counter *n = user;

    (void)c;
    if (ev->type == KPU_CLIENT_EVENT_DETECTION)
        n->detections++;
    else if (ev->type == KPU_CLIENT_EVENT_DROPPED)
        n->dropped += ev->dropped_count;
    else if (ev->type == KPU_CLIENT_EVENT_DEVICE)
        n->device++;
}

void rel_subscribe(kpu_client_t *c, struct rel_counter *n)
{
    struct kpu_client_sub_opts so = {.include_empty = 1};
    int r = kpu_client_subscribe(c, NULL, &so, count_event, n, NULL);

    ck_assert_msg(r == 0, "subscribe: %s", kpu_client_strerror(r));
}

void rel_pump(kpu_client_t *const *clients, size_t n, int ms)
{
    struct pollfd *pf = calloc(n ? n : 1, sizeof(*pf));
    uint64_t t0 = rel_now_ms();

    ck_assert_ptr_nonnull(pf);
    for (;;) {
        int left = ms - (int)(rel_now_ms() - t0);
        if (left <= 0)
            break;
        for (size_t i = 0; i < n; i++) {
            pf[i].fd = kpu_client_get_fd(clients[i]);
            pf[i].events = POLLIN | (kpu_client_want_write(clients[i]) ? POLLOUT : 0);
            pf[i].revents = 0;
        }
        poll(pf, n, left < 50 ? left : 50);
        for (size_t i = 0; i < n; i++)
            if (pf[i].revents || kpu_client_next_timeout_ms(clients[i]) == 0)
                ck_assert_int_eq(kpu_client_process(clients[i]), 0);
    }
    free(pf);
}
