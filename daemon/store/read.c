/* SPDX-License-Identifier: MIT */
/*
 * The store's read side: detection queries with keyset paging, stats and dry-run counts.
 * Each runs on the libuv thread pool (uv_queue_work) on a read-only connection taken from
 * a small pool, so the loop thread never waits for a scan; results are handed to the
 * caller in the after-work callback on the loop thread. Also the filter helpers shared
 * with delete.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_internal.h"

/* ----------------------------------------------------------------------------------- */
/* String building and filters */

void kpud_store__sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
        char *np = realloc(b->p, ncap);

        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static void sb_placeholders(struct sbuf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kpud_store__sb_add(b, i ? ",?" : "?");
}

bool kpud_store__filter_box_level(const struct kpud_store_filter *f)
{
    return f->n_class_ids || f->n_labels || f->min_score > 0 || f->has_region;
}

void kpud_store__filter_sql(struct sbuf *b, const struct kpud_store_filter *f, const char *a,
                            bool frames_only)
{
    if (f->since_ns)
        kpud_store__sb_add(b, " AND %s.time_ns >= ?", a);
    if (f->until_ns)
        kpud_store__sb_add(b, " AND %s.time_ns < ?", a);
    if (f->n_devices) {
        kpud_store__sb_add(b, " AND %s.device_id IN (", a);
        sb_placeholders(b, f->n_devices);
        kpud_store__sb_add(b, ")");
    }
    if (frames_only)
        return;
    if (f->n_class_ids) {
        kpud_store__sb_add(b, " AND %s.class_id IN (", a);
        sb_placeholders(b, f->n_class_ids);
        kpud_store__sb_add(b, ")");
    }
    if (f->n_labels) {
        kpud_store__sb_add(b, " AND %s.label IN (", a);
        sb_placeholders(b, f->n_labels);
        kpud_store__sb_add(b, ")");
    }
    if (f->min_score > 0)
        kpud_store__sb_add(b, " AND %s.score >= ?", a);
    /* Centre inside the region, in doubled coordinates to stay in integers. */
    if (f->has_region)
        kpud_store__sb_add(b,
                           " AND 2 * %s.x + %s.w >= ? AND 2 * %s.x + %s.w < ?"
                           " AND 2 * %s.y + %s.h >= ? AND 2 * %s.y + %s.h < ?",
                           a, a, a, a, a, a, a, a);
}

int kpud_store__filter_bind(sqlite3_stmt *st, int idx, const struct kpud_store_filter *f,
                            bool frames_only)
{
    if (f->since_ns)
        sqlite3_bind_int64(st, idx++, f->since_ns);
    if (f->until_ns)
        sqlite3_bind_int64(st, idx++, f->until_ns);
    for (size_t i = 0; i < f->n_devices; i++)
        sqlite3_bind_text(st, idx++, f->devices[i], -1, SQLITE_STATIC);
    if (frames_only)
        return idx;
    for (size_t i = 0; i < f->n_class_ids; i++)
        sqlite3_bind_int64(st, idx++, f->class_ids[i]);
    for (size_t i = 0; i < f->n_labels; i++)
        sqlite3_bind_text(st, idx++, f->labels[i], -1, SQLITE_STATIC);
    if (f->min_score > 0)
        sqlite3_bind_double(st, idx++, f->min_score);
    if (f->has_region) {
        sqlite3_bind_int64(st, idx++, 2 * (int64_t)f->rx);
        sqlite3_bind_int64(st, idx++, 2 * ((int64_t)f->rx + f->rw));
        sqlite3_bind_int64(st, idx++, 2 * (int64_t)f->ry);
        sqlite3_bind_int64(st, idx++, 2 * ((int64_t)f->ry + f->rh));
    }
    return idx;
}

void kpud_store__filter_free(struct filter_copy *fc)
{
    for (size_t i = 0; fc->devices && i < fc->f.n_devices; i++)
        free(fc->devices[i]);
    for (size_t i = 0; fc->labels && i < fc->f.n_labels; i++)
        free(fc->labels[i]);
    free(fc->devices);
    free(fc->labels);
    free(fc->class_ids);
    memset(fc, 0, sizeof(*fc));
}

static char **strv_copy(const char *const *v, size_t n, bool *oom)
{
    char **r;

    if (!n)
        return NULL;
    r = calloc(n, sizeof(*r));
    if (!r) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        r[i] = strdup(v[i] ? v[i] : "");
        if (!r[i])
            *oom = true;
    }
    return r;
}

int kpud_store__filter_copy(struct filter_copy *dst, const struct kpud_store_filter *src)
{
    bool oom = false;

    memset(dst, 0, sizeof(*dst));
    if (src->n_devices > KPUD_STORE_FILTER_MAX_ITEMS ||
        src->n_class_ids > KPUD_STORE_FILTER_MAX_ITEMS ||
        src->n_labels > KPUD_STORE_FILTER_MAX_ITEMS)
        return -E2BIG;
    if ((src->n_devices && !src->devices) || (src->n_class_ids && !src->class_ids) ||
        (src->n_labels && !src->labels))
        return -EINVAL;
    dst->f = *src;
    dst->devices = strv_copy(src->devices, src->n_devices, &oom);
    dst->labels = strv_copy(src->labels, src->n_labels, &oom);
    if (src->n_class_ids) {
        dst->class_ids = malloc(src->n_class_ids * sizeof(uint32_t));
        if (dst->class_ids)
            memcpy(dst->class_ids, src->class_ids, src->n_class_ids * sizeof(uint32_t));
        else
            oom = true;
    }
    dst->f.devices = (const char *const *)dst->devices;
    dst->f.labels = (const char *const *)dst->labels;
    dst->f.class_ids = dst->class_ids;
    if (oom) {
        kpud_store__filter_free(dst);
        return -ENOMEM;
    }
    return 0;
}

/* ----------------------------------------------------------------------------------- */
/* Reader connections */

sqlite3 *kpud_store__reader_get(struct kpud_store *s)
{
    sqlite3 *db = NULL;

    uv_mutex_lock(&s->rd_mu);
    if (s->rd_n)
        db = s->rd_free[--s->rd_n];
    uv_mutex_unlock(&s->rd_mu);
    if (db)
        return db;
    /* NOMUTEX: a connection is used by one pool thread at a time, handed over under rd_mu. */
    if (sqlite3_open_v2(s->opts.path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    kpud_store__tune_memory(db, STORE_CONN_READER);
    sqlite3_busy_timeout(db, (int)s->opts.busy_timeout_ms);
    return db;
}

void kpud_store__reader_put(struct kpud_store *s, sqlite3 *db)
{
    if (!db)
        return;
    uv_mutex_lock(&s->rd_mu);
    if (s->rd_n < STORE_READERS_MAX) {
        s->rd_free[s->rd_n++] = db;
        db = NULL;
    }
    uv_mutex_unlock(&s->rd_mu);
    if (db)
        sqlite3_close_v2(db);
}

static int64_t q_int(sqlite3 *db, const char *sql, int64_t dflt)
{
    sqlite3_stmt *st;
    int64_t v = dflt;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return dflt;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* ----------------------------------------------------------------------------------- */
/* Queries */

#define TOKEN_VERSION 1

struct query_work {
    uv_work_t req;
    struct kpud_store *s;
    struct filter_copy fc;
    uint32_t limit;
    enum kpud_store_order order;
    bool has_token;
    int64_t tok_time, tok_id;
    kpud_store_query_cb cb;
    void *user_data;
    int status;
    struct kpud_det_row *rows;
    size_t n_rows;
    char *arena; /* strings of rows, as offsets until fixed up */
    size_t arena_len, arena_cap;
    struct kpud_store_page page;
};

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Copy a column's text into the arena; returns its offset + 1, or 0 for NULL/oom. */
static size_t arena_add(struct query_work *w, const unsigned char *txt, bool *oom)
{
    size_t l, off;

    if (!txt)
        return 0;
    l = strlen((const char *)txt) + 1;
    if (w->arena_len + l > w->arena_cap) {
        size_t ncap = (w->arena_cap ? w->arena_cap * 2 : 4096) + l;
        char *np = realloc(w->arena, ncap);

        if (!np) {
            *oom = true;
            return 0;
        }
        w->arena = np;
        w->arena_cap = ncap;
    }
    off = w->arena_len;
    memcpy(w->arena + off, txt, l);
    w->arena_len += l;
    return off + 1;
}

static void query_run(uv_work_t *req)
{
    struct query_work *w = req->data;
    struct kpud_store *s = w->s;
    bool newest = w->order == KPUD_STORE_NEWEST_FIRST, oom = false;
    struct sbuf b = {0};
    sqlite3_stmt *st = NULL;
    sqlite3 *db;
    size_t(*offs)[3] = NULL;
    int rc, idx;

    db = kpud_store__reader_get(s);
    if (!db) {
        w->status = -EIO;
        return;
    }
    kpud_store__sb_add(&b, "SELECT d.id, d.device_id, d.time_ns, f.frame_seq, d.class_id,"
                           " d.label, d.score, d.x, d.y, d.w, d.h, f.model"
                           " FROM detections d JOIN frames f ON f.id = d.frame_id WHERE 1");
    kpud_store__filter_sql(&b, &w->fc.f, "d", false);
    if (w->has_token)
        kpud_store__sb_add(&b, " AND (d.time_ns, d.id) %s (?, ?)", newest ? "<" : ">");
    kpud_store__sb_add(&b, " ORDER BY d.time_ns %s, d.id %s LIMIT ?", newest ? "DESC" : "ASC",
                       newest ? "DESC" : "ASC");
    if (b.oom) {
        w->status = -ENOMEM;
        goto out;
    }
    rc = sqlite3_prepare_v2(db, b.p, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        w->status = kpud_store__errno(rc);
        goto out;
    }
    idx = kpud_store__filter_bind(st, 1, &w->fc.f, false);
    if (w->has_token) {
        sqlite3_bind_int64(st, idx++, w->tok_time);
        sqlite3_bind_int64(st, idx++, w->tok_id);
    }
    /* One row more than asked tells whether another page exists. */
    sqlite3_bind_int64(st, idx, (int64_t)w->limit + 1);
    w->rows = calloc(w->limit + 1, sizeof(*w->rows));
    offs = calloc(w->limit + 1, sizeof(*offs));
    if (!w->rows || !offs) {
        w->status = -ENOMEM;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && w->n_rows <= w->limit) {
        struct kpud_det_row *r = &w->rows[w->n_rows];

        r->id = sqlite3_column_int64(st, 0);
        offs[w->n_rows][0] = arena_add(w, sqlite3_column_text(st, 1), &oom);
        r->time_ns = sqlite3_column_int64(st, 2);
        r->frame_seq = (uint32_t)sqlite3_column_int64(st, 3);
        r->box.class_id = (uint32_t)sqlite3_column_int64(st, 4);
        offs[w->n_rows][1] = arena_add(w, sqlite3_column_text(st, 5), &oom);
        r->box.score = (float)sqlite3_column_double(st, 6);
        r->box.x = (int32_t)sqlite3_column_int64(st, 7);
        r->box.y = (int32_t)sqlite3_column_int64(st, 8);
        r->box.w = (uint32_t)sqlite3_column_int64(st, 9);
        r->box.h = (uint32_t)sqlite3_column_int64(st, 10);
        offs[w->n_rows][2] = arena_add(w, sqlite3_column_text(st, 11), &oom);
        w->n_rows++;
    }
    if (oom) {
        w->status = -ENOMEM;
        goto out;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        w->status = kpud_store__errno(rc);
        goto out;
    }
    if (w->n_rows > w->limit) {
        const struct kpud_det_row *last = &w->rows[w->limit - 1];

        w->n_rows = w->limit;
        w->page.next_token[0] = TOKEN_VERSION;
        w->page.next_token[1] = (uint8_t)w->order;
        put_be64(w->page.next_token + 2, (uint64_t)last->time_ns);
        put_be64(w->page.next_token + 10, (uint64_t)last->id);
        w->page.next_token_len = KPUD_STORE_PAGE_TOKEN_LEN;
    }
    /* The arena no longer moves: turn offsets into pointers. */
    for (size_t i = 0; i < w->n_rows; i++) {
        struct kpud_det_row *r = &w->rows[i];

        r->device = offs[i][0] ? w->arena + offs[i][0] - 1 : "";
        r->box.label = offs[i][1] ? w->arena + offs[i][1] - 1 : "";
        r->model = offs[i][2] ? w->arena + offs[i][2] - 1 : "";
    }
    w->page.rows = w->rows;
    w->page.n_rows = w->n_rows;
    w->status = 0;
out:
    free(offs);
    free(b.p);
    sqlite3_finalize(st);
    kpud_store__reader_put(s, db);
}

static void query_done(uv_work_t *req, int status)
{
    struct query_work *w = req->data;
    struct kpud_store *s = w->s;

    if (status == UV_ECANCELED || s->closing)
        w->status = -ECANCELED;
    w->cb(s, w->status, w->status == 0 ? &w->page : NULL, w->user_data);
    kpud_store__filter_free(&w->fc);
    free(w->rows);
    free(w->arena);
    free(w);
    kpud_store__work_done(s);
}

int kpud_store_query(struct kpud_store *s, const struct kpud_store_query *q, kpud_store_query_cb cb,
                     void *user_data)
{
    struct query_work *w;
    int r;

    if (!s || !q || !cb)
        return -EINVAL;
    if (s->closing)
        return -ESHUTDOWN;
    if (q->order != KPUD_STORE_NEWEST_FIRST && q->order != KPUD_STORE_OLDEST_FIRST)
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    if (q->page_token && q->page_token_len) {
        /* Untrusted (it comes back from clients): check length, version and order. */
        if (q->page_token_len != KPUD_STORE_PAGE_TOKEN_LEN || q->page_token[0] != TOKEN_VERSION ||
            q->page_token[1] != (uint8_t)q->order) {
            free(w);
            return -EINVAL;
        }
        w->has_token = true;
        w->tok_time = (int64_t)get_be64(q->page_token + 2);
        w->tok_id = (int64_t)get_be64(q->page_token + 10);
    }
    r = kpud_store__filter_copy(&w->fc, &q->filter);
    if (r < 0) {
        free(w);
        return r;
    }
    w->s = s;
    w->limit = q->limit ? q->limit : STORE_DEF_QUERY_ROWS;
    if (w->limit > s->opts.max_query_rows)
        w->limit = s->opts.max_query_rows;
    w->order = q->order;
    w->cb = cb;
    w->user_data = user_data;
    w->req.data = w;
    r = uv_queue_work(s->loop, &w->req, query_run, query_done);
    if (r < 0) {
        kpud_store__filter_free(&w->fc);
        free(w);
        return -ENOMEM;
    }
    kpud_store__work_begin(s);
    return 0;
}

/* ----------------------------------------------------------------------------------- */
/* Stats */

struct stats_work {
    uv_work_t req;
    struct kpud_store *s;
    kpud_store_stats_cb cb;
    void *user_data;
    int status;
    struct kpud_store_stats st;
};

static void stats_run(uv_work_t *req)
{
    struct stats_work *w = req->data;
    struct kpud_store *s = w->s;
    sqlite3 *db = kpud_store__reader_get(s);
    struct stat sb;
    char *wal;
    int64_t psize;

    if (!db) {
        w->status = -EIO;
        return;
    }
    /* One read transaction so the counts agree with each other. */
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    w->st.devices = (uint64_t)q_int(db, "SELECT count(*) FROM devices", 0);
    w->st.sessions = (uint64_t)q_int(db, "SELECT count(*) FROM sessions", 0);
    w->st.frames = (uint64_t)q_int(db, "SELECT count(*) FROM frames", 0);
    w->st.detections = (uint64_t)q_int(db, "SELECT count(*) FROM detections", 0);
    w->st.device_events = (uint64_t)q_int(db, "SELECT count(*) FROM device_events", 0);
    w->st.models = (uint64_t)q_int(db, "SELECT count(*) FROM models", 0);
    w->st.oldest_ns = q_int(db, "SELECT min(time_ns) FROM frames", 0);
    w->st.newest_ns = q_int(db, "SELECT max(time_ns) FROM frames", 0);
    w->st.schema_version = (uint32_t)q_int(db, "PRAGMA user_version", 0);
    psize = q_int(db, "PRAGMA page_size", 4096);
    w->st.db_bytes = (uint64_t)(q_int(db, "PRAGMA page_count", 0) * psize);
    w->st.free_bytes = (uint64_t)(q_int(db, "PRAGMA freelist_count", 0) * psize);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    wal = sqlite3_mprintf("%s-wal", s->opts.path);
    if (wal && stat(wal, &sb) == 0)
        w->st.wal_bytes = (uint64_t)sb.st_size;
    sqlite3_free(wal);
    kpud_store__reader_put(s, db);
    w->status = 0;
}

static void stats_done(uv_work_t *req, int status)
{
    struct stats_work *w = req->data;
    struct kpud_store *s = w->s;

    if (status == UV_ECANCELED || s->closing)
        w->status = -ECANCELED;
    w->cb(s, w->status, w->status == 0 ? &w->st : NULL, w->user_data);
    free(w);
    kpud_store__work_done(s);
}

int kpud_store_stats(struct kpud_store *s, kpud_store_stats_cb cb, void *user_data)
{
    struct stats_work *w;

    if (!s || !cb)
        return -EINVAL;
    if (s->closing)
        return -ESHUTDOWN;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->s = s;
    w->cb = cb;
    w->user_data = user_data;
    w->req.data = w;
    if (uv_queue_work(s->loop, &w->req, stats_run, stats_done) < 0) {
        free(w);
        return -ENOMEM;
    }
    kpud_store__work_begin(s);
    return 0;
}

/* ----------------------------------------------------------------------------------- */
/* Retention cutoff and dry runs */

int64_t kpud_store__retention_cutoff(struct kpud_store *s, sqlite3 *db, uint64_t max_age_s,
                                     uint64_t max_bytes, uint32_t step_rows, bool whole)
{
    int64_t cutoff = 0;
    uint64_t used;

    if (max_age_s)
        cutoff = kpud_store__now_ns() - (int64_t)(max_age_s * 1000000000ull);
    if (!max_bytes)
        return cutoff;
    used = kpud_store__used_bytes(db);
    if (used > max_bytes) {
        int64_t frames = q_int(db, "SELECT count(*) FROM frames", 0);
        int64_t n, t;
        sqlite3_stmt *st;

        if (frames <= 0)
            return cutoff;
        if (whole) {
            /* Estimate: frames to drop = excess / mean bytes per frame (with its boxes). */
            uint64_t per = used / (uint64_t)frames;

            n = per ? (int64_t)((used - max_bytes + per - 1) / per) : frames;
        } else {
            n = step_rows;
        }
        if (n >= frames) {
            t = q_int(db, "SELECT max(time_ns) FROM frames", 0) + 1;
        } else {
            t = 0;
            if (sqlite3_prepare_v2(db,
                                   "SELECT time_ns FROM frames ORDER BY time_ns LIMIT 1 OFFSET ?",
                                   -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, n);
                if (sqlite3_step(st) == SQLITE_ROW)
                    t = sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
            }
            /* Many frames at one instant: still make progress. */
            if (t && t == q_int(db, "SELECT min(time_ns) FROM frames", 0))
                t++;
        }
        if (t > cutoff)
            cutoff = t;
    }
    (void)s;
    return cutoff;
}

struct dry_work {
    uv_work_t req;
    struct kpud_store *s;
    bool retention;
    struct filter_copy fc;
    uint64_t max_age_s, max_bytes;
    kpud_store_delete_cb cb;
    void *user_data;
    int status;
    struct kpud_store_delete_report rep;
};

static int64_t count_where(sqlite3 *db, const char *table, const struct kpud_store_filter *f,
                           bool frames_only, int *status)
{
    struct sbuf b = {0};
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    kpud_store__sb_add(&b, "SELECT count(*) FROM %s t WHERE 1", table);
    kpud_store__filter_sql(&b, f, "t", frames_only);
    if (b.oom) {
        *status = -ENOMEM;
        return 0;
    }
    if (sqlite3_prepare_v2(db, b.p, -1, &st, NULL) == SQLITE_OK) {
        kpud_store__filter_bind(st, 1, f, frames_only);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    free(b.p);
    if (n < 0) {
        *status = -EIO;
        return 0;
    }
    return n;
}

static void dry_run(uv_work_t *req)
{
    struct dry_work *w = req->data;
    struct kpud_store *s = w->s;
    sqlite3 *db = kpud_store__reader_get(s);
    struct kpud_store_filter f;
    uint64_t used, frames_total;
    sqlite3_stmt *st;

    if (!db) {
        w->status = -EIO;
        return;
    }
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    used = kpud_store__used_bytes(db);
    frames_total = (uint64_t)q_int(db, "SELECT count(*) FROM frames", 0);
    w->rep.dry_run = true;
    if (w->retention) {
        memset(&f, 0, sizeof(f));
        f.until_ns = kpud_store__retention_cutoff(s, db, w->max_age_s, w->max_bytes, 0, true);
    } else {
        f = w->fc.f;
    }
    if (w->retention && f.until_ns <= 0) {
        /* Nothing is due. */
    } else {
        bool box = kpud_store__filter_box_level(&f);

        w->rep.detections = (uint64_t)count_where(db, "detections", &f, false, &w->status);
        if (!box) {
            w->rep.frames = (uint64_t)count_where(db, "frames", &f, true, &w->status);
            w->rep.events = (uint64_t)count_where(db, "device_events", &f, true, &w->status);
        }
    }
    /* Oldest frame a real run would leave: the first at or after the retention cutoff. */
    w->rep.oldest_kept_ns = 0;
    if (sqlite3_prepare_v2(db, "SELECT min(time_ns) FROM frames WHERE time_ns >= ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, w->retention && f.until_ns > 0 ? f.until_ns : INT64_MIN);
        if (sqlite3_step(st) == SQLITE_ROW)
            w->rep.oldest_kept_ns = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    w->rep.db_bytes = used;
    if (frames_total && w->rep.frames <= frames_total)
        w->rep.db_bytes = used - used / frames_total * w->rep.frames;
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    kpud_store__reader_put(s, db);
}

static void dry_done(uv_work_t *req, int status)
{
    struct dry_work *w = req->data;
    struct kpud_store *s = w->s;

    if (status == UV_ECANCELED || s->closing)
        w->status = -ECANCELED;
    w->cb(s, w->status, w->status == 0 ? &w->rep : NULL, w->user_data);
    kpud_store__filter_free(&w->fc);
    free(w);
    kpud_store__work_done(s);
}

int kpud_store__dry_run(struct kpud_store *s, const struct filter_copy *fc, bool retention,
                        kpud_store_delete_cb cb, void *user_data)
{
    struct dry_work *w = calloc(1, sizeof(*w));
    int r;

    if (!w)
        return -ENOMEM;
    if (fc) {
        r = kpud_store__filter_copy(&w->fc, &fc->f);
        if (r < 0) {
            free(w);
            return r;
        }
    }
    w->s = s;
    w->retention = retention;
    w->max_age_s = s->ret_max_age_s;
    w->max_bytes = s->ret_max_bytes;
    w->cb = cb;
    w->user_data = user_data;
    w->req.data = w;
    if (uv_queue_work(s->loop, &w->req, dry_run, dry_done) < 0) {
        kpud_store__filter_free(&w->fc);
        free(w);
        return -ENOMEM;
    }
    kpud_store__work_begin(s);
    return 0;
}
