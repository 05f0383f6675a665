/* SPDX-License-Identifier: MIT */
/*
 * The link server: klink frames from kfa_hal_uart_read, decoded with nanopb into static
 * structs and dispatched by the frame type byte; replies carry KLINK_FLAG_RESPONSE and
 * ref = request seq. Also HELLO, CONFIGURE / CONFIG_GET and the persisted configuration,
 * START/STOP, heartbeats, RESET, SET_BAUD and LogLine. docs/agent.md has the rules.
 */
#include "agent_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "klink.h"
#include "util.h"

/* The core's status codes are the wire's. */
_Static_assert((int)KFA_ST_CAMERA_ERROR == (int)kpu_link_v1_StatusCode_STATUS_CAMERA_ERROR,
               "status");
_Static_assert((int)KFA_ST_BAD_OFFSET == (int)kpu_link_v1_StatusCode_STATUS_BAD_OFFSET, "status");
_Static_assert((int)KFA_SENSOR_GC0328 == (int)kpu_link_v1_Sensor_SENSOR_GC0328, "sensor");
_Static_assert((int)KFA_RESET_SOFTWARE == (int)kpu_link_v1_ResetCause_RESET_CAUSE_SOFTWARE,
               "reset cause");

#define RX_CHUNK 512u   /* bytes read from the uart per call */
#define RX_BUDGET 8192u /* bytes handled per poll, so the pipeline keeps its turn */
#define BAUD_MIN 9600u  /* SetBaud range; the K210 UARTHS divides 390 MHz down */
#define BAUD_MAX 4000000u
#define FPS_CAP_MAX 1000u
#define MAX_BOXES 32u /* link.options: DetectionFrame.boxes max_count */
#define ROI_MAX 65535u

struct kfa_agent kfa_g;

static uint8_t rx_frame[KLINK_MAX_FRAME];
static uint8_t rx_bytes[RX_CHUNK];
static struct klink_decoder rx_dec;
static uint8_t tx_payload[KLINK_MAX_PAYLOAD];
static uint8_t tx_wire[KLINK_MAX_ENCODED];

/* Decoded request; one at a time. */
static union {
    kpu_link_v1_HostHello host_hello;
    kpu_link_v1_Configure configure;
    kpu_link_v1_StreamControl stream;
    kpu_link_v1_Heartbeat heartbeat;
    kpu_link_v1_SnapshotRequest snap_req;
    kpu_link_v1_SnapshotCredit snap_credit;
    kpu_link_v1_ModelUploadBegin up_begin;
    kpu_link_v1_ModelUploadChunk up_chunk;
    kpu_link_v1_ModelUploadCommit up_commit;
    kpu_link_v1_ModelListRequest list;
    kpu_link_v1_ModelSelect select;
    kpu_link_v1_ModelDelete del;
    kpu_link_v1_Reset reset;
    kpu_link_v1_SetBaud baud;
    kpu_link_v1_ConfigGet config_get;
    kpu_link_v1_ImageWriteBegin img_begin;
    kpu_link_v1_ImageWriteCommit img_commit;
} req;

/* Replies built here (models.c and pipeline.c have their own). */
static union {
    kpu_link_v1_AgentHello hello;
    kpu_link_v1_Configure configure;
    kpu_link_v1_Heartbeat heartbeat;
} rep;
static kpu_link_v1_Status status_msg;
static kpu_link_v1_LogLine log_msg;
static kpu_link_v1_Configure cfg_rec_msg;
static uint8_t cfg_rec[kpu_link_v1_Configure_size];

/* ---- sending ---------------------------------------------------------------------- */

int kfa_send(uint8_t type, uint8_t flags, uint16_t ref, const pb_msgdesc_t *fields, const void *msg)
{
    pb_ostream_t os = pb_ostream_from_buffer(tx_payload, sizeof(tx_payload));
    size_t n;
    int r;

    if (kfa_g.closed)
        return KFA_HAL_E_CLOSED;
    if (!pb_encode(&os, fields, msg))
        return -KFA_ST_INTERNAL;
    n = klink_encode(type, flags, kfa_g.tx_seq, ref, tx_payload, os.bytes_written, tx_wire,
                     sizeof(tx_wire));
    if (n == 0)
        return -KFA_ST_INTERNAL;
    kfa_g.tx_seq++;
    r = kfa_hal_uart_write(tx_wire, n);
    if (r == KFA_HAL_E_CLOSED)
        kfa_g.closed = 1;
    if (r < 0) {
        kfa_g.stats.tx_errors++;
        return r;
    }
    return 0;
}

void kfa_reply_status(uint16_t ref, int code, const char *text)
{
    memset(&status_msg, 0, sizeof(status_msg));
    status_msg.code = (kpu_link_v1_StatusCode)code;
    kfa_strlcpy(status_msg.text, text ? text : "", sizeof(status_msg.text));
    (void)kfa_send(kpu_link_v1_MsgType_MSG_STATUS, KLINK_FLAG_RESPONSE, ref,
                   kpu_link_v1_Status_fields, &status_msg);
}

void kfa_log(int level, const char *fmt, ...)
{
    va_list ap;

    memset(&log_msg, 0, sizeof(log_msg));
    log_msg.level = (kpu_link_v1_LogLevel)level;
    va_start(ap, fmt);
    vsnprintf(log_msg.text, sizeof(log_msg.text), fmt, ap);
    va_end(ap);
    (void)kfa_send(kpu_link_v1_MsgType_MSG_LOG_LINE, 0, 0, kpu_link_v1_LogLine_fields, &log_msg);
}

/* ---- HELLO and heartbeat ------------------------------------------------------------ */

static void send_hello(uint8_t flags, uint16_t ref)
{
    kpu_link_v1_AgentHello *h = &rep.hello;
    uint32_t board = kfa_hal_board();
    size_t uid;

    memset(h, 0, sizeof(*h));
    h->protocol_major = KFA_PROTOCOL_MAJOR;
    h->protocol_minor = KFA_PROTOCOL_MINOR;
    kfa_strlcpy(h->agent_version, KFA_AGENT_VERSION, sizeof(h->agent_version));
    h->board = (kpu_link_v1_Board)board;
    uid = kfa_hal_unique_id(h->chip_uid.bytes, sizeof(h->chip_uid.bytes));
    h->chip_uid.size =
        (pb_size_t)(uid > sizeof(h->chip_uid.bytes) ? sizeof(h->chip_uid.bytes) : uid);
    h->sensor = (kpu_link_v1_Sensor)kfa_hal_camera_sensor();
    h->kpu_ram_bytes = KFA_KPU_RAM_SIZE;
    h->flash_bytes = kfa_hal_flash_size();
    for (unsigned i = 0; i < kfa_store_count() && i < KFA_STORE_MAX_MODELS; i++) {
        const struct kfa_store_entry *e = kfa_store_entry_at(i);

        kfa_strlcpy(h->models[i].name, e->name, sizeof(h->models[i].name));
        h->models[i].size = e->size;
        h->models[i].crc32c = e->crc32c;
        h->models[i].selected = strcmp(e->name, kfa_store_selected()) == 0;
        h->models_count++;
    }
    h->reset_cause = (kpu_link_v1_ResetCause)kfa_hal_reset_cause();
    h->features = kpu_link_v1_Feature_FEATURE_SNAPSHOT | kpu_link_v1_Feature_FEATURE_MODEL_STORE |
                  kpu_link_v1_Feature_FEATURE_BAUD_SWITCH |
                  kpu_link_v1_Feature_FEATURE_PERSIST_CONFIG |
                  kpu_link_v1_Feature_FEATURE_IMAGE_WRITE;
    /* Boards past QEMU in the Board enum are real K210s with a KPU. */
    if (board > kpu_link_v1_Board_BOARD_QEMU)
        h->features |= kpu_link_v1_Feature_FEATURE_HW_KPU;
    h->max_payload = KLINK_MAX_PAYLOAD;
    h->baud = kfa_hal_uart_baud();
    (void)kfa_send(kpu_link_v1_MsgType_MSG_AGENT_HELLO, flags, ref, kpu_link_v1_AgentHello_fields,
                   h);
}

static void send_heartbeat(uint64_t now)
{
    kpu_link_v1_Heartbeat *hb = &rep.heartbeat;
    uint64_t span = now - kfa_g.last_hb_us;

    memset(hb, 0, sizeof(*hb));
    hb->uptime_ms = now / 1000u;
    if (span > 0)
        hb->fps_milli = (uint32_t)((uint64_t)kfa_g.interval_frames * 1000000000ull / span);
    if (kfa_g.interval_frames)
        hb->kpu_us = (uint32_t)(kfa_g.interval_kpu_us / kfa_g.interval_frames);
    hb->frames_dropped = kfa_g.stats.frames_dropped;
    hb->free_bytes = kfa_hal_free_ram();
    hb->streaming = kfa_g.streaming != 0;
    hb->rx_errors = kfa_g.stats.rx_errors;
    kfa_g.interval_frames = 0;
    kfa_g.interval_kpu_us = 0;
    kfa_g.last_hb_us = now;
    (void)kfa_send(kpu_link_v1_MsgType_MSG_HEARTBEAT, 0, 0, kpu_link_v1_Heartbeat_fields, hb);
}

/* ---- configuration --------------------------------------------------------------- */

static int in_unit(float v)
{
    return v >= 0.0f && v <= 1.0f; /* false for NaN */
}

/* Check a Configure and turn it into *out. 0 or -KFA_ST_BAD_REQUEST with text. */
static int cfg_from_msg(const kpu_link_v1_Configure *m, struct kfa_cfg *out, char *text, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (!in_unit(m->threshold)) {
        kfa_fmt(text, cap, "threshold: want 0..1");
        return -KFA_ST_BAD_REQUEST;
    }
    if (!in_unit(m->nms)) {
        kfa_fmt(text, cap, "nms: want 0..1");
        return -KFA_ST_BAD_REQUEST;
    }
    if (m->anchors_count % 2u || m->anchors_count / 2u > KFA_YOLO2_MAX_ANCHORS) {
        kfa_fmt(text, cap, "anchors: want (w, h) pairs, got %u values", (unsigned)m->anchors_count);
        return -KFA_ST_BAD_REQUEST;
    }
    for (unsigned i = 0; i < m->anchors_count; i++) {
        if (!(m->anchors[i] > 0.0f && m->anchors[i] <= 1000.0f)) {
            kfa_fmt(text, cap, "anchors[%u]: want > 0 and <= 1000", i);
            return -KFA_ST_BAD_REQUEST;
        }
        out->anchors[i] = m->anchors[i];
    }
    if (m->max_boxes > MAX_BOXES) {
        kfa_fmt(text, cap, "max_boxes: want 1..%u (0 = manifest)", MAX_BOXES);
        return -KFA_ST_BAD_REQUEST;
    }
    if (m->fps_cap > FPS_CAP_MAX) {
        kfa_fmt(text, cap, "fps_cap: want 0..%u", FPS_CAP_MAX);
        return -KFA_ST_BAD_REQUEST;
    }
    if (m->has_roi && (m->roi.w == 0 || m->roi.h == 0 || m->roi.x > ROI_MAX || m->roi.y > ROI_MAX ||
                       m->roi.w > ROI_MAX || m->roi.h > ROI_MAX)) {
        kfa_fmt(text, cap, "roi: want w, h >= 1 and every field <= %u", ROI_MAX);
        return -KFA_ST_BAD_REQUEST;
    }
    out->threshold = m->threshold;
    out->nms = m->nms;
    out->anchor_floats = m->anchors_count;
    out->max_boxes = m->max_boxes;
    out->fps_cap = m->fps_cap;
    out->has_roi = m->has_roi;
    out->roi = m->roi;
    return 0;
}

static void cfg_to_msg(const struct kfa_cfg *c, kpu_link_v1_Configure *m)
{
    memset(m, 0, sizeof(*m));
    kfa_strlcpy(m->model, kfa_store_selected(), sizeof(m->model));
    m->threshold = c->threshold;
    m->nms = c->nms;
    m->anchors_count = (pb_size_t)c->anchor_floats;
    memcpy(m->anchors, c->anchors, sizeof(m->anchors));
    m->max_boxes = c->max_boxes;
    m->fps_cap = c->fps_cap;
    m->has_roi = c->has_roi;
    m->roi = c->roi;
    m->persist = c->persisted;
}

static int cfg_persist(const struct kfa_cfg *c)
{
    pb_ostream_t os = pb_ostream_from_buffer(cfg_rec, sizeof(cfg_rec));
    uint32_t gen;

    cfg_to_msg(c, &cfg_rec_msg);
    cfg_rec_msg.persist = true;
    if (!pb_encode(&os, kpu_link_v1_Configure_fields, &cfg_rec_msg))
        return -KFA_ST_INTERNAL;
    return kfa_flashrec_store(KFA_STORE_CFG_A, KFA_STORE_CFG_B, KFA_STORE_CFG_MAGIC, cfg_rec,
                              os.bytes_written, &gen);
}

/* Boot: the persisted configuration, if a valid one is in flash. */
static void cfg_load(void)
{
    uint32_t gen;
    int n = kfa_flashrec_load(KFA_STORE_CFG_A, KFA_STORE_CFG_B, KFA_STORE_CFG_MAGIC, cfg_rec,
                              sizeof(cfg_rec), &gen);
    pb_istream_t is;
    char why[KFA_TEXT_MAX] = "record does not decode";

    if (n < 0)
        return;
    is = pb_istream_from_buffer(cfg_rec, (size_t)n);
    if (!pb_decode(&is, kpu_link_v1_Configure_fields, &cfg_rec_msg) ||
        cfg_from_msg(&cfg_rec_msg, &kfa_g.cfg, why, sizeof(why)) != 0) {
        memset(&kfa_g.cfg, 0, sizeof(kfa_g.cfg));
        kfa_log(kpu_link_v1_LogLevel_LOG_WARNING, "persisted config ignored: %s", why);
        return;
    }
    kfa_g.cfg.persisted = true;
}

static void handle_configure(uint16_t seq, const kpu_link_v1_Configure *m)
{
    char text[KFA_TEXT_MAX] = "";
    struct kfa_cfg c;
    struct kfa_decode d;
    int r;

    r = cfg_from_msg(m, &c, text, sizeof(text));
    if (r < 0)
        goto reply;
    if (m->model[0] && !kfa_store_name_valid(m->model)) {
        r = -KFA_ST_BAD_REQUEST;
        kfa_fmt(text, sizeof(text), "model: want [A-Za-z0-9._-]{1,31}");
        goto reply;
    }
    if (m->model[0] && !kfa_store_find(m->model)) {
        r = -KFA_ST_NO_SUCH_MODEL;
        kfa_fmt(text, sizeof(text), "model %s is not in the store", m->model);
        goto reply;
    }
    if (m->model[0] && (strcmp(m->model, kfa_store_selected()) != 0 || !kfa_g.model_loaded)) {
        r = kfa_model_activate(m->model, text, sizeof(text));
        if (r < 0)
            goto reply;
        r = kfa_store_select(m->model);
        if (r < 0) {
            kfa_fmt(text, sizeof(text), "flash write of the selection failed");
            goto reply;
        }
    }
    if (kfa_g.model_loaded) {
        /* A configuration the model cannot decode with is refused, not stored. */
        r = kfa_decode_compute(&c, &d, text, sizeof(text));
        if (r < 0)
            goto reply;
        kfa_g.dec = d;
    }
    c.persisted = m->persist ? true : false;
    kfa_g.cfg = c;
    if (m->persist) {
        r = cfg_persist(&c);
        if (r < 0) {
            kfa_g.cfg.persisted = false;
            kfa_fmt(text, sizeof(text), "applied, but persisting it failed");
            goto reply;
        }
    }
    r = 0;
reply:
    kfa_reply_status(seq, -r, text);
}

static void handle_config_get(uint16_t seq)
{
    cfg_to_msg(&kfa_g.cfg, &rep.configure);
    (void)kfa_send(kpu_link_v1_MsgType_MSG_CONFIGURE, KLINK_FLAG_RESPONSE, seq,
                   kpu_link_v1_Configure_fields, &rep.configure);
}

/* ---- streaming, reset, baud --------------------------------------------------------- */

static void handle_stream(uint16_t seq, const kpu_link_v1_StreamControl *m)
{
    if (m->action == kpu_link_v1_StreamAction_STREAM_STOP) {
        kfa_g.streaming = 0;
        kfa_reply_status(seq, KFA_ST_OK, "");
        return;
    }
    if (m->action != kpu_link_v1_StreamAction_STREAM_START) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "action: want STOP or START");
        return;
    }
    if (!kfa_g.model_loaded) {
        kfa_reply_status(seq, KFA_ST_NO_SUCH_MODEL, "no model selected");
        return;
    }
    if (!kfa_g.dec.ready) {
        kfa_reply_status(seq, KFA_ST_UNSUPPORTED, kfa_g.dec.why);
        return;
    }
    if (kfa_hal_camera_sensor() == KFA_SENSOR_NONE) {
        kfa_reply_status(seq, KFA_ST_CAMERA_ERROR, "no camera sensor");
        return;
    }
    if (!kfa_g.streaming)
        kfa_g.last_frame_us = 0;
    kfa_g.streaming = 1;
    kfa_reply_status(seq, KFA_ST_OK, "");
}

static void handle_reset(uint16_t seq, const kpu_link_v1_Reset *m)
{
    if (m->mode != kpu_link_v1_ResetMode_RESET_APP && m->mode != kpu_link_v1_ResetMode_RESET_ISP) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "mode: want APP or ISP");
        return;
    }
    kfa_reply_status(seq, KFA_ST_OK, "");
    kfa_hal_reset(m->mode == kpu_link_v1_ResetMode_RESET_ISP);
}

static void handle_set_baud(uint16_t seq, const kpu_link_v1_SetBaud *m)
{
    if (m->baud < BAUD_MIN || m->baud > BAUD_MAX) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "baud: want 9600..4000000");
        return;
    }
    kfa_reply_status(seq, KFA_ST_OK, "");
    if (kfa_hal_uart_set_baud(m->baud) != 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "baud %u refused by the uart", (unsigned)m->baud);
}

/* ---- dispatch --------------------------------------------------------------------- */

typedef void (*handler_fn)(uint16_t seq, const void *msg);

static void h_hello(uint16_t seq, const void *msg)
{
    const kpu_link_v1_HostHello *m = msg;

    if (m->protocol_major == 0) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "protocol_major: missing");
        return;
    }
    kfa_g.connected = 1;
    kfa_g.last_hb_us = kfa_hal_time_us();
    kfa_image_write_abandon(); /* a new handshake: whoever started it is gone */
    send_hello(KLINK_FLAG_RESPONSE, seq);
}

static void h_configure(uint16_t seq, const void *msg)
{
    handle_configure(seq, msg);
}

static void h_config_get(uint16_t seq, const void *msg)
{
    handle_config_get(seq);
}

static void h_stream(uint16_t seq, const void *msg)
{
    handle_stream(seq, msg);
}

static void h_heartbeat(uint16_t seq, const void *msg)
{
    /* The host's heartbeat only proves it is there (last_host_us, set by the caller). */
}

static void h_snap_req(uint16_t seq, const void *msg)
{
    kfa_handle_snapshot_request(seq, msg);
}

static void h_snap_credit(uint16_t seq, const void *msg)
{
    kfa_handle_snapshot_credit(msg);
}

static void h_up_begin(uint16_t seq, const void *msg)
{
    kfa_handle_upload_begin(seq, msg);
}

static void h_up_chunk(uint16_t seq, const void *msg)
{
    kfa_handle_upload_chunk(seq, msg);
}

static void h_up_commit(uint16_t seq, const void *msg)
{
    kfa_handle_upload_commit(seq, msg);
}

static void h_list(uint16_t seq, const void *msg)
{
    kfa_handle_model_list(seq);
}

static void h_select(uint16_t seq, const void *msg)
{
    kfa_handle_model_select(seq, msg);
}

static void h_delete(uint16_t seq, const void *msg)
{
    kfa_handle_model_delete(seq, msg);
}

static void h_img_begin(uint16_t seq, const void *msg)
{
    kfa_handle_image_begin(seq, msg);
}

static void h_img_chunk(uint16_t seq, const void *msg)
{
    kfa_handle_image_chunk(seq, msg);
}

static void h_img_commit(uint16_t seq, const void *msg)
{
    kfa_handle_image_commit(seq, msg);
}

static void h_reset(uint16_t seq, const void *msg)
{
    handle_reset(seq, msg);
}

static void h_baud(uint16_t seq, const void *msg)
{
    handle_set_baud(seq, msg);
}

static const struct route {
    uint8_t type;
    const pb_msgdesc_t *fields;
    handler_fn fn;
} routes[] = {
    {kpu_link_v1_MsgType_MSG_HOST_HELLO, kpu_link_v1_HostHello_fields, h_hello},
    {kpu_link_v1_MsgType_MSG_CONFIGURE, kpu_link_v1_Configure_fields, h_configure},
    {kpu_link_v1_MsgType_MSG_STREAM_CONTROL, kpu_link_v1_StreamControl_fields, h_stream},
    {kpu_link_v1_MsgType_MSG_HEARTBEAT, kpu_link_v1_Heartbeat_fields, h_heartbeat},
    {kpu_link_v1_MsgType_MSG_SNAPSHOT_REQUEST, kpu_link_v1_SnapshotRequest_fields, h_snap_req},
    {kpu_link_v1_MsgType_MSG_SNAPSHOT_CREDIT, kpu_link_v1_SnapshotCredit_fields, h_snap_credit},
    {kpu_link_v1_MsgType_MSG_MODEL_UPLOAD_BEGIN, kpu_link_v1_ModelUploadBegin_fields, h_up_begin},
    {kpu_link_v1_MsgType_MSG_MODEL_UPLOAD_CHUNK, kpu_link_v1_ModelUploadChunk_fields, h_up_chunk},
    {kpu_link_v1_MsgType_MSG_MODEL_UPLOAD_COMMIT, kpu_link_v1_ModelUploadCommit_fields,
     h_up_commit},
    {kpu_link_v1_MsgType_MSG_MODEL_LIST, kpu_link_v1_ModelListRequest_fields, h_list},
    {kpu_link_v1_MsgType_MSG_MODEL_SELECT, kpu_link_v1_ModelSelect_fields, h_select},
    {kpu_link_v1_MsgType_MSG_MODEL_DELETE, kpu_link_v1_ModelDelete_fields, h_delete},
    {kpu_link_v1_MsgType_MSG_RESET, kpu_link_v1_Reset_fields, h_reset},
    {kpu_link_v1_MsgType_MSG_SET_BAUD, kpu_link_v1_SetBaud_fields, h_baud},
    {kpu_link_v1_MsgType_MSG_CONFIG_GET, kpu_link_v1_ConfigGet_fields, h_config_get},
    {kpu_link_v1_MsgType_MSG_IMAGE_WRITE_BEGIN, kpu_link_v1_ImageWriteBegin_fields, h_img_begin},
    {kpu_link_v1_MsgType_MSG_IMAGE_WRITE_CHUNK, kpu_link_v1_ModelUploadChunk_fields, h_img_chunk},
    {kpu_link_v1_MsgType_MSG_IMAGE_WRITE_COMMIT, kpu_link_v1_ImageWriteCommit_fields, h_img_commit},
};

static void dispatch(const struct klink_frame *f)
{
    const struct route *rt = NULL;
    pb_istream_t is;
    char text[KFA_TEXT_MAX];

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (routes[i].type == f->type)
            rt = &routes[i];
    kfa_g.last_host_us = kfa_hal_time_us();
    if (!rt) {
        kfa_g.stats.rx_errors++;
        kfa_fmt(text, sizeof(text), "message type %u is not a request this agent handles",
                (unsigned)f->type);
        kfa_reply_status(f->seq, KFA_ST_UNSUPPORTED, text);
        return;
    }
    memset(&req, 0, sizeof(req));
    is = pb_istream_from_buffer(f->payload, f->payload_len);
    if (!pb_decode(&is, rt->fields, &req)) {
        kfa_g.stats.rx_errors++;
        kfa_fmt(text, sizeof(text), "decode: %s", PB_GET_ERROR(&is));
        kfa_reply_status(f->seq, KFA_ST_BAD_REQUEST, text);
        return;
    }
    kfa_g.stats.requests++;
    rt->fn(f->seq, &req);
}

static void rx_step(void)
{
    size_t budget = RX_BUDGET;
    uint64_t before = rx_dec.stats.crc_errors + rx_dec.stats.malformed + rx_dec.stats.oversize;

    while (budget > 0 && !kfa_g.closed) {
        int n = kfa_hal_uart_read(rx_bytes, sizeof(rx_bytes));
        const uint8_t *p = rx_bytes;
        size_t len;
        struct klink_frame f;

        if (n == KFA_HAL_E_CLOSED) {
            kfa_g.closed = 1;
            break;
        }
        if (n <= 0)
            break;
        len = (size_t)n;
        budget = budget > len ? budget - len : 0;
        while (len > 0)
            if (klink_decode(&rx_dec, &p, &len, &f))
                dispatch(&f);
    }
    kfa_g.stats.rx_errors += (uint32_t)(rx_dec.stats.crc_errors + rx_dec.stats.malformed +
                                        rx_dec.stats.oversize - before);
}

/* ---- lifecycle -------------------------------------------------------------------- */

int kfa_agent_init(void)
{
    char text[KFA_TEXT_MAX];
    int r;

    memset(&kfa_g, 0, sizeof(kfa_g));
    klink_decoder_init(&rx_dec, rx_frame, sizeof(rx_frame));
    r = kfa_store_open();
    cfg_load();
    if (kfa_hal_camera_start(KFA_CAMERA_W, KFA_CAMERA_H) != 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "camera: %ux%u refused", KFA_CAMERA_W,
                KFA_CAMERA_H);
    send_hello(0, 0);
    if (r < 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_WARNING, "no model store: flash too small");
    if (kfa_store_selected()[0] && kfa_model_activate(kfa_store_selected(), text, sizeof(text)) < 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "model %s: %s", kfa_store_selected(), text);
    return 0;
}

int kfa_agent_poll(void)
{
    uint64_t now;

    kfa_hal_watchdog_kick();
    rx_step();
    if (kfa_g.closed)
        return KFA_HAL_E_CLOSED;
    now = kfa_hal_time_us();
    if (kfa_g.connected && now - kfa_g.last_host_us > KFA_HOST_SILENCE_US)
        kfa_g.connected = 0;
    if (kfa_g.connected && now - kfa_g.last_hb_us >= KFA_HEARTBEAT_US)
        send_heartbeat(now);
    kfa_pipeline_step();
    kfa_snapshot_step();
    return kfa_g.closed ? KFA_HAL_E_CLOSED : 0;
}

uint32_t kfa_agent_idle_us(void)
{
    uint64_t now = kfa_hal_time_us(), wait = KFA_HEARTBEAT_US;

    if (kfa_g.snap.state == 2 && kfa_g.snap.credits > 0)
        return 0;
    if (kfa_g.connected) {
        uint64_t due = kfa_g.last_hb_us + KFA_HEARTBEAT_US;

        wait = due > now ? due - now : 0;
    }
    return (uint32_t)wait;
}

int kfa_agent_run(void)
{
    kfa_agent_init();
    for (;;) {
        if (kfa_agent_poll() == KFA_HAL_E_CLOSED)
            return 0;
        kfa_hal_wait_event(kfa_agent_idle_us());
    }
}

void kfa_agent_get_stats(struct kfa_agent_stats *out)
{
    *out = kfa_g.stats;
}

int kfa_agent_streaming(void)
{
    return kfa_g.streaming;
}

int kfa_agent_model_loaded(void)
{
    return kfa_g.model_loaded;
}
