/* SPDX-License-Identifier: MIT */
/*
 * The deterministic test backend of kpud's IPC server (see test_backend.h). Every table
 * is computed from the row or device index, so tests can recompute what they expect
 * without reading this file's answers back.
 */
#include "test_backend.h"

#include "ipc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TB_MAX_MODELS 8u
#define TB_DEFAULT_PAGE 100u
#define TB_MAX_PAGE 1000u
#define TB_MAX_UPLOAD (8u * 1024u * 1024u)
#define TB_SNAPSHOT_W 8u
#define TB_SNAPSHOT_H 6u

static const char *const labels[TB_LABEL_COUNT] = {"face", "person", "cat"};

struct tb_model {
    char name[32];
    uint32_t size;
    uint32_t crc;
    char manifest[64];
    int on_a, on_b, selected_a, selected_b;
};

struct tb_config {
    char model[32];
    float threshold, nms;
    float anchors[10];
    size_t n_anchors;
    uint32_t max_boxes, fps_cap;
    int has_roi;
    Kpu__Ipc__V1__Rect roi;
};

struct tb_upload {
    uint32_t id; /* 0 = none */
    char device[32], name[32];
    uint32_t size, crc, next;
    uint8_t *buf;
};

struct tb_delayed {
    uv_timer_t timer;
    struct tb *tb;
    struct kpud_ipc_request *req;
    const Kpu__Ipc__V1__Frame *frame;
    struct tb_delayed *next;
};

struct tb {
    uv_loop_t *loop;
    struct kpud_ipc_server *srv;
    unsigned delay_ms;
    unsigned long requests;
    struct tb_model models[TB_MAX_MODELS];
    size_t n_models;
    struct tb_config cfg[2];
    struct tb_upload up;
    uint32_t next_upload_id;
    Kpu__Ipc__V1__Retention ret;
    int recording[2];
    char rec_path[2][64];
    struct tb_delayed *delayed;
};

const char *tb_label(uint32_t class_id)
{
    return class_id < TB_LABEL_COUNT ? labels[class_id] : "";
}

static int dev_index(const char *dev)
{
    if (dev && strcmp(dev, TB_DEVICE_A) == 0)
        return 0;
    if (dev && strcmp(dev, TB_DEVICE_B) == 0)
        return 1;
    return -1;
}

static void fill_device(Kpu__Ipc__V1__DeviceInfo *d, int i)
{
    kpu__ipc__v1__device_info__init(d);
    d->id = (char *)(i == 0 ? TB_DEVICE_A : TB_DEVICE_B);
    d->transport = (char *)"sim";
    d->path = (char *)(i == 0 ? "sim:0" : "sim:1");
    d->bridge = (char *)"";
    d->state = i == 0 ? KPU__IPC__V1__DEVICE_STATE__DEVICE_STATE_STREAMING
                      : KPU__IPC__V1__DEVICE_STATE__DEVICE_STATE_IDLE;
    d->board = (char *)"sim";
    d->agent_version = (char *)"0.1.0";
    d->sensor = (char *)"synthetic";
    d->model = (char *)"face";
    d->image_width = 320;
    d->image_height = 240;
    d->fps = i == 0 ? 30.0f : 0.0f;
    d->kpu_us = 12000;
    d->frames = i == 0 ? 1000 : 0;
    d->frames_lost = i == 0 ? 2 : 0;
    d->link_errors = 0;
    d->reconnects = 0;
    d->last_error = (char *)"";
    d->connected_since_ns = (uint64_t)TB_TIME_BASE_NS;
    d->reset_cause = (char *)"power-on";
}

struct tb *tb_new(uv_loop_t *loop)
{
    static const float anchors[10] = {1.889f,  2.5245f,   2.9465f,  3.94056f,  3.99987f,
                                      5.3658f, 5.155437f, 6.92275f, 6.718375f, 9.01025f};
    struct tb *tb = calloc(1, sizeof(*tb));

    if (!tb)
        return NULL;
    tb->loop = loop;
    for (int i = 0; i < 2; i++) {
        snprintf(tb->cfg[i].model, sizeof(tb->cfg[i].model), "face");
        tb->cfg[i].threshold = 0.5f;
        tb->cfg[i].nms = 0.3f;
        memcpy(tb->cfg[i].anchors, anchors, sizeof(anchors));
        tb->cfg[i].n_anchors = 10;
        tb->cfg[i].max_boxes = 10;
    }
    snprintf(tb->models[0].name, sizeof(tb->models[0].name), "face");
    tb->models[0].size = 1234;
    tb->models[0].crc = 0xdeadbeefu;
    snprintf(tb->models[0].manifest, sizeof(tb->models[0].manifest), "name: face\n");
    tb->models[0].on_a = tb->models[0].on_b = 1;
    tb->models[0].selected_a = tb->models[0].selected_b = 1;
    tb->n_models = 1;
    kpu__ipc__v1__retention__init(&tb->ret);
    tb->ret.max_age_s = 30 * 86400;
    tb->ret.max_bytes = 0;
    return tb;
}

void tb_set_delay(struct tb *tb, unsigned ms)
{
    tb->delay_ms = ms;
}

void tb_set_server(struct tb *tb, struct kpud_ipc_server *srv)
{
    tb->srv = srv;
}

unsigned long tb_requests(const struct tb *tb)
{
    return tb->requests;
}

void tb_make_detection(Kpu__Ipc__V1__DetectionEvent *ev, Kpu__Ipc__V1__Box *boxes,
                       Kpu__Ipc__V1__Box **ptrs, size_t n, const char *dev, uint32_t seq)
{
    kpu__ipc__v1__detection_event__init(ev);
    ev->device = (char *)dev;
    ev->frame_seq = seq;
    ev->device_time_us = (uint64_t)seq * 33333u;
    ev->host_time_ns = TB_TIME_BASE_NS + (int64_t)seq * 100000000ll;
    ev->model = (char *)"face";
    ev->image_width = 320;
    ev->image_height = 240;
    ev->kpu_us = 12000;
    for (size_t k = 0; k < n; k++) {
        kpu__ipc__v1__box__init(&boxes[k]);
        boxes[k].class_id = (uint32_t)(k % TB_LABEL_COUNT);
        boxes[k].label = (char *)tb_label(boxes[k].class_id);
        boxes[k].score = 0.5f + 0.1f * (float)k;
        boxes[k].x = (int32_t)(10 + 20 * k);
        boxes[k].y = (int32_t)(10 + 10 * k);
        boxes[k].w = 16;
        boxes[k].h = 16;
        ptrs[k] = &boxes[k];
    }
    ev->boxes = ptrs;
    ev->n_boxes = n;
}

/* ---- history ---- */

static void history_row(uint32_t i, Kpu__Ipc__V1__StoredDetection *r, Kpu__Ipc__V1__Box *b)
{
    kpu__ipc__v1__stored_detection__init(r);
    kpu__ipc__v1__box__init(b);
    r->id = i;
    r->device = (char *)(i % 2 ? TB_DEVICE_A : TB_DEVICE_B);
    r->time_ns = TB_TIME_BASE_NS + (int64_t)i * 1000000ll;
    r->frame_seq = i;
    r->model = (char *)"face";
    b->class_id = i % TB_LABEL_COUNT;
    b->label = (char *)tb_label(b->class_id);
    b->score = (float)(i % 100) / 100.0f;
    b->x = (int32_t)(i % 300);
    b->y = (int32_t)(i % 200);
    b->w = 20;
    b->h = 20;
    r->box = b;
}

static int row_matches(uint32_t i, const Kpu__Ipc__V1__Filter *f, int64_t since, int64_t until)
{
    Kpu__Ipc__V1__StoredDetection r;
    Kpu__Ipc__V1__Box b;

    history_row(i, &r, &b);
    if (since && r.time_ns < since)
        return 0;
    if (until && r.time_ns >= until)
        return 0;
    return kpud_ipc_filter_device(f, r.device) && kpud_ipc_filter_box(f, &b);
}

static void do_query(struct tb *tb, struct kpud_ipc_request *req, const Kpu__Ipc__V1__Query *q)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__QueryPage page = KPU__IPC__V1__QUERY_PAGE__INIT;
    Kpu__Ipc__V1__StoredDetection *rows;
    Kpu__Ipc__V1__StoredDetection **ptrs;
    Kpu__Ipc__V1__Box *boxes;
    uint32_t limit = q->limit ? q->limit : TB_DEFAULT_PAGE, cursor = 0;
    int newest = q->order == KPU__IPC__V1__ORDER__ORDER_NEWEST_FIRST;
    uint8_t token[4];
    size_t n = 0;
    int more = 0;

    if (limit > TB_MAX_PAGE)
        limit = TB_MAX_PAGE;
    if (q->page_token.len) {
        if (q->page_token.len != 4) {
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__NOT_FOUND, "bad page token",
                                  "start the query again without a token");
            return;
        }
        cursor = (uint32_t)q->page_token.data[0] | (uint32_t)q->page_token.data[1] << 8 |
                 (uint32_t)q->page_token.data[2] << 16 | (uint32_t)q->page_token.data[3] << 24;
    }
    rows = calloc(limit, sizeof(*rows));
    ptrs = calloc(limit, sizeof(*ptrs));
    boxes = calloc(limit, sizeof(*boxes));
    if (!rows || !ptrs || !boxes) {
        free(rows);
        free(ptrs);
        free(boxes);
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INTERNAL, "out of memory", NULL);
        return;
    }
    for (uint32_t k = 1; k <= TB_HISTORY_ROWS; k++) {
        uint32_t i = newest ? TB_HISTORY_ROWS + 1 - k : k;
        if (cursor && (newest ? i >= cursor : i <= cursor))
            continue;
        if (!row_matches(i, q->filter, q->since_ns, q->until_ns))
            continue;
        if (n == limit) {
            more = 1;
            break;
        }
        history_row(i, &rows[n], &boxes[n]);
        ptrs[n] = &rows[n];
        n++;
    }
    page.rows = ptrs;
    page.n_rows = n;
    if (more) {
        uint32_t last = (uint32_t)rows[n - 1].id;
        token[0] = (uint8_t)last;
        token[1] = (uint8_t)(last >> 8);
        token[2] = (uint8_t)(last >> 16);
        token[3] = (uint8_t)(last >> 24);
        page.next_page_token.data = token;
        page.next_page_token.len = sizeof(token);
    }
    out.body_case = KPU__IPC__V1__FRAME__BODY_QUERY_PAGE;
    out.query_page = &page;
    kpud_ipc_reply(req, &out);
    free(rows);
    free(ptrs);
    free(boxes);
}

/* ---- the rest ---- */

static void reply_no_device(struct kpud_ipc_request *req, const char *dev)
{
    char text[96];
    snprintf(text, sizeof(text), "no device %.40s", dev ? dev : "");
    kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__NO_SUCH_DEVICE, text,
                          "list the boards with `kpuctl devices`");
}

static void reply_config(struct tb *tb, struct kpud_ipc_request *req, int i)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__DeviceConfig dc = KPU__IPC__V1__DEVICE_CONFIG__INIT;
    struct tb_config *c = &tb->cfg[i];

    dc.device = (char *)(i == 0 ? TB_DEVICE_A : TB_DEVICE_B);
    dc.model = c->model;
    dc.threshold = c->threshold;
    dc.nms = c->nms;
    dc.anchors = c->anchors;
    dc.n_anchors = c->n_anchors;
    dc.max_boxes = c->max_boxes;
    dc.fps_cap = c->fps_cap;
    if (c->has_roi)
        dc.roi = &c->roi;
    out.body_case = KPU__IPC__V1__FRAME__BODY_DEVICE_CONFIG;
    out.device_config = &dc;
    kpud_ipc_reply(req, &out);
}

static void do_set_config(struct tb *tb, struct kpud_ipc_request *req,
                          const Kpu__Ipc__V1__SetConfig *s)
{
    const Kpu__Ipc__V1__DeviceConfig *in = s->config;
    struct tb_config next;
    int i = in ? dev_index(in->device) : -1;

    if (i < 0) {
        reply_no_device(req, in ? in->device : NULL);
        return;
    }
    next = tb->cfg[i];
    for (size_t k = 0; k < s->n_fields; k++) {
        const char *f = s->fields[k];
        if (strcmp(f, "model") == 0) {
            size_t m;
            for (m = 0; m < tb->n_models; m++)
                if (strcmp(tb->models[m].name, in->model) == 0)
                    break;
            if (m == tb->n_models) {
                kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__NO_SUCH_MODEL,
                                      "no such model", "see `kpuctl model list`");
                return;
            }
            snprintf(next.model, sizeof(next.model), "%s", in->model);
        } else if (strcmp(f, "threshold") == 0 || strcmp(f, "nms") == 0) {
            float v = f[0] == 't' ? in->threshold : in->nms;
            if (!(v >= 0.0f && v <= 1.0f)) {
                kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT,
                                      f[0] == 't' ? "threshold must be within 0..1"
                                                  : "nms must be within 0..1",
                                      NULL);
                return;
            }
            if (f[0] == 't')
                next.threshold = v;
            else
                next.nms = v;
        } else if (strcmp(f, "anchors") == 0) {
            if (in->n_anchors > 10 || in->n_anchors % 2) {
                kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT,
                                      "anchors: up to 5 pairs", NULL);
                return;
            }
            memcpy(next.anchors, in->anchors, in->n_anchors * sizeof(float));
            next.n_anchors = in->n_anchors;
        } else if (strcmp(f, "max_boxes") == 0) {
            next.max_boxes = in->max_boxes;
        } else if (strcmp(f, "fps_cap") == 0) {
            next.fps_cap = in->fps_cap;
        } else if (strcmp(f, "roi") == 0) {
            next.has_roi = in->roi != NULL;
            if (in->roi)
                next.roi = *in->roi;
        } else {
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT,
                                  "unknown config field", NULL);
            return;
        }
    }
    tb->cfg[i] = next;
    reply_config(tb, req, i);
}

static void do_list_models(struct tb *tb, struct kpud_ipc_request *req)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__ModelList ml = KPU__IPC__V1__MODEL_LIST__INIT;
    Kpu__Ipc__V1__ModelInfo infos[TB_MAX_MODELS], *ptrs[TB_MAX_MODELS];
    char *devs[TB_MAX_MODELS][2], *sel[TB_MAX_MODELS][2];

    for (size_t m = 0; m < tb->n_models; m++) {
        struct tb_model *md = &tb->models[m];
        kpu__ipc__v1__model_info__init(&infos[m]);
        infos[m].name = md->name;
        infos[m].size = md->size;
        infos[m].crc32c = md->crc;
        infos[m].manifest = md->manifest;
        infos[m].devices = devs[m];
        infos[m].selected_on = sel[m];
        if (md->on_a)
            devs[m][infos[m].n_devices++] = (char *)TB_DEVICE_A;
        if (md->on_b)
            devs[m][infos[m].n_devices++] = (char *)TB_DEVICE_B;
        if (md->selected_a)
            sel[m][infos[m].n_selected_on++] = (char *)TB_DEVICE_A;
        if (md->selected_b)
            sel[m][infos[m].n_selected_on++] = (char *)TB_DEVICE_B;
        ptrs[m] = &infos[m];
    }
    ml.models = ptrs;
    ml.n_models = tb->n_models;
    out.body_case = KPU__IPC__V1__FRAME__BODY_MODEL_LIST;
    out.model_list = &ml;
    kpud_ipc_reply(req, &out);
}

static void reply_upload_state(struct tb *tb, struct kpud_ipc_request *req)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__UploadState us = KPU__IPC__V1__UPLOAD_STATE__INIT;

    us.upload_id = tb->up.id;
    us.next_offset = tb->up.next;
    us.size = tb->up.size;
    out.body_case = KPU__IPC__V1__FRAME__BODY_UPLOAD_STATE;
    out.upload_state = &us;
    kpud_ipc_reply(req, &out);
}

/* The CRC the client computes (docs/protocol.md §1, CRC-32C). */
static uint32_t crc32c(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

static void do_upload_begin(struct tb *tb, struct kpud_ipc_request *req,
                            const Kpu__Ipc__V1__ModelUploadBegin *b)
{
    if (dev_index(b->device) < 0) {
        reply_no_device(req, b->device);
        return;
    }
    if (!b->name[0] || strlen(b->name) >= sizeof(tb->up.name) || b->size > TB_MAX_UPLOAD) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT,
                              "model name (1..31 characters) or size (up to 8 MiB) out of range",
                              NULL);
        return;
    }
    if (tb->up.id && strcmp(tb->up.name, b->name) == 0 && tb->up.size == b->size &&
        tb->up.crc == b->crc32c && strcmp(tb->up.device, b->device) == 0) {
        reply_upload_state(tb, req); /* resume */
        return;
    }
    free(tb->up.buf);
    memset(&tb->up, 0, sizeof(tb->up));
    tb->up.buf = malloc(b->size ? b->size : 1);
    if (!tb->up.buf) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INTERNAL, "out of memory", NULL);
        return;
    }
    tb->up.id = ++tb->next_upload_id;
    snprintf(tb->up.device, sizeof(tb->up.device), "%s", b->device);
    snprintf(tb->up.name, sizeof(tb->up.name), "%s", b->name);
    tb->up.size = b->size;
    tb->up.crc = b->crc32c;
    reply_upload_state(tb, req);
}

static void do_upload_chunk(struct tb *tb, struct kpud_ipc_request *req,
                            const Kpu__Ipc__V1__ModelUploadChunk *c)
{
    if (!tb->up.id || c->upload_id != tb->up.id) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__NOT_FOUND, "no such upload",
                              "begin the upload again");
        return;
    }
    if (c->offset != tb->up.next || c->data.len > tb->up.size - tb->up.next) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INVALID_ARGUMENT,
                              "chunk at the wrong offset or past the end", NULL);
        return;
    }
    if (c->data.len)
        memcpy(tb->up.buf + c->offset, c->data.data, c->data.len);
    tb->up.next += (uint32_t)c->data.len;
    reply_upload_state(tb, req);
}

static void do_upload_commit(struct tb *tb, struct kpud_ipc_request *req,
                             const Kpu__Ipc__V1__ModelUploadCommit *c)
{
    struct tb_model *m;

    if (!tb->up.id || c->upload_id != tb->up.id) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__NOT_FOUND, "no such upload", NULL);
        return;
    }
    if (tb->up.next != tb->up.size || crc32c(tb->up.buf, tb->up.size) != tb->up.crc) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__DEVICE_ERROR,
                              "CRC mismatch or upload incomplete", "upload the file again");
        return;
    }
    if (tb->n_models == TB_MAX_MODELS) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__LIMIT_EXCEEDED, "model store full",
                              "remove a model first");
        return;
    }
    m = &tb->models[tb->n_models++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", tb->up.name);
    m->size = tb->up.size;
    m->crc = tb->up.crc;
    if (dev_index(tb->up.device) == 0)
        m->on_a = 1;
    else
        m->on_b = 1;
    free(tb->up.buf);
    memset(&tb->up, 0, sizeof(tb->up));
    kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__OK, "model stored", NULL);
}

static struct tb_model *find_model(struct tb *tb, const char *name)
{
    for (size_t m = 0; m < tb->n_models; m++)
        if (strcmp(tb->models[m].name, name) == 0)
            return &tb->models[m];
    return NULL;
}

static void reply_record(struct tb *tb, struct kpud_ipc_request *req, int i)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__RecordState rs = KPU__IPC__V1__RECORD_STATE__INIT;

    rs.device = (char *)(i == 0 ? TB_DEVICE_A : TB_DEVICE_B);
    rs.recording = tb->recording[i];
    rs.path = tb->rec_path[i];
    rs.bytes = tb->recording[i] ? 0 : 4096;
    out.body_case = KPU__IPC__V1__FRAME__BODY_RECORD_STATE;
    out.record_state = &rs;
    kpud_ipc_reply(req, &out);
}

static void reply_report(struct kpud_ipc_request *req, uint64_t rows, int dry)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;
    Kpu__Ipc__V1__RetentionReport rr = KPU__IPC__V1__RETENTION_REPORT__INIT;

    rr.rows_deleted = rows;
    rr.oldest_kept_ns = TB_TIME_BASE_NS + 1000000ll;
    rr.db_bytes = 123456;
    rr.dry_run = dry;
    out.body_case = KPU__IPC__V1__FRAME__BODY_RETENTION_REPORT;
    out.retention_report = &rr;
    kpud_ipc_reply(req, &out);
}

static void reply_retention(struct tb *tb, struct kpud_ipc_request *req)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;
    out.body_case = KPU__IPC__V1__FRAME__BODY_RETENTION;
    out.retention = &tb->ret;
    kpud_ipc_reply(req, &out);
}

static void handle(struct tb *tb, struct kpud_ipc_request *req, const Kpu__Ipc__V1__Frame *f)
{
    Kpu__Ipc__V1__Frame out = KPU__IPC__V1__FRAME__INIT;

    switch (f->body_case) {
    case KPU__IPC__V1__FRAME__BODY_LIST_DEVICES: {
        Kpu__Ipc__V1__DeviceList dl = KPU__IPC__V1__DEVICE_LIST__INIT;
        Kpu__Ipc__V1__DeviceInfo d[2], *p[2] = {&d[0], &d[1]};
        fill_device(&d[0], 0);
        fill_device(&d[1], 1);
        dl.devices = p;
        dl.n_devices = 2;
        out.body_case = KPU__IPC__V1__FRAME__BODY_DEVICE_LIST;
        out.device_list = &dl;
        kpud_ipc_reply(req, &out);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_GET_DEVICE: {
        Kpu__Ipc__V1__DeviceInfo d;
        int i = dev_index(f->get_device->device);
        if (i < 0) {
            reply_no_device(req, f->get_device->device);
            return;
        }
        fill_device(&d, i);
        out.body_case = KPU__IPC__V1__FRAME__BODY_DEVICE_INFO;
        out.device_info = &d;
        kpud_ipc_reply(req, &out);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_GET_STATS: {
        Kpu__Ipc__V1__Stats s = KPU__IPC__V1__STATS__INIT;
        struct kpud_ipc_stats st = {0};
        if (tb->srv)
            kpud_ipc_server_stats(tb->srv, &st);
        s.uptime_ms = 12345;
        s.devices = 2;
        s.clients = st.clients;
        s.frames_received = 1000;
        s.detections_stored = TB_HISTORY_ROWS;
        s.frames_lost = 2;
        s.link_errors = 0;
        s.events_dropped = st.events_dropped;
        s.db_bytes = 123456;
        s.db_rows = TB_HISTORY_ROWS;
        s.db_batches = 40;
        s.rss_bytes = 3 * 1024 * 1024;
        out.body_case = KPU__IPC__V1__FRAME__BODY_STATS;
        out.stats = &s;
        kpud_ipc_reply(req, &out);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_QUERY:
        do_query(tb, req, f->query);
        return;
    case KPU__IPC__V1__FRAME__BODY_GET_SNAPSHOT: {
        Kpu__Ipc__V1__Snapshot s = KPU__IPC__V1__SNAPSHOT__INIT;
        Kpu__Ipc__V1__Box b = KPU__IPC__V1__BOX__INIT, *bp = &b;
        uint8_t px[3 * TB_SNAPSHOT_W * TB_SNAPSHOT_H];
        int i = dev_index(f->get_snapshot->device);
        if (i < 0) {
            reply_no_device(req, f->get_snapshot->device);
            return;
        }
        if (i == 1) {
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__DEVICE_OFFLINE,
                                  "device is not streaming", "start it with `kpuctl reset`");
            return;
        }
        for (uint32_t k = 0; k < TB_SNAPSHOT_W * TB_SNAPSHOT_H; k++) {
            px[k] = (uint8_t)(k * 5);                                                /* R */
            px[TB_SNAPSHOT_W * TB_SNAPSHOT_H + k] = (uint8_t)(255 - k * 5);          /* G */
            px[2 * TB_SNAPSHOT_W * TB_SNAPSHOT_H + k] = (uint8_t)(k % 2 ? 200 : 50); /* B */
        }
        b.class_id = 0;
        b.label = (char *)"face";
        b.score = 0.75f;
        b.x = 2;
        b.y = 1;
        b.w = 4;
        b.h = 3;
        s.device = (char *)TB_DEVICE_A;
        s.width = TB_SNAPSHOT_W;
        s.height = TB_SNAPSHOT_H;
        s.format = KPU__IPC__V1__IMAGE_FORMAT__IMAGE_RGB888_PLANAR;
        s.data.data = px;
        s.data.len = sizeof(px);
        s.boxes = &bp;
        s.n_boxes = 1;
        s.frame_seq = 77;
        out.body_case = KPU__IPC__V1__FRAME__BODY_SNAPSHOT;
        out.snapshot = &s;
        kpud_ipc_reply(req, &out);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_GET_CONFIG: {
        int i = dev_index(f->get_config->device);
        if (i < 0)
            reply_no_device(req, f->get_config->device);
        else
            reply_config(tb, req, i);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_SET_CONFIG:
        do_set_config(tb, req, f->set_config);
        return;
    case KPU__IPC__V1__FRAME__BODY_LIST_MODELS:
        do_list_models(tb, req);
        return;
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_BEGIN:
        do_upload_begin(tb, req, f->model_upload_begin);
        return;
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_CHUNK:
        do_upload_chunk(tb, req, f->model_upload_chunk);
        return;
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_COMMIT:
        do_upload_commit(tb, req, f->model_upload_commit);
        return;
    case KPU__IPC__V1__FRAME__BODY_SELECT_MODEL: {
        struct tb_model *m = find_model(tb, f->select_model->name);
        int i = dev_index(f->select_model->device);
        if (i < 0) {
            reply_no_device(req, f->select_model->device);
            return;
        }
        if (!m) {
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__NO_SUCH_MODEL, "no such model",
                                  "see `kpuctl model list`");
            return;
        }
        for (size_t k = 0; k < tb->n_models; k++) {
            if (i == 0)
                tb->models[k].selected_a = &tb->models[k] == m;
            else
                tb->models[k].selected_b = &tb->models[k] == m;
        }
        snprintf(tb->cfg[i].model, sizeof(tb->cfg[i].model), "%s", m->name);
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__OK, "model selected", NULL);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_DELETE_MODEL: {
        struct tb_model *m = find_model(tb, f->delete_model->name);
        if (!m) {
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__NO_SUCH_MODEL, "no such model",
                                  "see `kpuctl model list`");
            return;
        }
        if (m->selected_a || m->selected_b) {
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__BUSY,
                                  "model is current on a device", "select another model first");
            return;
        }
        *m = tb->models[--tb->n_models];
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__OK, "model removed", NULL);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_RESET_DEVICE:
        if (dev_index(f->reset_device->device) < 0)
            reply_no_device(req, f->reset_device->device);
        else
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__OK,
                                  f->reset_device->hard ? "hard reset done" : "reset done", NULL);
        return;
    case KPU__IPC__V1__FRAME__BODY_GET_RETENTION:
        reply_retention(tb, req);
        return;
    case KPU__IPC__V1__FRAME__BODY_SET_RETENTION:
        if (f->set_retention->retention) {
            tb->ret.max_age_s = f->set_retention->retention->max_age_s;
            tb->ret.max_bytes = f->set_retention->retention->max_bytes;
        }
        reply_retention(tb, req);
        return;
    case KPU__IPC__V1__FRAME__BODY_APPLY_RETENTION:
        reply_report(req, tb->ret.max_age_s ? 100 : 0, f->apply_retention->dry_run);
        return;
    case KPU__IPC__V1__FRAME__BODY_DELETE_HISTORY: {
        uint64_t n = 0;
        for (uint32_t i = 1; i <= TB_HISTORY_ROWS; i++)
            n += (uint64_t)row_matches(i, f->delete_history->filter, f->delete_history->since_ns,
                                       f->delete_history->until_ns);
        reply_report(req, n, f->delete_history->dry_run);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_RECORD_START:
    case KPU__IPC__V1__FRAME__BODY_RECORD_STOP: {
        int start = f->body_case == KPU__IPC__V1__FRAME__BODY_RECORD_START;
        const char *dev = start ? f->record_start->device : f->record_stop->device;
        int i = dev_index(dev);
        if (i < 0) {
            reply_no_device(req, dev);
            return;
        }
        if (start && tb->recording[i]) {
            kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__BUSY, "already recording",
                                  "stop the recording first");
            return;
        }
        tb->recording[i] = start;
        if (start)
            snprintf(tb->rec_path[i], sizeof(tb->rec_path[i]), "%s",
                     f->record_start->path[0] ? f->record_start->path : "capture.kcap");
        reply_record(tb, req, i);
        return;
    }
    case KPU__IPC__V1__FRAME__BODY_AGENT_CONTROL: {
        Kpu__Ipc__V1__AgentInfo ai = KPU__IPC__V1__AGENT_INFO__INIT;
        int i = dev_index(f->agent_control->device);
        if (i < 0) {
            reply_no_device(req, f->agent_control->device);
            return;
        }
        ai.device = f->agent_control->device;
        ai.agent_version = (char *)"0.1.0";
        ai.expected_version = (char *)"0.1.0";
        ai.progress_permille =
            f->agent_control->action == KPU__IPC__V1__AGENT_ACTION__AGENT_VERSION ? 0 : 1000;
        out.body_case = KPU__IPC__V1__FRAME__BODY_AGENT_INFO;
        out.agent_info = &ai;
        kpud_ipc_reply(req, &out);
        return;
    }
    default:
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__UNKNOWN_REQUEST,
                              "the test backend does not serve this request", NULL);
        return;
    }
}

static void delayed_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void unlink_delayed(struct tb *tb, struct tb_delayed *d)
{
    for (struct tb_delayed **pp = &tb->delayed; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            return;
        }
    }
}

static void delayed_cb(uv_timer_t *t)
{
    struct tb_delayed *d = t->data;
    unlink_delayed(d->tb, d);
    handle(d->tb, d->req, d->frame);
    uv_close((uv_handle_t *)&d->timer, delayed_close_cb);
}

static void tb_request(void *ctx, struct kpud_ipc_request *req, const Kpu__Ipc__V1__Frame *frame)
{
    struct tb *tb = ctx;
    struct tb_delayed *d;

    tb->requests++;
    if (!tb->delay_ms) {
        handle(tb, req, frame);
        return;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        kpud_ipc_reply_status(req, KPU__IPC__V1__STATUS_CODE__INTERNAL, "out of memory", NULL);
        return;
    }
    d->tb = tb;
    d->req = req;
    d->frame = frame;
    uv_timer_init(tb->loop, &d->timer);
    d->timer.data = d;
    d->next = tb->delayed;
    tb->delayed = d;
    uv_timer_start(&d->timer, delayed_cb, tb->delay_ms, 0);
}

const struct kpud_ipc_backend *tb_backend(void)
{
    static const struct kpud_ipc_backend b = {.request = tb_request};
    return &b;
}

void tb_free(struct tb *tb)
{
    if (!tb)
        return;
    while (tb->delayed) {
        struct tb_delayed *d = tb->delayed;
        tb->delayed = d->next;
        kpud_ipc_reply_status(d->req, KPU__IPC__V1__STATUS_CODE__INTERNAL, "shutting down", NULL);
        uv_close((uv_handle_t *)&d->timer, delayed_close_cb);
    }
    free(tb->up.buf);
    free(tb);
}
