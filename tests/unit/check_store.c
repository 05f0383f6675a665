/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the daemon's SQLite store (daemon/store/): schema and pragmas, batching
 * rules, the bounded queue, record upserts, queries with filters and keyset paging,
 * stats, retention by age and size (dry run and real), history deletes, migrations from
 * every earlier schema version, and closing with rows still queued. Expected results are
 * recomputed here from the generated input, or read back with plain SQL.
 */
#include "check_store_util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <syslog.h>

#include "store_internal.h"

struct fixture {
    uv_loop_t loop;
    char *dir;
    char *db;
    struct kpud_store *s;
    struct kpud_store_opts opts;
    uint64_t batches;
    uint32_t last_seq;
    uint64_t committed_frames;
    bool committed;
    char log[4096];
};

static void on_log(int prio, const char *msg, void *ud)
{
    struct fixture *fx = ud;
    size_t l = strlen(fx->log);

    snprintf(fx->log + l, sizeof(fx->log) - l, "<%d>%s\n", prio, msg);
}

static void on_committed(struct kpud_store *s, const struct kpud_store_batch_info *info, void *ud)
{
    struct fixture *fx = ud;

    (void)s;
    fx->batches++;
    fx->committed_frames += info->frames;
    if (info->frames)
        fx->last_seq = info->last_frame_seq;
    fx->committed = true;
}

static void fx_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    fx->dir = t_mkdtemp();
    fx->db = t_path(fx->dir, "kpud.db");
    fx->opts.path = fx->db;
    fx->opts.log = on_log;
    fx->opts.log_user_data = fx;
    fx->opts.committed = on_committed;
    fx->opts.committed_user_data = fx;
}

static void fx_open(struct fixture *fx)
{
    ck_assert_int_eq(kpud_store_open(&fx->loop, &fx->opts, &fx->s), 0);
}

static void fx_done(struct fixture *fx)
{
    if (fx->s)
        t_close(&fx->loop, fx->s);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
    t_rmdir(fx->dir);
    free(fx->dir);
    free(fx->db);
}

static void add_frames(struct fixture *fx, uint32_t from, uint32_t n, int64_t base)
{
    struct t_frame tf;

    for (uint32_t i = from; i < from + n; i++) {
        t_make_frame(&tf, i, base);
        ck_assert_int_eq(kpud_store_add_frame(fx->s, &tf.rec), 0);
    }
}

static uint64_t gen_rows(uint32_t from, uint32_t n)
{
    uint64_t r = 0;

    for (uint32_t i = from; i < from + n; i++)
        r += 1 + t_nboxes(i);
    return r;
}

/* ----------------------------------------------------------------------------------- */

START_TEST(test_open_schema_pragmas)
{
    struct fixture fx;
    char *mode;

    fx_init(&fx);
    fx_open(&fx);
    ck_assert_int_eq(t_sql_int(fx.db, "PRAGMA user_version"), KPUD_STORE_SCHEMA_VERSION);
    mode = t_sql_text(fx.db, "PRAGMA journal_mode");
    ck_assert_str_eq(mode, "wal");
    free(mode);
    ck_assert_int_eq(t_sql_int(fx.db, "PRAGMA auto_vacuum"), 2); /* 2 = incremental */
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                      " AND name IN ('devices', 'sessions', 'frames',"
                                      " 'detections', 'device_events', 'models')"),
                     6);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                      " AND name IN ('detections_time', 'detections_class_time',"
                                      " 'detections_label_time', 'frames_time')"),
                     4);
    fx_done(&fx);
}
END_TEST

START_TEST(test_open_bad_args)
{
    uv_loop_t loop;
    struct kpud_store_opts o = {0};
    struct kpud_store *s = (struct kpud_store *)0x1;

    uv_loop_init(&loop);
    ck_assert_int_eq(kpud_store_open(&loop, &o, &s), -EINVAL);
    o.path = "/nonexistent-dir-kpud/x/y.db";
    o.log = on_log;
    {
        struct fixture fx = {0};

        o.log_user_data = &fx;
        ck_assert_int_eq(kpud_store_open(&loop, &o, &s), -EIO);
        ck_assert_ptr_nonnull(strstr(fx.log, "<3>store: cannot open"));
    }
    ck_assert_ptr_eq(s, (struct kpud_store *)0x1); /* untouched on failure */
    ck_assert_int_eq(kpud_store_close(NULL), 0);
    uv_loop_close(&loop);
}
END_TEST

/* Below batch_rows nothing is written until batch_ms has passed. */
START_TEST(test_batch_waits_for_timer)
{
    struct fixture fx;
    uint64_t t0;

    fx_init(&fx);
    /* A batch delay far above what queueing ten frames can take, even under ASan on a
     * loaded machine, so "not yet committed" is not a race. */
    fx.opts.batch_ms = 400;
    fx_open(&fx);
    uv_update_time(&fx.loop);
    t0 = uv_now(&fx.loop);
    add_frames(&fx, 0, 10, T_BASE_NS);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    ck_assert(!fx.committed);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 0);
    t_run_until(&fx.loop, &fx.committed);
    uv_update_time(&fx.loop);
    ck_assert_uint_ge(uv_now(&fx.loop) - t0, 400 - 1);
    ck_assert_uint_eq(fx.batches, 1);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 10);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM detections"),
                     (int64_t)(gen_rows(0, 10) - 10));
    fx_done(&fx);
}
END_TEST

/* Reaching batch_rows commits on the next loop iteration, in batches of <= batch_rows. */
START_TEST(test_batch_rows_limit)
{
    struct fixture fx;
    struct kpud_store_counters c;
    uint32_t n = 3000;

    fx_init(&fx);
    fx.opts.batch_ms = 60000; /* only the row limit can trigger */
    fx_open(&fx);
    add_frames(&fx, 0, n, T_BASE_NS);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    ck_assert(fx.committed);
    kpud_store_get_counters(fx.s, &c);
    /* One batch per iteration, each at most the default batch_rows (plus the frame that crosses). */
    ck_assert_uint_eq(c.batches_committed, 1);
    ck_assert_uint_ge(c.rows_committed, STORE_DEF_BATCH_ROWS);
    ck_assert_uint_le(c.rows_committed, STORE_DEF_BATCH_ROWS + T_MAX_BOXES);
    while (c.queue_rows >= STORE_DEF_BATCH_ROWS) {
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        kpud_store_get_counters(fx.s, &c);
    }
    ck_assert_uint_gt(c.queue_rows, 0);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    kpud_store_get_counters(fx.s, &c);
    ck_assert_uint_eq(c.frames_committed, n);
    ck_assert_uint_eq(c.rows_committed, gen_rows(0, n));
    ck_assert_uint_eq(c.queue_rows, 0);
    ck_assert_uint_eq(fx.last_seq, n - 1);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), n);
    fx_done(&fx);
}
END_TEST

START_TEST(test_queue_drops_oldest)
{
    struct fixture fx;
    struct kpud_store_counters c;

    fx_init(&fx);
    fx.opts.queue_frames = 8;
    fx_open(&fx);
    add_frames(&fx, 0, 20, T_BASE_NS);
    kpud_store_get_counters(fx.s, &c);
    ck_assert_uint_eq(c.frames_dropped, 12);
    ck_assert_uint_eq(c.queue_frames, 8);
    ck_assert_ptr_nonnull(strstr(fx.log, "write queue full"));
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 8);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT min(frame_seq) FROM frames"), 12);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT max(frame_seq) FROM frames"), 19);
    fx_done(&fx);
}
END_TEST

START_TEST(test_bad_records)
{
    struct fixture fx;
    struct kpud_frame_rec f = {0};
    struct kpud_session_counters sc = {0};
    int64_t id;

    fx_init(&fx);
    fx_open(&fx);
    ck_assert_int_eq(kpud_store_add_frame(fx.s, &f), -EINVAL);
    f.device = "";
    ck_assert_int_eq(kpud_store_add_frame(fx.s, &f), -EINVAL);
    f.device = "d";
    f.n_boxes = 2; /* boxes NULL */
    ck_assert_int_eq(kpud_store_add_frame(fx.s, &f), -EINVAL);
    f.n_boxes = KPUD_STORE_MAX_BOXES + 1;
    ck_assert_int_eq(kpud_store_add_frame(fx.s, &f), -EINVAL);
    ck_assert_int_eq(kpud_store_session_begin(fx.s, &(struct kpud_session_rec){0}, &id), -EINVAL);
    ck_assert_int_eq(kpud_store_session_update(fx.s, 0, &sc, 0), -EINVAL);
    ck_assert_int_eq(kpud_store_device_event(fx.s, NULL, 0, "x", NULL), -EINVAL);
    ck_assert_int_eq(kpud_store_model_put(fx.s, &(struct kpud_model_rec){0}), -EINVAL);
    /* A frame of an unknown session is refused by the foreign key, the rest commits. */
    f.n_boxes = 0;
    f.session_id = 999;
    ck_assert_int_eq(kpud_store_add_frame(fx.s, &f), 0);
    add_frames(&fx, 0, 3, T_BASE_NS);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    {
        struct kpud_store_counters c;

        kpud_store_get_counters(fx.s, &c);
        ck_assert_uint_eq(c.rows_rejected, 1);
    }
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 3);
    fx_done(&fx);
}
END_TEST

START_TEST(test_records_upserts)
{
    struct fixture fx;
    struct kpud_device_rec d = {"aa01", "maix-dock", "tty", "/dev/ttyUSB0", T_BASE_NS};
    struct kpud_session_rec sr = {"aa01", T_BASE_NS + 5, "0.1.0", "face", "power-on"};
    struct kpud_session_counters sc = {100, 2, 1};
    struct kpud_model_rec m = {"face",   1234, 0xdeadbeef, NULL, "{\"labels\":[\"face\"]}",
                               T_BASE_NS};
    struct t_frame tf;
    int64_t sid = 0, sid2 = 0;
    char *txt;

    fx_init(&fx);
    fx_open(&fx);
    ck_assert_int_eq(kpud_store_device_seen(fx.s, &d), 0);
    ck_assert_int_eq(kpud_store_session_begin(fx.s, &sr, &sid), 0);
    ck_assert_int_gt(sid, 0);
    t_make_frame(&tf, 1, T_BASE_NS);
    tf.rec.device = "aa01";
    tf.rec.session_id = sid;
    ck_assert_int_eq(kpud_store_add_frame(fx.s, &tf.rec), 0);
    ck_assert_int_eq(kpud_store_session_update(fx.s, sid, &sc, T_BASE_NS + 99), 0);
    ck_assert_int_eq(kpud_store_device_event(fx.s, "aa01", T_BASE_NS + 7, "streaming", "hello"), 0);
    ck_assert_int_eq(kpud_store_model_put(fx.s, &m), 0);
    m.size = 4321;
    ck_assert_int_eq(kpud_store_model_put(fx.s, &m), 0);
    d.seen_ns = T_BASE_NS + 1000;
    d.path = NULL; /* kept */
    d.board = "maix-bit";
    ck_assert_int_eq(kpud_store_device_seen(fx.s, &d), 0);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);

    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM devices"), 1);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT first_seen_ns FROM devices"), T_BASE_NS);
    /* The frame (host time T_BASE_NS + T_STEP_NS) is the latest sighting. */
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT last_seen_ns FROM devices"), T_BASE_NS + T_STEP_NS);
    txt = t_sql_text(fx.db, "SELECT board || ' ' || path FROM devices");
    ck_assert_str_eq(txt, "maix-bit /dev/ttyUSB0");
    free(txt);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT frames FROM sessions"), 100);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT end_ns FROM sessions"), T_BASE_NS + 99);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT session_id FROM frames"), sid);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM device_events WHERE"
                                      " state = 'streaming' AND reason = 'hello'"),
                     1);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT size FROM models WHERE name = 'face'"), 4321);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT crc32c FROM models"), 0xdeadbeef);
    ck_assert_int_eq(kpud_store_model_delete(fx.s, "face"), 0);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM models"), 0);

    /* Session ids continue after a reopen. */
    t_close(&fx.loop, fx.s);
    fx.s = NULL;
    fx_open(&fx);
    ck_assert_int_eq(kpud_store_session_begin(fx.s, &sr, &sid2), 0);
    ck_assert_int_eq(sid2, sid + 1);
    fx_done(&fx);
}
END_TEST

/* Closing without running the loop still writes everything queued (SIGTERM path). */
START_TEST(test_close_flushes)
{
    struct fixture fx;

    fx_init(&fx);
    fx_open(&fx);
    add_frames(&fx, 0, 500, T_BASE_NS);
    ck_assert_int_eq(kpud_store_close(fx.s), 0);
    fx.s = NULL;
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 500);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM detections"),
                     (int64_t)(gen_rows(0, 500) - 500));
    fx_done(&fx);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* Queries */

struct qres {
    bool done;
    int status;
    size_t n;
    struct kpud_det_row rows[2048];
    char labels[2048][16];
    char devs[2048][16];
    uint8_t token[KPUD_STORE_PAGE_TOKEN_LEN];
    size_t token_len;
};

static void on_page(struct kpud_store *s, int status, const struct kpud_store_page *p, void *ud)
{
    struct qres *q = ud;

    (void)s;
    q->done = true;
    q->status = status;
    q->n = 0;
    q->token_len = 0;
    if (status)
        return;
    ck_assert_uint_le(p->n_rows, 2048);
    for (size_t i = 0; i < p->n_rows; i++) {
        q->rows[i] = p->rows[i];
        snprintf(q->labels[i], sizeof(q->labels[i]), "%s", p->rows[i].box.label);
        snprintf(q->devs[i], sizeof(q->devs[i]), "%s", p->rows[i].device);
        q->rows[i].box.label = q->labels[i];
        q->rows[i].device = q->devs[i];
        ck_assert_str_eq(p->rows[i].model, "facedetect");
    }
    q->n = p->n_rows;
    q->token_len = p->next_token_len;
    memcpy(q->token, p->next_token, p->next_token_len);
}

static void run_query(struct fixture *fx, const struct kpud_store_query *q, struct qres *res)
{
    res->done = false;
    ck_assert_int_eq(kpud_store_query(fx->s, q, on_page, res), 0);
    t_run_until(&fx->loop, &res->done);
}

/* Does generated box (i, k) match f? Written independently of the store's SQL. */
static bool gen_match(uint32_t i, uint32_t k, const struct kpud_store_filter *f)
{
    struct kpud_box_rec b;
    int64_t t = T_BASE_NS + (int64_t)i * T_STEP_NS;
    bool ok;

    t_box(i, k, &b);
    if (f->since_ns && t < f->since_ns)
        return false;
    if (f->until_ns && t >= f->until_ns)
        return false;
    if (f->n_devices) {
        ok = false;
        for (size_t j = 0; j < f->n_devices; j++)
            ok |= !strcmp(f->devices[j], t_dev(i));
        if (!ok)
            return false;
    }
    if (f->n_class_ids) {
        ok = false;
        for (size_t j = 0; j < f->n_class_ids; j++)
            ok |= f->class_ids[j] == b.class_id;
        if (!ok)
            return false;
    }
    if (f->n_labels) {
        ok = false;
        for (size_t j = 0; j < f->n_labels; j++)
            ok |= !strcmp(f->labels[j], b.label);
        if (!ok)
            return false;
    }
    if (f->min_score > 0 && b.score < f->min_score)
        return false;
    if (f->has_region) {
        double cx = b.x + b.w / 2.0, cy = b.y + b.h / 2.0;

        if (cx < f->rx || cx >= (double)f->rx + f->rw || cy < f->ry || cy >= (double)f->ry + f->rh)
            return false;
    }
    return true;
}

/* Page through f with page size `limit` in `order` and compare with the generator. */
static void check_filter(struct fixture *fx, uint32_t nframes, const struct kpud_store_filter *f,
                         uint32_t limit, enum kpud_store_order order)
{
    struct qres *res = calloc(1, sizeof(*res));
    struct kpud_store_query q = {.filter = *f, .limit = limit, .order = order};
    size_t expected = 0, got = 0;
    int64_t prev_t = order == KPUD_STORE_NEWEST_FIRST ? INT64_MAX : INT64_MIN;
    int64_t prev_id = prev_t;
    uint8_t tok[KPUD_STORE_PAGE_TOKEN_LEN];
    int pages = 0;

    for (uint32_t i = 0; i < nframes; i++)
        for (uint32_t k = 0; k < t_nboxes(i); k++)
            expected += gen_match(i, k, f);
    for (;;) {
        run_query(fx, &q, res);
        ck_assert_int_eq(res->status, 0);
        ck_assert_uint_le(res->n, limit);
        pages++;
        for (size_t j = 0; j < res->n; j++) {
            const struct kpud_det_row *r = &res->rows[j];
            uint32_t i = r->frame_seq, k;
            struct kpud_box_rec b;

            ck_assert_int_eq(r->time_ns, T_BASE_NS + (int64_t)i * T_STEP_NS);
            ck_assert_str_eq(r->device, t_dev(i));
            /* Find which box of frame i this is by its fields. */
            for (k = 0; k < t_nboxes(i); k++) {
                t_box(i, k, &b);
                if (b.x == r->box.x && b.y == r->box.y && b.w == r->box.w)
                    break;
            }
            ck_assert_uint_lt(k, t_nboxes(i));
            ck_assert_uint_eq(r->box.class_id, b.class_id);
            ck_assert_str_eq(r->box.label, b.label);
            ck_assert_float_eq_tol(r->box.score, b.score, 1e-6);
            ck_assert(gen_match(i, k, f));
            if (order == KPUD_STORE_NEWEST_FIRST)
                ck_assert(r->time_ns < prev_t || (r->time_ns == prev_t && r->id < prev_id));
            else
                ck_assert(r->time_ns > prev_t || (r->time_ns == prev_t && r->id > prev_id));
            prev_t = r->time_ns;
            prev_id = r->id;
            got++;
        }
        if (!res->token_len)
            break;
        ck_assert_uint_eq(res->n, limit);
        memcpy(tok, res->token, sizeof(tok));
        q.page_token = tok;
        q.page_token_len = res->token_len;
    }
    ck_assert_uint_eq(got, expected);
    ck_assert_int_eq(pages, expected / limit + 1 - (expected && expected % limit == 0));
    free(res);
}

#define NQ 600

START_TEST(test_query_filters_and_paging)
{
    struct fixture fx;
    static const char *const devb[] = {"dev-b"};
    static const char *const two_devs[] = {"dev-b", "dev-a"};
    static const uint32_t cls2[] = {2};
    static const uint32_t cls01[] = {0, 1};
    static const char *const lab[] = {"person"};
    struct kpud_store_filter f;

    fx_init(&fx);
    fx_open(&fx);
    add_frames(&fx, 0, NQ, T_BASE_NS);
    ck_assert_int_eq(kpud_store_flush(&*fx.s), 0);

    memset(&f, 0, sizeof(f));
    check_filter(&fx, NQ, &f, 97, KPUD_STORE_NEWEST_FIRST);
    check_filter(&fx, NQ, &f, 1000, KPUD_STORE_OLDEST_FIRST);
    f.n_devices = 1;
    f.devices = devb;
    check_filter(&fx, NQ, &f, 50, KPUD_STORE_OLDEST_FIRST);
    f.n_devices = 2;
    f.devices = two_devs;
    f.class_ids = cls2;
    f.n_class_ids = 1;
    check_filter(&fx, NQ, &f, 33, KPUD_STORE_NEWEST_FIRST);
    memset(&f, 0, sizeof(f));
    f.labels = lab;
    f.n_labels = 1;
    f.min_score = 0.5f;
    f.since_ns = T_BASE_NS + 100 * T_STEP_NS;
    f.until_ns = T_BASE_NS + 400 * T_STEP_NS;
    check_filter(&fx, NQ, &f, 20, KPUD_STORE_NEWEST_FIRST);
    check_filter(&fx, NQ, &f, 20, KPUD_STORE_OLDEST_FIRST);
    memset(&f, 0, sizeof(f));
    f.class_ids = cls01;
    f.n_class_ids = 2;
    f.has_region = true;
    f.rx = 50;
    f.ry = 20;
    f.rw = 120;
    f.rh = 90;
    check_filter(&fx, NQ, &f, 10, KPUD_STORE_OLDEST_FIRST);
    /* Nothing matches: one empty page without a token. */
    memset(&f, 0, sizeof(f));
    f.since_ns = T_BASE_NS + 10 * (int64_t)NQ * T_STEP_NS;
    check_filter(&fx, NQ, &f, 10, KPUD_STORE_NEWEST_FIRST);
    fx_done(&fx);
}
END_TEST

START_TEST(test_query_bad_input)
{
    struct fixture fx;
    struct kpud_store_query q = {0};
    struct qres *res = calloc(1, sizeof(*res));
    uint8_t tok[KPUD_STORE_PAGE_TOKEN_LEN] = {0};
    uint32_t many[KPUD_STORE_FILTER_MAX_ITEMS + 1] = {0};

    fx_init(&fx);
    fx_open(&fx);
    q.page_token = tok;
    q.page_token_len = sizeof(tok);
    ck_assert_int_eq(kpud_store_query(fx.s, &q, on_page, res), -EINVAL); /* version 0 */
    tok[0] = 1;
    tok[1] = 1; /* order mismatch */
    ck_assert_int_eq(kpud_store_query(fx.s, &q, on_page, res), -EINVAL);
    tok[1] = 0;
    q.page_token_len = 5;
    ck_assert_int_eq(kpud_store_query(fx.s, &q, on_page, res), -EINVAL);
    q.page_token_len = 0;
    q.order = 7;
    ck_assert_int_eq(kpud_store_query(fx.s, &q, on_page, res), -EINVAL);
    q.order = 0;
    q.filter.class_ids = many;
    q.filter.n_class_ids = KPUD_STORE_FILTER_MAX_ITEMS + 1;
    ck_assert_int_eq(kpud_store_query(fx.s, &q, on_page, res), -E2BIG);
    /* The limit is capped by max_query_rows. */
    q.filter.n_class_ids = 0;
    q.limit = 100000;
    add_frames(&fx, 0, 2000, T_BASE_NS);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    run_query(&fx, &q, res);
    ck_assert_int_eq(res->status, 0);
    ck_assert_uint_eq(res->n, 1000);
    ck_assert_uint_eq(res->token_len, KPUD_STORE_PAGE_TOKEN_LEN);
    free(res);
    fx_done(&fx);
}
END_TEST

/* A query still running when the store closes completes with -ECANCELED. */
START_TEST(test_query_cancelled_by_close)
{
    struct fixture fx;
    struct qres *res = calloc(1, sizeof(*res));
    struct kpud_store_query q = {0};

    fx_init(&fx);
    fx_open(&fx);
    ck_assert_int_eq(kpud_store_query(fx.s, &q, on_page, res), 0);
    ck_assert_int_eq(kpud_store_close(fx.s), 0);
    ck_assert_int_eq(kpud_store_query(fx.s, &q, on_page, res), -ESHUTDOWN);
    fx.s = NULL;
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ck_assert(res->done);
    ck_assert_int_eq(res->status, -ECANCELED);
    free(res);
    fx_done(&fx);
}
END_TEST

struct sres {
    bool done;
    int status;
    struct kpud_store_stats st;
};

static void on_stats(struct kpud_store *s, int status, const struct kpud_store_stats *st, void *ud)
{
    struct sres *r = ud;

    (void)s;
    r->done = true;
    r->status = status;
    if (st)
        r->st = *st;
}

START_TEST(test_stats)
{
    struct fixture fx;
    struct sres r = {0};
    struct kpud_model_rec m = {"m", 1, 2, "ab", NULL, 3};

    fx_init(&fx);
    fx_open(&fx);
    add_frames(&fx, 0, 101, T_BASE_NS);
    ck_assert_int_eq(kpud_store_model_put(fx.s, &m), 0);
    ck_assert_int_eq(kpud_store_device_event(fx.s, "dev-c", 5, "lost", NULL), 0);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    ck_assert_int_eq(kpud_store_stats(fx.s, on_stats, &r), 0);
    t_run_until(&fx.loop, &r.done);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.st.frames, 101);
    ck_assert_uint_eq(r.st.detections, gen_rows(0, 101) - 101);
    ck_assert_uint_eq(r.st.devices, 3); /* dev-a, dev-b, and dev-c from the event */
    ck_assert_uint_eq(r.st.device_events, 1);
    ck_assert_uint_eq(r.st.models, 1);
    ck_assert_uint_eq(r.st.sessions, 0);
    ck_assert_int_eq(r.st.oldest_ns, T_BASE_NS);
    ck_assert_int_eq(r.st.newest_ns, T_BASE_NS + 100 * T_STEP_NS);
    ck_assert_uint_eq(r.st.db_bytes, (uint64_t)t_sql_int(fx.db, "PRAGMA page_count") *
                                         (uint64_t)t_sql_int(fx.db, "PRAGMA page_size"));
    ck_assert_uint_gt(r.st.wal_bytes, 0);
    ck_assert_uint_eq(r.st.schema_version, KPUD_STORE_SCHEMA_VERSION);
    fx_done(&fx);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* Retention and history deletes */

struct dres {
    bool done;
    int status;
    struct kpud_store_delete_report rep;
};

static void on_delete(struct kpud_store *s, int status, const struct kpud_store_delete_report *rep,
                      void *ud)
{
    struct dres *r = ud;

    (void)s;
    r->done = true;
    r->status = status;
    if (rep)
        r->rep = *rep;
}

START_TEST(test_retention_age)
{
    struct fixture fx;
    struct dres dry = {0}, real = {0};
    struct kpud_store_counters c;
    int64_t now = kpud_store__now_ns();
    int64_t old_base = now - 3 * 86400LL * 1000000000LL; /* three days ago */
    uint32_t n_old = 700, n_new = 300;

    fx_init(&fx);
    fx.opts.retention_step_rows = 100;
    fx_open(&fx);
    add_frames(&fx, 0, n_old, old_base);
    add_frames(&fx, n_old, n_new, now - (int64_t)n_old * T_STEP_NS); /* frames i at ~now */
    ck_assert_int_eq(kpud_store_device_event(fx.s, "dev-a", old_base, "lost", "old"), 0);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    kpud_store_set_retention(fx.s, 86400, 0);

    ck_assert_int_eq(kpud_store_apply_retention(fx.s, true, on_delete, &dry), 0);
    t_run_until(&fx.loop, &dry.done);
    ck_assert_int_eq(dry.status, 0);
    ck_assert(dry.rep.dry_run);
    ck_assert_uint_eq(dry.rep.frames, n_old);
    ck_assert_uint_eq(dry.rep.detections, gen_rows(0, n_old) - n_old);
    ck_assert_uint_eq(dry.rep.events, 1);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), n_old + n_new);

    ck_assert_int_eq(kpud_store_apply_retention(fx.s, false, on_delete, &real), 0);
    t_run_until(&fx.loop, &real.done);
    ck_assert_int_eq(real.status, 0);
    ck_assert(!real.rep.dry_run);
    ck_assert_uint_eq(real.rep.frames, dry.rep.frames);
    ck_assert_uint_eq(real.rep.detections, dry.rep.detections);
    ck_assert_uint_eq(real.rep.events, 1);
    ck_assert_int_eq(real.rep.oldest_kept_ns, dry.rep.oldest_kept_ns);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), n_new);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT min(frame_seq) FROM frames"), n_old);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM detections"),
                     (int64_t)(gen_rows(n_old, n_new) - n_new));
    kpud_store_get_counters(fx.s, &c);
    /* Steps of at most 100 rows: at least rows/100 of them. */
    ck_assert_uint_ge(c.retention_steps, gen_rows(0, n_old) / 100);
    ck_assert_uint_eq(c.retention_rows_deleted, gen_rows(0, n_old) + 1);
    ck_assert_int_eq(t_sql_int(fx.db, "PRAGMA foreign_key_check"), -1); /* no rows */
    fx_done(&fx);
}
END_TEST

START_TEST(test_retention_size)
{
    struct fixture fx;
    struct dres dry = {0}, real = {0};
    uint64_t used, cap;
    int64_t pages_before, pages_after, newest;
    uint32_t n = 20000;

    fx_init(&fx);
    fx_open(&fx);
    for (uint32_t i = 0; i < n; i += 4000) { /* stay below the queue bound */
        add_frames(&fx, i, 4000, T_BASE_NS);
        ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    }
    t_sql_exec(fx.db, "PRAGMA wal_checkpoint(TRUNCATE)");
    pages_before = t_sql_int(fx.db, "PRAGMA page_count");
    used = (uint64_t)(pages_before - t_sql_int(fx.db, "PRAGMA freelist_count")) *
           (uint64_t)t_sql_int(fx.db, "PRAGMA page_size");
    cap = used / 2;
    kpud_store_set_retention(fx.s, 0, cap);
    ck_assert_int_eq(kpud_store_apply_retention(fx.s, true, on_delete, &dry), 0);
    t_run_until(&fx.loop, &dry.done);
    ck_assert_int_eq(dry.status, 0);
    /* About half the frames would go (estimate from mean bytes per frame). */
    ck_assert_uint_gt(dry.rep.frames, n / 3);
    ck_assert_uint_lt(dry.rep.frames, n * 2 / 3);
    ck_assert_int_eq(kpud_store_apply_retention(fx.s, false, on_delete, &real), 0);
    t_run_until(&fx.loop, &real.done);
    ck_assert_int_eq(real.status, 0);
    ck_assert_uint_le(real.rep.db_bytes, cap);
    ck_assert_uint_gt(real.rep.frames, n / 3);
    newest = t_sql_int(fx.db, "SELECT max(frame_seq) FROM frames");
    ck_assert_int_eq(newest, n - 1); /* the newest are kept */
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT min(frame_seq) FROM frames"),
                     (int64_t)real.rep.frames);
    /* Incremental vacuum gave pages back to the file system. */
    t_sql_exec(fx.db, "PRAGMA wal_checkpoint(TRUNCATE)");
    pages_after = t_sql_int(fx.db, "PRAGMA page_count");
    ck_assert_int_lt(pages_after, pages_before * 3 / 4);
    ck_assert_int_eq(t_sql_int(fx.db, "PRAGMA freelist_count") * 4 < pages_after, 1);
    fx_done(&fx);
}
END_TEST

static int64_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* A long reader keeps checkpoints from restarting the WAL, so it swells past the limit;
 * once the reader is gone the WAL restarts and the -wal file is cut back to the limit. */
START_TEST(test_wal_cut_back_after_long_reader)
{
    struct fixture fx;
    sqlite3 *reader;
    char *wal;
    const uint64_t limit = 256u * 1024u;
    int64_t swollen;
    uint32_t next = 0;

    fx_init(&fx);
    fx.opts.wal_limit_bytes = limit;
    fx_open(&fx);
    wal = t_path(fx.dir, "kpud.db-wal");
    add_frames(&fx, next, 10, T_BASE_NS);
    next += 10;
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    ck_assert_int_eq(sqlite3_open_v2(fx.db, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM frames;", NULL, NULL, NULL),
                     SQLITE_OK);
    while (file_size(wal) < (int64_t)(4 * limit)) {
        add_frames(&fx, next, 2000, T_BASE_NS);
        next += 2000;
        ck_assert_int_eq(kpud_store_flush(fx.s), 0);
        ck_assert_uint_lt(next, 400000); /* the WAL must swell well before this */
    }
    swollen = file_size(wal);
    sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(reader);
    /* Writes go on; after a checkpoint completes, the next write restarts the log and
     * truncates the file. Bounded by a number of rounds, not by time. */
    for (int round = 0; round < 200 && file_size(wal) > (int64_t)limit; round++) {
        add_frames(&fx, next, 50, T_BASE_NS);
        next += 50;
        ck_assert_int_eq(kpud_store_flush(fx.s), 0);
        t_sql_exec(fx.db, "PRAGMA wal_checkpoint(PASSIVE)");
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    }
    ck_assert_msg(file_size(wal) <= (int64_t)limit, "-wal is %lld bytes after swelling to %lld",
                  (long long)file_size(wal), (long long)swollen);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), (int64_t)next);
    free(wal);
    fx_done(&fx);
}
END_TEST

START_TEST(test_retention_timer_driven)
{
    struct fixture fx;
    int64_t now = kpud_store__now_ns();

    fx_init(&fx);
    fx.opts.retention_max_age_s = 3600;
    fx.opts.retention_period_ms = 10;
    fx_open(&fx);
    add_frames(&fx, 0, 50, now - 7200LL * 1000000000LL);
    add_frames(&fx, 50, 50, now - 50 * T_STEP_NS);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    while (t_sql_int(fx.db, "SELECT count(*) FROM frames") != 50)
        uv_run(&fx.loop, UV_RUN_ONCE);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT min(frame_seq) FROM frames"), 50);
    fx_done(&fx);
}
END_TEST

START_TEST(test_delete_history)
{
    struct fixture fx;
    struct dres dry = {0}, real = {0}, busy = {0};
    static const char *const deva[] = {"dev-a"};
    static const uint32_t cls[] = {1};
    struct kpud_store_filter f = {0};
    uint32_t n = 400;
    int64_t dets_a = 0, cls1 = 0;

    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < t_nboxes(i); k++) {
            struct kpud_box_rec b;

            t_box(i, k, &b);
            if (i % 2 == 0 && i >= 100 && i < 300)
                dets_a++;
            if (b.class_id == 1)
                cls1++;
        }
    fx_init(&fx);
    fx.opts.retention_step_rows = 37;
    fx_open(&fx);
    add_frames(&fx, 0, n, T_BASE_NS);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    /* Device + time: detections, frames (and events) of dev-a in [100, 300). */
    f.devices = deva;
    f.n_devices = 1;
    f.since_ns = T_BASE_NS + 100 * T_STEP_NS;
    f.until_ns = T_BASE_NS + 300 * T_STEP_NS;
    ck_assert_int_eq(kpud_store_delete_history(fx.s, &f, true, on_delete, &dry), 0);
    t_run_until(&fx.loop, &dry.done);
    ck_assert_uint_eq(dry.rep.frames, 100);
    ck_assert_uint_eq(dry.rep.detections, (uint64_t)dets_a);
    ck_assert_int_eq(kpud_store_delete_history(fx.s, &f, false, on_delete, &real), 0);
    ck_assert_int_eq(kpud_store_delete_history(fx.s, &f, false, on_delete, &busy), -EBUSY);
    t_run_until(&fx.loop, &real.done);
    ck_assert_uint_eq(real.rep.frames, 100);
    ck_assert_uint_eq(real.rep.detections, (uint64_t)dets_a);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), n - 100);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames WHERE device_id = 'dev-a'"
                                      " AND frame_seq >= 100 AND frame_seq < 300"),
                     0);
    /* Box level (class 1): only those detections go, frames stay. */
    memset(&f, 0, sizeof(f));
    f.class_ids = cls;
    f.n_class_ids = 1;
    memset(&real, 0, sizeof(real));
    ck_assert_int_eq(kpud_store_delete_history(fx.s, &f, false, on_delete, &real), 0);
    t_run_until(&fx.loop, &real.done);
    ck_assert_uint_eq(real.rep.frames, 0);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM detections WHERE class_id = 1"), 0);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), n - 100);
    ck_assert_uint_le(real.rep.detections, (uint64_t)cls1);
    ck_assert_uint_gt(real.rep.detections, 0);
    fx_done(&fx);
}
END_TEST

/* ----------------------------------------------------------------------------------- */
/* Migrations */

/* Create a database at schema version v with some rows that exist at that version. */
static void make_old_db(const char *path, int v)
{
    sqlite3 *db;
    char *msg = NULL;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL", NULL, NULL,
                 NULL);
    if (v > 0) {
        ck_assert_int_eq(kpud_store__migrate(db, v, &msg), 0);
        ck_assert_int_eq(
            sqlite3_exec(db,
                         "INSERT INTO devices VALUES('old-dev', 'maix-go', 'tty', '/dev/x', 1, 2);"
                         "INSERT INTO sessions(id, device_id, start_ns) VALUES(7, 'old-dev', 1);"
                         "INSERT INTO frames VALUES(1, 7, 'old-dev', 42, 1000, 1700000000000000000,"
                         " 'facedetect', 320, 240, 9000, 2);"
                         "INSERT INTO detections VALUES(1, 1, 'old-dev', 1700000000000000000, 0,"
                         " 'face', 0.9, 10, 20, 30, 40);"
                         "INSERT INTO detections VALUES(2, 1, 'old-dev', 1700000000000000000, 1,"
                         " 'person', 0.4, 50, 60, 70, 80);"
                         "INSERT INTO device_events VALUES(1, 'old-dev', 5, 'lost', 'unplug');",
                         NULL, NULL, &msg),
            SQLITE_OK);
    }
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

START_TEST(test_migrate_every_version)
{
    /* _i is the starting version: 0 (empty file) up to the latest. */
    struct fixture fx;
    struct qres *res = calloc(1, sizeof(*res));
    static const char *const lab[] = {"face"};
    struct kpud_store_query q = {0};
    struct kpud_model_rec m = {"face", 10, 11, NULL, NULL, 12};
    int v = _i;

    fx_init(&fx);
    make_old_db(fx.db, v);
    ck_assert_int_eq(t_sql_int(fx.db, "PRAGMA user_version"), v);
    fx_open(&fx);
    ck_assert_int_eq(t_sql_int(fx.db, "PRAGMA user_version"), KPUD_STORE_SCHEMA_VERSION);
    if (v > 0) {
        ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 1);
        ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM detections"), 2);
        ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM device_events"), 1);
        ck_assert_int_eq(t_sql_int(fx.db, "SELECT frame_seq FROM frames"), 42);
        /* Old rows are found through the new label index. */
        q.filter.labels = lab;
        q.filter.n_labels = 1;
        run_query(&fx, &q, res);
        ck_assert_int_eq(res->status, 0);
        ck_assert_uint_eq(res->n, 1);
        ck_assert_uint_eq(res->rows[0].frame_seq, 42);
        ck_assert_str_eq(res->rows[0].device, "old-dev");
        ck_assert_int_eq(res->rows[0].box.h, 40);
    }
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM sqlite_master WHERE name ="
                                      " 'detections_label_time'"),
                     1);
    ck_assert_int_eq(kpud_store_model_put(fx.s, &m), 0);
    add_frames(&fx, 0, 5, T_BASE_NS);
    ck_assert_int_eq(kpud_store_flush(fx.s), 0);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM models"), 1);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 5 + (v > 0));
    free(res);
    fx_done(&fx);
}
END_TEST

START_TEST(test_migrate_newer_refused)
{
    struct fixture fx;
    struct kpud_store *s = NULL;

    fx_init(&fx);
    make_old_db(fx.db, KPUD_STORE_SCHEMA_VERSION);
    t_sql_exec(fx.db, "PRAGMA user_version = 99");
    ck_assert_int_eq(kpud_store_open(&fx.loop, &fx.opts, &s), -EPROTO);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(fx.log, "newer"));
    ck_assert_int_eq(t_sql_int(fx.db, "PRAGMA user_version"), 99);
    ck_assert_int_eq(t_sql_int(fx.db, "SELECT count(*) FROM frames"), 1);
    fx_done(&fx);
}
END_TEST

START_TEST(test_migrate_step_is_atomic)
{
    sqlite3 *db;
    char *msg = NULL;
    char *dir = t_mkdtemp(), *path = t_path(dir, "m.db");

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(kpud_store__migrate(db, 1, &msg), 0);
    /* Make step 2 fail half way: its table name is taken. */
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE models(x)", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(kpud_store__migrate(db, 2, &msg), -EIO);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_nonnull(strstr(msg, "version 2"));
    sqlite3_free(msg);
    sqlite3_close(db);
    ck_assert_int_eq(t_sql_int(path, "PRAGMA user_version"), 1);
    ck_assert_int_eq(t_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name ="
                                     " 'detections_label_time'"),
                     0);
    t_rmdir(dir);
    free(dir);
    free(path);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("write");

    tcase_add_test(tc, test_open_schema_pragmas);
    tcase_add_test(tc, test_open_bad_args);
    tcase_add_test(tc, test_batch_waits_for_timer);
    tcase_add_test(tc, test_batch_rows_limit);
    tcase_add_test(tc, test_queue_drops_oldest);
    tcase_add_test(tc, test_bad_records);
    tcase_add_test(tc, test_records_upserts);
    tcase_add_test(tc, test_close_flushes);
    suite_add_tcase(s, tc);
    tc = tcase_create("read");
    tcase_add_test(tc, test_query_filters_and_paging);
    tcase_add_test(tc, test_query_bad_input);
    tcase_add_test(tc, test_query_cancelled_by_close);
    tcase_add_test(tc, test_stats);
    suite_add_tcase(s, tc);
    tc = tcase_create("delete");
    tcase_add_test(tc, test_retention_age);
    tcase_add_test(tc, test_retention_size);
    tcase_add_test(tc, test_wal_cut_back_after_long_reader);
    tcase_add_test(tc, test_retention_timer_driven);
    tcase_add_test(tc, test_delete_history);
    suite_add_tcase(s, tc);
    tc = tcase_create("migrate");
    tcase_add_loop_test(tc, test_migrate_every_version, 0, KPUD_STORE_SCHEMA_VERSION + 1);
    tcase_add_test(tc, test_migrate_newer_refused);
    tcase_add_test(tc, test_migrate_step_is_atomic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
