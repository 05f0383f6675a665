/* SPDX-License-Identifier: MIT */
/*
 * libkpu-client synchronous calls: one request, one answer each (docs/protocol.md §4),
 * converted into the plain public structs. Results that hold strings or arrays are built
 * as one block with the two-pass blob (client_internal.h) so the caller frees one pointer.
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The upload chunk: well inside any sane frame limit, big enough to keep the pipe busy. */
#define UPLOAD_CHUNK_MAX (64u * 1024u)
/* Room for the frame envelope and the chunk's other fields inside max_frame. */
#define UPLOAD_CHUNK_OVERHEAD 64u

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Run a request with body member set by the caller; keep the reply for JSON on success. */
static int do_call(kpu_client_t *c, Kpu__Ipc__V1__Frame *req, int expect, Kpu__Ipc__V1__Frame **ret)
{
    Kpu__Ipc__V1__Frame *resp = NULL;
    int r = kpu_client__call(c, req, expect, &resp);
    if (r < 0)
        return r;
    kpu_client__keep_reply(c, resp);
    *ret = resp;
    return 0;
}

static char *str_or_empty(const char *s)
{
    return (char *)(s ? s : "");
}

/* Two-pass build helper: run fill(b, arg) measuring, allocate, run again writing. */
typedef void (*fill_fn)(struct kpu_client__blob *b, const void *arg, void *out_first);

static int build(fill_fn fill, const void *arg, void **ret)
{
    struct kpu_client__blob b = {0};

    fill(&b, arg, NULL);
    b.cap = b.used ? b.used : 1;
    b.base = calloc(1, b.cap);
    if (!b.base)
        return KPU_CLIENT_ENOMEM;
    b.used = 0;
    fill(&b, arg, NULL);
    *ret = b.base;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_ping(kpu_client_t *c, uint64_t *rtt_ns, int64_t *server_time_ns)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__Ping p = KPU__IPC__V1__PING__INIT;
    int64_t t0;
    int r;

    if (!c)
        return KPU_CLIENT_EINVAL;
    t0 = real_ns();
    p.client_time_ns = (uint64_t)t0;
    f.body_case = KPU__IPC__V1__FRAME__BODY_PING;
    f.ping = &p;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_PONG, &resp);
    if (r < 0)
        return r;
    if (rtt_ns)
        *rtt_ns = (uint64_t)(real_ns() - t0);
    if (server_time_ns)
        *server_time_ns = (int64_t)resp->pong->server_time_ns;
    return 0;
}

/* ---- devices ---- */

static void fill_devices(struct kpu_client__blob *b, const void *arg, void *unused)
{
    const Kpu__Ipc__V1__DeviceList *l = arg;
    struct kpu_client_device *arr =
        kpu_client__blob_alloc(b, (l->n_devices ? l->n_devices : 1) * sizeof(*arr));
    for (size_t i = 0; i < l->n_devices; i++)
        kpu_client__conv_device(b, l->devices[i], arr ? &arr[i] : NULL);
}

KPU_CLIENT_EXPORT int kpu_client_list_devices(kpu_client_t *c, struct kpu_client_device **ret,
                                              size_t *ret_n)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__ListDevices q = KPU__IPC__V1__LIST_DEVICES__INIT;
    void *out;
    int r;

    if (!c || !ret || !ret_n)
        return KPU_CLIENT_EINVAL;
    f.body_case = KPU__IPC__V1__FRAME__BODY_LIST_DEVICES;
    f.list_devices = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_DEVICE_LIST, &resp);
    if (r < 0)
        return r;
    for (size_t i = 0; i < resp->device_list->n_devices; i++)
        if (!resp->device_list->devices[i])
            return KPU_CLIENT_EPROTO;
    r = build(fill_devices, resp->device_list, &out);
    if (r < 0)
        return r;
    *ret = out;
    *ret_n = resp->device_list->n_devices;
    return 0;
}

static void fill_device(struct kpu_client__blob *b, const void *arg, void *unused)
{
    struct kpu_client_device *d = kpu_client__blob_alloc(b, sizeof(*d));
    kpu_client__conv_device(b, arg, d);
}

KPU_CLIENT_EXPORT int kpu_client_get_device(kpu_client_t *c, const char *device,
                                            struct kpu_client_device **ret)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__GetDevice q = KPU__IPC__V1__GET_DEVICE__INIT;
    void *out;
    int r;

    if (!c || !device || !ret)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    f.body_case = KPU__IPC__V1__FRAME__BODY_GET_DEVICE;
    f.get_device = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_DEVICE_INFO, &resp);
    if (r < 0)
        return r;
    r = build(fill_device, resp->device_info, &out);
    if (r < 0)
        return r;
    *ret = out;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_get_stats(kpu_client_t *c, struct kpu_client_stats *out)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__GetStats q = KPU__IPC__V1__GET_STATS__INIT;
    const Kpu__Ipc__V1__Stats *s;
    int r;

    if (!c || !out)
        return KPU_CLIENT_EINVAL;
    f.body_case = KPU__IPC__V1__FRAME__BODY_GET_STATS;
    f.get_stats = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_STATS, &resp);
    if (r < 0)
        return r;
    s = resp->stats;
    memset(out, 0, sizeof(*out));
    out->uptime_ms = s->uptime_ms;
    out->devices = s->devices;
    out->clients = s->clients;
    out->frames_received = s->frames_received;
    out->detections_stored = s->detections_stored;
    out->frames_lost = s->frames_lost;
    out->link_errors = s->link_errors;
    out->events_dropped = s->events_dropped;
    out->db_bytes = s->db_bytes;
    out->db_rows = s->db_rows;
    out->db_write_errors = s->db_write_errors;
    out->db_batches = s->db_batches;
    out->rss_bytes = s->rss_bytes;
    return 0;
}

/* ---- query ---- */

struct kpu_client_query_iter {
    kpu_client_t *c;
    Kpu__Ipc__V1__Filter wf;
    Kpu__Ipc__V1__Rect rect;
    Kpu__Ipc__V1__Filter *owned_filter; /* deep copy of the caller's filter */
    struct kpu_client_query q;
    Kpu__Ipc__V1__Frame *page; /* current page */
    size_t pos;                /* next row in page */
    uint64_t delivered;
    int done;
    int err;
    struct kpu_client_row row;
};

KPU_CLIENT_EXPORT int kpu_client_query_iter_open(kpu_client_t *c, const struct kpu_client_query *q,
                                                 kpu_client_query_iter_t **ret)
{
    kpu_client_query_iter_t *it;
    Kpu__Ipc__V1__Filter wf;
    Kpu__Ipc__V1__Rect rect;
    uint8_t *tmp;
    size_t len;

    if (!c || !ret)
        return KPU_CLIENT_EINVAL;
    it = calloc(1, sizeof(*it));
    if (!it)
        return KPU_CLIENT_ENOMEM;
    it->c = c;
    if (q)
        it->q = *q;
    /* Own the filter: the caller's arrays need not outlive this call. */
    kpu_client__filter_to_wire(q ? q->filter : NULL, &wf, &rect);
    len = kpu__ipc__v1__filter__get_packed_size(&wf);
    tmp = malloc(len ? len : 1);
    if (tmp) {
        kpu__ipc__v1__filter__pack(&wf, tmp);
        it->owned_filter = kpu__ipc__v1__filter__unpack(NULL, len, tmp);
        free(tmp);
    }
    if (!it->owned_filter) {
        free(it);
        return KPU_CLIENT_ENOMEM;
    }
    it->q.filter = NULL;
    *ret = it;
    return 0;
}

KPU_CLIENT_EXPORT void kpu_client_query_iter_close(kpu_client_query_iter_t *it)
{
    if (!it)
        return;
    if (it->page)
        kpu__ipc__v1__frame__free_unpacked(it->page, NULL);
    kpu__ipc__v1__filter__free_unpacked(it->owned_filter, NULL);
    free(it);
}

static int fetch_page(kpu_client_query_iter_t *it)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp = NULL;
    Kpu__Ipc__V1__Query q = KPU__IPC__V1__QUERY__INIT;
    const struct kpu_client_server_info *info;
    uint64_t want;
    int r;

    q.filter = it->owned_filter;
    q.since_ns = it->q.since_ns;
    q.until_ns = it->q.until_ns;
    q.order = it->q.oldest_first ? KPU__IPC__V1__ORDER__ORDER_OLDEST_FIRST
                                 : KPU__IPC__V1__ORDER__ORDER_NEWEST_FIRST;
    info = kpu_client_server_info(it->c);
    q.limit = it->q.page_rows ? it->q.page_rows : (info ? info->max_page_rows : 0);
    if (it->q.max_rows) {
        want = it->q.max_rows - it->delivered;
        if (!q.limit || want < q.limit)
            q.limit = (uint32_t)want;
    }
    if (it->page) {
        q.page_token = it->page->query_page->next_page_token;
    }
    f.body_case = KPU__IPC__V1__FRAME__BODY_QUERY;
    f.query = &q;
    r = kpu_client__call(it->c, &f, KPU__IPC__V1__FRAME__BODY_QUERY_PAGE, &resp);
    if (it->page)
        kpu__ipc__v1__frame__free_unpacked(it->page, NULL);
    it->page = NULL;
    if (r < 0)
        return r;
    for (size_t i = 0; i < resp->query_page->n_rows; i++) {
        if (!resp->query_page->rows[i]) {
            kpu__ipc__v1__frame__free_unpacked(resp, NULL);
            return KPU_CLIENT_EPROTO;
        }
    }
    it->page = resp;
    it->pos = 0;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_query_iter_next(kpu_client_query_iter_t *it,
                                                 const struct kpu_client_row **ret_row)
{
    const Kpu__Ipc__V1__StoredDetection *s;
    const Kpu__Ipc__V1__Box *b;
    int r;

    if (!it || !ret_row)
        return KPU_CLIENT_EINVAL;
    if (it->err)
        return it->err;
    for (;;) {
        if (it->done || (it->q.max_rows && it->delivered >= it->q.max_rows))
            return 0;
        if (it->page && it->pos < it->page->query_page->n_rows)
            break;
        if (it->page && it->page->query_page->next_page_token.len == 0) {
            it->done = 1;
            return 0;
        }
        if (it->page && it->page->query_page->n_rows == 0 &&
            it->page->query_page->next_page_token.len) {
            /* An empty page that still points further is allowed; keep following. */
        }
        r = fetch_page(it);
        if (r < 0) {
            it->err = r;
            return r;
        }
    }
    s = it->page->query_page->rows[it->pos++];
    b = s->box;
    memset(&it->row, 0, sizeof(it->row));
    it->row.id = s->id;
    it->row.device = str_or_empty(s->device);
    it->row.time_ns = s->time_ns;
    it->row.frame_seq = s->frame_seq;
    it->row.model = str_or_empty(s->model);
    it->row.box.label = "";
    if (b) {
        it->row.box.class_id = b->class_id;
        it->row.box.label = str_or_empty(b->label);
        it->row.box.score = b->score;
        it->row.box.x = b->x;
        it->row.box.y = b->y;
        it->row.box.w = b->w;
        it->row.box.h = b->h;
    }
    it->row.priv_ = s;
    it->delivered++;
    *ret_row = &it->row;
    return 1;
}

KPU_CLIENT_EXPORT int kpu_client_query(kpu_client_t *c, const struct kpu_client_query *q,
                                       kpu_client_row_cb cb, void *user_data)
{
    kpu_client_query_iter_t *it;
    const struct kpu_client_row *row;
    uint64_t n = 0;
    int r;

    if (!c || !cb)
        return KPU_CLIENT_EINVAL;
    r = kpu_client_query_iter_open(c, q, &it);
    if (r < 0)
        return r;
    while ((r = kpu_client_query_iter_next(it, &row)) == 1) {
        n++;
        if (cb(c, row, user_data)) {
            r = KPU_CLIENT_ECANCELED;
            break;
        }
    }
    kpu_client_query_iter_close(it);
    if (r < 0)
        return r;
    return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

KPU_CLIENT_EXPORT int kpu_client_row_json(const struct kpu_client_row *row, char **ret_json)
{
    char *s;
    if (!row || !row->priv_ || !ret_json)
        return KPU_CLIENT_EINVAL;
    s = kpu_client__json(row->priv_);
    if (!s)
        return KPU_CLIENT_ENOMEM;
    *ret_json = s;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_event_json(const struct kpu_client_event *ev, char **ret_json)
{
    char *s;
    if (!ev || !ret_json)
        return KPU_CLIENT_EINVAL;
    if (!ev->priv_) {
        /* A drop counted by the library itself has no wire frame: render it alike. */
        Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
        Kpu__Ipc__V1__Dropped d = KPU__IPC__V1__DROPPED__INIT;
        if (ev->type != KPU_CLIENT_EVENT_DROPPED)
            return KPU_CLIENT_EINVAL;
        d.subscription_id = ev->subscription_id;
        d.count = ev->dropped_count;
        f.body_case = KPU__IPC__V1__FRAME__BODY_DROPPED;
        f.dropped = &d;
        s = kpu_client__json_frame_body(&f);
    } else {
        /* The wire carries the daemon's subscription id; show the caller's. */
        Kpu__Ipc__V1__Frame f = *(const Kpu__Ipc__V1__Frame *)ev->priv_;
        Kpu__Ipc__V1__DetectionEvent de;
        Kpu__Ipc__V1__DeviceEvent dv;
        Kpu__Ipc__V1__Dropped dr;
        switch (f.body_case) {
        case KPU__IPC__V1__FRAME__BODY_DETECTION:
            de = *f.detection;
            de.subscription_id = ev->subscription_id;
            f.detection = &de;
            break;
        case KPU__IPC__V1__FRAME__BODY_DEVICE_EVENT:
            dv = *f.device_event;
            dv.subscription_id = ev->subscription_id;
            f.device_event = &dv;
            break;
        case KPU__IPC__V1__FRAME__BODY_DROPPED:
            dr = *f.dropped;
            dr.subscription_id = ev->subscription_id;
            dr.count = ev->dropped_count;
            f.dropped = &dr;
            break;
        default:
            return KPU_CLIENT_EINVAL;
        }
        s = kpu_client__json_frame_body(&f);
    }
    if (!s)
        return KPU_CLIENT_ENOMEM;
    *ret_json = s;
    return 0;
}

/* ---- snapshot ---- */

static void fill_snapshot(struct kpu_client__blob *b, const void *arg, void *unused)
{
    const Kpu__Ipc__V1__Snapshot *s = arg;
    struct kpu_client_snapshot *o = kpu_client__blob_alloc(b, sizeof(*o));
    struct kpu_client_box *boxes =
        kpu_client__blob_alloc(b, (s->n_boxes ? s->n_boxes : 1) * sizeof(*boxes));
    uint8_t *data = kpu_client__blob_alloc(b, s->data.len ? s->data.len : 1);
    const char *dev = kpu_client__blob_str(b, s->device);

    for (size_t i = 0; i < s->n_boxes; i++)
        kpu_client__conv_box(b, s->boxes[i], boxes ? &boxes[i] : NULL);
    if (!o)
        return;
    if (s->data.len)
        memcpy(data, s->data.data, s->data.len);
    o->device = dev;
    o->width = s->width;
    o->height = s->height;
    o->format = (int)s->format;
    o->data = data;
    o->size = s->data.len;
    o->n_boxes = s->n_boxes;
    o->boxes = boxes;
    o->frame_seq = s->frame_seq;
}

KPU_CLIENT_EXPORT int kpu_client_snapshot(kpu_client_t *c, const char *device, int format,
                                          struct kpu_client_snapshot **ret)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__GetSnapshot q = KPU__IPC__V1__GET_SNAPSHOT__INIT;
    void *out;
    int r;

    if (!c || !device || !ret)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    q.format = (Kpu__Ipc__V1__ImageFormat)format;
    f.body_case = KPU__IPC__V1__FRAME__BODY_GET_SNAPSHOT;
    f.get_snapshot = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_SNAPSHOT, &resp);
    if (r < 0)
        return r;
    for (size_t i = 0; i < resp->snapshot->n_boxes; i++)
        if (!resp->snapshot->boxes[i])
            return KPU_CLIENT_EPROTO;
    r = build(fill_snapshot, resp->snapshot, &out);
    if (r < 0)
        return r;
    *ret = out;
    return 0;
}

/* ---- config ---- */

static void fill_config(struct kpu_client__blob *b, const void *arg, void *unused)
{
    const Kpu__Ipc__V1__DeviceConfig *s = arg;
    struct kpu_client_config *o = kpu_client__blob_alloc(b, sizeof(*o));
    float *anchors = kpu_client__blob_alloc(b, (s->n_anchors ? s->n_anchors : 1) * sizeof(float));
    const char *dev = kpu_client__blob_str(b, s->device);
    const char *model = kpu_client__blob_str(b, s->model);

    if (!o)
        return;
    if (s->n_anchors)
        memcpy(anchors, s->anchors, s->n_anchors * sizeof(float));
    o->device = dev;
    o->model = model;
    o->threshold = s->threshold;
    o->nms = s->nms;
    o->n_anchors = s->n_anchors;
    o->anchors = anchors;
    o->max_boxes = s->max_boxes;
    o->fps_cap = s->fps_cap;
    if (s->roi) {
        o->has_roi = 1;
        o->roi.x = s->roi->x;
        o->roi.y = s->roi->y;
        o->roi.w = s->roi->w;
        o->roi.h = s->roi->h;
    }
}

static int config_result(Kpu__Ipc__V1__Frame *resp, struct kpu_client_config **ret)
{
    void *out;
    int r;
    if (!ret)
        return 0;
    r = build(fill_config, resp->device_config, &out);
    if (r < 0)
        return r;
    *ret = out;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_config_get(kpu_client_t *c, const char *device,
                                            struct kpu_client_config **ret)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__GetConfig q = KPU__IPC__V1__GET_CONFIG__INIT;
    int r;

    if (!c || !device || !ret)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    f.body_case = KPU__IPC__V1__FRAME__BODY_GET_CONFIG;
    f.get_config = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_DEVICE_CONFIG, &resp);
    if (r < 0)
        return r;
    return config_result(resp, ret);
}

KPU_CLIENT_EXPORT int kpu_client_config_set(kpu_client_t *c, const struct kpu_client_config *cfg,
                                            unsigned fields, int persist,
                                            struct kpu_client_config **ret)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {KPU_CLIENT_CFG_MODEL, "model"},
        {KPU_CLIENT_CFG_THRESHOLD, "threshold"},
        {KPU_CLIENT_CFG_NMS, "nms"},
        {KPU_CLIENT_CFG_ANCHORS, "anchors"},
        {KPU_CLIENT_CFG_MAX_BOXES, "max_boxes"},
        {KPU_CLIENT_CFG_FPS_CAP, "fps_cap"},
        {KPU_CLIENT_CFG_ROI, "roi"},
    };
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__SetConfig q = KPU__IPC__V1__SET_CONFIG__INIT;
    Kpu__Ipc__V1__DeviceConfig dc = KPU__IPC__V1__DEVICE_CONFIG__INIT;
    Kpu__Ipc__V1__Rect roi = KPU__IPC__V1__RECT__INIT;
    char *fnames[sizeof(names) / sizeof(names[0])];
    size_t nf = 0;
    int r;

    if (!c || !cfg || !cfg->device || !fields || (fields & ~0x7Fu) ||
        ((fields & KPU_CLIENT_CFG_MODEL) && !cfg->model) ||
        ((fields & KPU_CLIENT_CFG_ANCHORS) && cfg->n_anchors && !cfg->anchors))
        return KPU_CLIENT_EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (fields & names[i].bit)
            fnames[nf++] = (char *)names[i].name;
    dc.device = (char *)cfg->device;
    dc.model = str_or_empty(cfg->model);
    dc.threshold = cfg->threshold;
    dc.nms = cfg->nms;
    dc.anchors = (float *)cfg->anchors;
    dc.n_anchors = cfg->anchors ? cfg->n_anchors : 0;
    dc.max_boxes = cfg->max_boxes;
    dc.fps_cap = cfg->fps_cap;
    if (cfg->has_roi) {
        roi.x = cfg->roi.x;
        roi.y = cfg->roi.y;
        roi.w = cfg->roi.w;
        roi.h = cfg->roi.h;
        dc.roi = &roi;
    }
    q.config = &dc;
    q.fields = fnames;
    q.n_fields = nf;
    q.persist = persist != 0;
    f.body_case = KPU__IPC__V1__FRAME__BODY_SET_CONFIG;
    f.set_config = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_DEVICE_CONFIG, &resp);
    if (r < 0)
        return r;
    return config_result(resp, ret);
}

/* ---- models ---- */

static const char *const *blob_strv(struct kpu_client__blob *b, char **v, size_t n)
{
    const char **arr = kpu_client__blob_alloc(b, (n ? n : 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *s = kpu_client__blob_str(b, v[i]);
        if (arr)
            arr[i] = s;
    }
    return arr;
}

static void fill_models(struct kpu_client__blob *b, const void *arg, void *unused)
{
    const Kpu__Ipc__V1__ModelList *l = arg;
    struct kpu_client_model *arr =
        kpu_client__blob_alloc(b, (l->n_models ? l->n_models : 1) * sizeof(*arr));
    for (size_t i = 0; i < l->n_models; i++) {
        const Kpu__Ipc__V1__ModelInfo *m = l->models[i];
        struct kpu_client_model o;
        memset(&o, 0, sizeof(o));
        o.name = kpu_client__blob_str(b, m->name);
        o.size = m->size;
        o.crc32c = m->crc32c;
        o.manifest = kpu_client__blob_str(b, m->manifest);
        o.n_devices = m->n_devices;
        o.devices = blob_strv(b, m->devices, m->n_devices);
        o.n_selected_on = m->n_selected_on;
        o.selected_on = blob_strv(b, m->selected_on, m->n_selected_on);
        if (arr)
            arr[i] = o;
    }
}

KPU_CLIENT_EXPORT int kpu_client_model_list(kpu_client_t *c, const char *device,
                                            struct kpu_client_model **ret, size_t *ret_n)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__ListModels q = KPU__IPC__V1__LIST_MODELS__INIT;
    void *out;
    int r;

    if (!c || !ret || !ret_n)
        return KPU_CLIENT_EINVAL;
    q.device = str_or_empty(device);
    f.body_case = KPU__IPC__V1__FRAME__BODY_LIST_MODELS;
    f.list_models = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_MODEL_LIST, &resp);
    if (r < 0)
        return r;
    for (size_t i = 0; i < resp->model_list->n_models; i++)
        if (!resp->model_list->models[i])
            return KPU_CLIENT_EPROTO;
    r = build(fill_models, resp->model_list, &out);
    if (r < 0)
        return r;
    *ret = out;
    *ret_n = resp->model_list->n_models;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_model_upload(kpu_client_t *c, const char *device, const char *name,
                                              const void *data, size_t size, const char *manifest,
                                              kpu_client_progress_cb progress, void *user_data)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__ModelUploadBegin bg = KPU__IPC__V1__MODEL_UPLOAD_BEGIN__INIT;
    Kpu__Ipc__V1__ModelUploadChunk ck = KPU__IPC__V1__MODEL_UPLOAD_CHUNK__INIT;
    Kpu__Ipc__V1__ModelUploadCommit cm = KPU__IPC__V1__MODEL_UPLOAD_COMMIT__INIT;
    const struct kpu_client_server_info *info;
    uint32_t upload_id, off, chunk;
    int r;

    if (!c || !device || !name || (!data && size))
        return KPU_CLIENT_EINVAL;
    if (size > 0xFFFFFFFFu)
        return KPU_CLIENT_ETOOBIG;
    bg.device = (char *)device;
    bg.name = (char *)name;
    bg.size = (uint32_t)size;
    bg.crc32c = kpu_client__crc32c(data, size);
    bg.manifest = str_or_empty(manifest);
    f.body_case = KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_BEGIN;
    f.model_upload_begin = &bg;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_UPLOAD_STATE, &resp);
    if (r < 0)
        return r;
    upload_id = resp->upload_state->upload_id;
    off = resp->upload_state->next_offset;
    info = kpu_client_server_info(c);
    chunk = UPLOAD_CHUNK_MAX;
    if (info && info->max_frame > UPLOAD_CHUNK_OVERHEAD * 2 &&
        info->max_frame - UPLOAD_CHUNK_OVERHEAD < chunk)
        chunk = info->max_frame - UPLOAD_CHUNK_OVERHEAD;
    if (progress && progress(c, off, size, user_data))
        return KPU_CLIENT_ECANCELED;
    while (off < size) {
        uint32_t n = (uint32_t)(size - off) < chunk ? (uint32_t)(size - off) : chunk;
        uint32_t next;
        ck.upload_id = upload_id;
        ck.offset = off;
        ck.data.data = (uint8_t *)data + off;
        ck.data.len = n;
        f.body_case = KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_CHUNK;
        f.model_upload_chunk = &ck;
        r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_UPLOAD_STATE, &resp);
        if (r < 0)
            return r;
        next = resp->upload_state->next_offset;
        if (next <= off || next > size)
            return KPU_CLIENT_EPROTO; /* the daemon must make progress, within the file */
        off = next;
        if (progress && progress(c, off, size, user_data))
            return KPU_CLIENT_ECANCELED;
    }
    cm.upload_id = upload_id;
    f.body_case = KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_COMMIT;
    f.model_upload_commit = &cm;
    return do_call(c, &f, 0, &resp);
}

KPU_CLIENT_EXPORT int kpu_client_model_select(kpu_client_t *c, const char *device, const char *name)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__SelectModel q = KPU__IPC__V1__SELECT_MODEL__INIT;

    if (!c || !device || !name)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    q.name = (char *)name;
    f.body_case = KPU__IPC__V1__FRAME__BODY_SELECT_MODEL;
    f.select_model = &q;
    return do_call(c, &f, 0, &resp);
}

KPU_CLIENT_EXPORT int kpu_client_model_delete(kpu_client_t *c, const char *device, const char *name)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__DeleteModel q = KPU__IPC__V1__DELETE_MODEL__INIT;

    if (!c || !name)
        return KPU_CLIENT_EINVAL;
    q.device = str_or_empty(device);
    q.name = (char *)name;
    f.body_case = KPU__IPC__V1__FRAME__BODY_DELETE_MODEL;
    f.delete_model = &q;
    return do_call(c, &f, 0, &resp);
}

KPU_CLIENT_EXPORT int kpu_client_reset(kpu_client_t *c, const char *device, int hard)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__ResetDevice q = KPU__IPC__V1__RESET_DEVICE__INIT;

    if (!c || !device)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    q.hard = hard != 0;
    f.body_case = KPU__IPC__V1__FRAME__BODY_RESET_DEVICE;
    f.reset_device = &q;
    return do_call(c, &f, 0, &resp);
}

/* ---- retention ---- */

KPU_CLIENT_EXPORT int kpu_client_retention_get(kpu_client_t *c, struct kpu_client_retention *out)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__GetRetention q = KPU__IPC__V1__GET_RETENTION__INIT;
    int r;

    if (!c || !out)
        return KPU_CLIENT_EINVAL;
    f.body_case = KPU__IPC__V1__FRAME__BODY_GET_RETENTION;
    f.get_retention = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_RETENTION, &resp);
    if (r < 0)
        return r;
    out->max_age_s = resp->retention->max_age_s;
    out->max_bytes = resp->retention->max_bytes;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_retention_set(kpu_client_t *c,
                                               const struct kpu_client_retention *in,
                                               struct kpu_client_retention *out)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__SetRetention q = KPU__IPC__V1__SET_RETENTION__INIT;
    Kpu__Ipc__V1__Retention rt = KPU__IPC__V1__RETENTION__INIT;
    int r;

    if (!c || !in)
        return KPU_CLIENT_EINVAL;
    rt.max_age_s = in->max_age_s;
    rt.max_bytes = in->max_bytes;
    q.retention = &rt;
    f.body_case = KPU__IPC__V1__FRAME__BODY_SET_RETENTION;
    f.set_retention = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_RETENTION, &resp);
    if (r < 0)
        return r;
    if (out) {
        out->max_age_s = resp->retention->max_age_s;
        out->max_bytes = resp->retention->max_bytes;
    }
    return 0;
}

static void report_out(const Kpu__Ipc__V1__RetentionReport *rr,
                       struct kpu_client_retention_report *out)
{
    if (!out)
        return;
    out->rows_deleted = rr->rows_deleted;
    out->oldest_kept_ns = rr->oldest_kept_ns;
    out->db_bytes = rr->db_bytes;
    out->dry_run = rr->dry_run;
}

KPU_CLIENT_EXPORT int kpu_client_retention_apply(kpu_client_t *c, int dry_run,
                                                 struct kpu_client_retention_report *out)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__ApplyRetention q = KPU__IPC__V1__APPLY_RETENTION__INIT;
    int r;

    if (!c)
        return KPU_CLIENT_EINVAL;
    q.dry_run = dry_run != 0;
    f.body_case = KPU__IPC__V1__FRAME__BODY_APPLY_RETENTION;
    f.apply_retention = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_RETENTION_REPORT, &resp);
    if (r < 0)
        return r;
    report_out(resp->retention_report, out);
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_delete_history(kpu_client_t *c,
                                                const struct kpu_client_filter *filter,
                                                int64_t since_ns, int64_t until_ns, int dry_run,
                                                struct kpu_client_retention_report *out)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__DeleteHistory q = KPU__IPC__V1__DELETE_HISTORY__INIT;
    Kpu__Ipc__V1__Filter wf;
    Kpu__Ipc__V1__Rect rect;
    int r;

    if (!c)
        return KPU_CLIENT_EINVAL;
    kpu_client__filter_to_wire(filter, &wf, &rect);
    q.filter = &wf;
    q.since_ns = since_ns;
    q.until_ns = until_ns;
    q.dry_run = dry_run != 0;
    f.body_case = KPU__IPC__V1__FRAME__BODY_DELETE_HISTORY;
    f.delete_history = &q;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_RETENTION_REPORT, &resp);
    if (r < 0)
        return r;
    report_out(resp->retention_report, out);
    return 0;
}

/* ---- recording and agent ---- */

static void fill_record(struct kpu_client__blob *b, const void *arg, void *unused)
{
    const Kpu__Ipc__V1__RecordState *s = arg;
    struct kpu_client_record_state *o = kpu_client__blob_alloc(b, sizeof(*o));
    const char *dev = kpu_client__blob_str(b, s->device);
    const char *path = kpu_client__blob_str(b, s->path);
    if (!o)
        return;
    o->device = dev;
    o->path = path;
    o->recording = s->recording;
    o->bytes = s->bytes;
}

static int record_call(kpu_client_t *c, Kpu__Ipc__V1__Frame *f,
                       struct kpu_client_record_state **ret)
{
    Kpu__Ipc__V1__Frame *resp;
    void *out;
    int r = do_call(c, f, KPU__IPC__V1__FRAME__BODY_RECORD_STATE, &resp);
    if (r < 0 || !ret)
        return r;
    r = build(fill_record, resp->record_state, &out);
    if (r < 0)
        return r;
    *ret = out;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_record_start(kpu_client_t *c, const char *device, const char *path,
                                              const char *notes,
                                              struct kpu_client_record_state **ret)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__RecordStart q = KPU__IPC__V1__RECORD_START__INIT;

    if (!c || !device)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    q.path = str_or_empty(path);
    q.notes = str_or_empty(notes);
    f.body_case = KPU__IPC__V1__FRAME__BODY_RECORD_START;
    f.record_start = &q;
    return record_call(c, &f, ret);
}

KPU_CLIENT_EXPORT int kpu_client_record_stop(kpu_client_t *c, const char *device,
                                             struct kpu_client_record_state **ret)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__RecordStop q = KPU__IPC__V1__RECORD_STOP__INIT;

    if (!c || !device)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    f.body_case = KPU__IPC__V1__FRAME__BODY_RECORD_STOP;
    f.record_stop = &q;
    return record_call(c, &f, ret);
}

static void fill_agent(struct kpu_client__blob *b, const void *arg, void *unused)
{
    const Kpu__Ipc__V1__AgentInfo *s = arg;
    struct kpu_client_agent_info *o = kpu_client__blob_alloc(b, sizeof(*o));
    const char *dev = kpu_client__blob_str(b, s->device);
    const char *av = kpu_client__blob_str(b, s->agent_version);
    const char *ev = kpu_client__blob_str(b, s->expected_version);
    const char *phase = kpu_client__blob_str(b, s->phase);
    if (!o)
        return;
    o->device = dev;
    o->agent_version = av;
    o->expected_version = ev;
    o->progress_permille = s->progress_permille;
    o->phase = phase;
}

struct agent_progress {
    kpu_client_agent_progress_cb cb;
    void *user_data;
};

/* An interim AgentInfo: rebuilt in the public form for the caller's callback. */
static int agent_interim(kpu_client_t *c, const Kpu__Ipc__V1__Frame *f, void *arg)
{
    struct agent_progress *p = arg;
    void *info;
    int stop;

    if (build(fill_agent, f->agent_info, &info) < 0)
        return 0;
    stop = p->cb(c, info, p->user_data);
    kpu_client_free(info);
    return stop;
}

KPU_CLIENT_EXPORT int kpu_client_agent_control_progress(kpu_client_t *c, const char *device,
                                                        int action,
                                                        kpu_client_agent_progress_cb progress,
                                                        void *user_data,
                                                        struct kpu_client_agent_info **ret)
{
    Kpu__Ipc__V1__Frame f = KPU__IPC__V1__FRAME__INIT, *resp;
    Kpu__Ipc__V1__AgentControl q = KPU__IPC__V1__AGENT_CONTROL__INIT;
    struct agent_progress p = {progress, user_data};
    void *out;
    int r;

    if (!c || !device || !ret || action < 0 || action > KPU_CLIENT_AGENT_FLASH)
        return KPU_CLIENT_EINVAL;
    q.device = (char *)device;
    q.action = (Kpu__Ipc__V1__AgentAction)action;
    f.body_case = KPU__IPC__V1__FRAME__BODY_AGENT_CONTROL;
    f.agent_control = &q;
    c->interim_fn = progress ? agent_interim : NULL;
    c->interim_arg = &p;
    r = do_call(c, &f, KPU__IPC__V1__FRAME__BODY_AGENT_INFO, &resp);
    c->interim_fn = NULL;
    c->interim_arg = NULL;
    if (r < 0)
        return r;
    r = build(fill_agent, resp->agent_info, &out);
    if (r < 0)
        return r;
    *ret = out;
    return 0;
}

KPU_CLIENT_EXPORT int kpu_client_agent_control(kpu_client_t *c, const char *device, int action,
                                               struct kpu_client_agent_info **ret)
{
    return kpu_client_agent_control_progress(c, device, action, NULL, NULL, ret);
}
