/* SPDX-License-Identifier: MIT */
/*
 * Store benchmark (docs/performance.md "store"): rows per second through the store's
 * batched writer on a real libuv loop against a baseline of raw batched SQLite inserts of
 * the same rows (same schema, pragmas and prepared statements, one transaction per 512 (or
 * $KPU_BENCH_BATCH_ROWS) rows) in the same run; commit time per batch (p50/p99/max) on the loop thread; and the
 * time of one retention step for a few step sizes.
 *
 * Usage: bench_store [FRAMES] [DIR]   (defaults: 100000 frames, a fresh dir under /tmp)
 * Frame i carries i % 4 boxes, so rows = frames * 2.5.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "store.h"

/* Rows per transaction, for the baseline and the store alike: the store's default, or
 * $KPU_BENCH_BATCH_ROWS to try another (main() sets it). */
static uint32_t batch_rows = 512;
#define QUEUE_HIGH 4096 /* producer pauses above this queue depth (no drops) */
#define FRAMES_PER_TICK 64
#define MAX_BATCHES 100000

static const char *const labels[3] = {"face", "person", "cat"};

static uint64_t now_mono_ns(void)
{
    return uv_hrtime();
}

static int64_t now_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct gen {
    struct kpud_frame_rec f;
    struct kpud_box_rec boxes[4];
};

static void gen_frame(struct gen *g, uint32_t i, int64_t t_ns)
{
    memset(g, 0, sizeof(*g));
    g->f.device = (i % 2) ? "bench-b" : "bench-a";
    g->f.frame_seq = i;
    g->f.device_time_us = (uint64_t)i * 33333;
    g->f.host_time_ns = t_ns;
    g->f.model = "facedetect";
    g->f.image_width = 320;
    g->f.image_height = 240;
    g->f.kpu_us = 15000;
    g->f.n_boxes = i % 4;
    for (uint32_t k = 0; k < g->f.n_boxes; k++) {
        g->boxes[k].class_id = (i + k) % 3;
        g->boxes[k].label = labels[g->boxes[k].class_id];
        g->boxes[k].score = (float)((i * 7 + k * 13) % 100) / 100.0f;
        g->boxes[k].x = (int32_t)((i * 3 + k) % 300);
        g->boxes[k].y = (int32_t)((i * 5 + k) % 200);
        g->boxes[k].w = 10 + k;
        g->boxes[k].h = 20 + k;
    }
    g->f.boxes = g->boxes;
}

static uint64_t rows_of(uint32_t n)
{
    uint64_t r = 0;

    for (uint32_t i = 0; i < n; i++)
        r += 1 + i % 4;
    return r;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double p)
{
    size_t i;

    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

static void quiet_log(int prio, const char *msg, void *ud)
{
    (void)ud;
    if (prio <= 4)
        fprintf(stderr, "<%d>%s\n", prio, msg);
}

/* Create an empty database with the store's schema and pragmas. */
static int make_db(const char *path)
{
    uv_loop_t loop;
    struct kpud_store_opts o = {.path = path, .log = quiet_log};
    struct kpud_store *s;
    int r;

    uv_loop_init(&loop);
    r = kpud_store_open(&loop, &o, &s);
    if (r < 0)
        return r;
    kpud_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

static void rm_db(const char *path)
{
    char p[600];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* ----------------------------------------------------------------------------------- */
/* Baseline: raw SQLite, one transaction per batch_rows rows. */

static int raw_insert(const char *path, uint32_t n, uint64_t *commit_ns, size_t *n_commits,
                      double *secs)
{
    sqlite3 *db;
    sqlite3_stmt *fr, *det, *dev;
    struct gen g;
    uint32_t rows = 0;
    uint64_t t0, tb = 0;
    int64_t base = now_wall_ns();

    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    sqlite3_exec(db,
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                 " PRAGMA foreign_keys = ON",
                 NULL, NULL, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO frames(session_id, device_id, frame_seq, device_time_us,"
                       " time_ns, model, image_w, image_h, kpu_us, n_boxes)"
                       " VALUES(NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                       -1, &fr, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO detections(frame_id, device_id, time_ns, class_id, label,"
                       " score, x, y, w, h) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                       -1, &det, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT OR IGNORE INTO devices(id, first_seen_ns, last_seen_ns)"
                       " VALUES(?1, 0, 0)",
                       -1, &dev, NULL);
    *n_commits = 0;
    t0 = now_mono_ns();
    for (uint32_t i = 0; i < n; i++) {
        int64_t fid;

        gen_frame(&g, i, base + (int64_t)i * 1000);
        if (rows == 0) {
            tb = now_mono_ns();
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            sqlite3_bind_text(dev, 1, "bench-a", -1, SQLITE_STATIC);
            sqlite3_step(dev);
            sqlite3_reset(dev);
            sqlite3_bind_text(dev, 1, "bench-b", -1, SQLITE_STATIC);
            sqlite3_step(dev);
            sqlite3_reset(dev);
        }
        sqlite3_bind_text(fr, 1, g.f.device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(fr, 2, g.f.frame_seq);
        sqlite3_bind_int64(fr, 3, (int64_t)g.f.device_time_us);
        sqlite3_bind_int64(fr, 4, g.f.host_time_ns);
        sqlite3_bind_text(fr, 5, g.f.model, -1, SQLITE_STATIC);
        sqlite3_bind_int64(fr, 6, g.f.image_width);
        sqlite3_bind_int64(fr, 7, g.f.image_height);
        sqlite3_bind_int64(fr, 8, g.f.kpu_us);
        sqlite3_bind_int64(fr, 9, g.f.n_boxes);
        if (sqlite3_step(fr) != SQLITE_DONE)
            return -1;
        sqlite3_reset(fr);
        fid = sqlite3_last_insert_rowid(db);
        for (uint32_t k = 0; k < g.f.n_boxes; k++) {
            const struct kpud_box_rec *b = &g.boxes[k];

            sqlite3_bind_int64(det, 1, fid);
            sqlite3_bind_text(det, 2, g.f.device, -1, SQLITE_STATIC);
            sqlite3_bind_int64(det, 3, g.f.host_time_ns);
            sqlite3_bind_int64(det, 4, b->class_id);
            sqlite3_bind_text(det, 5, b->label, -1, SQLITE_STATIC);
            sqlite3_bind_double(det, 6, b->score);
            sqlite3_bind_int64(det, 7, b->x);
            sqlite3_bind_int64(det, 8, b->y);
            sqlite3_bind_int64(det, 9, b->w);
            sqlite3_bind_int64(det, 10, b->h);
            if (sqlite3_step(det) != SQLITE_DONE)
                return -1;
            sqlite3_reset(det);
        }
        rows += 1 + g.f.n_boxes;
        if (rows >= batch_rows || i + 1 == n) {
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            if (*n_commits < MAX_BATCHES)
                commit_ns[(*n_commits)++] = now_mono_ns() - tb;
            rows = 0;
        }
    }
    *secs = (double)(now_mono_ns() - t0) / 1e9;
    sqlite3_finalize(fr);
    sqlite3_finalize(det);
    sqlite3_finalize(dev);
    sqlite3_close(db);
    return 0;
}

/* ----------------------------------------------------------------------------------- */
/* Through the store on a libuv loop. */

struct run {
    struct kpud_store *s;
    uv_idle_t idle;
    uint32_t next, n;
    int64_t base_ns, step_ns;
    uint64_t *commit_ns;
    size_t n_commits;
    uint64_t frames_done;
};

static void on_committed(struct kpud_store *s, const struct kpud_store_batch_info *info, void *ud)
{
    struct run *r = ud;

    (void)s;
    if (r->n_commits < MAX_BATCHES)
        r->commit_ns[r->n_commits++] = info->commit_ns;
    r->frames_done += info->frames;
    if (r->frames_done == r->n)
        uv_stop(r->idle.loop);
}

static void on_idle(uv_idle_t *h)
{
    struct run *r = h->data;
    struct kpud_store_counters c;
    struct gen g;

    kpud_store_get_counters(r->s, &c);
    if (c.queue_frames >= QUEUE_HIGH)
        return;
    for (int k = 0; k < FRAMES_PER_TICK && r->next < r->n; k++, r->next++) {
        gen_frame(&g, r->next, r->base_ns + (int64_t)r->next * r->step_ns);
        if (kpud_store_add_frame(r->s, &g.f) < 0)
            abort();
    }
    if (r->next == r->n)
        uv_idle_stop(h);
}

/* Ingest n frames through the store; returns seconds (wall) or < 0. */
static double store_insert(const char *path, uint32_t n, int64_t base_ns, int64_t step_ns,
                           uint64_t *commit_ns, size_t *n_commits, uint32_t step_rows,
                           struct kpud_store **keep, uv_loop_t *loop)
{
    struct kpud_store_opts o = {.path = path, .log = quiet_log, .batch_rows = batch_rows};
    struct run r = {0};
    uint64_t t0;

    r.n = n;
    r.idle.loop = loop;
    r.base_ns = base_ns;
    r.step_ns = step_ns;
    r.commit_ns = commit_ns;
    o.committed = on_committed;
    o.committed_user_data = &r;
    o.retention_step_rows = step_rows;
    o.retention_period_ms = 3600 * 1000;
    if (kpud_store_open(loop, &o, &r.s) < 0)
        return -1;
    uv_idle_init(loop, &r.idle);
    r.idle.data = &r;
    t0 = now_mono_ns();
    uv_idle_start(&r.idle, on_idle);
    uv_run(loop, UV_RUN_DEFAULT);
    *n_commits = r.n_commits;
    uv_close((uv_handle_t *)&r.idle, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (r.frames_done != n)
        return -1;
    *keep = r.s;
    return (double)(now_mono_ns() - t0) / 1e9;
}

/* Paced load: PACED_BOARDS boards at PACED_FPS for PACED_MS, frames handed over by a
 * timer as the session code would; what the writer's commits cost on the loop then. */
#define PACED_BOARDS 4
#define PACED_FPS 30
#define PACED_MS 3000

struct paced {
    struct kpud_store *s;
    uv_timer_t t;
    uint32_t next, ticks;
};

static void paced_tick(uv_timer_t *t)
{
    struct paced *p = t->data;
    struct gen g;

    for (int b = 0; b < PACED_BOARDS; b++, p->next++) {
        gen_frame(&g, p->next, now_wall_ns());
        if (kpud_store_add_frame(p->s, &g.f) < 0)
            abort();
    }
    if (++p->ticks >= PACED_MS * PACED_FPS / 1000)
        uv_timer_stop(t);
}

static void paced_bench(const char *dir)
{
    char path[600];
    uv_loop_t loop;
    struct kpud_store_opts o = {.path = path, .log = quiet_log};
    struct run r = {0};
    struct paced p = {0};

    snprintf(path, sizeof(path), "%s/paced.db", dir);
    rm_db(path);
    uv_loop_init(&loop);
    r.commit_ns = calloc(MAX_BATCHES, sizeof(uint64_t));
    r.n = UINT32_MAX;
    o.committed = on_committed;
    o.committed_user_data = &r;
    if (!r.commit_ns || kpud_store_open(&loop, &o, &p.s) < 0)
        exit(1);
    uv_timer_init(&loop, &p.t);
    p.t.data = &p;
    uv_timer_start(&p.t, paced_tick, 0, 1000 / PACED_FPS);
    uv_run(&loop, UV_RUN_DEFAULT);
    kpud_store_close(p.s);
    uv_close((uv_handle_t *)&p.t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    printf("  %d boards x %d fps for %d ms: %zu batches of ~%.0f rows, p50 %.3f ms p99 %.3f ms "
           "max %.3f ms\n",
           PACED_BOARDS, PACED_FPS, PACED_MS, r.n_commits,
           (double)rows_of(p.next) / (double)(r.n_commits ? r.n_commits : 1),
           pct_ms(r.commit_ns, r.n_commits, 0.5), pct_ms(r.commit_ns, r.n_commits, 0.99),
           pct_ms(r.commit_ns, r.n_commits, 1.0));
    free(r.commit_ns);
    rm_db(path);
}

/* Retention: half the frames are two days old; delete them in steps of step_rows rows. */
static void retention_bench(const char *dir, uint32_t n, uint32_t step_rows)
{
    char path[600];
    uv_loop_t loop;
    struct kpud_store *s;
    uint64_t *steps = calloc(MAX_BATCHES, sizeof(uint64_t)), *commits;
    size_t n_steps = 0, n_commits;
    uint64_t rows = 0;
    int64_t now = now_wall_ns(), day = 86400LL * 1000000000LL;
    struct kpud_store_step_report rep;

    commits = calloc(MAX_BATCHES, sizeof(uint64_t));
    snprintf(path, sizeof(path), "%s/retention-%u.db", dir, step_rows);
    rm_db(path);
    uv_loop_init(&loop);
    /* Frames spread evenly over the last two days. */
    if (store_insert(path, n, now - 2 * day, (2 * day) / n, commits, &n_commits, step_rows, &s,
                     &loop) < 0) {
        fprintf(stderr, "retention bench: ingest failed\n");
        exit(1);
    }
    kpud_store_set_retention(s, 86400, 0); /* frames older than one day go: about half */
    do {
        if (kpud_store_retention_step(s, &rep) < 0)
            break;
        if (rep.rows && n_steps < MAX_BATCHES)
            steps[n_steps++] = rep.ns;
        rows += rep.rows;
    } while (rep.more);
    printf("  step %5u rows: %4zu steps, %7llu rows deleted, step p50 %.2f ms p99 %.2f ms "
           "max %.2f ms\n",
           step_rows, n_steps, (unsigned long long)rows, pct_ms(steps, n_steps, 0.5),
           pct_ms(steps, n_steps, 0.99), pct_ms(steps, n_steps, 1.0));
    kpud_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rm_db(path);
    free(steps);
    free(commits);
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 100000;
    const char *rows_env = getenv("KPU_BENCH_BATCH_ROWS");
    char tmpl[] = "/tmp/kpud-bench-store-XXXXXX";
    const char *dir = argc > 2 ? argv[2] : mkdtemp(tmpl);
    char raw_path[600], st_path[600];
    uint64_t *raw_c = calloc(MAX_BATCHES, sizeof(uint64_t));
    uint64_t *st_c = calloc(MAX_BATCHES, sizeof(uint64_t));
    size_t raw_n = 0, st_n = 0;

    if (rows_env && strtoul(rows_env, NULL, 10) > 0)
        batch_rows = (uint32_t)strtoul(rows_env, NULL, 10);
    double raw_s, st_s;
    uint64_t rows = rows_of(n);
    struct kpud_store *s;
    uv_loop_t loop;

    if (!dir || !raw_c || !st_c || n == 0)
        return 1;
    snprintf(raw_path, sizeof(raw_path), "%s/raw.db", dir);
    snprintf(st_path, sizeof(st_path), "%s/store.db", dir);
    rm_db(raw_path);
    rm_db(st_path);
    printf("bench_store: %u frames, %llu rows (frame + boxes), SQLite %s, dir %s\n", n,
           (unsigned long long)rows, sqlite3_libversion(), dir);

    if (make_db(raw_path) < 0 || raw_insert(raw_path, n, raw_c, &raw_n, &raw_s) < 0) {
        fprintf(stderr, "baseline failed\n");
        return 1;
    }
    uv_loop_init(&loop);
    st_s = store_insert(st_path, n, now_wall_ns(), 1000, st_c, &st_n, 0, &s, &loop);
    if (st_s < 0) {
        fprintf(stderr, "store run failed\n");
        return 1;
    }
    kpud_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    printf("ingest (rows/s):\n");
    printf("  raw SQLite, 1 txn / %u rows : %10.0f rows/s  (%.2f s)\n", batch_rows,
           (double)rows / raw_s, raw_s);
    printf("  store batched writer        : %10.0f rows/s  (%.2f s)  ratio %.2f x baseline\n",
           (double)rows / st_s, st_s, raw_s / st_s);
    printf("commit time per batch (BEGIN..COMMIT on the loop thread):\n");
    printf("  raw   : %zu batches, p50 %.2f ms p99 %.2f ms max %.2f ms\n", raw_n,
           pct_ms(raw_c, raw_n, 0.5), pct_ms(raw_c, raw_n, 0.99), pct_ms(raw_c, raw_n, 1.0));
    printf("  store : %zu batches, p50 %.2f ms p99 %.2f ms max %.2f ms  (p50 ratio %.2f)\n", st_n,
           pct_ms(st_c, st_n, 0.5), pct_ms(st_c, st_n, 0.99), pct_ms(st_c, st_n, 1.0),
           pct_ms(st_c, st_n, 0.5) / pct_ms(raw_c, raw_n, 0.5));
    printf("commit time at a paced load (50 ms batches):\n");
    paced_bench(dir);
    printf("retention step time (%u frames, half older than the 1-day bound):\n", n / 2);
    retention_bench(dir, n / 2, 128);
    retention_bench(dir, n / 2, 256);
    retention_bench(dir, n / 2, 512);
    retention_bench(dir, n / 2, 2048);
    rm_db(raw_path);
    rm_db(st_path);
    if (argc <= 2)
        rmdir(dir);
    free(raw_c);
    free(st_c);
    return 0;
}
