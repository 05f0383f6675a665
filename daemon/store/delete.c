/* SPDX-License-Identifier: MIT */
/*
 * Deleting rows without stalling the loop: retention (by age and by used database size)
 * and admin history deletes run as a job of small steps on the writer connection, each
 * step one transaction deleting at most retention_step_rows rows, with a short pause
 * between steps so ingest commits interleave. Size retention frees pages with
 * incremental vacuum (auto_vacuum=INCREMENTAL, set when the file is created).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "store_internal.h"

/* Retry delay for a step that failed (disk full, read-only). */
#define STEP_RETRY_MS 1000

void kpud_store__retention_arm(struct kpud_store *s, uint64_t ms)
{
    if (s->closing)
        return;
    if (!s->job && !s->ret_max_age_s && !s->ret_max_bytes)
        return;
    uv_timer_start(&s->retention_timer, kpud_store__retention_timer_cb, ms, 0);
}

void kpud_store__job_free(struct del_job *job)
{
    if (!job)
        return;
    for (int i = 0; i < 3; i++)
        sqlite3_finalize(job->st[i]);
    kpud_store__filter_free(&job->fc);
    free(job);
}

/* Run one DELETE ... LIMIT statement: returns rows deleted, or a negative SQLite code. */
static int64_t run_delete(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -(int64_t)rc;
    return sqlite3_changes64(db);
}

static int64_t delete_older(sqlite3 *db, const char *table, int64_t cutoff, int64_t limit)
{
    char sql[160];
    sqlite3_stmt *st;
    int64_t n;
    int rc;

    snprintf(sql, sizeof(sql),
             "DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE time_ns < ?1"
             " ORDER BY time_ns LIMIT ?2)",
             table, table);
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return -(int64_t)rc;
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int64(st, 2, limit);
    n = run_delete(db, st);
    sqlite3_finalize(st);
    return n;
}

static void vacuum_some(sqlite3 *db)
{
    char sql[64];

    snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", STORE_VACUUM_PAGES);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int step_fail(struct kpud_store *s, int rc, bool *logged)
{
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->c.write_errors++;
    s->c.last_error = rc;
    if (!*logged)
        kpud_store__log(s, LOG_ERR, "store: %s: deletion step failed: %s (SQLite %d); will retry",
                        s->opts.path, sqlite3_errstr(rc), rc);
    *logged = true;
    return kpud_store__errno(rc) ? kpud_store__errno(rc) : -EIO;
}

/*
 * One retention step: detections, then frames, then device events older than the cutoff,
 * at most step_rows rows in all, in one transaction. Adds to rep when not NULL.
 */
static int retention_step(struct kpud_store *s, struct kpud_store_step_report *out,
                          struct kpud_store_delete_report *rep)
{
    uint64_t t0 = uv_hrtime();
    int64_t budget = s->opts.retention_step_rows, n, cutoff;
    int64_t done[3] = {0, 0, 0};
    static const char *const tables[3] = {"detections", "frames", "device_events"};
    int rc;

    memset(out, 0, sizeof(*out));
    if (!s->db || s->reopen_writer)
        return step_fail(s, SQLITE_READONLY, &s->step_logged);
    cutoff = kpud_store__retention_cutoff(s, s->db, s->ret_max_age_s, s->ret_max_bytes,
                                          s->opts.retention_step_rows, false);
    if (cutoff <= 0)
        goto out;
    rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return step_fail(s, sqlite3_extended_errcode(s->db), &s->step_logged);
    /* Children first, so deleting a frame never cascades to an unbounded number of rows. */
    for (int i = 0; i < 3 && budget > 0; i++) {
        n = delete_older(s->db, tables[i], cutoff, budget);
        if (n < 0)
            return step_fail(s, (int)-n, &s->step_logged);
        done[i] = n;
        budget -= n;
    }
    if (sqlite3_get_autocommit(s->db) == 0 && done[0] + done[1] + done[2] > 0)
        vacuum_some(s->db);
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return step_fail(s, sqlite3_extended_errcode(s->db), &s->step_logged);
out:
    s->step_logged = false;
    out->rows = (uint64_t)(done[0] + done[1] + done[2]);
    out->more = out->rows > 0;
    out->ns = uv_hrtime() - t0;
    s->c.retention_rows_deleted += out->rows;
    s->c.retention_steps++;
    if (out->ns > s->c.max_retention_step_ns)
        s->c.max_retention_step_ns = out->ns;
    if (rep) {
        rep->detections += (uint64_t)done[0];
        rep->frames += (uint64_t)done[1];
        rep->events += (uint64_t)done[2];
    }
    return 0;
}

int kpud_store_retention_step(struct kpud_store *s, struct kpud_store_step_report *rep)
{
    if (!s || !rep)
        return -EINVAL;
    if (s->closing)
        return -ESHUTDOWN;
    if (s->job && s->job->history)
        return -EBUSY;
    return retention_step(s, rep, s->job ? &s->job->rep : NULL);
}

/* Prepare the history job's statement for its current phase. */
static int history_prepare(struct kpud_store *s, struct del_job *job)
{
    static const char *const tables[3] = {"detections", "frames", "device_events"};
    struct sbuf b = {0};
    int rc;

    if (job->st[job->phase])
        return SQLITE_OK;
    kpud_store__sb_add(&b, "DELETE FROM %s WHERE id IN (SELECT t.id FROM %s t WHERE 1",
                       tables[job->phase], tables[job->phase]);
    kpud_store__filter_sql(&b, &job->fc.f, "t", job->phase > 0);
    kpud_store__sb_add(&b, " LIMIT ?)");
    if (b.oom)
        return SQLITE_NOMEM;
    rc = sqlite3_prepare_v2(s->db, b.p, -1, &job->st[job->phase], NULL);
    free(b.p);
    if (rc != SQLITE_OK)
        return rc;
    rc = kpud_store__filter_bind(job->st[job->phase], 1, &job->fc.f, job->phase > 0);
    sqlite3_bind_int64(job->st[job->phase], rc, s->opts.retention_step_rows);
    return SQLITE_OK;
}

static int history_step(struct kpud_store *s, struct del_job *job, bool *more)
{
    uint64_t t0 = uv_hrtime(), ns;
    int64_t n;
    int rc;

    *more = false;
    if (!s->db || s->reopen_writer)
        return step_fail(s, SQLITE_READONLY, &s->step_logged);
    rc = history_prepare(s, job);
    if (rc != SQLITE_OK)
        return step_fail(s, rc, &s->step_logged);
    rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return step_fail(s, sqlite3_extended_errcode(s->db), &s->step_logged);
    n = run_delete(s->db, job->st[job->phase]);
    if (n < 0)
        return step_fail(s, (int)-n, &s->step_logged);
    if (n > 0)
        vacuum_some(s->db);
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return step_fail(s, sqlite3_extended_errcode(s->db), &s->step_logged);
    s->step_logged = false;
    if (job->phase == 0)
        job->rep.detections += (uint64_t)n;
    else if (job->phase == 1)
        job->rep.frames += (uint64_t)n;
    else
        job->rep.events += (uint64_t)n;
    if (n < (int64_t)s->opts.retention_step_rows)
        job->phase = job->box_level ? 3 : job->phase + 1;
    *more = job->phase < 3;
    ns = uv_hrtime() - t0;
    if (ns > s->c.max_retention_step_ns)
        s->c.max_retention_step_ns = ns;
    return 0;
}

static void job_finish(struct kpud_store *s, struct del_job *job)
{
    sqlite3_stmt *st;

    s->job = NULL;
    job->rep.db_bytes = kpud_store__used_bytes(s->db);
    job->rep.oldest_kept_ns = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT min(time_ns) FROM frames", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            job->rep.oldest_kept_ns = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (job->rep.frames + job->rep.detections + job->rep.events)
        kpud_store__log(s, LOG_INFO,
                        "store: %s deleted %" PRIu64 " frames, %" PRIu64 " detections, %" PRIu64
                        " device events",
                        job->history ? "history delete" : "retention", job->rep.frames,
                        job->rep.detections, job->rep.events);
    if (job->cb)
        job->cb(s, 0, &job->rep, job->user_data);
    kpud_store__job_free(job);
}

void kpud_store__retention_timer_cb(uv_timer_t *t)
{
    struct kpud_store *s = t->data;
    struct kpud_store_step_report sr;
    struct del_job *job = s->job;
    bool more = false;
    int r;

    if (!job) {
        if (!s->ret_max_age_s && !s->ret_max_bytes)
            return;
        job = calloc(1, sizeof(*job));
        if (!job) {
            kpud_store__retention_arm(s, s->opts.retention_period_ms);
            return;
        }
        s->job = job;
    }
    if (job->history) {
        r = history_step(s, job, &more);
    } else {
        r = retention_step(s, &sr, &job->rep);
        more = sr.more;
    }
    if (r < 0) {
        kpud_store__retention_arm(s, STEP_RETRY_MS);
        return;
    }
    if (more) {
        kpud_store__retention_arm(s, STORE_STEP_GAP_MS);
        return;
    }
    job_finish(s, job);
    kpud_store__retention_arm(s, s->opts.retention_period_ms);
}

void kpud_store_set_retention(struct kpud_store *s, uint64_t max_age_s, uint64_t max_bytes)
{
    if (!s || s->closing)
        return;
    s->ret_max_age_s = max_age_s;
    s->ret_max_bytes = max_bytes;
    if (!s->job)
        kpud_store__retention_arm(s, s->opts.retention_period_ms);
}

int kpud_store_apply_retention(struct kpud_store *s, bool dry_run, kpud_store_delete_cb cb,
                               void *user_data)
{
    struct del_job *job;

    if (!s || !cb)
        return -EINVAL;
    if (s->closing)
        return -ESHUTDOWN;
    if (dry_run)
        return kpud_store__dry_run(s, NULL, true, cb, user_data);
    if (s->job) {
        /* A timer-driven retention run already going: report its result to this caller. */
        if (s->job->history || s->job->cb)
            return -EBUSY;
        s->job->cb = cb;
        s->job->user_data = user_data;
        return 0;
    }
    job = calloc(1, sizeof(*job));
    if (!job)
        return -ENOMEM;
    job->cb = cb;
    job->user_data = user_data;
    s->job = job;
    uv_timer_start(&s->retention_timer, kpud_store__retention_timer_cb, 0, 0);
    return 0;
}

int kpud_store_delete_history(struct kpud_store *s, const struct kpud_store_filter *filter,
                              bool dry_run, kpud_store_delete_cb cb, void *user_data)
{
    struct del_job *job;
    int r;

    if (!s || !filter || !cb)
        return -EINVAL;
    if (s->closing)
        return -ESHUTDOWN;
    if (dry_run) {
        struct filter_copy fc;

        r = kpud_store__filter_copy(&fc, filter);
        if (r < 0)
            return r;
        r = kpud_store__dry_run(s, &fc, false, cb, user_data);
        kpud_store__filter_free(&fc);
        return r;
    }
    if (s->job)
        return -EBUSY;
    job = calloc(1, sizeof(*job));
    if (!job)
        return -ENOMEM;
    r = kpud_store__filter_copy(&job->fc, filter);
    if (r < 0) {
        free(job);
        return r;
    }
    job->history = true;
    job->box_level = kpud_store__filter_box_level(filter);
    job->cb = cb;
    job->user_data = user_data;
    s->job = job;
    uv_timer_start(&s->retention_timer, kpud_store__retention_timer_cb, 0, 0);
    return 0;
}
