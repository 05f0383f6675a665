/* SPDX-License-Identifier: MIT */
/*
 * kpud store: the daemon's SQLite database of devices, sessions, detection frames, boxes,
 * device events and models (DESIGN.md §6, docs/store.md).
 *
 * Threading: every function here is called on the libuv loop thread that was given to
 * kpud_store_open(). Writes are queued in memory and committed by one writer connection on
 * the loop thread, one transaction per tick (at most batch_ms after the first queued row,
 * or batch_rows rows, whichever comes first). Reads (queries, stats, dry runs) run on the
 * libuv thread pool on separate read-only connections; their callbacks run on the loop
 * thread. Callers never see SQL: they fill the plain record structs below.
 *
 * Errors are 0 or a negative errno value. Disk full, read-only and I/O errors on commit are
 * not returned to callers: they are logged once, counted, and the failed batch stays in
 * memory (bounded) and is retried until the disk accepts it again.
 */
#ifndef KPUD_STORE_H
#define KPUD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifndef KPU_WARN_UNUSED
#define KPU_WARN_UNUSED __attribute__((warn_unused_result))
#endif

struct kpud_store;

/* Latest schema version (PRAGMA user_version) this build writes; docs/store.md lists them. */
#define KPUD_STORE_SCHEMA_VERSION 2

/* One detected box, as carried by kpu.link.v1.Box plus the label from the model manifest. */
struct kpud_box_rec {
    uint32_t class_id;
    const char *label; /* NUL-terminated, may be NULL or ""; borrowed for the call */
    float score;       /* 0..1 */
    int32_t x;         /* left, pixels in the camera frame */
    int32_t y;         /* top */
    uint32_t w;
    uint32_t h;
};

/* One processed camera frame (kpu.link.v1.DetectionFrame) with its boxes. */
struct kpud_frame_rec {
    const char *device; /* device id (chip uid as hex); required; borrowed */
    int64_t session_id; /* from kpud_store_session_begin(); 0 = none */
    uint32_t frame_seq; /* DetectionFrame.frame_seq */
    uint64_t device_time_us;
    int64_t host_time_ns; /* Unix epoch nanoseconds when the host received it */
    const char *model;    /* model name, may be NULL; borrowed */
    uint32_t image_width;
    uint32_t image_height;
    uint32_t kpu_us;
    uint32_t n_boxes;
    const struct kpud_box_rec *boxes; /* n_boxes entries; borrowed for the call */
};

/* A device as last seen (upserted: first_seen is kept, the rest is replaced). */
struct kpud_device_rec {
    const char *id;        /* chip uid hex; required */
    const char *board;     /* e.g. "maix-dock", "sim"; may be NULL */
    const char *transport; /* "usb", "tty", "sim", "replay"; may be NULL */
    const char *path;      /* port path, tty path or sim description; may be NULL */
    int64_t seen_ns;       /* Unix epoch nanoseconds */
};

/* Counters of one session, written by kpud_store_session_update(). */
struct kpud_session_counters {
    uint64_t frames;      /* detection frames received */
    uint64_t frames_lost; /* sequence gaps */
    uint64_t link_errors; /* CRC, oversize and malformed link frames */
};

/* A device session: one HELLO to the loss of the board. */
struct kpud_session_rec {
    const char *device;        /* required */
    int64_t start_ns;          /* Unix epoch nanoseconds */
    const char *agent_version; /* may be NULL */
    const char *model;         /* may be NULL */
    const char *reset_cause;   /* may be NULL */
};

/* A model known to the daemon (upserted by name). */
struct kpud_model_rec {
    const char *name; /* required */
    uint64_t size;    /* bytes */
    uint32_t crc32c;
    const char *sha256;   /* lowercase hex, may be NULL */
    const char *manifest; /* manifest text, may be NULL */
    int64_t added_ns;
};

/* What kpud_store_open()'s log callback receives. priority is a syslog priority (LOG_ERR..).
 * msg has no trailing newline. */
typedef void (*kpud_store_log_fn)(int priority, const char *msg, void *user_data);

/* Told after each batch commits (on the loop thread, from the writer's timer). */
struct kpud_store_batch_info {
    uint64_t batch;          /* 1, 2, ... per store instance */
    uint32_t frames;         /* frames committed in this batch */
    uint32_t rows;           /* frame + detection + other rows in this batch */
    const char *last_device; /* device of the batch's last frame, NULL if no frames */
    int64_t last_session_id;
    uint32_t last_frame_seq;
    uint64_t commit_ns; /* time from BEGIN to the end of COMMIT */
};
typedef void (*kpud_store_committed_fn)(struct kpud_store *s,
                                        const struct kpud_store_batch_info *info, void *user_data);

struct kpud_store_opts {
    const char *path;             /* database file; created when absent; required */
    uint32_t batch_ms;            /* 0 = 50: commit at most this long after the first row */
    uint32_t batch_rows;          /* 0 = 512: commit at once when this many rows are queued */
    uint32_t queue_frames;        /* 0 = 16384: frames held in memory; beyond, oldest dropped */
    uint32_t busy_timeout_ms;     /* 0 = 2000 */
    uint32_t max_query_rows;      /* 0 = 1000: cap on kpud_store_query() limit */
    uint64_t retention_max_age_s; /* 0 = keep forever */
    uint64_t retention_max_bytes; /* 0 = no size bound (used pages * page size) */
    uint32_t retention_step_rows; /* 0 = 256: rows deleted per retention step (bench_store) */
    uint32_t retention_period_ms; /* 0 = 10000: how often retention checks when idle */
    uint64_t wal_limit_bytes;     /* 0 = 8 MiB: the -wal file is cut back to this when the log
                                   * restarts (PRAGMA journal_size_limit) */
    kpud_store_log_fn log;        /* NULL = stderr with a "<N>" syslog-priority prefix */
    void *log_user_data;
    kpud_store_committed_fn committed; /* may be NULL */
    void *committed_user_data;
};

/* Writer and retention counters since open; read with kpud_store_get_counters(). */
struct kpud_store_counters {
    uint64_t frames_queued; /* accepted by kpud_store_add_frame() */
    uint64_t frames_committed;
    uint64_t rows_committed; /* all rows, frames and detections included */
    uint64_t batches_committed;
    uint64_t frames_dropped; /* oldest frames dropped because the queue was full */
    uint64_t ops_dropped;    /* device/session/event/model writes dropped, queue full */
    uint64_t rows_rejected;  /* rows refused by a constraint (skipped, not retried) */
    uint64_t write_errors;   /* failed commit attempts (disk full, read-only, I/O) */
    int last_error;          /* SQLite extended code of the last write error, 0 = none */
    uint32_t queue_frames;   /* frames waiting now */
    uint32_t queue_rows;     /* rows waiting now */
    uint64_t last_commit_ns;
    uint64_t max_commit_ns;
    uint64_t retention_rows_deleted;
    uint64_t retention_steps;
    uint64_t max_retention_step_ns;
};

/*
 * Open (creating and migrating as needed) the database at opts->path and start the writer
 * and retention timers on loop. A database that is read-only still opens: writes are then
 * queued, counted as errors and retried (the writer reopens the file when it fails that
 * way, so a chmod back is picked up). opts is copied (path included).
 * Returns 0 and sets *ret; -EINVAL for missing arguments; -EPROTO when the file's schema
 * is newer than this build (it is left untouched); -EIO when SQLite cannot open or
 * migrate it (logged); -ENOMEM.
 */
KPU_WARN_UNUSED int kpud_store_open(uv_loop_t *loop, const struct kpud_store_opts *opts,
                                    struct kpud_store **ret);

/*
 * Commit everything queued (several transactions if needed), stop the timers and close
 * the writer. Pending reads complete with status -ECANCELED. Memory is released when the
 * loop has run the handles' close callbacks, so keep running the loop afterwards (the
 * SIGTERM path does). NULL is a no-op returning 0.
 * Returns 0 when the queue was fully written, -EIO when some rows could not be written
 * (they are lost; logged with the count).
 */
int kpud_store_close(struct kpud_store *s);

/*
 * Queue one frame and its boxes for the next batch. All strings and the box array are
 * copied. When the queue already holds queue_frames frames, the oldest is dropped and
 * counted (frames_dropped). Returns 0, -EINVAL (no device, too many boxes: more than
 * KPUD_STORE_MAX_BOXES), -ENOMEM, -ESHUTDOWN after kpud_store_close().
 */
#define KPUD_STORE_MAX_BOXES 1024
KPU_WARN_UNUSED int kpud_store_add_frame(struct kpud_store *s, const struct kpud_frame_rec *f);

/* Queue an upsert of a device row. Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN. */
KPU_WARN_UNUSED int kpud_store_device_seen(struct kpud_store *s, const struct kpud_device_rec *d);

/*
 * Start a session row. The id is assigned at once (so frames can carry it) and the row is
 * written with the next batch. Returns 0 and sets *ret_id (> 0); -EINVAL, -ENOMEM,
 * -ESHUTDOWN.
 */
KPU_WARN_UNUSED int kpud_store_session_begin(struct kpud_store *s,
                                             const struct kpud_session_rec *rec, int64_t *ret_id);

/* Queue an update of a session's counters; end_ns > 0 also closes it. Returns 0, -EINVAL,
 * -ENOMEM, -ESHUTDOWN. */
KPU_WARN_UNUSED int kpud_store_session_update(struct kpud_store *s, int64_t session_id,
                                              const struct kpud_session_counters *c,
                                              int64_t end_ns);

/* Queue a device event (state change). state and reason are short texts, reason may be
 * NULL. Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN. */
KPU_WARN_UNUSED int kpud_store_device_event(struct kpud_store *s, const char *device,
                                            int64_t time_ns, const char *state, const char *reason);

/* Queue an upsert (by name) of a model row. Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN. */
KPU_WARN_UNUSED int kpud_store_model_put(struct kpud_store *s, const struct kpud_model_rec *m);

/* Queue the deletion of a model row by name. Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN. */
KPU_WARN_UNUSED int kpud_store_model_delete(struct kpud_store *s, const char *name);

#define KPUD_STORE_MODELS_MAX 256 /* rows kpud_store_models() returns at most */

/* Models results: rows[0..n) ordered by name, valid only during the call (NULL unless
 * status is 0). status is 0 or a negative errno (-EIO, -ENOMEM, -ECANCELED). */
typedef void (*kpud_store_models_cb)(struct kpud_store *s, int status,
                                     const struct kpud_model_rec *rows, size_t n, void *user_data);

/* List the models table (committed rows; at most KPUD_STORE_MODELS_MAX) on the thread
 * pool. Returns 0 (cb called exactly once), -EINVAL, -ENOMEM, -ESHUTDOWN. */
KPU_WARN_UNUSED int kpud_store_models(struct kpud_store *s, kpud_store_models_cb cb,
                                      void *user_data);

/* Commit what is queued now, on the calling (loop) thread. Returns 0, or the negative
 * errno matching the write error (-ENOSPC, -EROFS, -EIO, -EBUSY); the rows stay queued. */
int kpud_store_flush(struct kpud_store *s);

/* Copy the counters. Never fails. */
void kpud_store_get_counters(const struct kpud_store *s, struct kpud_store_counters *c);

/* ----------------------------------------------------------------------------------- */
/* Reads (thread pool). */

/* Which detections a query, a count or a delete covers. Empty arrays match everything. */
struct kpud_store_filter {
    const char *const *devices; /* device ids */
    size_t n_devices;
    const uint32_t *class_ids;
    size_t n_class_ids;
    const char *const *labels;
    size_t n_labels;
    float min_score;  /* 0 = no minimum */
    int64_t since_ns; /* inclusive; 0 = beginning */
    int64_t until_ns; /* exclusive; 0 = no end */
    bool has_region;  /* box centre must lie in [rx, rx+rw) x [ry, ry+rh) */
    int32_t rx, ry;
    uint32_t rw, rh;
};

#define KPUD_STORE_FILTER_MAX_ITEMS 64 /* per array in a filter; more is -E2BIG */

enum kpud_store_order {
    KPUD_STORE_NEWEST_FIRST = 0,
    KPUD_STORE_OLDEST_FIRST = 1,
};

#define KPUD_STORE_PAGE_TOKEN_LEN 18 /* bytes; see kpud_store_page.next_token */

struct kpud_store_query {
    struct kpud_store_filter filter;
    uint32_t limit; /* rows per page; 0 = 100; capped by opts.max_query_rows */
    enum kpud_store_order order;
    const uint8_t *page_token; /* from a previous page, or NULL for the first page */
    size_t page_token_len;
};

/* One stored detection as a query returns it. Strings belong to the page. */
struct kpud_det_row {
    int64_t id; /* detections row id */
    const char *device;
    int64_t time_ns;
    uint32_t frame_seq;
    struct kpud_box_rec box;
    const char *model; /* "" when unknown */
};

struct kpud_store_page {
    const struct kpud_det_row *rows;
    size_t n_rows;
    uint8_t next_token[KPUD_STORE_PAGE_TOKEN_LEN]; /* valid when next_token_len > 0 */
    size_t next_token_len;                         /* 0 = no more rows */
};

/* Query results. status is 0 or negative errno (-EINVAL bad page token, -EIO, -ECANCELED
 * when the store closed). page is NULL unless status is 0, and valid only during the
 * call. */
typedef void (*kpud_store_query_cb)(struct kpud_store *s, int status,
                                    const struct kpud_store_page *page, void *user_data);

/*
 * Run a detection query on the thread pool. q and everything it points to is copied.
 * Rows committed before the call are visible; queued rows are not. Returns 0 (cb will be
 * called exactly once), -EINVAL (bad token, bad order), -E2BIG (filter arrays too long),
 * -ENOMEM, -ESHUTDOWN.
 */
KPU_WARN_UNUSED int kpud_store_query(struct kpud_store *s, const struct kpud_store_query *q,
                                     kpud_store_query_cb cb, void *user_data);

struct kpud_store_stats {
    uint64_t devices, sessions, frames, detections, device_events, models; /* row counts */
    uint64_t db_bytes;   /* page_count * page_size of the main file */
    uint64_t free_bytes; /* freelist_count * page_size (reusable, not yet given back) */
    uint64_t wal_bytes;  /* size of the -wal file */
    int64_t oldest_ns;   /* oldest frame time, 0 when empty */
    int64_t newest_ns;
    uint32_t schema_version;
};

/* Stats results; st is valid only during the call, NULL unless status is 0. */
typedef void (*kpud_store_stats_cb)(struct kpud_store *s, int status,
                                    const struct kpud_store_stats *st, void *user_data);

/* Count rows and sizes on the thread pool. Returns 0 (cb called once), -ENOMEM,
 * -ESHUTDOWN. */
KPU_WARN_UNUSED int kpud_store_stats(struct kpud_store *s, kpud_store_stats_cb cb, void *user_data);

/* ----------------------------------------------------------------------------------- */
/* Deletion: retention and admin history deletes. */

struct kpud_store_delete_report {
    bool dry_run;
    uint64_t frames;        /* frames deleted (or that would be) */
    uint64_t detections;    /* detections deleted (or that would be) */
    uint64_t events;        /* device events deleted (or that would be) */
    int64_t oldest_kept_ns; /* oldest frame time left (or that would be left); 0 = none */
    uint64_t db_bytes;      /* used bytes afterwards ((page_count - freelist) * page_size) */
};

/* Report of a retention run or a history delete; rep valid only during the call. */
typedef void (*kpud_store_delete_cb)(struct kpud_store *s, int status,
                                     const struct kpud_store_delete_report *rep, void *user_data);

/* Change the retention bounds (0 = unbounded). They apply from the next periodic check
 * (retention_period_ms); call kpud_store_apply_retention() to apply them at once. */
void kpud_store_set_retention(struct kpud_store *s, uint64_t max_age_s, uint64_t max_bytes);

/*
 * Apply retention now. Real run: deletes in steps of retention_step_rows rows on the loop
 * thread (one step per timer tick) and calls cb when nothing more is due. Dry run: counts
 * on the thread pool what a real run would delete right now. Returns 0 (cb called once),
 * -EBUSY when a real run or history delete is already going, -ENOMEM, -ESHUTDOWN.
 */
KPU_WARN_UNUSED int kpud_store_apply_retention(struct kpud_store *s, bool dry_run,
                                               kpud_store_delete_cb cb, void *user_data);

/*
 * Delete history matching filter (admin). Detections matching are deleted; when the
 * filter has no box-level condition (class, label, score, region), the frames and device
 * events of the devices and time range go too. Steps like retention. Dry run counts on
 * the thread pool. Returns 0 (cb called once), -EBUSY, -E2BIG, -ENOMEM, -ESHUTDOWN.
 */
KPU_WARN_UNUSED int kpud_store_delete_history(struct kpud_store *s,
                                              const struct kpud_store_filter *filter, bool dry_run,
                                              kpud_store_delete_cb cb, void *user_data);

/* What one deletion step did (for the bench and tests). */
struct kpud_store_step_report {
    uint64_t rows; /* rows deleted by this step */
    uint64_t ns;   /* its duration */
    bool more;     /* more rows are due */
};

/*
 * Run one retention step now on the loop thread (what the retention timer does each
 * tick). Returns 0 and fills *rep; -EIO on a write error (logged, counted); -ESHUTDOWN.
 */
KPU_WARN_UNUSED int kpud_store_retention_step(struct kpud_store *s,
                                              struct kpud_store_step_report *rep);

#endif /* KPUD_STORE_H */
