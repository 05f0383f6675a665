/* SPDX-License-Identifier: MIT */
/*
 * End-to-end ingest (issue 5, Performance): a board's detections as fast as they come ->
 * kpud -> SQLite + one libkpu-client subscriber, against raw batched SQLite inserts of the
 * same rows in this process. Goal: kpud >= 50 % of the raw rate.
 *
 *   bench_ingest KPUD CAPTURE.kcap [SECONDS] [AGENT_SIM MODEL IMAGES]
 *
 * 1. kpud replays CAPTURE with --replay-speed 0 --replay-loop: the daemon's own ceiling
 *    (link decode, session, store, fan-out) without the emulated KPU. This process holds
 *    one subscription (every frame, empty ones included) and counts what it receives;
 *    rows committed are read from the database (max rowid of frames and detections) at
 *    the start and end of a SECONDS window after one second of warm-up; kpud's CPU time
 *    comes from /proc.
 * 2. Baseline: the rows kpud stored in that window are read back and inserted again, raw,
 *    into a fresh database with the store's schema and pragmas (one transaction per 1024
 *    rows, prepared statements, as the store batches), timed.
 * 3. With AGENT_SIM MODEL IMAGES: kpud --sim --sim-fast, the agent simulator running the
 *    model on the software KPU as fast as it can; its rate is the emulated KPU's, shown for
 *    scale.
 */
#include "bench_util.h"

#include <kpu/client.h>
#include <poll.h>
#include <sqlite3.h>
#include <uv.h>

#include "store.h"

#define WARMUP_MS 1000u
#define BATCH_ROWS 1024u /* the store's default batch_rows (store.h) */
#define MAX_BASELINE_FRAMES 400000u

struct sub {
    uint64_t events, boxes, dropped;
};

static void on_event(kpu_client_t *c, const struct kpu_client_event *ev, void *ud)
{
    struct sub *s = ud;
    (void)c;
    if (ev->type == KPU_CLIENT_EVENT_DETECTION) {
        s->events++;
        s->boxes += ev->detection->n_boxes;
    } else if (ev->type == KPU_CLIENT_EVENT_DROPPED) {
        s->dropped += ev->dropped_count;
    }
}

static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Process client events for ms milliseconds. */
static void pump(kpu_client_t *c, unsigned ms)
{
    uint64_t end = bu_mono_ns() + (uint64_t)ms * 1000000u;
    while (bu_mono_ns() < end) {
        struct pollfd p = {.fd = kpu_client_get_fd(c), .events = POLLIN};
        if (p.fd < 0)
            return;
        if (poll(&p, 1, 5) > 0 && kpu_client_process(c) < 0)
            return;
    }
}

struct window {
    int64_t f0, f1, d0, d1; /* max frame / detection rowid at start and end */
    double secs, cpu;
    struct sub sub;
};

/* Run kpud with args, subscribe, measure a window. Returns 0 or -1. */
static int run_kpud(char **argv, const char *sock, const char *db_path, unsigned seconds,
                    struct window *w)
{
    struct kpu_client_opts o = {.socket_path = sock, .client_name = "bench_ingest"};
    struct kpu_client_sub_opts so = {.include_empty = 1};
    char log[600];
    kpu_client_t *c = NULL;
    sqlite3 *db = NULL;
    pid_t pid;
    uint64_t t0;
    double c0;
    int r = -1;

    snprintf(log, sizeof(log), "%s.log", db_path);
    memset(w, 0, sizeof(*w));
    pid = bu_spawn(argv, log);
    if (pid < 0 || bu_wait_path(sock, pid, 10000) < 0) {
        fprintf(stderr, "kpud did not start (see %s)\n", log);
        goto out;
    }
    if (kpu_client_open(&o, &c) < 0 ||
        kpu_client_subscribe(c, NULL, &so, on_event, &w->sub, NULL) < 0) {
        fprintf(stderr, "cannot subscribe to kpud: %s\n", kpu_client_open_error_text());
        goto out;
    }
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 1000);
    pump(c, WARMUP_MS);
    memset(&w->sub, 0, sizeof(w->sub));
    w->f0 = q_int(db, "SELECT coalesce(max(id), 0) FROM frames");
    w->d0 = q_int(db, "SELECT coalesce(max(id), 0) FROM detections");
    t0 = bu_mono_ns();
    c0 = bu_proc_cpu_s(pid);
    pump(c, seconds * 1000u);
    w->f1 = q_int(db, "SELECT coalesce(max(id), 0) FROM frames");
    w->d1 = q_int(db, "SELECT coalesce(max(id), 0) FROM detections");
    w->secs = (double)(bu_mono_ns() - t0) / 1e9;
    w->cpu = bu_proc_cpu_s(pid) - c0;
    r = w->f0 >= 0 && w->d1 >= 0 ? 0 : -1;
out:
    sqlite3_close(db);
    kpu_client_close(c);
    if (pid > 0)
        bu_stop(pid, NULL);
    return r;
}

static void quiet_log(int prio, const char *msg, void *ud)
{
    (void)ud;
    if (prio <= 3)
        fprintf(stderr, "<%d>%s\n", prio, msg);
}

/* An empty database with the store's schema and pragmas. */
static int make_db(const char *path)
{
    uv_loop_t loop;
    struct kpud_store_opts o = {.path = path, .log = quiet_log};
    struct kpud_store *s;

    uv_loop_init(&loop);
    if (kpud_store_open(&loop, &o, &s) < 0)
        return -1;
    kpud_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

struct frow {
    int64_t id, frame_seq, device_time_us, time_ns, image_w, image_h, kpu_us, n_boxes;
    char device[40], model[40];
};

struct drow {
    int64_t frame_id, time_ns, class_id, x, y, w, h;
    double score;
    char device[40], label[32];
};

static void col_text(sqlite3_stmt *st, int i, char *out, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, n, "%s", t ? (const char *)t : "");
}

/*
 * Read frames (f0, f1] and their detections from src and insert them raw into a fresh
 * database dst; returns rows per second (frames + detections), or -1.
 */
static double raw_baseline(const char *src, const char *dst, int64_t f0, int64_t f1,
                           uint64_t *rows_out)
{
    struct frow *fr = NULL;
    struct drow *dr = NULL;
    size_t nf = 0, nd = 0, capd = 0;
    sqlite3 *db;
    sqlite3_stmt *st, *ins_f, *ins_d, *dev;
    uint64_t t0, rows = 0, batch = 0;
    double rate = -1;

    if (f1 - f0 > (int64_t)MAX_BASELINE_FRAMES)
        f1 = f0 + MAX_BASELINE_FRAMES;
    if (f1 <= f0 || sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -1;
    fr = calloc((size_t)(f1 - f0), sizeof(*fr));
    sqlite3_prepare_v2(db,
                       "SELECT id, device_id, frame_seq, device_time_us, time_ns, model, image_w,"
                       " image_h, kpu_us, n_boxes FROM frames WHERE id > ?1 AND id <= ?2"
                       " ORDER BY id",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, f0);
    sqlite3_bind_int64(st, 2, f1);
    while (fr && sqlite3_step(st) == SQLITE_ROW && nf < (size_t)(f1 - f0)) {
        struct frow *f = &fr[nf++];
        f->id = sqlite3_column_int64(st, 0);
        col_text(st, 1, f->device, sizeof(f->device));
        f->frame_seq = sqlite3_column_int64(st, 2);
        f->device_time_us = sqlite3_column_int64(st, 3);
        f->time_ns = sqlite3_column_int64(st, 4);
        col_text(st, 5, f->model, sizeof(f->model));
        f->image_w = sqlite3_column_int64(st, 6);
        f->image_h = sqlite3_column_int64(st, 7);
        f->kpu_us = sqlite3_column_int64(st, 8);
        f->n_boxes = sqlite3_column_int64(st, 9);
    }
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db,
                       "SELECT frame_id, device_id, time_ns, class_id, label, score, x, y, w, h"
                       " FROM detections WHERE frame_id > ?1 AND frame_id <= ?2 ORDER BY id",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, f0);
    sqlite3_bind_int64(st, 2, f1);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct drow *d;
        if (nd == capd) {
            capd = capd ? capd * 2 : 65536;
            dr = realloc(dr, capd * sizeof(*dr));
            if (!dr)
                break;
        }
        d = &dr[nd++];
        d->frame_id = sqlite3_column_int64(st, 0);
        col_text(st, 1, d->device, sizeof(d->device));
        d->time_ns = sqlite3_column_int64(st, 2);
        d->class_id = sqlite3_column_int64(st, 3);
        col_text(st, 4, d->label, sizeof(d->label));
        d->score = sqlite3_column_double(st, 5);
        d->x = sqlite3_column_int64(st, 6);
        d->y = sqlite3_column_int64(st, 7);
        d->w = sqlite3_column_int64(st, 8);
        d->h = sqlite3_column_int64(st, 9);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (!fr || !dr || make_db(dst) < 0 || sqlite3_open(dst, &db) != SQLITE_OK)
        goto out;
    sqlite3_exec(db,
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                 NULL, NULL, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO frames(session_id, device_id, frame_seq, device_time_us,"
                       " time_ns, model, image_w, image_h, kpu_us, n_boxes)"
                       " VALUES(NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                       -1, &ins_f, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO detections(frame_id, device_id, time_ns, class_id, label,"
                       " score, x, y, w, h) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                       -1, &ins_d, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT OR IGNORE INTO devices(id, first_seen_ns, last_seen_ns)"
                       " VALUES(?1, 0, 0)",
                       -1, &dev, NULL);
    t0 = bu_mono_ns();
    for (size_t i = 0, j = 0; i < nf; i++) {
        const struct frow *f = &fr[i];
        int64_t fid;
        if (batch == 0) {
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            sqlite3_bind_text(dev, 1, f->device, -1, SQLITE_STATIC);
            sqlite3_step(dev);
            sqlite3_reset(dev);
        }
        sqlite3_bind_text(ins_f, 1, f->device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins_f, 2, f->frame_seq);
        sqlite3_bind_int64(ins_f, 3, f->device_time_us);
        sqlite3_bind_int64(ins_f, 4, f->time_ns);
        sqlite3_bind_text(ins_f, 5, f->model, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins_f, 6, f->image_w);
        sqlite3_bind_int64(ins_f, 7, f->image_h);
        sqlite3_bind_int64(ins_f, 8, f->kpu_us);
        sqlite3_bind_int64(ins_f, 9, f->n_boxes);
        if (sqlite3_step(ins_f) != SQLITE_DONE)
            goto out;
        sqlite3_reset(ins_f);
        fid = sqlite3_last_insert_rowid(db);
        batch++;
        for (; j < nd && dr[j].frame_id == f->id; j++) {
            const struct drow *d = &dr[j];
            sqlite3_bind_int64(ins_d, 1, fid);
            sqlite3_bind_text(ins_d, 2, d->device, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins_d, 3, d->time_ns);
            sqlite3_bind_int64(ins_d, 4, d->class_id);
            sqlite3_bind_text(ins_d, 5, d->label, -1, SQLITE_STATIC);
            sqlite3_bind_double(ins_d, 6, d->score);
            sqlite3_bind_int64(ins_d, 7, d->x);
            sqlite3_bind_int64(ins_d, 8, d->y);
            sqlite3_bind_int64(ins_d, 9, d->w);
            sqlite3_bind_int64(ins_d, 10, d->h);
            if (sqlite3_step(ins_d) != SQLITE_DONE)
                goto out;
            sqlite3_reset(ins_d);
            batch++;
        }
        if (batch >= BATCH_ROWS || i + 1 == nf) {
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            rows += batch;
            batch = 0;
        }
    }
    rate = (double)rows / ((double)(bu_mono_ns() - t0) / 1e9);
    *rows_out = rows;
    sqlite3_finalize(ins_f);
    sqlite3_finalize(ins_d);
    sqlite3_finalize(dev);
    sqlite3_close(db);
out:
    free(fr);
    free(dr);
    return rate;
}

static void print_window(const char *what, const struct window *w)
{
    double frames = (double)(w->f1 - w->f0), dets = (double)(w->d1 - w->d0);
    printf("%-34s %9.0f frames/s %9.0f rows/s  kpud CPU %3.0f %%  subscriber %8.0f events/s"
           " (%llu dropped)\n",
           what, frames / w->secs, (frames + dets) / w->secs, 100.0 * w->cpu / w->secs,
           (double)w->sub.events / w->secs, (unsigned long long)w->sub.dropped);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/kpu-bench-ingest-XXXXXX", sock[128], db[128], db2[128], conf[160];
    unsigned seconds = argc > 3 ? (unsigned)atoi(argv[3]) : 5u;
    struct window w;
    uint64_t raw_rows = 0;
    double raw;

    if (argc < 3 || seconds == 0) {
        fprintf(stderr, "usage: %s KPUD CAPTURE.kcap [SECONDS] [AGENT_SIM MODEL IMAGES]\n",
                argv[0]);
        return 2;
    }
    if (!mkdtemp(dir))
        return 1;
    snprintf(sock, sizeof(sock), "%s/kpud.sock", dir);
    snprintf(db, sizeof(db), "%s/kpud.db", dir);
    snprintf(db2, sizeof(db2), "%s/raw.db", dir);
    if (bu_kpud_conf(dir, 64, conf, sizeof(conf)) < 0)
        return 1;
    {
        char *args[] = {argv[1],       "-c",       conf,    "--state-dir",    dir, "--socket",
                        sock,          "--replay", argv[2], "--replay-speed", "0", "--replay-loop",
                        "--log-level", "warning",  NULL};
        if (run_kpud(args, sock, db, seconds, &w) < 0) {
            bu_rm_rf(dir);
            return 1;
        }
    }
    bu_print_load();
    raw = raw_baseline(db, db2, w.f0, w.f1, &raw_rows);
    printf("ingest: capture %s replayed as fast as possible, %u s window\n", argv[2], seconds);
    print_window("kpud (replay, speed 0) + 1 sub:", &w);
    printf("%-34s %9s          %9.0f rows/s  (%llu rows re-inserted, 1024 per transaction)\n",
           "raw batched SQLite, same rows:", "", raw, (unsigned long long)raw_rows);
    printf("ratio kpud / raw: %.2f (goal >= 0.50)\n",
           raw > 0 ? (double)(w.f1 - w.f0 + w.d1 - w.d0) / w.secs / raw : 0.0);

    if (argc >= 7) {
        char sdir[128], ssock[160], sdb[160], sconf[192];
        snprintf(sdir, sizeof(sdir), "%s/sim", dir);
        mkdir(sdir, 0700);
        snprintf(ssock, sizeof(ssock), "%s/kpud.sock", sdir);
        snprintf(sdb, sizeof(sdb), "%s/kpud.db", sdir);
        if (bu_kpud_conf(sdir, 64, sconf, sizeof(sconf)) == 0) {
            char simarg[600];
            char *args[] = {argv[1],      "-c",          sconf,     "--state-dir",
                            sdir,         "--socket",    ssock,     simarg,
                            "--sim-fast", "--sim-agent", argv[4],   "--sim-model",
                            argv[5],      "--log-level", "warning", NULL};
            snprintf(simarg, sizeof(simarg), "--sim=%s", argv[6]);
            if (run_kpud(args, ssock, sdb, seconds, &w) == 0) {
                print_window("kpud --sim --sim-fast + 1 sub:", &w);
                printf("  (the agent's software KPU is the limit here, not kpud)\n");
            }
        }
    }
    bu_rm_rf(dir);
    return 0;
}
