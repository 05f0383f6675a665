/* SPDX-License-Identifier: MIT */
/*
 * kill -9 during ingest (issue 4 "Crash safety", issue 9 asks for 50 rounds): runs the
 * real store in a child process (store_ingest_child) that ingests at full speed and
 * prints the last frame of each committed batch, kills it with SIGKILL after a random
 * number of those lines, then reopens the database and checks PRAGMA integrity_check,
 * foreign keys, and that every frame of every reported batch is there with its boxes.
 * All rounds share one database file, so the store reopens a file that was killed
 * mid-write each time; after the last round every earlier round's frames are checked
 * again.
 *
 * Environment: STORE_CHILD (path of the child, set by CTest), KPU_STORE_CRASH_ROUNDS
 * (default 10), KPU_STORE_CRASH_SEED (default: time; printed for reproduction).
 */
#include "../unit/check_store_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define DEFAULT_ROUNDS 10
#define MAX_LINES_BEFORE_KILL 80 /* batches to wait for before the kill, drawn uniformly */

struct round_result {
    uint32_t max_reported; /* highest frame_seq printed before the kill */
    uint32_t lines;
};

static pid_t spawn_child(const char *child, const char *db, const char *device, int *out_fd)
{
    int pfd[2];
    pid_t pid;

    ck_assert_int_eq(pipe(pfd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execl(child, child, db, device, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    *out_fd = pfd[0];
    return pid;
}

/* Parse complete lines in buf[0..*len), keep a partial tail; returns lines parsed. */
static uint32_t take_lines(char *buf, size_t *len, struct round_result *res)
{
    uint32_t n = 0;
    char *start = buf, *nl;

    while ((nl = memchr(start, '\n', *len - (size_t)(start - buf)))) {
        unsigned long v;

        *nl = 0;
        v = strtoul(start, NULL, 10);
        ck_assert_uint_gt(v, res->max_reported); /* batches are reported in order */
        res->max_reported = (uint32_t)v;
        res->lines++;
        n++;
        start = nl + 1;
    }
    *len -= (size_t)(start - buf);
    memmove(buf, start, *len);
    return n;
}

static void run_round(const char *child, const char *db, const char *device, uint32_t kill_after,
                      struct round_result *res)
{
    char buf[4096];
    size_t len = 0;
    ssize_t r;
    int fd, status;
    pid_t pid = spawn_child(child, db, device, &fd);

    memset(res, 0, sizeof(*res));
    while (res->lines < kill_after) {
        r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        ck_assert_msg(r > 0, "child exited before %u committed batches", kill_after);
        len += (size_t)r;
        take_lines(buf, &len, res);
    }
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Lines completed before the kill were reported too: they must hold as well. */
    while ((r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)r;
        take_lines(buf, &len, res);
    }
    close(fd);
}

/* Check the database after a kill: integrity, foreign keys, and every reported frame. */
static void verify(const char *db, const char *device, uint32_t max_reported, bool integrity)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    int64_t frames, bad_boxes;

    ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    if (!integrity)
        goto rows;
    ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

rows:
    /* Frames 1..max_reported of this device, each exactly once. */
    ck_assert_int_eq(sqlite3_prepare_v2(h,
                                        "SELECT count(DISTINCT frame_seq), count(*) FROM frames"
                                        " WHERE device_id = ?1 AND frame_seq <= ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, max_reported);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    frames = sqlite3_column_int64(st, 0);
    ck_assert_int_eq(frames, max_reported);
    ck_assert_int_eq(sqlite3_column_int64(st, 1), max_reported);
    sqlite3_finalize(st);

    /* Each of those frames has i % 4 boxes with the generated classes. */
    ck_assert_int_eq(sqlite3_prepare_v2(
                         h,
                         "SELECT count(*) FROM frames f WHERE f.device_id = ?1 AND"
                         " f.frame_seq <= ?2 AND (f.n_boxes != f.frame_seq % 4 OR"
                         " (SELECT count(*) FROM detections d WHERE d.frame_id = f.id) != f.n_boxes"
                         " OR EXISTS (SELECT 1 FROM detections d WHERE d.frame_id = f.id AND"
                         " d.class_id NOT IN ((f.frame_seq) % 3, (f.frame_seq + 1) % 3,"
                         " (f.frame_seq + 2) % 3)))",
                         -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, max_reported);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    bad_boxes = sqlite3_column_int64(st, 0);
    ck_assert_int_eq(bad_boxes, 0);
    sqlite3_finalize(st);
    ck_assert_int_eq(sqlite3_close(h), SQLITE_OK);
}

START_TEST(test_kill9_during_ingest)
{
    const char *child = getenv("STORE_CHILD");
    const char *e;
    unsigned rounds = DEFAULT_ROUNDS, seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    char *dir = t_mkdtemp(), *db = t_path(dir, "crash.db");
    uint32_t *reported;
    uint64_t total_checked = 0;

    ck_assert_msg(child && *child, "STORE_CHILD is not set (run through CTest)");
    if ((e = getenv("KPU_STORE_CRASH_ROUNDS")))
        rounds = (unsigned)strtoul(e, NULL, 10);
    if ((e = getenv("KPU_STORE_CRASH_SEED")))
        seed = (unsigned)strtoul(e, NULL, 10);
    printf("store crash test: %u rounds, seed %u (KPU_STORE_CRASH_SEED)\n", rounds, seed);
    fflush(stdout);
    srand(seed);
    reported = calloc(rounds, sizeof(*reported));
    for (unsigned r = 0; r < rounds; r++) {
        struct round_result res;
        char device[32];
        uint32_t kill_after = 1 + (uint32_t)(rand() % MAX_LINES_BEFORE_KILL);

        snprintf(device, sizeof(device), "crash-%u", r);
        run_round(child, db, device, kill_after, &res);
        reported[r] = res.max_reported;
        /* integrity_check covers the whole file; the rows of this round here, of every
         * round again after the last kill. */
        verify(db, device, reported[r], true);
        total_checked += res.max_reported;
        printf("round %u: killed after %u batches, frames 1..%u verified\n", r, res.lines,
               res.max_reported);
        fflush(stdout);
    }
    for (unsigned q = 0; q < rounds; q++) {
        char device[32];

        snprintf(device, sizeof(device), "crash-%u", q);
        verify(db, device, reported[q], false);
    }
    printf("store crash test: %u kills, %llu reported frames verified\n", rounds,
           (unsigned long long)total_checked);
    free(reported);
    t_rmdir(dir);
    free(dir);
    free(db);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_crash");
    TCase *tc = tcase_create("kill9");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_kill9_during_ingest);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
