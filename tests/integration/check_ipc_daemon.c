/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the local-client side against the REAL daemon: kpud with
 * kpu-agent-sim running the shared face model, its real socket and SQLite file, reached
 * through libkpu-client, a bare framing client (ipc_raw.c) and the kpuctl binary.
 * Subscription filters, history paging against SQLite, slow-client drops, reconnect across
 * a daemon restart, roles from peer credentials, malformed frames, snapshots, model
 * upload and a few stable kpuctl --json outputs.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kpu/client.h>
#include <openssl/sha.h>

#include "harness.h"
#include "ipc_raw.h"

#define FACE_MODEL "models/maixpy_facedetect_320x240.kmodel"
#define ASTRONAUT "images/astronaut_320x240.png"
#define TWO_FACES "images/two_faces_320x240.jpg"
#define FACE_MANIFEST KPU_TEST_MODELS_DIR "/maixpy_facedetect_320x240.ini"
#define WAIT_MS 60000 /* generous: the emulated KPU shares two cores with other tests */
#define MAX_EV 1024
#define MAX_BOX 4
#define NOBODY_UID 65534 /* Debian's nobody */

static pid_t kpud;
static char dev[64];

static void teardown(void)
{
    if (kpud > 0)
        h_stop(kpud, 20000);
    kpud = 0;
    h_cleanup();
}

static const char *sock(void)
{
    return h_path("kpud.sock");
}

static const char *db(void)
{
    return h_path("state/kpud.db");
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start kpud on a simulated board showing image; conf may be NULL (/dev/null). */
static pid_t spawn_kpud(const char *image, const char *conf, const char *const *extra)
{
    static char conf_arg[600];
    const char *args[24];
    int n = 0;

    if (conf) {
        snprintf(conf_arg, sizeof(conf_arg), "--config=%s", conf);
        args[n++] = conf_arg; /* the later --config wins over the harness's /dev/null */
    }
    for (int i = 0; extra && extra[i] && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return h_kpud_sim(image, FACE_MODEL, args);
}

/* kpud streaming from image; dev gets the board's id. Returns 0 when data is missing. */
static int start(const char *image, const char *conf, const char *const *extra)
{
    if (!h_need_data(FACE_MODEL) || !h_need_data(image))
        return 0;
    kpud = spawn_kpud(image, conf, extra);
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", 3, WAIT_MS), 3);
    ck_assert_int_eq(h_db_text(db(), "SELECT id FROM devices", dev, sizeof(dev)), 0);
    ck_assert_int_eq(strlen(dev), 32);
    return 1;
}

static kpu_client_t *open_client(struct kpu_client_opts *o)
{
    struct kpu_client_opts def;
    kpu_client_t *c = NULL;
    int64_t end = mono_ms() + WAIT_MS;
    int r;

    if (!o) {
        memset(&def, 0, sizeof(def));
        o = &def;
    }
    o->socket_path = sock();
    o->client_name = "check_ipc_daemon";
    while ((r = kpu_client_open(o, &c)) == KPU_CLIENT_ECONNECT && mono_ms() < end)
        usleep(20000); /* the socket is not there yet: poll for it with a deadline */
    ck_assert_msg(r == 0, "connect: %s", kpu_client_strerror(r));
    return c;
}

/* ---- event recording ---------------------------------------------------------------- */

struct sbox {
    uint32_t class_id;
    char label[16];
    float score;
    int32_t x, y;
    uint32_t w, h;
};

struct rec {
    kpu_client_t *c;
    uint32_t id;
    int n;
    uint32_t seq[MAX_EV];
    int nbox[MAX_EV];
    struct sbox box[MAX_EV][MAX_BOX];
    uint64_t dropped;
    int device_events;
    int stop_at; /* kpu_client_stop when n reaches it; 0 = never */
};

static void on_event(kpu_client_t *c, const struct kpu_client_event *ev, void *user)
{
    struct rec *r = user;

    if (ev->type == KPU_CLIENT_EVENT_DROPPED)
        r->dropped += ev->dropped_count;
    if (ev->type == KPU_CLIENT_EVENT_DEVICE)
        r->device_events++;
    if (ev->type != KPU_CLIENT_EVENT_DETECTION || r->n == MAX_EV)
        return;
    r->seq[r->n] = ev->detection->frame_seq;
    r->nbox[r->n] = (int)ev->detection->n_boxes;
    for (size_t i = 0; i < ev->detection->n_boxes && i < MAX_BOX; i++) {
        const struct kpu_client_box *b = &ev->detection->boxes[i];
        struct sbox *o = &r->box[r->n][i];
        o->class_id = b->class_id;
        snprintf(o->label, sizeof(o->label), "%s", b->label);
        o->score = b->score;
        o->x = b->x;
        o->y = b->y;
        o->w = b->w;
        o->h = b->h;
    }
    r->n++;
    if (r->stop_at && r->n >= r->stop_at)
        kpu_client_stop(c);
}

/* Run c until r has at least n events (or fail after WAIT_MS). */
static void run_until(kpu_client_t *c, struct rec *r, int n)
{
    int64_t end = mono_ms() + WAIT_MS;
    r->stop_at = n;
    while (r->n < n) {
        ck_assert_msg(mono_ms() < end, "only %d of %d events", r->n, n);
        ck_assert_int_eq(kpu_client_run(c, 1000), 0);
    }
    r->stop_at = 0;
}

static int rec_find(const struct rec *r, uint32_t seq)
{
    for (int i = 0; i < r->n; i++)
        if (r->seq[i] == seq)
            return i;
    return -1;
}

/* ---- filters ------------------------------------------------------------------------ */

struct fcase {
    const char *name;
    struct kpu_client_filter f;
    struct rec r;
};

static int box_matches(const struct kpu_client_filter *f, const struct sbox *b)
{
    int ok = 1;
    if (f->n_class_ids) {
        ok = 0;
        for (size_t i = 0; i < f->n_class_ids; i++)
            ok |= f->class_ids[i] == b->class_id;
        if (!ok)
            return 0;
    }
    if (f->n_labels) {
        ok = 0;
        for (size_t i = 0; i < f->n_labels; i++)
            ok |= strcmp(f->labels[i], b->label) == 0;
        if (!ok)
            return 0;
    }
    if (f->min_score > 0 && b->score < f->min_score)
        return 0;
    if (f->has_region) {
        /* Centre inside, in doubled coordinates (docs/protocol.md, Filter.region). */
        int64_t cx = 2 * (int64_t)b->x + b->w, cy = 2 * (int64_t)b->y + b->h;
        if (cx < 2 * (int64_t)f->region.x || cx >= 2 * ((int64_t)f->region.x + f->region.w) ||
            cy < 2 * (int64_t)f->region.y || cy >= 2 * ((int64_t)f->region.y + f->region.h))
            return 0;
    }
    return 1;
}

static int frame_matches_device(const struct kpu_client_filter *f)
{
    if (!f->n_devices)
        return 1;
    for (size_t i = 0; i < f->n_devices; i++)
        if (strcmp(f->devices[i], dev) == 0)
            return 1;
    return 0;
}

START_TEST(subscription_filters_class_label_score_region_device)
{
    static struct rec all;
    static struct fcase cases[8];
    static const uint32_t cls0[] = {0}, cls1[] = {1};
    static const char *face[] = {"face"}, *person[] = {"person"};
    const char *devs_ok[] = {dev}, *devs_bad[] = {"00000000000000000000000000000000"};
    kpu_client_t *c;
    uint32_t s0, last;
    int nc = 0, window = 0;

    if (!start(TWO_FACES, NULL, NULL))
        return;
    c = open_client(NULL);
    memset(&all, 0, sizeof(all));
    ck_assert_int_eq(kpu_client_subscribe(c, NULL, NULL, on_event, &all, &all.id), 0);
    run_until(c, &all, 3);
    /* The picture's two faces lie left and right of x = 160 (model .md: (63,14)-(87,47) and
     * (223,16)-(243,42)), both around 0.83. */
    memset(cases, 0, sizeof(cases));
    cases[nc].name = "class 0";
    cases[nc].f.class_ids = cls0;
    cases[nc++].f.n_class_ids = 1;
    cases[nc].name = "class 1";
    cases[nc].f.class_ids = cls1;
    cases[nc++].f.n_class_ids = 1;
    cases[nc].name = "label face";
    cases[nc].f.labels = face;
    cases[nc++].f.n_labels = 1;
    cases[nc].name = "label person";
    cases[nc].f.labels = person;
    cases[nc++].f.n_labels = 1;
    cases[nc].name = "min score 0.5";
    cases[nc++].f.min_score = 0.5f;
    cases[nc].name = "min score 0.95";
    cases[nc++].f.min_score = 0.95f;
    cases[nc].name = "left half";
    cases[nc].f.has_region = 1;
    cases[nc++].f.region = (struct kpu_client_rect){0, 0, 160, 240};
    cases[nc].name = "device";
    cases[nc].f.devices = devs_ok;
    cases[nc++].f.n_devices = 1;
    for (int i = 0; i < nc; i++)
        ck_assert_int_eq(
            kpu_client_subscribe(c, &cases[i].f, NULL, on_event, &cases[i].r, &cases[i].r.id), 0);
    {
        /* A device that is not there: a subscription of its own, expected silent. */
        static struct fcase bad;
        memset(&bad, 0, sizeof(bad));
        bad.name = "other device";
        bad.f.devices = devs_bad;
        bad.f.n_devices = 1;
        ck_assert_int_eq(kpu_client_subscribe(c, &bad.f, NULL, on_event, &bad.r, &bad.r.id), 0);
        s0 = all.seq[all.n - 1];
        run_until(c, &all, all.n + 30);
        ck_assert_int_eq(bad.r.n, 0);
    }
    last = all.seq[all.n - 1];
    /* Every frame after the subscriptions took effect and before the last one (whose copies
     * for later subscriptions may still be in flight). */
    for (int k = 0; k < all.n; k++) {
        uint32_t seq = all.seq[k];
        if (seq <= s0 + 1 || seq >= last)
            continue;
        window++;
        ck_assert_int_eq(all.nbox[k], 2);
        for (int i = 0; i < nc; i++) {
            struct fcase *fc = &cases[i];
            int want = 0, at = rec_find(&fc->r, seq);
            for (int b = 0; b < all.nbox[k] && b < MAX_BOX; b++)
                want += frame_matches_device(&fc->f) && box_matches(&fc->f, &all.box[k][b]);
            if (!want) {
                ck_assert_msg(at < 0, "filter %s: frame %u delivered with no matching box",
                              fc->name, seq);
                continue;
            }
            ck_assert_msg(at >= 0, "filter %s: frame %u with %d matching boxes not delivered",
                          fc->name, seq, want);
            ck_assert_msg(fc->r.nbox[at] == want, "filter %s: frame %u has %d boxes, want %d",
                          fc->name, seq, fc->r.nbox[at], want);
            for (int b = 0; b < fc->r.nbox[at] && b < MAX_BOX; b++)
                ck_assert_msg(box_matches(&fc->f, &fc->r.box[at][b]),
                              "filter %s: a delivered box does not match", fc->name);
        }
    }
    ck_assert_int_ge(window, 20);
    /* The cases are not all trivially empty or full. */
    ck_assert_int_gt(cases[0].r.n, 0);
    ck_assert_int_eq(cases[1].r.n, 0);
    ck_assert_int_eq(cases[3].r.n, 0);
    ck_assert_int_eq(cases[5].r.n, 0);
    ck_assert_int_gt(cases[6].r.n, 0);
    kpu_client_close(c);
}
END_TEST

/* ---- history paging ----------------------------------------------------------------- */

struct page_acc {
    uint64_t n, id_sum, last_id;
    int64_t last_time;
    int order_ok;
    int newest_first;
};

static int on_row(kpu_client_t *c, const struct kpu_client_row *row, void *user)
{
    struct page_acc *a = user;
    (void)c;
    if (a->n) {
        if (a->newest_first)
            a->order_ok &= row->time_ns <= a->last_time && row->id != a->last_id;
        else
            a->order_ok &= row->time_ns >= a->last_time && row->id != a->last_id;
    }
    a->n++;
    a->id_sum += row->id;
    a->last_id = row->id;
    a->last_time = row->time_ns;
    return 0;
}

/* Run q, checking the return value counts the rows the callback saw. */
static void run_query(kpu_client_t *c, const struct kpu_client_query *q, struct page_acc *a)
{
    int r = kpu_client_query(c, q, on_row, a);
    ck_assert_msg(r >= 0, "query: %s", kpu_client_strerror(r));
    ck_assert_int_eq((uint64_t)r, a->n);
}

START_TEST(history_paging_matches_sqlite)
{
    static const char *face[] = {"face"};
    struct kpu_client_filter f;
    struct kpu_client_query q;
    struct page_acc a;
    kpu_client_t *c;
    int64_t cutoff;
    char sql[256];
    int64_t want_n, want_sum, all_n;
    const char *devs[] = {dev};

    if (!start(TWO_FACES, NULL, NULL))
        return;
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", 90, WAIT_MS), 90);
    /* Rows older than a second are committed (batches are 50 ms); newer ones may not be. */
    cutoff = now_ns() - 1000000000LL;
    c = open_client(NULL);

    memset(&f, 0, sizeof(f));
    f.labels = face;
    f.n_labels = 1;
    f.min_score = 0.5f;
    memset(&q, 0, sizeof(q));
    q.filter = &f;
    q.until_ns = cutoff;
    q.oldest_first = 1;
    q.page_rows = 7; /* many pages */
    memset(&a, 0, sizeof(a));
    a.order_ok = 1;
    run_query(c, &q, &a);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM detections WHERE label = 'face' AND score >= 0.5 AND "
             "time_ns < %lld",
             (long long)cutoff);
    want_n = h_db_int(db(), sql);
    snprintf(sql, sizeof(sql),
             "SELECT sum(id) FROM detections WHERE label = 'face' AND score >= 0.5 AND "
             "time_ns < %lld",
             (long long)cutoff);
    want_sum = h_db_int(db(), sql);
    ck_assert_int_ge(want_n, 60); /* at 7 rows a page: many pages */
    ck_assert_int_eq((int64_t)a.n, want_n);
    ck_assert_int_eq((int64_t)a.id_sum, want_sum);
    ck_assert(a.order_ok);

    /* Newest first, another page size, a device filter and a time window. */
    memset(&f, 0, sizeof(f));
    f.devices = devs;
    f.n_devices = 1;
    memset(&q, 0, sizeof(q));
    q.filter = &f;
    q.since_ns = cutoff - 2000000000LL;
    q.until_ns = cutoff;
    q.page_rows = 13;
    memset(&a, 0, sizeof(a));
    a.order_ok = 1;
    a.newest_first = 1;
    run_query(c, &q, &a);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM detections WHERE device_id = '%s' AND time_ns >= %lld AND "
             "time_ns < %lld",
             dev, (long long)(cutoff - 2000000000LL), (long long)cutoff);
    all_n = h_db_int(db(), sql);
    ck_assert_int_gt(all_n, 13);
    ck_assert_int_eq((int64_t)a.n, all_n);
    ck_assert(a.order_ok);

    /* max_rows stops across a page boundary. */
    q.max_rows = 20;
    memset(&a, 0, sizeof(a));
    a.order_ok = 1;
    a.newest_first = 1;
    run_query(c, &q, &a);
    ck_assert_int_eq(a.n, 20);
    kpu_client_close(c);
}
END_TEST

/* ---- slow client -------------------------------------------------------------------- */

#define SLOW_SUBS 16 /* the server's default per-connection subscription limit */

struct slow_sub {
    uint32_t id;
    uint32_t first, last;
    uint64_t got, dropped;
};

START_TEST(slow_subscriber_gets_dropped_notice_with_right_count)
{
    static struct rec w;
    struct slow_sub subs[SLOW_SUBS];
    struct kpu_client_sub_opts so;
    struct kpu_client_stats st;
    struct raw slow;
    kpu_client_t *c;
    FILE *cf = fopen(h_path("slow.conf"), "w");
    int64_t end;
    uint32_t target;
    uint64_t seen_dropped = 0;

    ck_assert_ptr_nonnull(cf);
    fputs("[ipc]\nqueue_messages = 16\n", cf);
    fclose(cf);
    if (!start(ASTRONAUT, h_path("slow.conf"), NULL))
        return;
    c = open_client(NULL);
    memset(&w, 0, sizeof(w));
    memset(&so, 0, sizeof(so));
    so.include_empty = 1;
    ck_assert_int_eq(kpu_client_subscribe(c, NULL, &so, on_event, &w, &w.id), 0);

    /* The slow client: subscribes (each frame becomes 16 events), then stops reading. */
    ck_assert_int_eq(raw_connect(&slow, sock(), 5000), 0);
    ck_assert_int_eq(raw_hello(&slow, 1, NULL), 0);
    memset(subs, 0, sizeof(subs));
    for (int i = 0; i < SLOW_SUBS; i++) {
        Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__Subscribe s = KPU__IPC__V1__SUBSCRIBE__INIT;
        s.include_empty = 1;
        f.request_id = (uint32_t)(100 + i);
        f.body_case = KPU__IPC__V1__FRAME__BODY_SUBSCRIBE;
        f.subscribe = &s;
        ck_assert_int_eq(raw_send(&slow, &f), 0);
    }
    for (int got = 0; got < SLOW_SUBS;) {
        Kpu__Ipc__V1__Frame *f = NULL;
        ck_assert_int_eq(raw_read(&slow, &f, 5000), 1);
        if (f->body_case == KPU__IPC__V1__FRAME__BODY_SUBSCRIBED && f->request_id >= 100 &&
            f->request_id < 100 + SLOW_SUBS) {
            subs[f->request_id - 100].id = f->subscribed->subscription_id;
            got++;
        } else if (f->body_case == KPU__IPC__V1__FRAME__BODY_DETECTION) {
            /* Early events of subscriptions already made: count them like the rest. */
            for (int i = 0; i < SLOW_SUBS; i++)
                if (subs[i].id && subs[i].id == f->detection->subscription_id) {
                    if (!subs[i].got)
                        subs[i].first = f->detection->frame_seq;
                    subs[i].last = f->detection->frame_seq;
                    subs[i].got++;
                }
        }
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
    }

    /* The watcher keeps reading while the slow client's socket and queue fill up. */
    end = mono_ms() + 120000;
    for (;;) {
        ck_assert_msg(mono_ms() < end, "no events dropped for the slow client");
        ck_assert_int_eq(kpu_client_run(c, 200), 0);
        ck_assert_int_eq(kpu_client_get_stats(c, &st), 0);
        if (st.events_dropped >= 64)
            break;
    }
    /* Drain the slow client up to frames the watcher has already seen. */
    target = w.seq[w.n - 1];
    end = mono_ms() + 30000;
    for (int done = 0; done < SLOW_SUBS;) {
        Kpu__Ipc__V1__Frame *f = NULL;
        ck_assert_msg(mono_ms() < end, "slow client not drained");
        ck_assert_int_eq(raw_read(&slow, &f, 5000), 1);
        for (int i = 0; i < SLOW_SUBS; i++) {
            struct slow_sub *s = &subs[i];
            if (f->body_case == KPU__IPC__V1__FRAME__BODY_DROPPED &&
                f->dropped->subscription_id == s->id) {
                s->dropped += f->dropped->count;
                seen_dropped += f->dropped->count;
            }
            if (f->body_case == KPU__IPC__V1__FRAME__BODY_DETECTION &&
                f->detection->subscription_id == s->id) {
                uint32_t seq = f->detection->frame_seq;
                if (!s->got)
                    s->first = seq;
                ck_assert_msg(!s->got || seq > s->last, "events out of order");
                if (s->last < target && seq >= target)
                    done++;
                s->last = seq;
                s->got++;
            }
        }
        kpu__ipc__v1__frame__free_unpacked(f, NULL);
    }
    raw_close(&slow);
    /* Per subscription: every frame between its first and last event was delivered or
     * counted in a Dropped notice, exactly. */
    for (int i = 0; i < SLOW_SUBS; i++) {
        uint64_t span = (uint64_t)(subs[i].last - subs[i].first) + 1;
        ck_assert_msg(subs[i].got + subs[i].dropped == span,
                      "subscription %u: %llu delivered + %llu dropped != %llu frames", subs[i].id,
                      (unsigned long long)subs[i].got, (unsigned long long)subs[i].dropped,
                      (unsigned long long)span);
    }
    ck_assert_uint_gt(seen_dropped, 0);
    ck_assert_int_eq(kpu_client_get_stats(c, &st), 0);
    ck_assert_uint_ge(st.events_dropped, seen_dropped);
    /* The watcher lost nothing: consecutive frames, no Dropped notice. */
    ck_assert_uint_eq(w.dropped, 0);
    for (int k = 1; k < w.n; k++)
        ck_assert_msg(w.seq[k] == w.seq[k - 1] + 1, "watcher gap %u -> %u", w.seq[k - 1], w.seq[k]);
    ck_assert_int_ge(w.n, 10);
    kpu_client_close(c);
}
END_TEST

/* ---- reconnect ---------------------------------------------------------------------- */

struct conn_log {
    int downs, ups, restarted;
};

static void on_state(kpu_client_t *c, int state, int err, int restarted, void *user)
{
    struct conn_log *l = user;
    (void)err;
    if (state == KPU_CLIENT_STATE_DISCONNECTED)
        l->downs++;
    else {
        l->ups++;
        l->restarted |= restarted;
    }
    kpu_client_stop(c);
}

START_TEST(reconnect_and_resubscribe_across_daemon_restart)
{
    static struct rec r;
    struct conn_log log = {0};
    struct kpu_client_opts o;
    kpu_client_t *c;
    int64_t end;
    int before;

    if (!start(ASTRONAUT, NULL, NULL))
        return;
    memset(&o, 0, sizeof(o));
    o.reconnect = 1;
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 500;
    o.state_cb = on_state;
    o.user_data = &log;
    c = open_client(&o);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(kpu_client_subscribe(c, NULL, NULL, on_event, &r, &r.id), 0);
    run_until(c, &r, 5);
    ck_assert_int_eq(h_stop(kpud, 20000), 0);
    kpud = 0;
    end = mono_ms() + WAIT_MS;
    while (log.downs == 0) {
        ck_assert_msg(mono_ms() < end, "the client did not notice the daemon leave");
        ck_assert_int_eq(kpu_client_run(c, 500), 0);
    }
    before = r.n;
    kpud = spawn_kpud(ASTRONAUT, NULL, NULL);
    while (log.ups == 0) {
        ck_assert_msg(mono_ms() < end, "the client did not reconnect");
        ck_assert_int_eq(kpu_client_run(c, 500), 0);
    }
    ck_assert_msg(log.restarted, "a new kpud instance must be reported as a restart");
    /* The same subscription delivers again, from the new daemon's board session. */
    run_until(c, &r, before + 5);
    ck_assert_int_eq(kpu_client_get_fd(c) >= 0, 1);
    kpu_client_close(c);
}
END_TEST

/* ---- roles -------------------------------------------------------------------------- */

static int run_group(const char *verb, const char *name)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", verb, name);
    return system(cmd);
}

/* In a child: become uid nobody with gid and check what the connection may do. Exit codes
 * name the failed step. */
static int role_child(gid_t gid, gid_t socket_gid, int expect_admin)
{
    struct kpu_client_opts o;
    struct kpu_client_config cfg;
    struct kpu_client_retention_report rep;
    struct kpu_client_device *devs;
    const struct kpu_client_server_info *si;
    kpu_client_t *c = NULL;
    size_t n;
    int r;

    gid_t groups[2] = {gid, socket_gid};

    /* The socket is mode 0660 in the reader group: an admin is a member of both. */
    if (setgroups(gid == socket_gid ? 1 : 2, groups) < 0 || setgid(gid) < 0 ||
        setuid(NOBODY_UID) < 0)
        return 10;
    memset(&o, 0, sizeof(o));
    o.socket_path = sock();
    if (kpu_client_open(&o, &c) < 0)
        return 11;
    si = kpu_client_server_info(c);
    if (!si || si->role != (expect_admin ? KPU_CLIENT_ROLE_ADMIN : KPU_CLIENT_ROLE_READER))
        return 12;
    if (kpu_client_list_devices(c, &devs, &n) < 0 || n != 1)
        return 13;
    kpu_client_free(devs);
    memset(&cfg, 0, sizeof(cfg));
    cfg.device = dev;
    cfg.threshold = 0.6f;
    r = kpu_client_config_set(c, &cfg, KPU_CLIENT_CFG_THRESHOLD, 0, NULL);
    if (expect_admin ? r != 0 : r != KPU_CLIENT_EACCES)
        return 14;
    if (!expect_admin) {
        if (kpu_client_reset(c, dev, 0) != KPU_CLIENT_EACCES)
            return 15;
        if (kpu_client_delete_history(c, NULL, 0, 0, 1, &rep) != KPU_CLIENT_EACCES)
            return 16;
        if (kpu_client_ping(c, NULL, NULL) != 0)
            return 17; /* refused requests leave the connection usable */
    }
    kpu_client_close(c);
    return 0;
}

START_TEST(reader_cannot_set_config_reset_or_delete_history)
{
    char rname[32], aname[32], conf[200];
    struct group *gr, *ga;
    gid_t rgid, agid;
    const char *ci = getenv("CI");
    FILE *f;
    int st;
    pid_t p;

    if (geteuid() != 0) {
        ck_assert_msg(!(ci && strcmp(ci, "true") == 0), "role test needs root under CI=true");
        printf("SKIP: role checks need root (to run kpud with groups and become another uid)\n");
        return;
    }
    snprintf(rname, sizeof(rname), "kpurd%d", (int)getpid());
    snprintf(aname, sizeof(aname), "kpuad%d", (int)getpid());
    if (run_group("groupadd", rname) != 0 || run_group("groupadd", aname) != 0) {
        run_group("groupdel", rname);
        ck_assert_msg(!(ci && strcmp(ci, "true") == 0), "groupadd failed under CI=true");
        printf("SKIP: groupadd failed\n");
        return;
    }
    gr = getgrnam(rname);
    ck_assert_ptr_nonnull(gr);
    rgid = gr->gr_gid;
    ga = getgrnam(aname);
    ck_assert_ptr_nonnull(ga);
    agid = ga->gr_gid;
    /* nobody must reach the socket inside the private directory. */
    ck_assert_int_eq(chmod(h_tmpdir(), 0755), 0);
    snprintf(conf, sizeof(conf), "[ipc]\nreader_group = %s\nadmin_group = %s\n", rname, aname);
    f = fopen(h_path("roles.conf"), "w");
    ck_assert_ptr_nonnull(f);
    fputs(conf, f);
    fclose(f);
    if (!start(ASTRONAUT, h_path("roles.conf"), NULL)) {
        run_group("groupdel", rname);
        run_group("groupdel", aname);
        return;
    }
    p = fork();
    if (p == 0)
        _exit(role_child(rgid, rgid, 0));
    ck_assert_int_eq(waitpid(p, &st, 0), p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        run_group("groupdel", rname);
        run_group("groupdel", aname);
        ck_abort_msg("reader child failed at step %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    p = fork();
    if (p == 0)
        _exit(role_child(agid, rgid, 1));
    ck_assert_int_eq(waitpid(p, &st, 0), p);
    run_group("groupdel", rname);
    run_group("groupdel", aname);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "admin child failed at step %d",
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
END_TEST

/* ---- malformed frames --------------------------------------------------------------- */

enum bad_kind { BAD_OVERSIZE, BAD_TRUNCATED, BAD_MAJOR, BAD_GARBAGE };

START_TEST(malformed_frames_close_only_that_client)
{
    static struct rec w;
    static const struct {
        enum bad_kind kind;
        int code; /* expected Status code, -1 = any or none */
    } bad[] = {
        {BAD_OVERSIZE, KPU__IPC__V1__STATUS_CODE__FRAME_TOO_LARGE},
        {BAD_TRUNCATED, -1},
        {BAD_MAJOR, KPU__IPC__V1__STATUS_CODE__PROTOCOL_MISMATCH},
        {BAD_GARBAGE, KPU__IPC__V1__STATUS_CODE__MALFORMED},
    };
    kpu_client_t *c;

    if (!start(ASTRONAUT, NULL, NULL))
        return;
    c = open_client(NULL);
    memset(&w, 0, sizeof(w));
    ck_assert_int_eq(kpu_client_subscribe(c, NULL, NULL, on_event, &w, &w.id), 0);
    run_until(c, &w, 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct raw r;
        int code = -1;
        kpu_client_t *fresh;

        ck_assert_int_eq(raw_connect(&r, sock(), 5000), 0);
        ck_assert_int_eq(raw_hello(&r, bad[i].kind == BAD_MAJOR ? 2 : 1, NULL), 0);
        if (bad[i].kind == BAD_OVERSIZE) {
            static const uint8_t hdr[4] = {0x7f, 0xff, 0xff, 0xff};
            ck_assert_int_eq(raw_send_bytes(&r, hdr, sizeof(hdr)), 0);
        } else if (bad[i].kind == BAD_TRUNCATED) {
            static const uint8_t part[] = {0, 0, 0, 100, 8, 1, 0xa2, 1, 0};
            ck_assert_int_eq(raw_send_bytes(&r, part, sizeof(part)), 0);
            shutdown(r.fd, SHUT_WR);
        } else if (bad[i].kind == BAD_GARBAGE) {
            /* A length that fits, then bytes that are no protobuf (field 0, bad wire type). */
            static const uint8_t g[] = {0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0xfe, 0x03};
            ck_assert_int_eq(raw_send_bytes(&r, g, sizeof(g)), 0);
        }
        ck_assert_msg(raw_wait_closed(&r, 10000, &code), "case %zu: connection not closed", i);
        if (bad[i].code >= 0)
            ck_assert_msg(code == bad[i].code, "case %zu: status %d, want %d", i, code,
                          bad[i].code);
        raw_close(&r);
        /* The watcher keeps receiving, and a new client is served. */
        run_until(c, &w, w.n + 3);
        fresh = open_client(NULL);
        ck_assert_int_eq(kpu_client_ping(fresh, NULL, NULL), 0);
        kpu_client_close(fresh);
    }
    ck_assert_uint_eq(w.dropped, 0);
    kpu_client_close(c);
}
END_TEST

/* ---- kpuctl ------------------------------------------------------------------------- */

/* Run kpuctl with args (NULL-terminated, after --socket); stdout to out, stderr to err.
 * Returns its exit status. */
static int kpuctl(const char *out, const char *err, const char *const *args)
{
    char *argv[24];
    int n = 0, st = 0;
    pid_t p;

    argv[n++] = (char *)KPUCTL_PATH;
    argv[n++] = "--socket";
    argv[n++] = (char *)sock();
    for (int i = 0; args[i] && n < 23; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    unlink(out);
    unlink(err);
    p = fork();
    ck_assert_int_ge(p, 0);
    if (p == 0) {
        if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(p, &st, 0), p);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* PNG IHDR: width and height, big-endian, at bytes 16..23 (PNG spec §11.2.2). */
static void png_size(const char *path, uint32_t *w, uint32_t *h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t b[24];
    FILE *f = fopen(path, "rb");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fread(b, 1, sizeof(b), f), sizeof(b));
    fclose(f);
    ck_assert_int_eq(memcmp(b, sig, 8), 0);
    ck_assert_int_eq(memcmp(b + 12, "IHDR", 4), 0);
    *w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
    *h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
}

START_TEST(snapshot_end_to_end)
{
    char png[512];
    /* A board sends one chunk per processed frame: slow under sanitizers. */
    const char *args[] = {"--timeout", "30000", "snapshot", dev, "-o", png, "--boxes", NULL};
    struct kpu_client_snapshot *s;
    struct kpu_client_opts o;
    kpu_client_t *c;
    uint32_t w, h;
    size_t distinct = 0;
    int seen[256] = {0};

    snprintf(png, sizeof(png), "%s", h_path("x.png")); /* h_path's buffers rotate */
    if (!start(ASTRONAUT, NULL, NULL))
        return;
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), args), 0);
    png_size(png, &w, &h);
    ck_assert_uint_eq(w, 320);
    ck_assert_uint_eq(h, 240);

    memset(&o, 0, sizeof(o));
    o.timeout_ms = 30000;
    c = open_client(&o);
    ck_assert_int_eq(kpu_client_snapshot(c, dev, KPU_CLIENT_IMAGE_RGB888_PLANAR, &s), 0);
    ck_assert_uint_eq(s->width, 320);
    ck_assert_uint_eq(s->height, 240);
    ck_assert_int_eq(s->format, KPU_CLIENT_IMAGE_RGB888_PLANAR);
    ck_assert_uint_eq(s->size, 3u * 320u * 240u);
    ck_assert_str_eq(s->device, dev);
    /* The frame's boxes: the astronaut's face (model .md: (109,31)-(173,117)). */
    ck_assert_uint_eq(s->n_boxes, 1);
    ck_assert_str_eq(s->boxes[0].label, "face");
    ck_assert_int_le(abs(s->boxes[0].x - 109), 4);
    ck_assert_int_le(abs(s->boxes[0].y - 31), 4);
    for (size_t i = 0; i < s->size; i++)
        if (!seen[s->data[i]]++)
            distinct++;
    ck_assert_uint_gt(distinct, 100); /* a photograph, not a blank frame */
    kpu_client_free(s);
    ck_assert_int_eq(kpu_client_snapshot(c, dev, KPU_CLIENT_IMAGE_RGB565, &s), 0);
    ck_assert_int_eq(s->format, KPU_CLIENT_IMAGE_RGB565);
    ck_assert_uint_eq(s->size, 2u * 320u * 240u);
    kpu_client_free(s);
    ck_assert_int_eq(kpu_client_snapshot(c, "nope", KPU_CLIENT_IMAGE_RGB565, &s),
                     KPU_CLIENT_ENODEV);
    kpu_client_close(c);
}
END_TEST

START_TEST(snapshot_board_vanishing_gives_a_status)
{
    /* The agent goes silent after this many uart writes: a few snapshots' worth (each is
     * about 113 chunks of 2048 bytes), so one snapshot is cut off midway. */
    const char *extra[] = {"--sim-fault", "silent-after=700", NULL};
    struct kpu_client_snapshot *s;
    struct kpu_client_opts o;
    kpu_client_t *c;
    int r = 0, tries = 0;
    int64_t t0 = 0;

    if (!start(ASTRONAUT, NULL, extra))
        return;
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 15000; /* longer than kpud's snapshot deadline: kpud must answer first */
    c = open_client(&o);
    while (tries++ < 40) {
        t0 = mono_ms();
        r = kpu_client_snapshot(c, dev, KPU_CLIENT_IMAGE_RGB888_PLANAR, &s);
        if (r < 0)
            break;
        kpu_client_free(s);
    }
    ck_assert_msg(r < 0, "the board never vanished");
    ck_assert_msg(r == KPU_CLIENT_ETIMEDOUT || r == KPU_CLIENT_EOFFLINE || r == KPU_CLIENT_EDEVICE,
                  "snapshot failed with %s", kpu_client_err_name(r));
    ck_assert_msg(strstr(kpu_client_last_error_text(c), "snapshot") != NULL,
                  "not kpud's answer: %s", kpu_client_last_error_text(c));
    /* kpud's own answer (checked above) came before the client's 15 s timeout. */
    ck_assert_int_lt(mono_ms() - t0, 15000);
    /* kpud recovers the board; snapshots work again. */
    {
        int64_t end = mono_ms() + WAIT_MS;
        while ((r = kpu_client_snapshot(c, dev, KPU_CLIENT_IMAGE_RGB565, &s)) < 0) {
            ck_assert_msg(mono_ms() < end, "no snapshot after recovery: %s",
                          kpu_client_err_name(r));
            usleep(200000); /* the board is being reset: poll its recovery with a deadline */
        }
        kpu_client_free(s);
    }
    kpu_client_close(c);
}
END_TEST

START_TEST(model_upload_select_and_corrupt_refused)
{
    char model[512], bad[512];
    /* The link upload is one 2 KiB chunk per agent loop step: slow under sanitizers. */
    const char *up[] = {"--timeout", "120000", "model",     "upload",     model,         "--device",
                        dev,         "--name", "face-copy", "--manifest", FACE_MANIFEST, NULL};
    const char *sel[] = {"model", "select", dev, "face-copy", NULL};
    const char *list[] = {"--json", "model", "list", NULL};
    const char *bad_up[] = {"model", "upload", bad, "--device", dev, "--name", "broken", NULL};
    uint8_t buf[4096];
    FILE *in, *out;
    size_t n;
    int64_t frames;
    int rc;

    /* h_path's buffers rotate: keep copies. */
    snprintf(model, sizeof(model), "%s", h_datapath(FACE_MODEL));
    snprintf(bad, sizeof(bad), "%s", h_path("bad.kmodel"));
    if (!start(ASTRONAUT, NULL, NULL))
        return;
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), up), 0);
    ck_assert(h_file_contains(h_path("out"), "face-copy"));
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), list), 0);
    ck_assert(h_file_contains(h_path("out"), "\"name\":\"face-copy\""));
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), sel), 0);
    /* Detections keep flowing from the selected copy. */
    frames = h_db_int(db(), "SELECT count(*) FROM frames");
    ck_assert_int_ge(h_wait_db(db(), "SELECT count(*) FROM frames", frames + 10, WAIT_MS),
                     frames + 10);
    ck_assert_int_ge(h_wait_db(db(),
                               "SELECT count(*) FROM models WHERE name = 'face-copy' AND "
                               "size = 388776 AND manifest LIKE '%labels = face%'",
                               1, WAIT_MS),
                     1);
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), list), 0);
    ck_assert(h_file_contains(h_path("out"), "\"selected_on\":[\"") &&
              h_file_contains(h_path("out"), "labels = face"));

    /* A truncated kmodel is refused before it reaches the board. */
    in = fopen(h_datapath(FACE_MODEL), "rb");
    ck_assert_ptr_nonnull(in);
    n = fread(buf, 1, sizeof(buf), in);
    fclose(in);
    ck_assert_uint_eq(n, sizeof(buf));
    out = fopen(bad, "wb");
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(out);
    rc = kpuctl(h_path("out"), h_path("err"), bad_up);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(h_file_contains(h_path("err"), "not a usable kmodel"), "stderr lacks the reason");
    ck_assert(h_file_contains(h_path("err"), "hint:"));
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), list), 0);
    ck_assert(!h_file_contains(h_path("out"), "broken"));
}
END_TEST

START_TEST(kpuctl_json_against_the_real_daemon)
{
    const char *version[] = {"--json", "version", NULL};
    const char *devices[] = {"--json", "devices", NULL};
    const char *config[] = {"--json", "config", "get", dev, NULL};
    char want[128];

    if (!start(ASTRONAUT, NULL, NULL))
        return;
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), version), 0);
    ck_assert(h_file_contains(h_path("out"), "\"daemon_protocol\":\"1.1\""));
    ck_assert(h_file_contains(h_path("out"), "\"protocol\":\"1.1\""));
    ck_assert(h_file_contains(h_path("out"), "\"daemon\":\""));

    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), devices), 0);
    snprintf(want, sizeof(want), "{\"devices\":[{\"id\":\"%s\",\"transport\":\"sim\"", dev);
    ck_assert_msg(h_file_contains(h_path("out"), want), "devices --json does not start with %s",
                  want);
    ck_assert(h_file_contains(h_path("out"), "\"state\":\"DEVICE_STATE_STREAMING\""));
    ck_assert(h_file_contains(h_path("out"), "\"board\":\"sim\""));
    ck_assert(h_file_contains(h_path("out"), "\"sensor\":\"synthetic\""));
    ck_assert(h_file_contains(h_path("out"), "\"model\":\"maixpy_facedetect_320x240\""));
    ck_assert(h_file_contains(h_path("out"), "\"image_width\":320,\"image_height\":240"));

    /* The configuration kpud sends: its defaults (config.c), for this device. */
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), config), 0);
    snprintf(want, sizeof(want), "\"device\":\"%s\"", dev);
    ck_assert(h_file_contains(h_path("out"), want));
    ck_assert(h_file_contains(h_path("out"), "\"threshold\":0.5"));
    ck_assert(h_file_contains(h_path("out"), "\"nms\":0.3"));
    ck_assert(h_file_contains(h_path("out"), "\"max_boxes\":10"));
}
END_TEST

/* ---- agent flash -------------------------------------------------------------------- */

/* A made-up agent firmware of n bytes at path (the simulated board writes whatever image
 * it is given; the boot ROM format around it is what is checked). */
static void write_firmware(const char *path, size_t n, unsigned seed)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++)
        fputc((int)(rand_r(&seed) & 0xff), f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The first n bytes of file path into buf. */
static void read_head(const char *path, uint8_t *buf, size_t n)
{
    FILE *f = fopen(path, "rb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(buf, 1, n, f), n);
    fclose(f);
}

/* The K210 boot image of firmware fw (usb-bridges.md §1.6 item 7), digest by OpenSSL. */
static size_t boot_image_of(const uint8_t *fw, size_t n, uint8_t *out)
{
    out[0] = 0;
    out[1] = (uint8_t)n, out[2] = (uint8_t)(n >> 8), out[3] = (uint8_t)(n >> 16);
    out[4] = (uint8_t)(n >> 24);
    memcpy(out + 5, fw, n);
    SHA256(out, n + 5, out + 5 + n);
    return n + 37;
}

struct flash_watch {
    int calls;
    uint32_t last_pm;
    int monotonic;
    int saw_write, saw_verify, saw_reboot;
};

static int flash_progress(kpu_client_t *c, const struct kpu_client_agent_info *ai, void *user)
{
    struct flash_watch *w = user;

    (void)c;
    w->calls++;
    if (ai->progress_permille < w->last_pm || ai->progress_permille > 1000)
        w->monotonic = 0;
    w->last_pm = ai->progress_permille;
    w->saw_write |= strcmp(ai->phase, "write") == 0;
    w->saw_verify |= strcmp(ai->phase, "verify") == 0;
    w->saw_reboot |= strcmp(ai->phase, "reboot") == 0;
    return 0;
}

START_TEST(agent_flash_writes_the_boot_image_and_the_board_returns)
{
    static uint8_t fw[200000], want[sizeof(fw) + 37], got[sizeof(fw) + 37];
    const size_t fw_len = 150001;
    char image_arg[600];
    const char *extra[] = {image_arg, NULL};
    struct kpu_client_agent_info *ai = NULL;
    struct flash_watch w = {0, 0, 1, 0, 0, 0};
    kpu_client_t *c;
    size_t len;
    int64_t frames, sessions;
    const char *args[] = {"agent", "flash", dev, NULL};

    write_firmware(h_path("agent.bin"), fw_len, 11);
    read_head(h_path("agent.bin"), fw, fw_len);
    len = boot_image_of(fw, fw_len, want);
    snprintf(image_arg, sizeof(image_arg), "--agent-image=%s", h_path("agent.bin"));
    if (!start(ASTRONAUT, NULL, extra))
        return;
    sessions = h_db_int(db(), "SELECT count(*) FROM sessions");
    /* kpuctl, not on a terminal: one line per phase, then the result. */
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), args), 0);
    ck_assert(h_file_contains(h_path("out"), "write "));
    ck_assert(h_file_contains(h_path("out"), "verify "));
    ck_assert(h_file_contains(h_path("out"), "reboot "));
    ck_assert(h_file_contains(h_path("out"), "written to flash and booted"));
    read_head(h_path("state/sim-flash.bin"), got, len);
    ck_assert_mem_eq(got, want, len);
    /* The board was reset and handshook again, and detections flow once more. */
    ck_assert_int_gt(h_wait_db(db(), "SELECT count(*) FROM sessions", sessions + 1, WAIT_MS),
                     sessions);
    frames = h_db_int(db(), "SELECT count(*) FROM frames");
    ck_assert_int_gt(h_wait_db(db(), "SELECT count(*) FROM frames", frames + 3, WAIT_MS), frames);
    /* The library's progress callback: several reports, monotonic, every phase. */
    c = open_client(NULL);
    ck_assert_int_eq(
        kpu_client_agent_control_progress(c, dev, KPU_CLIENT_AGENT_FLASH, flash_progress, &w, &ai),
        0);
    ck_assert_int_ge(w.calls, 3);
    ck_assert(w.monotonic);
    ck_assert(w.saw_write && w.saw_verify && w.saw_reboot);
    ck_assert_uint_eq(ai->progress_permille, 1000);
    ck_assert_str_eq(ai->agent_version, ai->expected_version);
    kpu_client_free(ai);
    kpu_client_close(c);
    read_head(h_path("state/sim-flash.bin"), got, len);
    ck_assert_mem_eq(got, want, len);
}
END_TEST

START_TEST(agent_flash_refusals_leave_the_flash_alone)
{
    static uint8_t before[1u << 20], after[1u << 20];
    char image_arg[600];
    const char *extra[] = {image_arg, NULL};
    const char *args[] = {"agent", "flash", dev, NULL};
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *r = NULL;
    Kpu__Ipc__V1__AgentControl ac = KPU__IPC__V1__AGENT_CONTROL__INIT;
    struct raw raw;
    int responses = 0, got;

    /* An image larger than the 1 MiB image slot. */
    write_firmware(h_path("big.bin"), (1u << 20) + 1, 3);
    snprintf(image_arg, sizeof(image_arg), "--agent-image=%s", h_path("big.bin"));
    if (!start(ASTRONAUT, NULL, extra))
        return;
    read_head(h_path("state/sim-flash.bin"), before, sizeof(before));
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), args), 1);
    ck_assert(h_file_contains(h_path("err"), "too large"));
    /* No such device. */
    args[2] = "0000";
    ck_assert_int_eq(kpuctl(h_path("out"), h_path("err"), args), 3);
    /* A client that speaks kpu.ipc 1.0 gets exactly one response, and no progress. */
    write_firmware(h_path("big.bin"), 4096, 5); /* now a good image */
    ck_assert_int_eq(raw_connect(&raw, sock(), WAIT_MS), 0);
    ck_assert_int_eq(raw_hello(&raw, 1, NULL), 0);
    ac.device = dev;
    ac.action = KPU__IPC__V1__AGENT_ACTION__AGENT_FLASH;
    f.request_id = 77;
    f.body_case = KPU__IPC__V1__FRAME__BODY_AGENT_CONTROL;
    f.agent_control = &ac;
    ck_assert_int_eq(raw_send(&raw, &f), 0);
    while ((got = raw_read(&raw, &r, responses ? 2000 : WAIT_MS)) == 1) {
        if (r->request_id == 77) {
            responses++;
            ck_assert_int_eq(r->body_case, KPU__IPC__V1__FRAME__BODY_AGENT_INFO);
            ck_assert(!r->agent_info->in_progress);
            ck_assert_uint_eq(r->agent_info->progress_permille, 1000);
        }
        kpu__ipc__v1__frame__free_unpacked(r, NULL);
    }
    ck_assert_int_eq(got, 0); /* the read timed out: nothing more came */
    ck_assert_int_eq(responses, 1);
    raw_close(&raw);
    /* The refusals changed nothing; the accepted write changed only the image slot. */
    read_head(h_path("state/sim-flash.bin"), after, sizeof(after));
    ck_assert(memcmp(before + 8192, after + 8192, sizeof(before) - 8192) == 0);
}
END_TEST

static Suite *ipc_daemon_suite(void)
{
    Suite *s = suite_create("ipc_daemon");
    TCase *tc = tcase_create("real-daemon");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, subscription_filters_class_label_score_region_device);
    tcase_add_test(tc, history_paging_matches_sqlite);
    tcase_add_test(tc, slow_subscriber_gets_dropped_notice_with_right_count);
    tcase_add_test(tc, reconnect_and_resubscribe_across_daemon_restart);
    tcase_add_test(tc, reader_cannot_set_config_reset_or_delete_history);
    tcase_add_test(tc, malformed_frames_close_only_that_client);
    tcase_add_test(tc, snapshot_end_to_end);
    tcase_add_test(tc, snapshot_board_vanishing_gives_a_status);
    tcase_add_test(tc, model_upload_select_and_corrupt_refused);
    tcase_add_test(tc, kpuctl_json_against_the_real_daemon);
    tcase_add_test(tc, agent_flash_writes_the_boot_image_and_the_board_returns);
    tcase_add_test(tc, agent_flash_refusals_leave_the_flash_alone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ipc_daemon_suite());
    int failed;

    signal(SIGPIPE, SIG_IGN);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
