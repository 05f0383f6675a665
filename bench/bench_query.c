/* SPDX-License-Identifier: MIT */
/*
 * History query (issue 5, Performance): a class + time-range query on 10 million
 * detection rows through libkpu-client against kpud. Goal: p50 < 1 ms.
 *
 *   bench_query KPUD [DB] [ROWS] [QUERIES]
 *
 * DB (default /tmp/kpu-bench-query.db, kept for the next run while it holds ROWS
 * detections) is made with the store's schema (kpud_store_open) and filled directly:
 * ROWS detections (default 10,000,000) in frames of 0..4 boxes over the last 4 days, two
 * devices, 20 VOC classes at random; the detections indexes are dropped during the load
 * and built again with the store's own statements. kpud then serves it (no board) and
 * this process runs QUERIES random queries (default 2000): one class, a 1 minute window
 * and a 1 hour window anywhere in the 4 days, newest first, the first page of 100 rows
 * (kpu_client_query, max_rows 100). Baseline in the same run: the store's query SQL (same
 * join, filter and order) prepared once and run on a read-only connection in this
 * process, on the same windows.
 */
#include "bench_util.h"

#include <kpu/client.h>
#include <sqlite3.h>
#include <uv.h>

#include "store.h"

#define SPAN_NS (4ll * 86400 * 1000000000ll)
#define N_CLASSES 20u
#define PAGE_ROWS 100u
#define LOAD_TXN_ROWS 100000u

static const char *const voc[N_CLASSES] = {
    "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",      "car",
    "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",    "motorbike",
    "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t xs(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void quiet_log(int prio, const char *msg, void *ud)
{
    (void)ud;
    if (prio <= 3)
        fprintf(stderr, "<%d>%s\n", prio, msg);
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

/* Build path with rows detections. Returns 0 or -1; *t0 = the oldest frame's time. */
static int generate(const char *path, uint64_t rows)
{
    uv_loop_t loop;
    struct kpud_store_opts o = {.path = path, .log = quiet_log};
    struct kpud_store *s;
    sqlite3 *db;
    sqlite3_stmt *st, *fr, *det;
    char *idx_sql[16];
    int n_idx = 0;
    uint64_t done = 0, frames = rows / 2, t_start = bu_mono_ns();
    int64_t base = bu_wall_ns() - SPAN_NS, step = SPAN_NS / (int64_t)(frames ? frames : 1);

    char p[600];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    uv_loop_init(&loop);
    if (kpud_store_open(&loop, &o, &s) < 0)
        return -1;
    kpud_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    sqlite3_exec(db,
                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144",
                 NULL, NULL, NULL);
    /* Keep the store's index statements, drop them for the load, build them after. */
    sqlite3_prepare_v2(db,
                       "SELECT sql FROM sqlite_master WHERE type = 'index' AND"
                       " tbl_name = 'detections' AND sql IS NOT NULL",
                       -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW && n_idx < 16)
        idx_sql[n_idx++] = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_exec(db,
                 "BEGIN; DROP INDEX detections_time; DROP INDEX detections_frame;"
                 " DROP INDEX detections_device_time; DROP INDEX detections_class_time;"
                 " DROP INDEX detections_label_time; COMMIT;"
                 "INSERT INTO devices(id, first_seen_ns, last_seen_ns) VALUES"
                 " ('5f3a9c0012345678', 0, 0), ('5f3a9c00abcdef01', 0, 0);",
                 NULL, NULL, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO frames(device_id, frame_seq, device_time_us, time_ns, model,"
                       " image_w, image_h, kpu_us, n_boxes) VALUES(?1, ?2, ?3, ?4,"
                       " 'yolo2_voc20_320x240', 320, 240, 6500, ?5)",
                       -1, &fr, NULL);
    sqlite3_prepare_v2(db,
                       "INSERT INTO detections(frame_id, device_id, time_ns, class_id, label,"
                       " score, x, y, w, h) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                       -1, &det, NULL);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (uint64_t i = 0; done < rows; i++) {
        const char *dev = (i & 1) ? "5f3a9c00abcdef01" : "5f3a9c0012345678";
        uint32_t nb = (uint32_t)(xs() % 5);
        int64_t t = base + (int64_t)i * step, fid;
        if (nb > rows - done)
            nb = (uint32_t)(rows - done);
        sqlite3_bind_text(fr, 1, dev, -1, SQLITE_STATIC);
        sqlite3_bind_int64(fr, 2, (int64_t)(i / 2));
        sqlite3_bind_int64(fr, 3, (int64_t)(i / 2) * 33333);
        sqlite3_bind_int64(fr, 4, t);
        sqlite3_bind_int64(fr, 5, nb);
        if (sqlite3_step(fr) != SQLITE_DONE)
            return -1;
        sqlite3_reset(fr);
        fid = sqlite3_last_insert_rowid(db);
        for (uint32_t k = 0; k < nb; k++) {
            uint32_t c = (uint32_t)(xs() % N_CLASSES);
            sqlite3_bind_int64(det, 1, fid);
            sqlite3_bind_text(det, 2, dev, -1, SQLITE_STATIC);
            sqlite3_bind_int64(det, 3, t);
            sqlite3_bind_int64(det, 4, c);
            sqlite3_bind_text(det, 5, voc[c], -1, SQLITE_STATIC);
            sqlite3_bind_double(det, 6, 0.5 + (double)(xs() % 500) / 1000.0);
            sqlite3_bind_int64(det, 7, (int64_t)(xs() % 280));
            sqlite3_bind_int64(det, 8, (int64_t)(xs() % 200));
            sqlite3_bind_int64(det, 9, 40);
            sqlite3_bind_int64(det, 10, 40);
            if (sqlite3_step(det) != SQLITE_DONE)
                return -1;
            sqlite3_reset(det);
        }
        done += nb;
        if (done / LOAD_TXN_ROWS != (done - nb) / LOAD_TXN_ROWS) {
            sqlite3_exec(db, "COMMIT; BEGIN", NULL, NULL, NULL);
            fprintf(stderr, "\rgenerating: %llu/%llu detections", (unsigned long long)done,
                    (unsigned long long)rows);
        }
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(fr);
    sqlite3_finalize(det);
    fprintf(stderr, "\rbuilding %d indexes...                         \n", n_idx);
    for (int i = 0; i < n_idx; i++) {
        sqlite3_exec(db, idx_sql[i], NULL, NULL, NULL);
        free(idx_sql[i]);
    }
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    fprintf(stderr, "generated %llu detections in %.0f s\n", (unsigned long long)rows,
            (double)(bu_mono_ns() - t_start) / 1e9);
    return 0;
}

struct win {
    uint32_t cls;
    int64_t since, until;
};

static int count_row(kpu_client_t *c, const struct kpu_client_row *row, void *ud)
{
    (void)c;
    (void)row;
    (*(uint64_t *)ud)++;
    return 0;
}

/* The store's query (daemon/store/read.c query_run) for one class and a time range. */
static const char direct_sql[] =
    "SELECT d.id, d.device_id, d.time_ns, f.frame_seq, d.class_id, d.label, d.score, d.x, d.y,"
    " d.w, d.h, f.model FROM detections d JOIN frames f ON f.id = d.frame_id WHERE 1"
    " AND d.class_id IN (?1) AND d.time_ns >= ?2 AND d.time_ns < ?3"
    " ORDER BY d.time_ns DESC, d.id DESC LIMIT ?4";

static void report(const char *what, uint64_t *lat, size_t n, uint64_t rows)
{
    double p50 = bu_pct_us(lat, n, 50);
    printf("  %-30s p50 %7.1f us  p90 %7.1f us  p99 %7.1f us  (%llu rows in %zu queries)\n", what,
           p50, bu_pct_us(lat, n, 90), bu_pct_us(lat, n, 99), (unsigned long long)rows, n);
}

int main(int argc, char **argv)
{
    const char *db_path = argc > 2 ? argv[2] : "/tmp/kpu-bench-query.db";
    uint64_t rows = argc > 3 ? strtoull(argv[3], NULL, 10) : 10000000ull;
    size_t nq = argc > 4 ? strtoul(argv[4], NULL, 10) : 2000;
    static const int64_t lens[] = {60ll * 1000000000ll, 3600ll * 1000000000ll};
    char dir[] = "/tmp/kpu-bench-query-XXXXXX", sock[96], conf[128];
    uint64_t *lat_k, *lat_d;
    struct win *w;
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    int64_t t_min, t_max;
    kpu_client_t *c = NULL;
    pid_t pid;
    int rc = 1;

    if (argc < 2 || rows == 0 || nq == 0) {
        fprintf(stderr, "usage: %s KPUD [DB] [ROWS] [QUERIES]\n", argv[0]);
        return 2;
    }
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        q_int(db, "SELECT max(id) FROM detections") != (int64_t)rows) {
        sqlite3_close(db);
        db = NULL;
        if (generate(db_path, rows) < 0) {
            fprintf(stderr, "cannot generate %s\n", db_path);
            return 1;
        }
    }
    if (!db && sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return 1;
    t_min = q_int(db, "SELECT min(time_ns) FROM frames");
    t_max = q_int(db, "SELECT max(time_ns) FROM frames");
    if (!mkdtemp(dir) || bu_kpud_conf(dir, 64, conf, sizeof(conf)) < 0)
        return 1;
    snprintf(sock, sizeof(sock), "%s/kpud.sock", dir);
    {
        char *args[] = {argv[1],    "-c", conf,         "--state-dir",   dir,
                        "--socket", sock, "--database", (char *)db_path, "--log-level",
                        "warning",  NULL};
        char log[160];
        snprintf(log, sizeof(log), "%s/kpud.log", dir);
        pid = bu_spawn(args, log);
    }
    lat_k = calloc(nq, sizeof(*lat_k));
    lat_d = calloc(nq, sizeof(*lat_d));
    w = calloc(nq, sizeof(*w));
    if (!lat_k || !lat_d || !w || pid < 0 || bu_wait_path(sock, pid, 30000) < 0) {
        fprintf(stderr, "kpud did not start (see %s/kpud.log)\n", dir);
        goto out;
    }
    {
        struct kpu_client_opts o = {.socket_path = sock, .client_name = "bench_query"};
        if (kpu_client_open(&o, &c) < 0) {
            fprintf(stderr, "cannot connect: %s\n", kpu_client_open_error_text());
            goto out;
        }
    }
    bu_print_load();
    sqlite3_prepare_v2(db, direct_sql, -1, &st, NULL);
    printf("history query: %llu detections over %.1f days, %zu queries per window, first page "
           "of %u rows, newest first\n",
           (unsigned long long)rows, (double)(t_max - t_min) / 86400e9, nq, PAGE_ROWS);
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        uint64_t rk = 0, rd = 0;
        char what[64];
        for (size_t i = 0; i < nq; i++) {
            w[i].cls = (uint32_t)(xs() % N_CLASSES);
            w[i].since = t_min + (int64_t)(xs() % (uint64_t)(t_max - t_min - lens[l]));
            w[i].until = w[i].since + lens[l];
        }
        /* Warm both paths on the first windows (the page cache is shared anyway). */
        for (size_t i = 0; i < nq; i++) {
            uint32_t cls = w[i].cls;
            struct kpu_client_filter f = {.class_ids = &cls, .n_class_ids = 1};
            struct kpu_client_query q = {.filter = &f,
                                         .since_ns = w[i].since,
                                         .until_ns = w[i].until,
                                         .max_rows = PAGE_ROWS,
                                         .page_rows = PAGE_ROWS};
            uint64_t t0 = bu_mono_ns();
            int r = kpu_client_query(c, &q, count_row, &rk);
            lat_k[i] = bu_mono_ns() - t0;
            if (r < 0) {
                fprintf(stderr, "query failed: %s\n", kpu_client_strerror(r));
                goto out;
            }
            t0 = bu_mono_ns();
            sqlite3_bind_int64(st, 1, cls);
            sqlite3_bind_int64(st, 2, w[i].since);
            sqlite3_bind_int64(st, 3, w[i].until);
            sqlite3_bind_int64(st, 4, PAGE_ROWS);
            while (sqlite3_step(st) == SQLITE_ROW)
                rd++;
            sqlite3_reset(st);
            lat_d[i] = bu_mono_ns() - t0;
        }
        snprintf(what, sizeof(what), "%s window, kpud + library:", l ? "1 h" : "1 min");
        {
            double pk, pd;
            report(what, lat_k, nq, rk);
            pk = bu_pct_us(lat_k, nq, 50);
            snprintf(what, sizeof(what), "%s window, direct SQLite:", l ? "1 h" : "1 min");
            report(what, lat_d, nq, rd);
            pd = bu_pct_us(lat_d, nq, 50);
            printf("  ratio of p50 kpud / direct: %.1f; kpud p50 %.3f ms (goal < 1 ms)%s\n",
                   pd > 0 ? pk / pd : 0, pk / 1000, rk == rd ? "" : "  ROW COUNTS DIFFER");
        }
    }
    sqlite3_finalize(st);
    rc = 0;
out:
    kpu_client_close(c);
    if (pid > 0)
        bu_stop(pid, NULL);
    sqlite3_close(db);
    free(lat_k);
    free(lat_d);
    free(w);
    bu_rm_rf(dir);
    return rc;
}
