/* SPDX-License-Identifier: MIT */
/*
 * kpud store internals shared by the store's own files (store.c: open, queues, writer;
 * schema.c: migrations; read.c: thread-pool reads; delete.c: retention and history
 * deletes) and by its unit tests. Not part of the daemon's interface: other modules use
 * store.h only.
 */
#ifndef KPUD_STORE_INTERNAL_H
#define KPUD_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store.h"

/* Defaults for kpud_store_opts fields left 0 (store.h documents each). */
#define STORE_DEF_BATCH_MS 50
#define STORE_DEF_BATCH_ROWS 512 /* p99 commit under 5 ms while a backlog drains (bench_store) */
#define STORE_DEF_QUEUE_FRAMES 16384
/* Slots of the frame ring at open; it doubles when full, up to queue_frames. */
#define STORE_FR_INITIAL 256u
#define STORE_DEF_BUSY_MS 2000
#define STORE_DEF_MAX_QUERY_ROWS 1000
#define STORE_DEF_QUERY_ROWS 100
#define STORE_DEF_STEP_ROWS 256
#define STORE_DEF_RETENTION_PERIOD_MS 10000
/* Device/session/event/model writes held in memory at most (they are rare). */
#define STORE_OPS_MAX 4096
/* Retry delay after a failed commit doubles from batch_ms up to this. */
#define STORE_RETRY_MAX_MS 1000
/* Pause between two deletion steps, so ingest gets the loop in between. */
#define STORE_STEP_GAP_MS 5
/* Pages given back to the file system per deletion step (incremental vacuum). */
#define STORE_VACUUM_PAGES 64
/* WAL pages after a commit that start a checkpoint on the thread pool (SQLite's own
 * autocheckpoint default), and the size at which the writer checkpoints itself because the
 * pool's checkpoints are not keeping up. */
#define STORE_CKPT_PAGES 1000
/* The -wal file is cut back to this when the log restarts: twice the checkpoint trigger at
 * 4 KiB pages, so a normal cycle never truncates and re-grows it, while a WAL that swelled
 * behind a long reader (up to STORE_CKPT_FORCE_PAGES) does not keep its disk space. */
#define STORE_DEF_WAL_LIMIT (8u * 1024u * 1024u)
#define STORE_CKPT_FORCE_PAGES 20000
/* Read-only connections kept for the thread pool (libuv's default pool has 4 threads). */
#define STORE_READERS_MAX 4

/*
 * Memory per connection (kpud's idle RSS, docs/performance.md "local clients"). SQLite's
 * defaults are a 2000 KiB page cache with a first bulk allocation of 20 pages, and 100
 * lookaside slots of 1200 bytes (120 KiB, every page of it touched when the connection
 * opens) per connection. The writer appends at the right-hand edge of 2 tables and 9
 * indexes (a few pages each) and the retention steps work at the left-hand edge; a
 * history query walks one index range and fetches its rows: other pages come back from
 * the OS page cache with one pread each. The checkpoint connection copies WAL frames
 * without its page cache.
 */
#define STORE_WRITER_CACHE_PAGES 64
#define STORE_READER_CACHE_PAGES 64
#define STORE_CKPT_CACHE_PAGES 8
#define STORE_LOOKASIDE_SLOT 1200 /* bytes, SQLite's default slot size */
#define STORE_LOOKASIDE_SLOTS 24  /* per connection (SQLite's default: 100) */

enum store_conn_role { STORE_CONN_WRITER, STORE_CONN_READER, STORE_CONN_CKPT };

/* kpud_store__tune_memory - set db's page cache size (and, for the checkpoint
 * connection, no lookaside) for its role, right after sqlite3_open_v2. */
void kpud_store__tune_memory(sqlite3 *db, enum store_conn_role role);

/* A queued box; label points into the owning qframe's allocation. */
struct qbox {
    uint32_t class_id;
    const char *label;
    float score;
    int32_t x, y;
    uint32_t w, h;
};

/* A queued frame: one allocation holding the struct, its boxes and its strings. */
struct qframe {
    int64_t session_id;
    uint32_t frame_seq;
    uint64_t device_time_us;
    int64_t host_time_ns;
    uint32_t image_width, image_height, kpu_us;
    uint64_t enq_ms; /* uv_now() when queued */
    const char *device;
    const char *model; /* NULL when unknown */
    uint32_t n_boxes;
    struct qbox boxes[];
};

enum qop_kind {
    QOP_DEVICE,
    QOP_SESSION_BEGIN,
    QOP_SESSION_UPDATE,
    QOP_EVENT,
    QOP_MODEL_PUT,
    QOP_MODEL_DELETE,
};

#define QOP_STRS 5
/* A queued non-frame write; field use per kind is in store.c's op_exec(). */
struct qop {
    enum qop_kind kind;
    int64_t i[3];
    uint64_t u[3];
    char *s[QOP_STRS]; /* owned, may be NULL */
};

enum store_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_DEV_ENSURE,
    ST_DEV_UPSERT,
    ST_SESSION_INS,
    ST_SESSION_UPD,
    ST_EVENT_INS,
    ST_MODEL_PUT,
    ST_MODEL_DEL,
    ST_FRAME_INS,
    ST_DET_INS,
    ST_COUNT
};

/* A deep copy of a kpud_store_filter (owned strings and arrays). */
struct filter_copy {
    struct kpud_store_filter f;
    char **devices;
    uint32_t *class_ids;
    char **labels;
};

/* A running retention or history-delete job (one at a time, steps on the loop thread). */
struct del_job {
    bool history;   /* false = retention */
    bool box_level; /* history filter has class/label/score/region conditions */
    int phase;      /* 0 detections, 1 frames, 2 events, 3 done */
    struct filter_copy fc;
    sqlite3_stmt *st[3]; /* history: per-phase DELETE statements */
    struct kpud_store_delete_report rep;
    kpud_store_delete_cb cb; /* may be NULL (timer-driven retention) */
    void *user_data;
};

struct kpud_store {
    uv_loop_t *loop;
    struct kpud_store_opts opts; /* defaults filled in; path points to path_buf */
    char *path_buf;

    sqlite3 *db; /* the writer; NULL while it failed to reopen */
    sqlite3_stmt *st[ST_COUNT];
    bool reopen_writer; /* a read-only error: reopen before the next try */

    uv_timer_t writer_timer;
    uv_timer_t retention_timer;
    int open_handles; /* timers not yet through their close callback */
    int pending_work; /* thread-pool requests not yet through their after-work callback */
    bool closing;

    struct qframe **fr; /* frame ring */
    uint32_t fr_cap, fr_head, fr_len;
    uint32_t rows_queued; /* frame + detection rows in the ring */
    struct qop **ops;     /* op ring, STORE_OPS_MAX */
    uint32_t op_head, op_len;

    int64_t next_session_id;
    uint64_t batch_seq;
    struct kpud_store_counters c;

    bool in_error;     /* last commit failed; retrying */
    int err_code;      /* its SQLite extended code */
    uint32_t retry_ms; /* current retry delay */
    uint64_t errors_in_row;
    bool step_logged; /* a deletion-step failure was logged this episode */
    bool drop_logged; /* the queue-full warning was given this episode */

    uint64_t ret_max_age_s, ret_max_bytes;
    struct del_job *job;

    bool ckpt_running; /* a checkpoint is queued or running on the pool */
    uv_work_t ckpt_req;
    sqlite3 *ckpt_db; /* read-write connection used only by that checkpoint */
    int ckpt_rc;
    int wal_pages; /* WAL size after the last commit, from the WAL hook */

    uv_mutex_t rd_mu; /* guards rd_free */
    sqlite3 *rd_free[STORE_READERS_MAX];
    int rd_n;
};

/* Log through opts.log (printf-style). */
void kpud_store__log(struct kpud_store *s, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Map a SQLite result code to a negative errno. */
int kpud_store__errno(int sqlite_rc);

/*
 * Bring db's schema to version target (1..KPUD_STORE_SCHEMA_VERSION) by running the
 * migration steps above its user_version, each in its own transaction. Returns 0,
 * -EPROTO when the file is newer than target, -EIO on SQLite errors (message in *errmsg,
 * a static or sqlite3_malloc'd string the caller frees with sqlite3_free; may be NULL).
 */
int kpud_store__migrate(sqlite3 *db, int target, char **errmsg);

/* Deep-copy a filter; -E2BIG past KPUD_STORE_FILTER_MAX_ITEMS, -ENOMEM. */
int kpud_store__filter_copy(struct filter_copy *dst, const struct kpud_store_filter *src);
void kpud_store__filter_free(struct filter_copy *fc);

/*
 * Append " AND ..." conditions for f on the detections table (alias "d") or, with
 * frames_only, on frames/device_events (columns device_id, time_ns only) to sql, and bind
 * them later with kpud_store__filter_bind in the same order. Returns 0 or -ENOMEM.
 */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};
void kpud_store__sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kpud_store__filter_sql(struct sbuf *b, const struct kpud_store_filter *f, const char *alias,
                            bool frames_only);
int kpud_store__filter_bind(sqlite3_stmt *st, int idx, const struct kpud_store_filter *f,
                            bool frames_only);
bool kpud_store__filter_box_level(const struct kpud_store_filter *f);

/* Reader connections (thread pool side). get returns NULL on failure. */
sqlite3 *kpud_store__reader_get(struct kpud_store *s);
void kpud_store__reader_put(struct kpud_store *s, sqlite3 *db);

/* Work bookkeeping for thread-pool requests; done may free the store. */
void kpud_store__work_begin(struct kpud_store *s);
void kpud_store__work_done(struct kpud_store *s);

/* The retention cutoff (frames strictly older go) computed on connection db; 0 = none. */
int64_t kpud_store__retention_cutoff(struct kpud_store *s, sqlite3 *db, uint64_t max_age_s,
                                     uint64_t max_bytes, uint32_t step_rows, bool whole);

/* Used bytes ((page_count - freelist_count) * page_size) seen by db. */
uint64_t kpud_store__used_bytes(sqlite3 *db);

/* Wall clock in Unix epoch nanoseconds. */
int64_t kpud_store__now_ns(void);

/* Deletion jobs (delete.c). */
void kpud_store__job_free(struct del_job *job);
void kpud_store__retention_timer_cb(uv_timer_t *t);
void kpud_store__retention_arm(struct kpud_store *s, uint64_t ms);
int kpud_store__dry_run(struct kpud_store *s, const struct filter_copy *fc, bool retention,
                        kpud_store_delete_cb cb, void *user_data);

#endif /* KPUD_STORE_INTERNAL_H */
