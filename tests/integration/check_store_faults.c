/* SPDX-License-Identifier: MIT */
/*
 * Disk full and read-only databases (issue 4 "Store", issue 9 "Disk full"): the store must
 * log one clear line, keep accepting frames (bounded), count write errors, retry, and
 * write everything it kept once space or write permission returns, leaving a database
 * that passes integrity_check.
 *
 * Disk full uses a real size-limited tmpfs mounted in a private mount namespace (so it
 * vanishes with the test process); it needs root. Without root it is skipped with a
 * message, unless CI=true, where it fails. The read-only test runs as an unprivileged
 * user (dropping to nobody when started as root, since root ignores file modes).
 */
#include "../unit/check_store_util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define NOBODY_ID 65534
#define TMPFS_SIZE "4m"

struct fx {
    uv_loop_t loop;
    char log[8192];
    uint64_t committed_frames;
};

static void on_log(int prio, const char *msg, void *ud)
{
    struct fx *fx = ud;
    size_t l = strlen(fx->log);

    snprintf(fx->log + l, sizeof(fx->log) - l, "<%d>%s\n", prio, msg);
}

static void on_committed(struct kpud_store *s, const struct kpud_store_batch_info *info, void *ud)
{
    struct fx *fx = ud;

    (void)s;
    fx->committed_frames += info->frames;
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle))) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

static bool ci(void)
{
    const char *e = getenv("CI");

    return e && !strcmp(e, "true");
}

static void add_range(struct kpud_store *s, uint32_t from, uint32_t n)
{
    struct t_frame tf;

    for (uint32_t i = from; i < from + n; i++) {
        t_make_frame(&tf, i, T_BASE_NS);
        ck_assert_int_eq(kpud_store_add_frame(s, &tf.rec), 0);
    }
}

static void run_until_written(struct fx *fx, struct kpud_store *s)
{
    struct kpud_store_counters c;

    for (;;) {
        kpud_store_get_counters(s, &c);
        if (!c.queue_frames && !c.queue_rows)
            return;
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
}

static void check_integrity(const char *db)
{
    char *r = t_sql_text(db, "PRAGMA integrity_check");

    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r, "ok");
    free(r);
}

START_TEST(test_disk_full)
{
    struct fx fx;
    struct kpud_store_opts o = {0};
    struct kpud_store *s;
    struct kpud_store_counters c;
    char *dir = t_mkdtemp(), *db = t_path(dir, "full.db"), *filler = t_path(dir, "filler");
    char block[65536];
    uint32_t next = 0;
    int fd;

    if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=" TMPFS_SIZE) != 0) {
        ck_assert_msg(!ci(), "disk-full test needs root and mount (CI=true): %s", strerror(errno));
        printf("SKIP test_disk_full: needs root to mount a size-limited tmpfs\n");
        rmdir(dir);
        free(dir);
        free(db);
        free(filler);
        return;
    }
    memset(&fx, 0, sizeof(fx));
    uv_loop_init(&fx.loop);
    o.path = db;
    o.log = on_log;
    o.log_user_data = &fx;
    o.committed = on_committed;
    o.committed_user_data = &fx;
    o.queue_frames = 20000;
    ck_assert_int_eq(kpud_store_open(&fx.loop, &o, &s), 0);
    add_range(s, next, 2000);
    next += 2000;
    ck_assert_int_eq(kpud_store_flush(s), 0);

    /* Take all the space that is left. */
    memset(block, 0x5a, sizeof(block));
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    while (write(fd, block, sizeof(block)) > 0)
        ;
    while (write(fd, block, 512) > 0)
        ;
    close(fd);

    /* Keep streaming until commits fail (the WAL's existing pages absorb a little). */
    do {
        add_range(s, next, 500);
        next += 500;
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        (void)kpud_store_flush(s);
        kpud_store_get_counters(s, &c);
    } while (c.write_errors == 0 && next < 19000);
    ck_assert_uint_gt(c.write_errors, 0);
    ck_assert_int_eq(c.last_error & 0xff, SQLITE_FULL);
    ck_assert_ptr_nonnull(strstr(fx.log, "<3>store: "));
    ck_assert_ptr_nonnull(strstr(fx.log, "database or disk is full"));
    ck_assert_uint_gt(c.queue_frames, 0);

    /* Live streaming continues, retries fail quietly (one line per episode). */
    while (c.write_errors < 4) {
        add_range(s, next, 10);
        next += 10;
        uv_run(&fx.loop, UV_RUN_ONCE);
        kpud_store_get_counters(s, &c);
    }
    ck_assert_int_eq(count_substr(fx.log, "commit of"), 1);
    ck_assert_uint_eq(c.frames_dropped, 0);

    /* Space returns: everything kept is written. */
    ck_assert_int_eq(unlink(filler), 0);
    run_until_written(&fx, s);
    kpud_store_get_counters(s, &c);
    ck_assert_uint_eq(c.frames_committed, next);
    ck_assert_ptr_nonnull(strstr(fx.log, "writes resumed"));
    ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM frames"), next);
    ck_assert_int_eq(t_sql_int(db, "SELECT count(DISTINCT frame_seq) FROM frames"), next);
    check_integrity(db);
    ck_assert_int_eq(t_close(&fx.loop, s), 0);
    check_integrity(db);
    uv_loop_close(&fx.loop);
    umount2(dir, MNT_DETACH);
    rmdir(dir);
    printf("disk full: %u frames kept through %llu failed commits, all written after\n", next,
           (unsigned long long)c.write_errors);
    free(dir);
    free(db);
    free(filler);
}
END_TEST

/* The queue bound holds during a long disk-full episode: oldest dropped and counted. */
START_TEST(test_disk_full_queue_bound)
{
    struct fx fx;
    struct kpud_store_opts o = {0};
    struct kpud_store *s;
    struct kpud_store_counters c;
    char *dir = t_mkdtemp(), *db = t_path(dir, "full.db"), *filler = t_path(dir, "filler");
    char block[65536];
    uint32_t next = 0;
    int fd;

    if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=" TMPFS_SIZE) != 0) {
        ck_assert_msg(!ci(), "disk-full test needs root and mount (CI=true)");
        printf("SKIP test_disk_full_queue_bound: needs root to mount a size-limited tmpfs\n");
        rmdir(dir);
        free(dir);
        free(db);
        free(filler);
        return;
    }
    memset(&fx, 0, sizeof(fx));
    uv_loop_init(&fx.loop);
    o.path = db;
    o.log = on_log;
    o.log_user_data = &fx;
    o.queue_frames = 1000;
    ck_assert_int_eq(kpud_store_open(&fx.loop, &o, &s), 0);
    memset(block, 0x5a, sizeof(block));
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    while (write(fd, block, sizeof(block)) > 0)
        ;
    while (write(fd, block, 512) > 0)
        ;
    close(fd);
    do {
        add_range(s, next, 100);
        next += 100;
        (void)kpud_store_flush(s);
        kpud_store_get_counters(s, &c);
    } while (c.write_errors == 0 && next < 100000);
    ck_assert_uint_gt(c.write_errors, 0);
    add_range(s, next, 5000);
    next += 5000;
    kpud_store_get_counters(s, &c);
    ck_assert_uint_eq(c.queue_frames, 1000);
    ck_assert_uint_gt(c.frames_dropped, 0);
    ck_assert_int_eq(unlink(filler), 0);
    run_until_written(&fx, s);
    kpud_store_get_counters(s, &c);
    ck_assert_uint_eq(c.frames_committed + c.frames_dropped, next);
    /* The newest frames survived the drop. */
    ck_assert_int_eq(t_sql_int(db, "SELECT max(frame_seq) FROM frames"), next - 1);
    check_integrity(db);
    ck_assert_int_eq(t_close(&fx.loop, s), 0);
    uv_loop_close(&fx.loop);
    umount2(dir, MNT_DETACH);
    rmdir(dir);
    free(dir);
    free(db);
    free(filler);
}
END_TEST

static void chmod_sidecars(const char *db, mode_t mode)
{
    char p[512];

    snprintf(p, sizeof(p), "%s-wal", db);
    chmod(p, mode);
    snprintf(p, sizeof(p), "%s-shm", db);
    chmod(p, mode);
}

/* Become an unprivileged user when root, so file modes apply. */
static void drop_to_nobody(const char *dir)
{
    if (geteuid() != 0)
        return;
    ck_assert_int_eq(chown(dir, NOBODY_ID, NOBODY_ID), 0);
    ck_assert_int_eq(setgroups(0, NULL), 0);
    ck_assert_int_eq(setgid(NOBODY_ID), 0);
    ck_assert_int_eq(setuid(NOBODY_ID), 0);
}

START_TEST(test_read_only_database)
{
    struct fx fx;
    struct kpud_store_opts o = {0};
    struct kpud_store *s;
    struct kpud_store_counters c;
    char *dir = t_mkdtemp(), *db = t_path(dir, "ro.db");

    drop_to_nobody(dir);
    memset(&fx, 0, sizeof(fx));
    uv_loop_init(&fx.loop);
    o.path = db;
    o.log = on_log;
    o.log_user_data = &fx;
    ck_assert_int_eq(kpud_store_open(&fx.loop, &o, &s), 0);
    add_range(s, 0, 100);
    ck_assert_int_eq(t_close(&fx.loop, s), 0);
    ck_assert_int_eq(chmod(db, 0444), 0);

    /* Opens anyway (queries work; writes are queued) and says so. */
    ck_assert_int_eq(kpud_store_open(&fx.loop, &o, &s), 0);
    ck_assert_ptr_nonnull(strstr(fx.log, "read-only"));
    add_range(s, 100, 300);
    memset(&c, 0, sizeof(c));
    while (c.write_errors < 3) {
        uv_run(&fx.loop, UV_RUN_ONCE);
        kpud_store_get_counters(s, &c);
    }
    ck_assert_int_eq(c.last_error & 0xff, SQLITE_READONLY);
    ck_assert_ptr_nonnull(strstr(fx.log, "<3>store: "));
    ck_assert_ptr_nonnull(strstr(fx.log, "readonly"));
    ck_assert_int_eq(count_substr(fx.log, "commit of"), 1);
    ck_assert_uint_eq(c.queue_frames, 300);
    add_range(s, 400, 100); /* streaming goes on */

    /* Writable again (as an admin would fix it: the file and its -wal and -shm, which
     * SQLite created with the file's mode): the writer reopens and catches up. */
    ck_assert_int_eq(chmod(db, 0644), 0);
    chmod_sidecars(db, 0644);
    run_until_written(&fx, s);
    ck_assert_ptr_nonnull(strstr(fx.log, "writes resumed"));
    ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM frames"), 500);
    check_integrity(db);
    ck_assert_int_eq(t_close(&fx.loop, s), 0);
    uv_loop_close(&fx.loop);
    t_rmdir(dir);
    free(dir);
    free(db);
}
END_TEST

/* Closing while the file is read-only: the unwritten rows are reported, no hang. */
START_TEST(test_read_only_close_reports_loss)
{
    struct fx fx;
    struct kpud_store_opts o = {0};
    struct kpud_store *s;
    char *dir = t_mkdtemp(), *db = t_path(dir, "ro.db");

    drop_to_nobody(dir);
    memset(&fx, 0, sizeof(fx));
    uv_loop_init(&fx.loop);
    o.path = db;
    o.log = on_log;
    o.log_user_data = &fx;
    ck_assert_int_eq(kpud_store_open(&fx.loop, &o, &s), 0);
    ck_assert_int_eq(t_close(&fx.loop, s), 0);
    ck_assert_int_eq(chmod(db, 0444), 0);
    ck_assert_int_eq(kpud_store_open(&fx.loop, &o, &s), 0);
    add_range(s, 0, 10);
    ck_assert_int_eq(t_close(&fx.loop, s), -EIO);
    ck_assert_ptr_nonnull(strstr(fx.log, "closing with 10 frames"));
    check_integrity(db);
    uv_loop_close(&fx.loop);
    chmod(db, 0644);
    chmod_sidecars(db, 0644);
    t_rmdir(dir);
    free(dir);
    free(db);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_faults");
    TCase *tc = tcase_create("faults");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_disk_full);
    tcase_add_test(tc, test_disk_full_queue_bound);
    tcase_add_test(tc, test_read_only_database);
    tcase_add_test(tc, test_read_only_close_reports_loss);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
