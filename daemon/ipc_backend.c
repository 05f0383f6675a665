/* SPDX-License-Identifier: MIT */
/*
 * Answers IPC requests from the store and the device sessions (see ipc_backend.h).
 */
#include "ipc_backend.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc_server.h"
#include "ipc_models.h"
#include "log.h"
#include "usb_agent.h"
#include "sd_notify.h"

#define P(name) KPU__IPC__V1__STATUS_CODE__##name

struct kpud_ipc {
    uv_loop_t *loop;
    const struct kpud_config *cfg;
    struct kpud_ipc_server *srv;
    struct kpud_store *store;
    struct kpud_devices *devs;
    struct kpud_models *models;
    uint64_t start_ms;
    int64_t boot_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- devices ------------------------------------------------------------------------ */

/* Strings in a DeviceInfo point into this holder, which must outlive the reply. */
struct dev_holder {
    Kpu__Ipc__V1__DeviceInfo di;
    struct kpud_session_info info;
    char transport[8], path[256], bridge[16], model[64];
};

static void fill_device(struct kpud_ipc *ipc, struct kpud_session *s, struct dev_holder *h)
{
    const struct kpud_transport *t = kpud_session_transport(s);
    Kpu__Ipc__V1__DeviceInfo *di = &h->di;

    kpu__ipc__v1__device_info__init(di);
    kpud_session_get_info(s, &h->info);
    snprintf(h->transport, sizeof(h->transport), "%s", t->ops->kind);
    snprintf(h->path, sizeof(h->path), "%s", t->path);
    snprintf(h->bridge, sizeof(h->bridge), "%s", t->bridge);
    snprintf(h->model, sizeof(h->model), "%s", kpud_devices_model_name(ipc->devs, s));
    di->id = h->info.id;
    di->transport = h->transport;
    di->path = h->path;
    di->bridge = h->bridge;
    di->state = (Kpu__Ipc__V1__DeviceState)h->info.state;
    di->board = h->info.board;
    di->agent_version = h->info.agent_version;
    di->sensor = h->info.sensor;
    di->model = h->model;
    di->image_width = h->info.image_width;
    di->image_height = h->info.image_height;
    di->fps = h->info.fps;
    di->kpu_us = h->info.kpu_us;
    di->frames = h->info.frames;
    di->frames_lost = h->info.frames_lost;
    di->link_errors = h->info.link_errors;
    di->reconnects = h->info.reconnects;
    di->last_error = h->info.last_error;
    di->connected_since_ns = (uint64_t)h->info.connected_since_ns;
    di->reset_cause = h->info.reset_cause;
}

static void reply_body(struct kpud_ipc_request *req, Kpu__Ipc__V1__Frame__BodyCase c, void *msg)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    f.body_case = c;
    /* Every member of the body oneof is a message pointer at the same offset. */
    f.device_list = msg;
    kpud_ipc_reply(req, &f);
}

static void list_devices(struct kpud_ipc *ipc, struct kpud_ipc_request *req)
{
    Kpu__Ipc__V1__DeviceList dl = KPU__IPC__V1__DEVICE_LIST__INIT;
    unsigned n = ipc->devs ? kpud_devices_count(ipc->devs) : 0;
    struct dev_holder *h = calloc(n ? n : 1, sizeof(*h));
    Kpu__Ipc__V1__DeviceInfo **arr = calloc(n ? n : 1, sizeof(*arr));

    if (!h || !arr) {
        free(h);
        free(arr);
        kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        fill_device(ipc, kpud_devices_at(ipc->devs, i), &h[i]);
        arr[i] = &h[i].di;
    }
    dl.n_devices = n;
    dl.devices = arr;
    reply_body(req, KPU__IPC__V1__FRAME__BODY_DEVICE_LIST, &dl);
    free(arr);
    free(h);
}

static struct kpud_session *find_device(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                                        const char *id)
{
    return kpud_ipc_find_device(ipc->devs, req, id);
}

static void get_device(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                       const Kpu__Ipc__V1__GetDevice *g)
{
    struct kpud_session *s = find_device(ipc, req, g->device);
    struct dev_holder h;

    if (!s)
        return;
    fill_device(ipc, s, &h);
    reply_body(req, KPU__IPC__V1__FRAME__BODY_DEVICE_INFO, &h.di);
}

/* ---- stats ------------------------------------------------------------------------- */

struct stats_ctx {
    struct kpud_ipc *ipc;
    struct kpud_ipc_request *req;
};

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, resident;
    uint64_t r = 0;

    if (f && fscanf(f, "%lu %lu", &size, &resident) == 2)
        r = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    if (f)
        fclose(f);
    return r;
}

static void stats_done(struct kpud_store *s, int status, const struct kpud_store_stats *st,
                       void *user)
{
    struct stats_ctx *c = user;
    struct kpud_ipc *ipc = c->ipc;
    Kpu__Ipc__V1__Stats out = KPU__IPC__V1__STATS__INIT;
    struct kpud_store_counters sc;
    struct kpud_ipc_stats is;
    unsigned n = ipc->devs ? kpud_devices_count(ipc->devs) : 0;

    (void)s;
    out.uptime_ms = uv_now(ipc->loop) - ipc->start_ms;
    out.devices = n;
    for (unsigned i = 0; i < n; i++) {
        struct kpud_session_info info;
        kpud_session_get_info(kpud_devices_at(ipc->devs, i), &info);
        out.frames_received += info.frames;
        out.frames_lost += info.frames_lost;
        out.link_errors += info.link_errors;
    }
    if (ipc->srv) {
        kpud_ipc_server_stats(ipc->srv, &is);
        out.clients = is.clients;
        out.events_dropped = is.events_dropped;
    }
    if (ipc->store) {
        kpud_store_get_counters(ipc->store, &sc);
        out.detections_stored = sc.rows_committed;
        out.db_write_errors = sc.write_errors;
        out.db_batches = sc.batches_committed;
    }
    if (status == 0 && st) {
        out.db_bytes = st->db_bytes;
        out.db_rows = st->detections;
        out.detections_stored = st->detections;
    }
    out.rss_bytes = rss_bytes();
    reply_body(c->req, KPU__IPC__V1__FRAME__BODY_STATS, &out);
    free(c);
}

static void get_stats(struct kpud_ipc *ipc, struct kpud_ipc_request *req)
{
    struct stats_ctx *c = malloc(sizeof(*c));

    if (!c) {
        kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
        return;
    }
    c->ipc = ipc;
    c->req = req;
    if (!ipc->store || kpud_store_stats(ipc->store, stats_done, c) < 0)
        stats_done(NULL, -EIO, NULL, c);
}

/* ---- history queries ---------------------------------------------------------------- */

static int filter_from_ipc(const Kpu__Ipc__V1__Filter *f, int64_t since, int64_t until,
                           struct kpud_store_filter *out)
{
    memset(out, 0, sizeof(*out));
    out->since_ns = since;
    out->until_ns = until;
    if (!f)
        return 0;
    if (f->n_devices > KPUD_STORE_FILTER_MAX_ITEMS ||
        f->n_class_ids > KPUD_STORE_FILTER_MAX_ITEMS || f->n_labels > KPUD_STORE_FILTER_MAX_ITEMS)
        return -E2BIG;
    out->devices = (const char *const *)f->devices;
    out->n_devices = f->n_devices;
    out->class_ids = f->class_ids;
    out->n_class_ids = f->n_class_ids;
    out->labels = (const char *const *)f->labels;
    out->n_labels = f->n_labels;
    out->min_score = f->min_score;
    if (f->region) {
        out->has_region = true;
        out->rx = (int32_t)f->region->x;
        out->ry = (int32_t)f->region->y;
        out->rw = f->region->w;
        out->rh = f->region->h;
    }
    return 0;
}

static void query_done(struct kpud_store *s, int status, const struct kpud_store_page *page,
                       void *user)
{
    struct kpud_ipc_request *req = user;
    Kpu__Ipc__V1__QueryPage qp = KPU__IPC__V1__QUERY_PAGE__INIT;
    Kpu__Ipc__V1__StoredDetection *rows = NULL, **ptrs = NULL;
    Kpu__Ipc__V1__Box *boxes = NULL;

    (void)s;
    if (status < 0) {
        kpud_ipc_reply_status(req, status == -EINVAL ? P(INVALID_ARGUMENT) : P(STORE_ERROR),
                              status == -EINVAL ? "bad page token" : strerror(-status), NULL);
        return;
    }
    if (page->n_rows) {
        rows = calloc(page->n_rows, sizeof(*rows));
        ptrs = calloc(page->n_rows, sizeof(*ptrs));
        boxes = calloc(page->n_rows, sizeof(*boxes));
        if (!rows || !ptrs || !boxes) {
            free(rows);
            free(ptrs);
            free(boxes);
            kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
            return;
        }
    }
    for (size_t i = 0; i < page->n_rows; i++) {
        const struct kpud_det_row *r = &page->rows[i];
        kpu__ipc__v1__stored_detection__init(&rows[i]);
        kpu__ipc__v1__box__init(&boxes[i]);
        rows[i].id = (uint64_t)r->id;
        rows[i].device = (char *)r->device;
        rows[i].time_ns = r->time_ns;
        rows[i].frame_seq = r->frame_seq;
        rows[i].model = (char *)(r->model ? r->model : "");
        boxes[i].class_id = r->box.class_id;
        boxes[i].label = (char *)(r->box.label ? r->box.label : "");
        boxes[i].score = r->box.score;
        boxes[i].x = r->box.x;
        boxes[i].y = r->box.y;
        boxes[i].w = r->box.w;
        boxes[i].h = r->box.h;
        rows[i].box = &boxes[i];
        ptrs[i] = &rows[i];
    }
    qp.n_rows = page->n_rows;
    qp.rows = ptrs;
    qp.next_page_token.len = page->next_token_len;
    qp.next_page_token.data = (uint8_t *)page->next_token;
    reply_body(req, KPU__IPC__V1__FRAME__BODY_QUERY_PAGE, &qp);
    free(rows);
    free(ptrs);
    free(boxes);
}

static void query(struct kpud_ipc *ipc, struct kpud_ipc_request *req, const Kpu__Ipc__V1__Query *q)
{
    struct kpud_store_query sq;
    int r;

    memset(&sq, 0, sizeof(sq));
    if (filter_from_ipc(q->filter, q->since_ns, q->until_ns, &sq.filter) < 0) {
        kpud_ipc_reply_status(req, P(LIMIT_EXCEEDED), "filter has too many items",
                              "at most 64 devices, classes or labels");
        return;
    }
    sq.limit = q->limit;
    sq.order = q->order == KPU__IPC__V1__ORDER__ORDER_OLDEST_FIRST ? KPUD_STORE_OLDEST_FIRST
                                                                   : KPUD_STORE_NEWEST_FIRST;
    sq.page_token = q->page_token.len ? q->page_token.data : NULL;
    sq.page_token_len = q->page_token.len;
    r = ipc->store ? kpud_store_query(ipc->store, &sq, query_done, req) : -ESHUTDOWN;
    if (r < 0)
        kpud_ipc_reply_status(req, r == -EINVAL ? P(INVALID_ARGUMENT) : P(STORE_ERROR),
                              r == -EINVAL ? "bad page token or order" : strerror(-r), NULL);
}

/* ---- configuration ------------------------------------------------------------------ */

static void reply_config(struct kpud_ipc_request *req, struct kpud_session *s)
{
    Kpu__Ipc__V1__DeviceConfig dc = KPU__IPC__V1__DEVICE_CONFIG__INIT;
    struct kpud_session_config sc;
    struct kpud_session_info info;

    kpud_session_get_config(s, &sc);
    kpud_session_get_info(s, &info);
    dc.device = info.id;
    dc.model = sc.model;
    dc.threshold = sc.threshold;
    dc.nms = sc.nms;
    dc.n_anchors = sc.n_anchors;
    dc.anchors = sc.anchors;
    dc.max_boxes = sc.max_boxes;
    dc.fps_cap = sc.fps_cap;
    reply_body(req, KPU__IPC__V1__FRAME__BODY_DEVICE_CONFIG, &dc);
}

static void get_config(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                       const Kpu__Ipc__V1__GetConfig *g)
{
    struct kpud_session *s = find_device(ipc, req, g->device);
    if (s)
        reply_config(req, s);
}

static int has_field(const Kpu__Ipc__V1__SetConfig *sc, const char *name)
{
    for (size_t i = 0; i < sc->n_fields; i++)
        if (strcmp(sc->fields[i], name) == 0)
            return 1;
    return 0;
}

static void set_config(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                       const Kpu__Ipc__V1__SetConfig *sc)
{
    static const char *const known[] = {"model",     "threshold", "nms", "anchors",
                                        "max_boxes", "fps_cap",   NULL};
    const Kpu__Ipc__V1__DeviceConfig *in = sc->config;
    struct kpud_session *s;
    struct kpud_session_config c;
    char text[128];

    if (!in) {
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), "SetConfig without config", NULL);
        return;
    }
    for (size_t i = 0; i < sc->n_fields; i++) {
        int ok = 0;
        for (int k = 0; known[k]; k++)
            ok |= strcmp(sc->fields[i], known[k]) == 0;
        if (!ok) {
            snprintf(text, sizeof(text), "unknown config field '%.64s'", sc->fields[i]);
            kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), text,
                                  "fields: model threshold nms anchors max_boxes fps_cap");
            return;
        }
    }
    s = find_device(ipc, req, in->device);
    if (!s)
        return;
    kpud_session_get_config(s, &c);
    if (has_field(sc, "model")) {
        if (!in->model || strlen(in->model) >= sizeof(c.model)) {
            kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), "model name too long", NULL);
            return;
        }
        snprintf(c.model, sizeof(c.model), "%s", in->model);
    }
    if (has_field(sc, "threshold"))
        c.threshold = in->threshold;
    if (has_field(sc, "nms"))
        c.nms = in->nms;
    if (has_field(sc, "max_boxes"))
        c.max_boxes = in->max_boxes;
    if (has_field(sc, "fps_cap"))
        c.fps_cap = in->fps_cap;
    if (has_field(sc, "anchors")) {
        if (in->n_anchors > 20 || in->n_anchors % 2) {
            kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), "anchors must be up to 10 (w, h) pairs",
                                  NULL);
            return;
        }
        memcpy(c.anchors, in->anchors, in->n_anchors * sizeof(float));
        c.n_anchors = (uint32_t)in->n_anchors;
    }
    if (kpud_session_set_config(s, &c) < 0) {
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT),
                              "out of range: threshold and nms 0..1, max_boxes 1..32", NULL);
        return;
    }
    reply_config(req, s);
}

static void reset_device(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                         const Kpu__Ipc__V1__ResetDevice *rd)
{
    struct kpud_session *s = find_device(ipc, req, rd->device);
    int r;

    if (!s)
        return;
    r = kpud_session_reset(s);
    if (r < 0)
        kpud_ipc_reply_status(req, P(DEVICE_ERROR), "this device cannot be reset",
                              "a replayed capture has no board to reset");
    else
        kpud_ipc_reply_status(req, P(OK), "reset", NULL);
}

/* ---- retention and history ---------------------------------------------------------- */

static void reply_retention(struct kpud_ipc *ipc, struct kpud_ipc_request *req)
{
    Kpu__Ipc__V1__Retention r = KPU__IPC__V1__RETENTION__INIT;
    r.max_age_s = ipc->cfg->retention_max_age_s;
    r.max_bytes = ipc->cfg->retention_max_bytes;
    reply_body(req, KPU__IPC__V1__FRAME__BODY_RETENTION, &r);
}

static void set_retention(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                          const Kpu__Ipc__V1__SetRetention *sr)
{
    struct kpud_config *cfg = (struct kpud_config *)ipc->cfg;
    if (!sr->retention) {
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), "SetRetention without values", NULL);
        return;
    }
    cfg->retention_max_age_s = sr->retention->max_age_s;
    cfg->retention_max_bytes = sr->retention->max_bytes;
    if (ipc->store)
        kpud_store_set_retention(ipc->store, cfg->retention_max_age_s, cfg->retention_max_bytes);
    log_notice("retention set: max age %llu s, max size %llu bytes",
               (unsigned long long)cfg->retention_max_age_s,
               (unsigned long long)cfg->retention_max_bytes);
    reply_retention(ipc, req);
}

static void delete_done(struct kpud_store *s, int status,
                        const struct kpud_store_delete_report *rep, void *user)
{
    struct kpud_ipc_request *req = user;
    Kpu__Ipc__V1__RetentionReport rr = KPU__IPC__V1__RETENTION_REPORT__INIT;

    (void)s;
    if (status < 0 || !rep) {
        kpud_ipc_reply_status(req, P(STORE_ERROR), strerror(-status), NULL);
        return;
    }
    rr.rows_deleted = rep->detections;
    rr.oldest_kept_ns = rep->oldest_kept_ns;
    rr.db_bytes = rep->db_bytes;
    rr.dry_run = rep->dry_run;
    reply_body(req, KPU__IPC__V1__FRAME__BODY_RETENTION_REPORT, &rr);
}

static void store_busy_or(struct kpud_ipc_request *req, int r)
{
    if (r == -EBUSY)
        kpud_ipc_reply_status(req, P(BUSY), "a deletion is already running", "try again shortly");
    else if (r == -E2BIG)
        kpud_ipc_reply_status(req, P(LIMIT_EXCEEDED), "filter has too many items", NULL);
    else
        kpud_ipc_reply_status(req, P(STORE_ERROR), strerror(-r), NULL);
}

static void apply_retention(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                            const Kpu__Ipc__V1__ApplyRetention *ar)
{
    int r = ipc->store ? kpud_store_apply_retention(ipc->store, ar->dry_run, delete_done, req)
                       : -ESHUTDOWN;
    if (r < 0)
        store_busy_or(req, r);
}

static void delete_history(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                           const Kpu__Ipc__V1__DeleteHistory *dh)
{
    struct kpud_store_filter f;
    int r = filter_from_ipc(dh->filter, dh->since_ns, dh->until_ns, &f);

    if (r == 0)
        r = ipc->store ? kpud_store_delete_history(ipc->store, &f, dh->dry_run, delete_done, req)
                       : -ESHUTDOWN;
    if (r < 0)
        store_busy_or(req, r);
}

/* ---- recording ---------------------------------------------------------------------- */

static void reply_record_state(struct kpud_ipc_request *req, struct kpud_session *s,
                               uint64_t final_bytes, const char *final_path)
{
    Kpu__Ipc__V1__RecordState rs = KPU__IPC__V1__RECORD_STATE__INIT;
    struct kpud_session_info info;
    const char *path = NULL;
    uint64_t bytes = 0;

    kpud_session_get_info(s, &info);
    rs.device = info.id;
    rs.recording = kpud_session_recording(s, &path, &bytes);
    rs.path = (char *)(rs.recording ? path : (final_path ? final_path : ""));
    rs.bytes = rs.recording ? bytes : final_bytes;
    reply_body(req, KPU__IPC__V1__FRAME__BODY_RECORD_STATE, &rs);
}

/* A capture name is a plain file name inside <state_dir>/captures: no path escapes. */
static int capture_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 128 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void record_start(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                         const Kpu__Ipc__V1__RecordStart *rs)
{
    struct kpud_session *s = find_device(ipc, req, rs->device);
    char dir[PATH_MAX], path[PATH_MAX + 160];
    int r;

    if (!s)
        return;
    if (!capture_name_ok(rs->path)) {
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), "capture name must be a plain file name",
                              "letters, digits, '.', '_' and '-'; it is stored in the "
                              "daemon's captures directory");
        return;
    }
    snprintf(dir, sizeof(dir), "%.*s/captures", PATH_MAX - 10, ipc->cfg->state_dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        kpud_ipc_reply_status(req, P(INTERNAL), strerror(errno), NULL);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, rs->path);
    r = kpud_session_record_start(s, path, rs->notes);
    if (r < 0) {
        char text[200];
        snprintf(text, sizeof(text), "cannot record to %.120s: %s", rs->path, strerror(-r));
        kpud_ipc_reply_status(req, r == -EBUSY || r == -EEXIST ? P(BUSY) : P(INTERNAL), text,
                              r == -EEXIST ? "choose another name" : NULL);
        return;
    }
    reply_record_state(req, s, 0, NULL);
}

static void record_stop(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                        const Kpu__Ipc__V1__RecordStop *rs)
{
    struct kpud_session *s = find_device(ipc, req, rs->device);
    const char *path = NULL;
    char saved[PATH_MAX];
    uint64_t n;

    if (!s)
        return;
    saved[0] = 0;
    if (kpud_session_recording(s, &path, NULL))
        snprintf(saved, sizeof(saved), "%s", path);
    n = kpud_session_record_stop(s);
    reply_record_state(req, s, n, saved);
}

/* ---- snapshots ---------------------------------------------------------------------- */

struct snap_ctx {
    struct kpud_ipc *ipc;
    struct kpud_ipc_request *req;
};

static void snapshot_done(struct kpud_session *s, int status, const struct kpud_snapshot *snap,
                          int agent_code, const char *text, void *user)
{
    struct snap_ctx *c = user;
    struct kpud_ipc *ipc = c->ipc;
    Kpu__Ipc__V1__Snapshot out = KPU__IPC__V1__SNAPSHOT__INIT;
    Kpu__Ipc__V1__Box boxes[KPUD_SNAP_MAX_BOXES], *ptrs[KPUD_SNAP_MAX_BOXES];
    struct kpud_session_info info;

    if (status < 0) {
        if (status == -EPROTO)
            kpud_ipc_reply_status(c->req, P(DEVICE_ERROR), text,
                                  "the link is losing data; kpuctl devices shows its errors");
        else
            kpud_models_reply_error(c->req, "snapshot", status, agent_code, text);
        free(c);
        return;
    }
    kpud_session_get_info(s, &info);
    for (size_t i = 0; i < snap->n_boxes; i++) {
        const struct kpud_snap_box *b = &snap->boxes[i];
        kpu__ipc__v1__box__init(&boxes[i]);
        boxes[i].class_id = b->class_id;
        boxes[i].label = (char *)(ipc->devs ? kpud_devices_label(ipc->devs, s, b->class_id) : "");
        boxes[i].score = b->score;
        boxes[i].x = b->x;
        boxes[i].y = b->y;
        boxes[i].w = b->w;
        boxes[i].h = b->h;
        ptrs[i] = &boxes[i];
    }
    out.device = info.id;
    out.width = snap->width;
    out.height = snap->height;
    out.format = snap->format == KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB565
                     ? KPU__IPC__V1__IMAGE_FORMAT__IMAGE_RGB565
                     : KPU__IPC__V1__IMAGE_FORMAT__IMAGE_RGB888_PLANAR;
    out.data.data = (uint8_t *)snap->data;
    out.data.len = snap->size;
    out.n_boxes = snap->n_boxes;
    out.boxes = ptrs;
    out.frame_seq = snap->frame_seq;
    reply_body(c->req, KPU__IPC__V1__FRAME__BODY_SNAPSHOT, &out);
    free(c);
}

static void get_snapshot(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                         const Kpu__Ipc__V1__GetSnapshot *g)
{
    struct kpud_session *s = find_device(ipc, req, g->device);
    struct snap_ctx *c;
    int fmt, r;

    if (!s)
        return;
    /* kpud sends raw pixels: PNG (the default) is answered with planar RGB888, and the
     * reply's format says so (docs/protocol.md). */
    fmt = g->format == KPU__IPC__V1__IMAGE_FORMAT__IMAGE_RGB565
              ? KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB565
              : KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB888_PLANAR;
    c = malloc(sizeof(*c));
    if (!c) {
        kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
        return;
    }
    c->ipc = ipc;
    c->req = req;
    r = kpud_session_snapshot(s, fmt, snapshot_done, c);
    if (r < 0) {
        free(c);
        if (r == -EBUSY)
            kpud_ipc_reply_status(req, P(BUSY), "a snapshot of this board is in progress",
                                  "try again in a moment");
        else
            kpud_models_reply_error(req, "snapshot", r, 0, "");
    }
}

/* ---- agent control ------------------------------------------------------------------ */

struct agent_ctx {
    struct kpud_ipc_request *req;
    struct kpud_session *s;
    int action;
    char device[40];
};

/* Progress (interim AgentInfo, for clients of protocol 1.1) and the end of a boot or flash. */
static void agent_progress(void *user, int done, int status, uint32_t permille, const char *phase,
                           const char *text)
{
    struct agent_ctx *c = user;
    Kpu__Ipc__V1__AgentInfo ai = KPU__IPC__V1__AGENT_INFO__INIT;
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    struct kpud_session_info info;

    kpud_session_get_info(c->s, &info);
    ai.device = c->device;
    ai.agent_version = info.agent_version;
    ai.expected_version = (char *)KPUD_VERSION;
    ai.progress_permille = permille;
    ai.phase = (char *)phase;
    if (!done) {
        ai.in_progress = 1;
        f.body_case = KPU__IPC__V1__FRAME__BODY_AGENT_INFO;
        f.agent_info = &ai;
        kpud_ipc_reply_interim(c->req, &f);
        return;
    }
    if (status < 0) {
        const char *hint =
            status == -ENOTSUP ? "kpuctl agent boot DEV loads a current agent into SRAM first"
            : c->action == KPU__IPC__V1__AGENT_ACTION__AGENT_FLASH
                ? "the flash is unchanged unless the phase was reboot; see kpud's log"
                : "check the board's reset profile ([usb] reset_profile) and cable";
        kpud_ipc_reply_status(c->req, status == -ETIMEDOUT ? P(TIMEOUT) : P(DEVICE_ERROR),
                              text && *text ? text : strerror(-status), hint);
    } else {
        reply_body(c->req, KPU__IPC__V1__FRAME__BODY_AGENT_INFO, &ai);
    }
    free(c);
}

static void agent_control(struct kpud_ipc *ipc, struct kpud_ipc_request *req,
                          const Kpu__Ipc__V1__AgentControl *ac)
{
    Kpu__Ipc__V1__AgentInfo ai = KPU__IPC__V1__AGENT_INFO__INIT;
    struct kpud_session *s = find_device(ipc, req, ac->device);
    struct kpud_session_info info;
    struct agent_ctx *c;
    int r;

    if (!s)
        return;
    kpud_session_get_info(s, &info);
    if (ac->action == KPU__IPC__V1__AGENT_ACTION__AGENT_VERSION) {
        ai.device = info.id;
        ai.agent_version = info.agent_version; /* from the last AgentHello; "" before one */
        ai.expected_version = (char *)KPUD_VERSION;
        reply_body(req, KPU__IPC__V1__FRAME__BODY_AGENT_INFO, &ai);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        kpud_ipc_reply_status(req, P(INTERNAL), "out of memory", NULL);
        return;
    }
    c->req = req;
    c->s = s;
    c->action = (int)ac->action;
    snprintf(c->device, sizeof(c->device), "%s", info.id);
    r = kpud_usb_agent_control(ipc->loop, s, (int)ac->action, ipc->cfg->agent_image, agent_progress,
                               c);
    if (r == 0)
        return; /* agent_progress replies */
    free(c);
    if (r == -ENOTSUP)
        kpud_ipc_reply_status(
            req, P(DEVICE_ERROR),
            ac->action == KPU__IPC__V1__AGENT_ACTION__AGENT_FLASH
                ? "a replayed capture has no flash to write"
                : "booting through the ROM ISP needs a board on the usb transport",
            "kpuctl agent flash works on usb, tty and simulated boards");
    else if (r == -ENOENT)
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), "no agent image configured or readable",
                              "set [usb] agent_image in kpud.conf to kpu-agent-k210.bin");
    else if (r == -EINVAL)
        kpud_ipc_reply_status(req, P(INVALID_ARGUMENT), "the agent image is empty or too large",
                              "agent_image must be the agent's raw .bin (at most 1 MiB to flash)");
    else if (r == -EBUSY)
        kpud_ipc_reply_status(req, P(BUSY), "the board is busy with another boot or flash",
                              "try again when it has finished");
    else
        kpud_ipc_reply_status(req, P(DEVICE_OFFLINE), strerror(-r), NULL);
}

/* ---- dispatch ----------------------------------------------------------------------- */

static void on_request(void *ctx, struct kpud_ipc_request *req, const Kpu__Ipc__V1__Frame *f)
{
    struct kpud_ipc *ipc = ctx;

    if (!ipc->devs && f->body_case != KPU__IPC__V1__FRAME__BODY_GET_STATS) {
        kpud_ipc_reply_status(req, P(BUSY), "kpud is starting", "try again in a moment");
        return;
    }
    switch (f->body_case) {
    case KPU__IPC__V1__FRAME__BODY_LIST_DEVICES:
        list_devices(ipc, req);
        break;
    case KPU__IPC__V1__FRAME__BODY_GET_DEVICE:
        get_device(ipc, req, f->get_device);
        break;
    case KPU__IPC__V1__FRAME__BODY_GET_STATS:
        get_stats(ipc, req);
        break;
    case KPU__IPC__V1__FRAME__BODY_QUERY:
        query(ipc, req, f->query);
        break;
    case KPU__IPC__V1__FRAME__BODY_GET_CONFIG:
        get_config(ipc, req, f->get_config);
        break;
    case KPU__IPC__V1__FRAME__BODY_SET_CONFIG:
        set_config(ipc, req, f->set_config);
        break;
    case KPU__IPC__V1__FRAME__BODY_RESET_DEVICE:
        reset_device(ipc, req, f->reset_device);
        break;
    case KPU__IPC__V1__FRAME__BODY_GET_RETENTION:
        reply_retention(ipc, req);
        break;
    case KPU__IPC__V1__FRAME__BODY_SET_RETENTION:
        set_retention(ipc, req, f->set_retention);
        break;
    case KPU__IPC__V1__FRAME__BODY_APPLY_RETENTION:
        apply_retention(ipc, req, f->apply_retention);
        break;
    case KPU__IPC__V1__FRAME__BODY_DELETE_HISTORY:
        delete_history(ipc, req, f->delete_history);
        break;
    case KPU__IPC__V1__FRAME__BODY_RECORD_START:
        record_start(ipc, req, f->record_start);
        break;
    case KPU__IPC__V1__FRAME__BODY_RECORD_STOP:
        record_stop(ipc, req, f->record_stop);
        break;
    case KPU__IPC__V1__FRAME__BODY_GET_SNAPSHOT:
        get_snapshot(ipc, req, f->get_snapshot);
        break;
    case KPU__IPC__V1__FRAME__BODY_AGENT_CONTROL:
        agent_control(ipc, req, f->agent_control);
        break;
    default:
        if (ipc->models && kpud_models_request(ipc->models, req, f))
            break;
        kpud_ipc_reply_status(req, P(UNKNOWN_REQUEST), "this kpud does not handle that request",
                              "upgrade kpud, or check kpuctl version");
        break;
    }
}

static const struct kpud_ipc_backend backend = {.request = on_request};

/* ---- events ------------------------------------------------------------------------- */

void kpud_ipc_detection(struct kpud_ipc *ipc, struct kpud_session *s,
                        const Kpu__Link__V1__DetectionFrame *f, int64_t host_ns)
{
    Kpu__Ipc__V1__DetectionEvent ev = KPU__IPC__V1__DETECTION_EVENT__INIT;
    Kpu__Ipc__V1__Box boxes[32], *ptrs[32];
    struct kpud_session_info info;
    size_t n = f->n_boxes < 32 ? f->n_boxes : 32;

    if (!ipc || !ipc->srv)
        return;
    kpud_session_get_info(s, &info);
    for (size_t i = 0; i < n; i++) {
        const Kpu__Link__V1__Box *b = f->boxes[i];
        kpu__ipc__v1__box__init(&boxes[i]);
        boxes[i].class_id = b->class_id;
        boxes[i].label = (char *)kpud_devices_label(ipc->devs, s, b->class_id);
        boxes[i].score = b->score;
        boxes[i].x = b->x;
        boxes[i].y = b->y;
        boxes[i].w = b->w;
        boxes[i].h = b->h;
        ptrs[i] = &boxes[i];
    }
    ev.device = info.id;
    ev.frame_seq = f->frame_seq;
    ev.device_time_us = f->device_time_us;
    ev.host_time_ns = host_ns;
    ev.model = (char *)kpud_devices_model_name(ipc->devs, s);
    ev.image_width = f->image_width;
    ev.image_height = f->image_height;
    ev.n_boxes = n;
    ev.boxes = ptrs;
    ev.kpu_us = f->kpu_us;
    kpud_ipc_publish_detection(ipc->srv, &ev);
}

void kpud_ipc_device_state(struct kpud_ipc *ipc, struct kpud_session *s, enum kpud_dev_state st,
                           const char *reason)
{
    Kpu__Ipc__V1__DeviceEvent ev = KPU__IPC__V1__DEVICE_EVENT__INIT;
    struct dev_holder h;

    (void)st;
    if (!ipc || !ipc->srv || !ipc->devs)
        return;
    fill_device(ipc, s, &h);
    ev.device = &h.di;
    ev.reason = (char *)reason;
    kpud_ipc_publish_device(ipc->srv, &ev);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static gid_t group_id(const char *name)
{
    struct group *g;
    if (!name || !*name)
        return (gid_t)-1;
    g = getgrnam(name);
    return g ? g->gr_gid : (gid_t)-2;
}

/* 1 if this process has gid g (effective or supplementary): kpud runs as a system service
 * (user kpud with the reader group among its groups, packaging/systemd/kpud.service). */
static int have_group(gid_t g)
{
    gid_t groups[256];
    int n;

    if (g == getegid())
        return 1;
    n = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == g)
            return 1;
    return 0;
}

/* The listening socket systemd passed (kpud.socket), or -1 to bind cfg's path ourselves. */
static int activated_fd(const char *path)
{
    int mismatch = 0, fd, n = kpud_sd_listen_fds(1);

    if (n < 0)
        log_warn("socket activation: malformed LISTEN_FDS (%s); binding %s", strerror(-n), path);
    if (n <= 0)
        return -1;
    fd = kpud_sd_listen_unix_fd(n, path, &mismatch);
    if (fd < 0) {
        log_warn("socket activation: %d fd%s passed, none a listening Unix socket; binding %s", n,
                 n == 1 ? "" : "s", path);
        return -1;
    }
    if (mismatch)
        log_warn("socket activation: the passed socket is not bound to %s (the configured "
                 "path); serving the one systemd passed",
                 path);
    log_info("socket activation: listening on fd %d from systemd", fd);
    return fd;
}

static int make_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int kpud_ipc_open(uv_loop_t *loop, const struct kpud_config *cfg, struct kpud_ipc **ret)
{
    static const char *const features[] = {"query",    "config", "retention", "record",
                                           "snapshot", "models", NULL};
    struct kpud_ipc *ipc = calloc(1, sizeof(*ipc));
    struct kpud_ipc_opts o;
    int r;

    if (!ipc)
        return -ENOMEM;
    ipc->loop = loop;
    ipc->cfg = cfg;
    ipc->start_ms = uv_now(loop);
    ipc->boot_ns = now_ns();
    ipc->models = kpud_models_new(loop, cfg);
    if (!ipc->models) {
        free(ipc);
        return -ENOMEM;
    }
    memset(&o, 0, sizeof(o));
    o.path = cfg->socket_path;
    o.listen_fd = activated_fd(cfg->socket_path);
    /* Roles apply to root's kpud and to the service user that holds the reader group; a
     * kpud started by someone else for themselves serves only them (the socket's mode). */
    if (geteuid() == 0 ||
        (group_id(cfg->reader_group) < (gid_t)-2 && have_group(group_id(cfg->reader_group)))) {
        o.reader_gid = group_id(cfg->reader_group);
        o.admin_gid = group_id(cfg->admin_group);
        if (o.reader_gid == (gid_t)-2) {
            log_warn("reader group '%s' does not exist: only root can connect", cfg->reader_group);
            o.reader_gid = 0;
        }
        if (o.admin_gid == (gid_t)-2) {
            log_warn("admin group '%s' does not exist: only root is admin", cfg->admin_group);
            o.admin_gid = (gid_t)-1;
        }
    } else {
        /* An unprivileged kpud serves its own user: the socket's mode keeps others out. */
        o.reader_gid = (gid_t)-1;
        o.admin_gid = (gid_t)-1;
        o.everyone_admin = 1;
    }
    o.max_clients = cfg->max_clients;
    o.queue_messages = cfg->queue_messages;
    o.server_version = KPUD_VERSION;
    o.features = features;
    o.backend = &backend;
    o.backend_ctx = ipc;
    r = o.listen_fd >= 0 ? 0 : make_parent_dir(cfg->socket_path);
    if (r == 0)
        r = kpud_ipc_server_open(loop, &o, &ipc->srv);
    if (r < 0) {
        kpud_models_free(ipc->models);
        free(ipc);
        return r;
    }
    *ret = ipc;
    return 0;
}

void kpud_ipc_attach(struct kpud_ipc *ipc, struct kpud_store *store, struct kpud_devices *devs)
{
    ipc->store = store;
    ipc->devs = devs;
    kpud_models_attach(ipc->models, store, devs);
}

void kpud_ipc_close(struct kpud_ipc *ipc)
{
    if (!ipc)
        return;
    ipc->store = NULL;
    ipc->devs = NULL;
    kpud_models_attach(ipc->models, NULL, NULL);
    if (ipc->srv)
        kpud_ipc_server_close(ipc->srv, NULL, NULL);
    ipc->srv = NULL;
}

void kpud_ipc_free(struct kpud_ipc *ipc)
{
    if (!ipc)
        return;
    kpud_models_free(ipc->models);
    free(ipc);
}
