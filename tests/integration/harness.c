/* SPDX-License-Identifier: MIT */
/*
 * Integration-test harness (see harness.h).
 */
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

const char *h_kpud(void)
{
    return KPU_TEST_KPUD;
}

const char *h_agent_sim(void)
{
    return KPU_TEST_AGENT_SIM;
}

const char *h_data(void)
{
    const char *d = getenv("KPU_TEST_DATA");
    return d && *d ? d : "../shared/data";
}

int h_need_data(const char *relpath)
{
    const char *ci = getenv("CI");
    if (access(h_datapath(relpath), R_OK) == 0)
        return 1;
    if (ci && strcmp(ci, "true") == 0)
        ck_abort_msg("test data %s missing (KPU_TEST_DATA=%s) and CI=true", relpath, h_data());
    printf("SKIP: test data %s not found under KPU_TEST_DATA=%s\n", relpath, h_data());
    return 0;
}

const char *h_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/kpu-test-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    }
    return tmpdir;
}

static const char *rotate(const char *a, const char *b)
{
    static char bufs[8][512];
    static int i;
    char *out = bufs[i++ % 8];
    snprintf(out, sizeof(bufs[0]), "%s/%s", a, b);
    return out;
}

const char *h_path(const char *name)
{
    return rotate(h_tmpdir(), name);
}

const char *h_datapath(const char *rel)
{
    return rotate(h_data(), rel);
}

static pid_t spawn(char *const argv[], const char *log, int *out_fd)
{
    int pfd[2] = {-1, -1};
    pid_t pid;

    if (out_fd)
        ck_assert_int_eq(pipe(pfd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (log) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 2);
                if (!out_fd)
                    dup2(fd, 1);
                close(fd);
            }
        }
        if (out_fd) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            close(pfd[1]);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (out_fd) {
        close(pfd[1]);
        *out_fd = pfd[0];
    }
    return pid;
}

pid_t h_spawn(char *const argv[], const char *log)
{
    return spawn(argv, log, NULL);
}

pid_t h_spawn_pipe(char *const argv[], const char *log, int *out_fd)
{
    return spawn(argv, log, out_fd);
}

int h_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = 0;
    return (int)n;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int h_alive(pid_t pid, int *status)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0)
        return 1;
    if (status)
        *status = st;
    return 0;
}

int h_stop(pid_t pid, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    int st;

    kill(pid, SIGTERM);
    while (now_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pause_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

void h_kill9(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static int db_query(const char *db, const char *sql, int64_t *iv, char *tv, size_t cap)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (access(db, R_OK) != 0)
        return -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(h, 2000);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (iv)
            *iv = sqlite3_column_int64(st, 0);
        if (tv) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(tv, cap, "%s", t ? (const char *)t : "");
        }
        rc = 0;
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(h);
    return rc;
}

int64_t h_db_int(const char *db, const char *sql)
{
    int64_t v = -1;
    return db_query(db, sql, &v, NULL, 0) == 0 ? v : -1;
}

int h_db_text(const char *db, const char *sql, char *out, size_t cap)
{
    return db_query(db, sql, NULL, out, cap);
}

int64_t h_wait_db(const char *db, const char *sql, int64_t min, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    int64_t v;
    do {
        v = h_db_int(db, sql);
        if (v >= min)
            return v;
        pause_ms(20);
    } while (now_ms() < end);
    return v;
}

int h_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int h_wait_file(const char *path, const char *needle, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    do {
        if (h_file_contains(path, needle))
            return 1;
        pause_ms(20);
    } while (now_ms() < end);
    return 0;
}

void h_cleanup(void)
{
    char cmd[300];
    if (!tmpdir[0])
        return;
    if (!getenv("KPU_TEST_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        fprintf(stderr, "kept %s\n", tmpdir);
    }
    tmpdir[0] = 0;
}

pid_t h_kpud_sim(const char *image, const char *model, const char *const *extra)
{
    static char sim_arg[600];
    char *argv[40];
    int n = 0;

    snprintf(sim_arg, sizeof(sim_arg), "--sim=%s", h_datapath(image));
    argv[n++] = (char *)h_kpud();
    argv[n++] = "--state-dir";
    argv[n++] = (char *)h_path("state");
    argv[n++] = "--socket";
    argv[n++] = (char *)h_path("kpud.sock");
    argv[n++] = "--config";
    argv[n++] = "/dev/null";
    argv[n++] = sim_arg;
    argv[n++] = "--sim-model";
    argv[n++] = (char *)h_datapath(model);
    argv[n++] = "--sim-agent";
    argv[n++] = (char *)h_agent_sim();
    for (int i = 0; extra && extra[i]; i++) {
        ck_assert_int_lt(n, 39);
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    return h_spawn(argv, h_path("kpud.log"));
}

void h_assert_db_sound(const char *db)
{
    char res[64] = "";

    ck_assert_int_eq(h_db_text(db, "PRAGMA integrity_check", res, sizeof(res)), 0);
    ck_assert_str_eq(res, "ok");
    ck_assert_int_eq(h_db_int(db, "SELECT count(*) FROM (SELECT session_id, frame_seq FROM "
                                  "frames GROUP BY 1, 2 HAVING count(*) > 1)"),
                     0);
    ck_assert_int_eq(h_db_int(db, "SELECT count(*) FROM detections d LEFT JOIN frames f ON "
                                  "f.id = d.frame_id WHERE f.id IS NULL"),
                     0);
}
