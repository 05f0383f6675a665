/* SPDX-License-Identifier: MIT */
/*
 * kpud as a systemd service, without systemd running: the real kpud (and kpuctl as the
 * client) against a notification socket the test owns, as systemd's would be.
 *  - READY=1 comes only once the client socket accepts and the database is migrated, and
 *    is followed by WATCHDOG=1 pings at half of $WATCHDOG_USEC; STOPPING=1 at SIGTERM.
 *  - Socket activation through systemd-socket-activate (the systemd package): kpud serves
 *    the listening fd it was given instead of binding the path itself.
 *  - SIGHUP re-reads the configuration: the threshold changes while a subscriber stays
 *    connected and keeps receiving detections; RELOADING=1 then READY=1.
 *  - SIGTERM stores the batch still pending (batch_ms far longer than the test).
 * Devices are replayed captures (tests/replay, always present) except for the reload test,
 * which needs the simulated board with the shared face model.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define FACE_MODEL "models/maixpy_facedetect_320x240.kmodel"
#define ASTRONAUT "images/astronaut_320x240.png"
#define WAIT_MS 60000      /* generous: the emulated KPU shares two cores with other tests */
#define WATCHDOG_US 300000 /* 300 ms: kpud must ping every 150 ms */

static char sock_path[512], notify_path[512], db_path[512], log_path[512], conf_path[512];
static int notify_fd = -1;

static void setup(void)
{
    snprintf(sock_path, sizeof(sock_path), "%s", h_path("kpud.sock"));
    snprintf(notify_path, sizeof(notify_path), "%s", h_path("notify"));
    snprintf(db_path, sizeof(db_path), "%s", h_path("state/kpud.db"));
    snprintf(log_path, sizeof(log_path), "%s", h_path("kpud.log"));
    snprintf(conf_path, sizeof(conf_path), "%s", h_path("kpud.conf"));
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
}

static void teardown(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
    h_cleanup();
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Our stand-in for systemd's notification socket; children inherit $NOTIFY_SOCKET. */
static void open_notify_socket(void)
{
    struct sockaddr_un sa;

    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(notify_fd, 0);
    ck_assert_uint_lt(strlen(notify_path), sizeof(sa.sun_path));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, notify_path, strlen(notify_path));
    ck_assert_int_eq(bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setenv("NOTIFY_SOCKET", notify_path, 1);
}

/* The next notification within timeout_ms into buf; 0 on timeout. */
static int next_notify(char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = notify_fd, .events = POLLIN};
    ssize_t n;

    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    n = recv(notify_fd, buf, cap - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = 0;
    return 1;
}

/* Wait for a notification containing needle; fails the test after timeout_ms. Every
 * message seen on the way is checked not to contain forbidden (may be NULL). */
static void expect_notify(const char *needle, const char *forbidden, int timeout_ms, char *out,
                          size_t cap)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    char buf[1024];

    while (now_ms() < end) {
        if (!next_notify(buf, sizeof(buf), (int)(end - now_ms())))
            break;
        if (strstr(buf, needle)) {
            if (out)
                snprintf(out, cap, "%s", buf);
            return;
        }
        ck_assert_msg(!forbidden || !strstr(buf, forbidden), "unexpected '%s' before '%s': %s",
                      forbidden, needle, buf);
    }
    ck_abort_msg("no '%s' notification within %d ms", needle, timeout_ms);
}

/* 0 if a client can connect to the socket right now, else errno. */
static int try_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
    close(fd);
    return r;
}

static const char *replay_capture(void)
{
    return KPU_TEST_REPLAY_DIR "/normal.kcap";
}

/* kpud on the looping normal capture, with config file conf (NULL: none). */
static pid_t start_replay_kpud(const char *conf, int loop)
{
    char *argv[] = {(char *)h_kpud(),
                    "--state-dir",
                    (char *)h_path("state"),
                    "--socket",
                    sock_path,
                    "--config",
                    (char *)(conf ? conf : "/dev/null"),
                    "--replay",
                    (char *)replay_capture(),
                    loop ? "--replay-loop" : NULL,
                    NULL};
    return h_spawn(argv, log_path);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Run kpuctl with args (NULL-terminated, after "--socket S --json"); first line of its
 * output into out. Returns the exit status. */
static int kpuctl(char *out, size_t cap, const char *const *args)
{
    char *argv[16];
    int n = 0, fd, st = -1;
    pid_t pid;

    argv[n++] = KPU_TEST_KPUCTL;
    argv[n++] = "--socket";
    argv[n++] = sock_path;
    argv[n++] = "--json";
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    pid = h_spawn_pipe(argv, h_path("kpuctl.log"), &fd);
    if (h_read_line(fd, out, cap, WAIT_MS) < 0)
        out[0] = 0;
    close(fd);
    for (uint64_t end = now_ms() + WAIT_MS; h_alive(pid, &st) && now_ms() < end;)
        usleep(10000);
    if (h_alive(pid, &st)) {
        h_kill9(pid);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(ready_only_after_socket_and_database_then_watchdog)
{
    char msg[1024];
    pid_t pid;
    uint64_t t0, t1;

    open_notify_socket();
    setenv("WATCHDOG_USEC", "300000", 1);
    pid = start_replay_kpud(NULL, 1);
    /* Nothing says READY before it is; WATCHDOG pings only start after READY. */
    expect_notify("READY=1", "WATCHDOG=1", WAIT_MS, msg, sizeof(msg));
    ck_assert_int_eq(try_connect(sock_path), 0);
    ck_assert_int_gt(h_db_int(db_path, "PRAGMA user_version"), 0);
    ck_assert_msg(strstr(msg, "STATUS=1 device,"), "READY without a device status: %s", msg);
    /* Pings at half the period: two within a few periods (the first ~150 ms after READY). */
    t0 = now_ms();
    expect_notify("WATCHDOG=1", "READY=1", 5000, NULL, 0);
    expect_notify("WATCHDOG=1", "READY=1", 5000, NULL, 0);
    t1 = now_ms();
    ck_assert_msg(t1 - t0 < 3000, "two pings took %llu ms", (unsigned long long)(t1 - t0));
    kill(pid, SIGTERM);
    expect_notify("STOPPING=1", NULL, 10000, NULL, 0);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
}
END_TEST

START_TEST(no_watchdog_without_watchdog_usec)
{
    char msg[1024];
    pid_t pid;

    open_notify_socket();
    pid = start_replay_kpud(NULL, 1);
    expect_notify("READY=1", NULL, WAIT_MS, msg, sizeof(msg));
    /* A second of silence or status lines, never a ping. */
    for (uint64_t end = now_ms() + 1000; now_ms() < end;)
        if (next_notify(msg, sizeof(msg), 100))
            ck_assert_msg(!strstr(msg, "WATCHDOG=1"), "ping without a watchdog: %s", msg);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
}
END_TEST

START_TEST(socket_activation_serves_the_passed_fd)
{
    char out[4096];
    static const char *const devices[] = {"devices", NULL};
    pid_t pid;

    if (access(KPU_TEST_SOCKET_ACTIVATE, X_OK) != 0) {
        ck_assert_msg(!getenv("CI") || strcmp(getenv("CI"), "true") != 0,
                      "%s missing (install the systemd package)", KPU_TEST_SOCKET_ACTIVATE);
        fprintf(stderr, "skip: %s not installed\n", KPU_TEST_SOCKET_ACTIVATE);
        return;
    }
    open_notify_socket();
    {
        /* systemd-socket-activate binds and listens, then runs kpud (in its own pid) on the
         * first connection with LISTEN_FDS=1 and the socket on fd 3. */
        char *argv[] = {KPU_TEST_SOCKET_ACTIVATE,
                        "-l",
                        sock_path,
                        "-E",
                        "NOTIFY_SOCKET",
                        (char *)h_kpud(),
                        "--state-dir",
                        (char *)h_path("state"),
                        "--socket",
                        sock_path,
                        "--config",
                        "/dev/null",
                        "--replay",
                        (char *)replay_capture(),
                        "--replay-loop",
                        NULL};
        pid = h_spawn(argv, log_path);
    }
    ck_assert(h_wait_file(log_path, "Listening on", 10000));
    ck_assert_int_eq(kpuctl(out, sizeof(out), devices), 0);
    ck_assert_msg(strstr(out, "\"transport\":\"replay\""), "devices: %s", out);
    expect_notify("READY=1", NULL, WAIT_MS, NULL, 0);
    ck_assert(h_file_contains(log_path, "socket activation: listening on fd 3"));
    ck_assert_int_eq(h_stop(pid, 20000), 0);
}
END_TEST

START_TEST(sighup_changes_threshold_and_keeps_subscribers)
{
    static const char *const get[] = {"config", "get", "", NULL};
    char line[4096], out[4096];
    int fd;
    pid_t pid, watch;

    if (!h_need_data(FACE_MODEL) || !h_need_data(ASTRONAUT))
        return;
    open_notify_socket();
    write_file(conf_path, "[detect]\nthreshold = 0.5\n");
    {
        char sim[600];
        snprintf(sim, sizeof(sim), "--sim=%s", h_datapath(ASTRONAUT));
        char *argv[] = {(char *)h_kpud(),
                        "--state-dir",
                        (char *)h_path("state"),
                        "--socket",
                        sock_path,
                        "--config",
                        conf_path,
                        sim,
                        "--sim-model",
                        (char *)h_datapath(FACE_MODEL),
                        "--sim-agent",
                        (char *)h_agent_sim(),
                        NULL};
        pid = h_spawn(argv, log_path);
    }
    expect_notify("READY=1", NULL, WAIT_MS, NULL, 0);
    {
        char *argv[] = {KPU_TEST_KPUCTL, "--socket", sock_path, "--json", "watch", NULL};
        watch = h_spawn_pipe(argv, h_path("watch.log"), &fd);
    }
    ck_assert_int_gt(h_read_line(fd, line, sizeof(line), WAIT_MS), 0);
    ck_assert_ptr_nonnull(strstr(line, "\"detection\""));
    ck_assert_int_eq(kpuctl(out, sizeof(out), get), 0);
    ck_assert_msg(strstr(out, "\"threshold\":0.5,"), "before: %s", out);

    write_file(conf_path, "[detect]\nthreshold = 0.75\n");
    kill(pid, SIGHUP);
    expect_notify("RELOADING=1", NULL, 10000, NULL, 0);
    expect_notify("READY=1", NULL, 10000, NULL, 0);
    ck_assert_int_eq(kpuctl(out, sizeof(out), get), 0);
    ck_assert_msg(strstr(out, "\"threshold\":0.75,"), "after: %s", out);
    /* The subscriber was not dropped: the same kpuctl watch keeps receiving frames. */
    for (int i = 0; i < 5; i++) {
        ck_assert_int_gt(h_read_line(fd, line, sizeof(line), WAIT_MS), 0);
        ck_assert_msg(strstr(line, "\"detection\""), "watch after reload: %s", line);
    }
    ck_assert(h_alive(watch, NULL));
    ck_assert(h_file_contains(log_path, "threshold 0.75"));
    close(fd);
    h_stop(watch, 5000);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
}
END_TEST

START_TEST(sigterm_stores_the_pending_batch)
{
    char line[4096];
    int fd, seen = 0;
    pid_t pid, watch;
    int64_t before;

    open_notify_socket();
    /* A batch interval far beyond the test: rows reach the file only through the flush. */
    write_file(conf_path, "[store]\nbatch_ms = 10000\n");
    pid = start_replay_kpud(conf_path, 0);
    expect_notify("READY=1", NULL, WAIT_MS, NULL, 0);
    {
        char *argv[] = {KPU_TEST_KPUCTL, "--socket", sock_path, "--json", "watch", NULL};
        watch = h_spawn_pipe(argv, h_path("watch.log"), &fd);
    }
    while (seen < 5) {
        ck_assert_int_gt(h_read_line(fd, line, sizeof(line), WAIT_MS), 0);
        seen += strstr(line, "\"detection\"") != NULL;
    }
    before = h_db_int(db_path, "SELECT count(*) FROM frames");
    ck_assert_int_eq(before, 0);
    ck_assert_int_eq(h_stop(pid, 20000), 0);
    ck_assert_int_ge(h_db_int(db_path, "SELECT count(*) FROM frames"), seen);
    ck_assert(h_file_contains(log_path, "frames committed in"));
    close(fd);
    h_stop(watch, 5000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("systemd");
    TCase *tc = tcase_create("service");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ready_only_after_socket_and_database_then_watchdog);
    tcase_add_test(tc, no_watchdog_without_watchdog_usec);
    tcase_add_test(tc, socket_activation_serves_the_passed_fd);
    tcase_add_test(tc, sighup_changes_threshold_and_keeps_subscribers);
    tcase_add_test(tc, sigterm_stores_the_pending_batch);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
