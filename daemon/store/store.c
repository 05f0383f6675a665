/* SPDX-License-Identifier: MIT */
/*
 * The store's write side: opening and configuring the database, the in-memory queues of
 * frames and other writes, and the single writer that commits them one transaction per
 * tick on the libuv loop thread. Failed commits (disk full, read-only, I/O) keep their rows
 * queued and retry with a growing delay; the queue bound is what limits memory then.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "store_internal.h"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_DEV_ENSURE] = "INSERT INTO devices(id, first_seen_ns, last_seen_ns) VALUES(?1, ?2, ?2)"
                      " ON CONFLICT(id) DO UPDATE SET"
                      " last_seen_ns = max(last_seen_ns, excluded.last_seen_ns)",
    [ST_DEV_UPSERT] = "INSERT INTO devices(id, board, transport, path, first_seen_ns,"
                      " last_seen_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?5)"
                      " ON CONFLICT(id) DO UPDATE SET"
                      " board = coalesce(excluded.board, board),"
                      " transport = coalesce(excluded.transport, transport),"
                      " path = coalesce(excluded.path, path),"
                      " last_seen_ns = max(last_seen_ns, excluded.last_seen_ns)",
    [ST_SESSION_INS] = "INSERT INTO sessions(id, device_id, start_ns, agent_version, model,"
                       " reset_cause) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_SESSION_UPD] = "UPDATE sessions SET frames = ?2, frames_lost = ?3, link_errors = ?4,"
                       " end_ns = CASE WHEN ?5 > 0 THEN ?5 ELSE end_ns END WHERE id = ?1",
    [ST_EVENT_INS] = "INSERT INTO device_events(device_id, time_ns, state, reason)"
                     " VALUES(?1, ?2, ?3, ?4)",
    [ST_MODEL_PUT] = "INSERT INTO models(name, size, crc32c, sha256, manifest, added_ns)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE SET"
                     " size = excluded.size, crc32c = excluded.crc32c,"
                     " sha256 = excluded.sha256, manifest = excluded.manifest,"
                     " added_ns = excluded.added_ns",
    [ST_MODEL_DEL] = "DELETE FROM models WHERE name = ?1",
    [ST_FRAME_INS] = "INSERT INTO frames(session_id, device_id, frame_seq, device_time_us,"
                     " time_ns, model, image_w, image_h, kpu_us, n_boxes)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_DET_INS] = "INSERT INTO detections(frame_id, device_id, time_ns, class_id, label,"
                   " score, x, y, w, h) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

/* ----------------------------------------------------------------------------------- */
/* Small helpers */

static void log_stderr(int prio, const char *msg, void *user_data)
{
    (void)user_data;
    fprintf(stderr, "<%d>%s\n", prio, msg);
}

void kpud_store__log(struct kpud_store *s, int prio, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    s->opts.log(prio, buf, s->opts.log_user_data);
}

int kpud_store__errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    default:
        return -EIO;
    }
}

int64_t kpud_store__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void bind_text(sqlite3_stmt *st, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, idx);
}

static char *dup_or_null(const char *v, bool *oom)
{
    char *r;

    if (!v)
        return NULL;
    r = strdup(v);
    if (!r)
        *oom = true;
    return r;
}

/* ----------------------------------------------------------------------------------- */
/* Writer connection */

static void writer_close_db(struct kpud_store *s)
{
    /* A history job's statements belong to this connection; they are prepared again. */
    for (int i = 0; s->job && i < 3; i++) {
        sqlite3_finalize(s->job->st[i]);
        s->job->st[i] = NULL;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    if (s->db) {
        sqlite3_close_v2(s->db);
        s->db = NULL;
    }
}

static int exec_log(struct kpud_store *s, sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        kpud_store__log(s, LOG_ERR, "store: %s: %s: %s", s->opts.path, sql,
                        msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

static int64_t query_int(sqlite3 *db, const char *sql, int64_t dflt)
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

uint64_t kpud_store__used_bytes(sqlite3 *db)
{
    int64_t pages = query_int(db, "PRAGMA page_count", 0);
    int64_t freel = query_int(db, "PRAGMA freelist_count", 0);
    int64_t psize = query_int(db, "PRAGMA page_size", 4096);

    if (pages < freel)
        return 0;
    return (uint64_t)(pages - freel) * (uint64_t)psize;
}

void kpud_store__tune_memory(sqlite3 *db, enum store_conn_role role)
{
    static const int cache_pages[] = {
        [STORE_CONN_WRITER] = STORE_WRITER_CACHE_PAGES,
        [STORE_CONN_READER] = STORE_READER_CACHE_PAGES,
        [STORE_CONN_CKPT] = STORE_CKPT_CACHE_PAGES,
    };
    char sql[48];

    /* Failures leave SQLite's defaults, which work, only with more memory. */
    if (role == STORE_CONN_CKPT)
        sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
    snprintf(sql, sizeof(sql), "PRAGMA cache_size = %d", cache_pages[role]);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/*
 * Process-wide SQLite memory settings. They only take effect before SQLite initialises
 * (the first sqlite3_open in the process); later calls fail harmlessly with
 * SQLITE_MISUSE. No initial bulk page-cache allocation per connection (the cache grows
 * page by page up to its cache_size instead), and a smaller lookaside.
 */
static void store_global_config(void)
{
    static bool done;

    if (done)
        return;
    done = true;
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, STORE_LOOKASIDE_SLOT, STORE_LOOKASIDE_SLOTS);
}

/*
 * Checkpoints run on the thread pool on their own connection, so the fsync they do under
 * synchronous=NORMAL never stalls the loop. PASSIVE: they never wait for (or block) the
 * writer or readers.
 */
static void ckpt_run(uv_work_t *req)
{
    struct kpud_store *s = req->data;

    if (!s->ckpt_db) {
        if (sqlite3_open_v2(s->opts.path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
            s->ckpt_rc = sqlite3_errcode(s->ckpt_db);
            sqlite3_close_v2(s->ckpt_db);
            s->ckpt_db = NULL;
            return;
        }
        sqlite3_extended_result_codes(s->ckpt_db, 1);
        kpud_store__tune_memory(s->ckpt_db, STORE_CONN_CKPT);
        /* Keep this connection from checkpointing on its own when it closes early. */
        sqlite3_wal_autocheckpoint(s->ckpt_db, 0);
    }
    s->ckpt_rc = sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static void ckpt_done(uv_work_t *req, int status)
{
    struct kpud_store *s = req->data;

    (void)status;
    s->ckpt_running = false;
    /*
     * Under a steady backlog the writer appends while the pool copies, so the WAL is never
     * fully copied and never restarts. The pool has just copied the bulk; copying the few
     * frames appended since takes little here, and the next write then restarts the WAL.
     */
    if (s->db && !s->closing && s->wal_pages >= 2 * STORE_CKPT_PAGES)
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    kpud_store__work_done(s);
}

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    struct kpud_store *s = ud;

    (void)name;
    s->wal_pages = pages;
    if (pages >= STORE_CKPT_FORCE_PAGES && !s->ckpt_running) {
        /* The pool is not keeping up (or is busy with long queries): do it here. */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (pages < STORE_CKPT_PAGES || s->ckpt_running || s->closing)
        return SQLITE_OK;
    s->ckpt_req.data = s;
    if (uv_queue_work(s->loop, &s->ckpt_req, ckpt_run, ckpt_done) == 0) {
        s->ckpt_running = true;
        kpud_store__work_begin(s);
    }
    return SQLITE_OK;
}

/*
 * Open the writer connection, configure it, migrate, and prepare the statements.
 * Returns 0 or a negative errno (logged).
 */
static int writer_open_db(struct kpud_store *s)
{
    sqlite3 *db = NULL;
    char *msg = NULL, sql[64];
    int rc, r;
    bool fresh, ro;

    rc = sqlite3_open_v2(s->opts.path, &db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        kpud_store__log(s, LOG_ERR, "store: cannot open %s: %s", s->opts.path,
                        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
    }
    s->db = db;
    sqlite3_extended_result_codes(db, 1);
    kpud_store__tune_memory(db, STORE_CONN_WRITER);
    sqlite3_busy_timeout(db, (int)s->opts.busy_timeout_ms);
    ro = sqlite3_db_readonly(db, "main") == 1;
    fresh = query_int(db, "PRAGMA page_count", -1) == 0;
    /* auto_vacuum can only be chosen before the first table exists (docs/store.md). */
    if (fresh && !ro && exec_log(s, db, "PRAGMA auto_vacuum = INCREMENTAL") != SQLITE_OK)
        goto fail_close;
    if (exec_log(s, db, "PRAGMA foreign_keys = ON") != SQLITE_OK)
        goto fail_close;
    if (!ro) {
        if (exec_log(s, db, "PRAGMA journal_mode = WAL") != SQLITE_OK)
            goto fail_close;
        if (exec_log(s, db, "PRAGMA synchronous = NORMAL") != SQLITE_OK)
            goto fail_close;
        snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %llu",
                 (unsigned long long)s->opts.wal_limit_bytes);
        if (exec_log(s, db, sql) != SQLITE_OK)
            goto fail_close;
    }
    r = kpud_store__migrate(db, KPUD_STORE_SCHEMA_VERSION, &msg);
    if (r == -EPROTO) {
        kpud_store__log(s, LOG_ERR,
                        "store: %s has a schema newer than version %d; refusing to touch it",
                        s->opts.path, KPUD_STORE_SCHEMA_VERSION);
        writer_close_db(s);
        return -EPROTO;
    }
    if (r < 0) {
        kpud_store__log(s, LOG_ERR, "store: %s: %s", s->opts.path, msg ? msg : "migration");
        sqlite3_free(msg);
        writer_close_db(s);
        return r == -ENOMEM ? -ENOMEM : -EIO;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            kpud_store__log(s, LOG_ERR, "store: preparing statement %d: %s", i, sqlite3_errmsg(db));
            goto fail_close;
        }
    }
    sqlite3_wal_hook(db, wal_hook, s); /* replaces SQLite's autocheckpoint on this thread */
    if (ro && !s->reopen_writer)
        kpud_store__log(s, LOG_WARNING,
                        "store: %s is read-only; detections stay queued in memory (at most %u "
                        "frames) and are written when it becomes writable",
                        s->opts.path, s->opts.queue_frames);
    s->reopen_writer = ro;
    return 0;

fail_close:
    writer_close_db(s);
    return -EIO;
}

/* ----------------------------------------------------------------------------------- */
/* Queues */

static struct qframe *fr_at(struct kpud_store *s, uint32_t i)
{
    return s->fr[(s->fr_head + i) % s->fr_cap];
}

/*
 * Double the frame ring (up to queue_frames), keeping the order; the oldest frame moves
 * to index 0. A full-size ring (16384 pointers, 128 KiB) would be touched page by page as
 * the head goes round, although a healthy writer holds a few dozen frames at most.
 * Returns 0, or -ENOMEM with the ring unchanged.
 */
static int fr_grow(struct kpud_store *s)
{
    uint32_t cap = s->fr_cap * 2 < s->opts.queue_frames ? s->fr_cap * 2 : s->opts.queue_frames;
    struct qframe **fr = calloc(cap, sizeof(*fr));

    if (!fr)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->fr_len; i++)
        fr[i] = s->fr[(s->fr_head + i) % s->fr_cap];
    free(s->fr);
    s->fr = fr;
    s->fr_cap = cap;
    s->fr_head = 0;
    return 0;
}

static void fr_pop(struct kpud_store *s)
{
    struct qframe *f = s->fr[s->fr_head];

    s->rows_queued -= 1 + f->n_boxes;
    free(f);
    s->fr[s->fr_head] = NULL;
    s->fr_head = (s->fr_head + 1) % s->fr_cap;
    s->fr_len--;
}

static void op_free(struct qop *op)
{
    if (!op)
        return;
    for (int i = 0; i < QOP_STRS; i++)
        free(op->s[i]);
    free(op);
}

static void op_pop(struct kpud_store *s)
{
    op_free(s->ops[s->op_head]);
    s->ops[s->op_head] = NULL;
    s->op_head = (s->op_head + 1) % STORE_OPS_MAX;
    s->op_len--;
}

static void writer_timer_cb(uv_timer_t *t);

/* Arm the writer timer to fire in ms, unless it is already due sooner. */
static void writer_schedule(struct kpud_store *s, uint64_t ms)
{
    if (s->closing)
        return;
    if (uv_is_active((uv_handle_t *)&s->writer_timer) &&
        uv_timer_get_due_in(&s->writer_timer) <= ms)
        return;
    /* The loop's cached time may be stale (a long callback ran before this row came in):
     * count the batch delay from now, not from the start of the loop iteration. */
    uv_update_time(s->loop);
    uv_timer_start(&s->writer_timer, writer_timer_cb, ms, 0);
}

/*
 * After a commit attempt or a new row: when should the writer run next? From the writer's
 * own callback "now" means 1 ms, so a backlog is written one batch per loop iteration and
 * I/O callbacks run in between (libuv would run a 0 ms timer again in the same pass).
 */
static void writer_reschedule(struct kpud_store *s, bool from_timer)
{
    uint64_t age, soon = from_timer ? 1 : 0;

    if (!s->fr_len && !s->op_len)
        return;
    if (s->in_error) {
        writer_schedule(s, s->retry_ms);
        return;
    }
    if (s->rows_queued + s->op_len >= s->opts.batch_rows) {
        writer_schedule(s, soon);
        return;
    }
    age = s->fr_len ? uv_now(s->loop) - fr_at(s, 0)->enq_ms : 0;
    writer_schedule(s, age + soon >= s->opts.batch_ms ? soon : s->opts.batch_ms - age);
}

/* Step a write statement once and reset it. Returns the SQLite code of the step. */
static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int ensure_device(struct kpud_store *s, const char *id, int64_t seen_ns)
{
    sqlite3_stmt *st = s->st[ST_DEV_ENSURE];

    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seen_ns);
    return step_reset(st);
}

/* Execute one queued op inside the open transaction. Returns the SQLite step code. */
static int op_exec(struct kpud_store *s, const struct qop *op)
{
    sqlite3_stmt *st;
    int rc;

    switch (op->kind) {
    case QOP_DEVICE: /* s: id, board, transport, path; i0: seen */
        st = s->st[ST_DEV_UPSERT];
        for (int k = 0; k < 4; k++)
            bind_text(st, k + 1, op->s[k]);
        sqlite3_bind_int64(st, 5, op->i[0]);
        return step_reset(st);
    case QOP_SESSION_BEGIN: /* i0: id, i1: start; s: device, agent, model, reset cause */
        rc = ensure_device(s, op->s[0], op->i[1]);
        if (rc != SQLITE_DONE)
            return rc;
        st = s->st[ST_SESSION_INS];
        sqlite3_bind_int64(st, 1, op->i[0]);
        bind_text(st, 2, op->s[0]);
        sqlite3_bind_int64(st, 3, op->i[1]);
        for (int k = 1; k < 4; k++)
            bind_text(st, k + 3, op->s[k]);
        return step_reset(st);
    case QOP_SESSION_UPDATE: /* i0: id, i1: end; u: counters */
        st = s->st[ST_SESSION_UPD];
        sqlite3_bind_int64(st, 1, op->i[0]);
        for (int k = 0; k < 3; k++)
            sqlite3_bind_int64(st, k + 2, (int64_t)op->u[k]);
        sqlite3_bind_int64(st, 5, op->i[1]);
        return step_reset(st);
    case QOP_EVENT: /* s: device, state, reason; i0: time */
        rc = ensure_device(s, op->s[0], op->i[0]);
        if (rc != SQLITE_DONE)
            return rc;
        st = s->st[ST_EVENT_INS];
        bind_text(st, 1, op->s[0]);
        sqlite3_bind_int64(st, 2, op->i[0]);
        bind_text(st, 3, op->s[1]);
        bind_text(st, 4, op->s[2]);
        return step_reset(st);
    case QOP_MODEL_PUT: /* s: name, sha256, manifest; u0: size, u1: crc; i0: added */
        st = s->st[ST_MODEL_PUT];
        bind_text(st, 1, op->s[0]);
        sqlite3_bind_int64(st, 2, (int64_t)op->u[0]);
        sqlite3_bind_int64(st, 3, (int64_t)op->u[1]);
        bind_text(st, 4, op->s[1]);
        bind_text(st, 5, op->s[2]);
        sqlite3_bind_int64(st, 6, op->i[0]);
        return step_reset(st);
    case QOP_MODEL_DELETE:
        st = s->st[ST_MODEL_DEL];
        bind_text(st, 1, op->s[0]);
        return step_reset(st);
    }
    return SQLITE_MISUSE;
}

static bool rc_is_row_error(int rc)
{
    return (rc & 0xff) == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_MISMATCH ||
           (rc & 0xff) == SQLITE_TOOBIG;
}

static int frame_exec(struct kpud_store *s, const struct qframe *f, uint64_t *rejected)
{
    sqlite3_stmt *st = s->st[ST_FRAME_INS];
    sqlite3_int64 fid;
    int rc;

    if (f->session_id > 0)
        sqlite3_bind_int64(st, 1, f->session_id);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, f->device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f->frame_seq);
    sqlite3_bind_int64(st, 4, (int64_t)f->device_time_us);
    sqlite3_bind_int64(st, 5, f->host_time_ns);
    bind_text(st, 6, f->model);
    sqlite3_bind_int64(st, 7, f->image_width);
    sqlite3_bind_int64(st, 8, f->image_height);
    sqlite3_bind_int64(st, 9, f->kpu_us);
    sqlite3_bind_int64(st, 10, f->n_boxes);
    rc = step_reset(st);
    if (rc_is_row_error(rc)) {
        *rejected += 1 + f->n_boxes;
        return SQLITE_DONE;
    }
    if (rc != SQLITE_DONE)
        return rc;
    fid = sqlite3_last_insert_rowid(s->db);
    st = s->st[ST_DET_INS];
    for (uint32_t k = 0; k < f->n_boxes; k++) {
        const struct qbox *b = &f->boxes[k];

        sqlite3_bind_int64(st, 1, fid);
        sqlite3_bind_text(st, 2, f->device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, f->host_time_ns);
        sqlite3_bind_int64(st, 4, b->class_id);
        bind_text(st, 5, b->label);
        sqlite3_bind_double(st, 6, b->score);
        sqlite3_bind_int64(st, 7, b->x);
        sqlite3_bind_int64(st, 8, b->y);
        sqlite3_bind_int64(st, 9, b->w);
        sqlite3_bind_int64(st, 10, b->h);
        rc = step_reset(st);
        if (rc_is_row_error(rc))
            (*rejected)++;
        else if (rc != SQLITE_DONE)
            return rc;
    }
    return SQLITE_DONE;
}

static void commit_failed(struct kpud_store *s, int rc, uint32_t rows)
{
    int prim = rc & 0xff;

    if (s->db && !sqlite3_get_autocommit(s->db))
        step_reset(s->st[ST_ROLLBACK]);
    s->c.write_errors++;
    s->c.last_error = rc;
    s->errors_in_row++;
    if (!s->in_error || s->err_code != rc)
        kpud_store__log(s, LOG_ERR,
                        "store: %s: commit of %u rows failed: %s (SQLite %d); keeping %u "
                        "frames queued in memory (limit %u, oldest dropped beyond), retrying",
                        s->opts.path, rows, sqlite3_errstr(rc), rc, s->fr_len,
                        s->opts.queue_frames);
    s->in_error = true;
    s->err_code = rc;
    s->retry_ms = s->retry_ms ? s->retry_ms * 2 : s->opts.batch_ms;
    if (s->retry_ms > STORE_RETRY_MAX_MS)
        s->retry_ms = STORE_RETRY_MAX_MS;
    /* A connection that opened read-only stays read-only: reopen it next time. */
    if (prim == SQLITE_READONLY || prim == SQLITE_CANTOPEN)
        s->reopen_writer = true;
}

/*
 * Commit one batch: all queued ops, then frames up to batch_rows rows (at least one
 * frame). On success the rows leave the queue and the committed callback runs. Returns
 * the SQLite code (SQLITE_OK or the failure); rows stay queued on failure.
 */
static int writer_commit(struct kpud_store *s)
{
    uint32_t n_ops = s->op_len, n_fr = 0, rows = 0;
    uint64_t rejected = 0, t0;
    const char *last_dev = NULL;
    struct qframe *last = NULL;
    struct kpud_store_batch_info info;
    int rc;

    if (!n_ops && !s->fr_len)
        return SQLITE_OK;
    if (s->reopen_writer || !s->db) {
        writer_close_db(s);
        if (writer_open_db(s) < 0) {
            commit_failed(s, SQLITE_CANTOPEN, s->rows_queued + n_ops);
            return SQLITE_CANTOPEN;
        }
    }
    rows = s->rows_queued + n_ops; /* what the error line reports if BEGIN fails */
    t0 = uv_hrtime();
    rc = step_reset(s->st[ST_BEGIN]);
    if (rc != SQLITE_DONE)
        goto fail;
    for (uint32_t i = 0; i < n_ops; i++) {
        rc = op_exec(s, s->ops[(s->op_head + i) % STORE_OPS_MAX]);
        if (rc_is_row_error(rc))
            rejected++;
        else if (rc != SQLITE_DONE)
            goto fail;
    }
    rows = n_ops;
    while (n_fr < s->fr_len && (n_fr == 0 || rows < s->opts.batch_rows)) {
        const struct qframe *f = fr_at(s, n_fr);

        if (!last_dev || strcmp(last_dev, f->device) != 0) {
            rc = ensure_device(s, f->device, f->host_time_ns);
            if (rc != SQLITE_DONE && !rc_is_row_error(rc))
                goto fail;
            last_dev = f->device;
        }
        rc = frame_exec(s, f, &rejected);
        if (rc != SQLITE_DONE)
            goto fail;
        rows += 1 + f->n_boxes;
        n_fr++;
    }
    rc = step_reset(s->st[ST_COMMIT]);
    if (rc != SQLITE_DONE)
        goto fail;

    /* Committed: leave the queue. The last frame is kept until the callback returns. */
    while (n_ops--)
        op_pop(s);
    for (uint32_t i = 0; i < n_fr; i++) {
        if (i + 1 == n_fr) {
            last = s->fr[s->fr_head];
            s->rows_queued -= 1 + last->n_boxes;
            s->fr[s->fr_head] = NULL;
            s->fr_head = (s->fr_head + 1) % s->fr_cap;
            s->fr_len--;
        } else {
            fr_pop(s);
        }
    }
    memset(&info, 0, sizeof(info));
    info.batch = ++s->batch_seq;
    info.frames = n_fr;
    info.rows = rows;
    info.commit_ns = uv_hrtime() - t0;
    if (last) {
        info.last_device = last->device;
        info.last_session_id = last->session_id;
        info.last_frame_seq = last->frame_seq;
    }
    s->c.frames_committed += n_fr;
    s->c.rows_committed += rows - rejected;
    s->c.rows_rejected += rejected;
    s->c.batches_committed++;
    s->c.last_commit_ns = info.commit_ns;
    if (info.commit_ns > s->c.max_commit_ns)
        s->c.max_commit_ns = info.commit_ns;
    if (rejected)
        kpud_store__log(s, LOG_WARNING, "store: %" PRIu64 " rows refused by constraints, skipped",
                        rejected);
    if (s->in_error) {
        kpud_store__log(s, LOG_NOTICE,
                        "store: %s: writes resumed after %" PRIu64 " failed attempts", s->opts.path,
                        s->errors_in_row);
        s->in_error = false;
        s->drop_logged = false;
        s->retry_ms = 0;
        s->errors_in_row = 0;
    }
    if (s->opts.committed)
        s->opts.committed(s, &info, s->opts.committed_user_data);
    free(last);
    return SQLITE_OK;

fail:
    commit_failed(s, rc, rows + n_fr);
    return rc;
}

static void writer_timer_cb(uv_timer_t *t)
{
    struct kpud_store *s = t->data;

    writer_commit(s);
    writer_reschedule(s, true);
}

int kpud_store_flush(struct kpud_store *s)
{
    int rc;

    if (!s || s->closing)
        return -ESHUTDOWN;
    while (s->fr_len || s->op_len) {
        rc = writer_commit(s);
        if (rc != SQLITE_OK) {
            writer_reschedule(s, false);
            return kpud_store__errno(rc) ? kpud_store__errno(rc) : -EIO;
        }
    }
    return 0;
}

/* ----------------------------------------------------------------------------------- */
/* Public write calls */

static void rows_added(struct kpud_store *s)
{
    if (s->in_error) {
        if (!uv_is_active((uv_handle_t *)&s->writer_timer))
            writer_schedule(s, s->retry_ms);
        return;
    }
    writer_reschedule(s, false);
}

int kpud_store_add_frame(struct kpud_store *s, const struct kpud_frame_rec *f)
{
    size_t sz, dlen, mlen = 0;
    struct qframe *q;
    char *p;

    if (!s || !f || !f->device || !f->device[0] || f->n_boxes > KPUD_STORE_MAX_BOXES ||
        (f->n_boxes && !f->boxes))
        return -EINVAL;
    if (s->closing)
        return -ESHUTDOWN;
    dlen = strlen(f->device) + 1;
    if (f->model)
        mlen = strlen(f->model) + 1;
    sz = sizeof(*q) + f->n_boxes * sizeof(struct qbox) + dlen + mlen;
    for (uint32_t k = 0; k < f->n_boxes; k++)
        if (f->boxes[k].label)
            sz += strlen(f->boxes[k].label) + 1;
    q = malloc(sz);
    if (!q)
        return -ENOMEM;
    q->session_id = f->session_id;
    q->frame_seq = f->frame_seq;
    q->device_time_us = f->device_time_us;
    q->host_time_ns = f->host_time_ns;
    q->image_width = f->image_width;
    q->image_height = f->image_height;
    q->kpu_us = f->kpu_us;
    q->enq_ms = uv_now(s->loop);
    q->n_boxes = f->n_boxes;
    p = (char *)&q->boxes[f->n_boxes];
    memcpy(p, f->device, dlen);
    q->device = p;
    p += dlen;
    q->model = NULL;
    if (f->model) {
        memcpy(p, f->model, mlen);
        q->model = p;
        p += mlen;
    }
    for (uint32_t k = 0; k < f->n_boxes; k++) {
        const struct kpud_box_rec *b = &f->boxes[k];
        struct qbox *d = &q->boxes[k];

        d->class_id = b->class_id;
        d->score = b->score;
        d->x = b->x;
        d->y = b->y;
        d->w = b->w;
        d->h = b->h;
        d->label = NULL;
        if (b->label) {
            size_t l = strlen(b->label) + 1;

            memcpy(p, b->label, l);
            d->label = p;
            p += l;
        }
    }
    /* Out of memory to grow: the ring is full at its current size, drop the oldest. */
    if (s->fr_len == s->fr_cap && s->fr_cap < s->opts.queue_frames)
        (void)fr_grow(s);
    if (s->fr_len == s->fr_cap) {
        fr_pop(s);
        s->c.frames_dropped++;
        if (!s->drop_logged)
            kpud_store__log(s, LOG_WARNING,
                            "store: write queue full (%u frames); dropping the oldest", s->fr_cap);
        s->drop_logged = true;
    }
    s->fr[(s->fr_head + s->fr_len) % s->fr_cap] = q;
    s->fr_len++;
    s->rows_queued += 1 + q->n_boxes;
    s->c.frames_queued++;
    rows_added(s);
    return 0;
}

static int op_push(struct kpud_store *s, struct qop *op, bool oom)
{
    if (oom) {
        op_free(op);
        return -ENOMEM;
    }
    if (s->op_len == STORE_OPS_MAX) {
        op_pop(s);
        s->c.ops_dropped++;
    }
    s->ops[(s->op_head + s->op_len) % STORE_OPS_MAX] = op;
    s->op_len++;
    rows_added(s);
    return 0;
}

static struct qop *op_new(struct kpud_store *s, enum qop_kind kind, int *r)
{
    struct qop *op;

    *r = 0;
    if (s->closing) {
        *r = -ESHUTDOWN;
        return NULL;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        *r = -ENOMEM;
        return NULL;
    }
    op->kind = kind;
    return op;
}

int kpud_store_device_seen(struct kpud_store *s, const struct kpud_device_rec *d)
{
    struct qop *op;
    bool oom = false;
    int r;

    if (!s || !d || !d->id || !d->id[0])
        return -EINVAL;
    op = op_new(s, QOP_DEVICE, &r);
    if (!op)
        return r;
    op->s[0] = dup_or_null(d->id, &oom);
    op->s[1] = dup_or_null(d->board, &oom);
    op->s[2] = dup_or_null(d->transport, &oom);
    op->s[3] = dup_or_null(d->path, &oom);
    op->i[0] = d->seen_ns;
    return op_push(s, op, oom);
}

int kpud_store_session_begin(struct kpud_store *s, const struct kpud_session_rec *rec,
                             int64_t *ret_id)
{
    struct qop *op;
    bool oom = false;
    int r;

    if (!s || !rec || !rec->device || !rec->device[0] || !ret_id)
        return -EINVAL;
    op = op_new(s, QOP_SESSION_BEGIN, &r);
    if (!op)
        return r;
    op->i[0] = s->next_session_id;
    op->i[1] = rec->start_ns;
    op->s[0] = dup_or_null(rec->device, &oom);
    op->s[1] = dup_or_null(rec->agent_version, &oom);
    op->s[2] = dup_or_null(rec->model, &oom);
    op->s[3] = dup_or_null(rec->reset_cause, &oom);
    r = op_push(s, op, oom);
    if (r < 0)
        return r;
    *ret_id = s->next_session_id++;
    return 0;
}

int kpud_store_session_update(struct kpud_store *s, int64_t session_id,
                              const struct kpud_session_counters *c, int64_t end_ns)
{
    struct qop *op;
    int r;

    if (!s || session_id <= 0 || !c)
        return -EINVAL;
    op = op_new(s, QOP_SESSION_UPDATE, &r);
    if (!op)
        return r;
    op->i[0] = session_id;
    op->i[1] = end_ns;
    op->u[0] = c->frames;
    op->u[1] = c->frames_lost;
    op->u[2] = c->link_errors;
    return op_push(s, op, false);
}

int kpud_store_device_event(struct kpud_store *s, const char *device, int64_t time_ns,
                            const char *state, const char *reason)
{
    struct qop *op;
    bool oom = false;
    int r;

    if (!s || !device || !device[0] || !state)
        return -EINVAL;
    op = op_new(s, QOP_EVENT, &r);
    if (!op)
        return r;
    op->s[0] = dup_or_null(device, &oom);
    op->s[1] = dup_or_null(state, &oom);
    op->s[2] = dup_or_null(reason, &oom);
    op->i[0] = time_ns;
    return op_push(s, op, oom);
}

int kpud_store_model_put(struct kpud_store *s, const struct kpud_model_rec *m)
{
    struct qop *op;
    bool oom = false;
    int r;

    if (!s || !m || !m->name || !m->name[0])
        return -EINVAL;
    op = op_new(s, QOP_MODEL_PUT, &r);
    if (!op)
        return r;
    op->s[0] = dup_or_null(m->name, &oom);
    op->s[1] = dup_or_null(m->sha256, &oom);
    op->s[2] = dup_or_null(m->manifest, &oom);
    op->u[0] = m->size;
    op->u[1] = m->crc32c;
    op->i[0] = m->added_ns;
    return op_push(s, op, oom);
}

int kpud_store_model_delete(struct kpud_store *s, const char *name)
{
    struct qop *op;
    bool oom = false;
    int r;

    if (!s || !name || !name[0])
        return -EINVAL;
    op = op_new(s, QOP_MODEL_DELETE, &r);
    if (!op)
        return r;
    op->s[0] = dup_or_null(name, &oom);
    return op_push(s, op, oom);
}

void kpud_store_get_counters(const struct kpud_store *s, struct kpud_store_counters *c)
{
    *c = s->c;
    c->queue_frames = s->fr_len;
    c->queue_rows = s->rows_queued + s->op_len;
}

/* ----------------------------------------------------------------------------------- */
/* Open and close */

static void store_free(struct kpud_store *s)
{
    for (int i = 0; i < s->rd_n; i++)
        sqlite3_close_v2(s->rd_free[i]);
    /* Last, so this read-write connection checkpoints and removes the WAL on close. */
    if (s->ckpt_db) {
        sqlite3_wal_autocheckpoint(s->ckpt_db, 1000);
        sqlite3_close_v2(s->ckpt_db);
    }
    uv_mutex_destroy(&s->rd_mu);
    while (s->fr_len)
        fr_pop(s);
    while (s->op_len)
        op_pop(s);
    free(s->fr);
    free(s->ops);
    free(s->path_buf);
    free(s);
}

static void maybe_free(struct kpud_store *s)
{
    if (s->closing && s->open_handles == 0 && s->pending_work == 0)
        store_free(s);
}

void kpud_store__work_begin(struct kpud_store *s)
{
    s->pending_work++;
}

void kpud_store__work_done(struct kpud_store *s)
{
    s->pending_work--;
    maybe_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct kpud_store *s = h->data;

    s->open_handles--;
    maybe_free(s);
}

int kpud_store_open(uv_loop_t *loop, const struct kpud_store_opts *opts, struct kpud_store **ret)
{
    struct kpud_store *s;
    int r;

    if (!loop || !opts || !opts->path || !opts->path[0] || !ret)
        return -EINVAL;
    store_global_config();
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (uv_mutex_init(&s->rd_mu) != 0) {
        free(s);
        return -ENOMEM;
    }
    s->loop = loop;
    s->opts = *opts;
    s->path_buf = strdup(opts->path);
    s->opts.path = s->path_buf;
#define DEFAULT(field, v)                                                                          \
    do {                                                                                           \
        if (!s->opts.field)                                                                        \
            s->opts.field = (v);                                                                   \
    } while (0)
    DEFAULT(batch_ms, STORE_DEF_BATCH_MS);
    DEFAULT(batch_rows, STORE_DEF_BATCH_ROWS);
    DEFAULT(queue_frames, STORE_DEF_QUEUE_FRAMES);
    DEFAULT(busy_timeout_ms, STORE_DEF_BUSY_MS);
    DEFAULT(max_query_rows, STORE_DEF_MAX_QUERY_ROWS);
    DEFAULT(retention_step_rows, STORE_DEF_STEP_ROWS);
    DEFAULT(retention_period_ms, STORE_DEF_RETENTION_PERIOD_MS);
    DEFAULT(wal_limit_bytes, STORE_DEF_WAL_LIMIT);
    DEFAULT(log, log_stderr);
#undef DEFAULT
    /* The ring grows on demand up to queue_frames (see fr_grow). */
    s->fr_cap = s->opts.queue_frames < STORE_FR_INITIAL ? s->opts.queue_frames : STORE_FR_INITIAL;
    s->fr = calloc(s->fr_cap, sizeof(*s->fr));
    s->ops = calloc(STORE_OPS_MAX, sizeof(*s->ops));
    if (!s->path_buf || !s->fr || !s->ops) {
        r = -ENOMEM;
        goto fail_free;
    }
    r = writer_open_db(s);
    if (r < 0)
        goto fail_free;
    s->next_session_id = query_int(s->db, "SELECT max(id) FROM sessions", 0) + 1;
    s->ret_max_age_s = s->opts.retention_max_age_s;
    s->ret_max_bytes = s->opts.retention_max_bytes;
    uv_timer_init(loop, &s->writer_timer);
    uv_timer_init(loop, &s->retention_timer);
    s->writer_timer.data = s;
    s->retention_timer.data = s;
    s->open_handles = 2;
    kpud_store__retention_arm(s, s->opts.retention_period_ms);
    *ret = s;
    return 0;

fail_free:
    writer_close_db(s);
    store_free(s);
    return r;
}

int kpud_store_close(struct kpud_store *s)
{
    uint32_t left;
    int r = 0;

    if (!s || s->closing)
        return 0;
    /* The SIGTERM path: write what is queued, even in an error episode (one try each). */
    while (s->fr_len || s->op_len) {
        if (writer_commit(s) != SQLITE_OK)
            break;
    }
    left = s->fr_len + s->op_len;
    if (left) {
        kpud_store__log(s, LOG_ERR,
                        "store: %s: closing with %u frames and %u other writes "
                        "unwritten: %s",
                        s->opts.path, s->fr_len, s->op_len, sqlite3_errstr(s->err_code));
        r = -EIO;
    }
    if (s->job) {
        struct del_job *job = s->job;

        s->job = NULL;
        if (job->cb)
            job->cb(s, -ECANCELED, NULL, job->user_data);
        kpud_store__job_free(job);
    }
    s->closing = true;
    writer_close_db(s);
    uv_close((uv_handle_t *)&s->writer_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->retention_timer, on_handle_closed);
    return r;
}
