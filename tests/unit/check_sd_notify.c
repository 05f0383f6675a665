/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/sd_notify.c: notification datagrams to a path and an abstract
 * $NOTIFY_SOCKET, malformed names, $WATCHDOG_USEC/$WATCHDOG_PID, and socket activation
 * ($LISTEN_PID/$LISTEN_FDS with a real listening socket moved to fd 3). Each test runs in
 * its own forked process (Check's fork mode), so environment and fd changes stay there.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sd_notify.h"

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kpu-sdn-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* A datagram socket bound to name (a path, or "@x" for the abstract namespace). */
static int bind_dgram(const char *name)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_uint_lt(strlen(name), sizeof(sa.sun_path));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, strlen(name));
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    if (name[0] == '@')
        sa.sun_path[0] = 0;
    else
        len++;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

static void recv_expect(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    ck_assert_int_gt(n, 0);
    buf[n] = 0;
    ck_assert_str_eq(buf, want);
}

START_TEST(no_socket_is_a_noop)
{
    ck_assert_int_eq(kpud_sd_notify("READY=1"), 0);
    ck_assert_int_eq(kpud_sd_notifyf("STATUS=%d devices", 2), 0);
}
END_TEST

START_TEST(path_socket_gets_the_datagram)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/notify", tmpdir);
    fd = bind_dgram(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(kpud_sd_notify("READY=1\nSTATUS=ok"), 1);
    recv_expect(fd, "READY=1\nSTATUS=ok");
    ck_assert_int_eq(kpud_sd_notifyf("STATUS=%u device%s", 2u, "s"), 1);
    recv_expect(fd, "STATUS=2 devices");
    close(fd);
}
END_TEST

START_TEST(abstract_socket_gets_the_datagram)
{
    char name[64];
    int fd;

    snprintf(name, sizeof(name), "@kpu-sdn-test-%ld", (long)getpid());
    fd = bind_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    ck_assert_int_eq(kpud_sd_notify("WATCHDOG=1"), 1);
    recv_expect(fd, "WATCHDOG=1");
    close(fd);
}
END_TEST

START_TEST(bad_names_and_absent_peer_are_errors)
{
    char path[128];
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    ck_assert_int_eq(kpud_sd_notify("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "@", 1);
    ck_assert_int_eq(kpud_sd_notify("READY=1"), -EINVAL);
    snprintf(path, sizeof(path), "%s/nobody-listens", tmpdir);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_lt(kpud_sd_notify("READY=1"), 0);
    ck_assert_int_eq(kpud_sd_notify(NULL), -EINVAL);
}
END_TEST

START_TEST(watchdog_usec_rules)
{
    char pid[32];

    ck_assert_uint_eq(kpud_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    ck_assert_uint_eq(kpud_sd_watchdog_usec(), 30000000u);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    ck_assert_uint_eq(kpud_sd_watchdog_usec(), 30000000u);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
    ck_assert_uint_eq(kpud_sd_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "0", 1);
    ck_assert_uint_eq(kpud_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "12x", 1);
    ck_assert_uint_eq(kpud_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "-5", 1);
    ck_assert_uint_eq(kpud_sd_watchdog_usec(), 0);
}
END_TEST

/*
 * The socket-activation tests put sockets on fd 3, where Check may keep its own message
 * file: they run in a child process that reports through its exit status (0 = passed,
 * else the failing line), so Check's fds in the test process stay untouched.
 */
#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "failed at line %d: %s\n", __LINE__, #cond);                           \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static void run_in_child(void (*fn)(void))
{
    int status = 0;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check failed");
}

/* A listening stream socket at path, moved to fd 3 as systemd passes it. */
static void listen_on_fd3(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(strlen(path) < sizeof(sa.sun_path));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    CHILD_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHILD_CHECK(listen(fd, 4) == 0);
    if (fd != KPUD_SD_LISTEN_FDS_START) {
        CHILD_CHECK(dup2(fd, KPUD_SD_LISTEN_FDS_START) == KPUD_SD_LISTEN_FDS_START);
        close(fd);
    }
}

static void adopt_child(void)
{
    char path[128], pid[32];
    int mismatch = -1;

    snprintf(path, sizeof(path), "%s/kpud.sock", tmpdir);
    listen_on_fd3(path);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    CHILD_CHECK(kpud_sd_listen_fds(1) == 1);
    CHILD_CHECK(getenv("LISTEN_FDS") == NULL);
    CHILD_CHECK(getenv("LISTEN_PID") == NULL);
    CHILD_CHECK((fcntl(3, F_GETFD) & FD_CLOEXEC) != 0);
    CHILD_CHECK(kpud_sd_listen_unix_fd(1, path, &mismatch) == 3);
    CHILD_CHECK(mismatch == 0);
    /* Another configured path: the only passed socket is used, and said to differ. */
    CHILD_CHECK(kpud_sd_listen_unix_fd(1, "/run/elsewhere.sock", &mismatch) == 3);
    CHILD_CHECK(mismatch == 1);
}

START_TEST(listen_fds_adopts_our_socket)
{
    run_in_child(adopt_child);
}
END_TEST

static void other_pid_child(void)
{
    char pid[32];

    CHILD_CHECK(kpud_sd_listen_fds(0) == 0); /* nothing set */
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    CHILD_CHECK(kpud_sd_listen_fds(0) == 0);
    CHILD_CHECK(getenv("LISTEN_FDS") != NULL); /* kept when not asked to unset */
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "one", 1);
    CHILD_CHECK(kpud_sd_listen_fds(0) == -EINVAL);
    /* A count naming a closed fd. */
    close(3);
    setenv("LISTEN_FDS", "1", 1);
    CHILD_CHECK(kpud_sd_listen_fds(0) == -EBADF);
}

START_TEST(listen_fds_for_another_pid_or_malformed)
{
    run_in_child(other_pid_child);
}
END_TEST

static void non_listening_child(void)
{
    int sv[2];

    /* fd 3 a connected (not listening) socket pair end: not a listener. */
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    if (sv[0] != 3) {
        CHILD_CHECK(dup2(sv[0], 3) == 3);
        close(sv[0]);
    }
    CHILD_CHECK(kpud_sd_listen_unix_fd(1, "/x", NULL) == -ENOENT);
    CHILD_CHECK(kpud_sd_listen_unix_fd(0, "/x", NULL) == -ENOENT);
}

START_TEST(non_listening_fds_are_not_taken)
{
    run_in_child(non_listening_child);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sd_notify");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, no_socket_is_a_noop);
    tcase_add_test(tc, path_socket_gets_the_datagram);
    tcase_add_test(tc, abstract_socket_gets_the_datagram);
    tcase_add_test(tc, bad_names_and_absent_peer_are_errors);
    tcase_add_test(tc, watchdog_usec_rules);
    tcase_add_test(tc, listen_fds_adopts_our_socket);
    tcase_add_test(tc, listen_fds_for_another_pid_or_malformed);
    tcase_add_test(tc, non_listening_fds_are_not_taken);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
