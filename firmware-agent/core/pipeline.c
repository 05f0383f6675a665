/* SPDX-License-Identifier: MIT */
/*
 * The detection pipeline (camera frame -> preprocess -> kmodel run -> YOLOv2 region decode
 * -> DetectionFrame, fire-and-forget) and snapshots (the current frame in SnapshotChunk
 * messages paced by host credits, one chunk per main-loop step so that detection frames
 * keep flowing in between).
 */
#include "agent_int.h"

#include <string.h>

#include "klink.h"
#include "util.h"

static uint8_t input_buf[KFA_INPUT_MAX] __attribute__((aligned(8)));
static struct kfa_yolo2_cand cands[KFA_CANDIDATES];
static struct kfa_box boxes[32];
static kpu_link_v1_DetectionFrame det;
static kpu_link_v1_SnapshotChunk chunk;
static void snapshot_send_chunk(void);

/* The frame a snapshot sends: copied once, so the camera can move on. */
static uint8_t snap_buf[KFA_CAMERA_W * KFA_CAMERA_H * 3u];

static uint16_t rgb565_of(uint8_t r, uint8_t g, uint8_t b)
{
    return (uint16_t)((r >> 3) << 11 | (g >> 2) << 5 | (b >> 3));
}

/* Copy the frame for a pending snapshot in the requested format; frame_seq is the
 * DetectionFrame sent for this camera frame (the host pairs boxes with the image by it). */
static void snapshot_capture(const struct kfa_frame *f, uint32_t frame_seq)
{
    struct kfa_snapshot *s = &kfa_g.snap;
    size_t plane = (size_t)f->width * f->height;

    if (plane * 3u > sizeof(snap_buf) || plane == 0) {
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "snapshot: frame %ux%u too large",
                (unsigned)f->width, (unsigned)f->height);
        s->state = 0;
        return;
    }
    if (s->format == kpu_link_v1_SnapshotFormat_SNAPSHOT_RGB888_PLANAR) {
        memcpy(snap_buf, f->rgb888, plane * 3u);
        s->total = (uint32_t)(plane * 3u);
    } else {
        for (size_t i = 0; i < plane; i++) {
            uint16_t v =
                f->rgb565 ? f->rgb565[i]
                          : rgb565_of(f->rgb888[i], f->rgb888[plane + i], f->rgb888[2 * plane + i]);

            snap_buf[2 * i] = (uint8_t)v; /* little-endian RGB565 (link.proto) */
            snap_buf[2 * i + 1] = (uint8_t)(v >> 8);
        }
        s->total = (uint32_t)(plane * 2u);
    }
    s->width = f->width;
    s->height = f->height;
    s->offset = 0;
    s->frame_seq = frame_seq;
    s->state = 2;
}

/* Run the model on one frame and fill det. 0 or negative with text. */
static int process(const struct kfa_frame *f, char *text, size_t cap)
{
    struct kfa_decode *d = &kfa_g.dec;
    struct kfa_image img = {f->rgb888, f->width, f->height, 3, KFA_PIXELS_PLANAR};
    struct kfa_prep_map map;
    struct kfa_kmodel_error err;
    const void *out;
    size_t out_len, main_len, total = 0;
    uint8_t *main_buf = kfa_model_main_buf(&main_len);
    uint64_t t0, t1;
    int n, r;

    if (kfa_g.km.input_bytes > sizeof(input_buf))
        return -1;
    r = kfa_prep_run(&d->prep, &img, input_buf, kfa_g.km.input_bytes, &map);
    if (r < 0) {
        kfa_fmt(text, cap, "preprocess: error %d", r);
        return r;
    }
    t0 = kfa_hal_time_us();
    r = kfa_kmodel_run(&kfa_g.km, input_buf, kfa_g.km.input_bytes, main_buf, main_len,
                       kfa_hal_kpu_ram(), KFA_ROUND_HALF_EVEN, &err);
    t1 = kfa_hal_time_us();
    if (r < 0) {
        kfa_fmt(text, cap, "kmodel run: %s", err.text);
        return r;
    }
    r = kfa_kmodel_output(&kfa_g.km, main_buf, kfa_g.mp.output_index, &out, &out_len);
    if (r < 0 || ((uintptr_t)out & 3u)) {
        kfa_fmt(text, cap, "kmodel output %u unusable", (unsigned)kfa_g.mp.output_index);
        return -1;
    }
    d->y.anchors = d->anchors;
    n = kfa_yolo2_decode(&d->y, out, out_len / sizeof(float), cands, KFA_CANDIDATES, boxes,
                         d->max_boxes, &total);
    if (n < 0) {
        kfa_fmt(text, cap, "region decode: error %d", n);
        return n;
    }
    memset(&det, 0, sizeof(det));
    det.frame_seq = kfa_g.frame_seq;
    det.device_time_us = f->time_us;
    det.model_crc = kfa_g.model_crc;
    det.image_width = f->width;
    det.image_height = f->height;
    det.kpu_us = (uint32_t)(t1 - t0);
    for (int i = 0; i < n; i++) {
        struct kfa_box b = boxes[i];
        kpu_link_v1_Box *o;
        float cx, cy;

        kfa_prep_map_box(&map, &b);
        cx = (b.x1 + b.x2) * 0.5f;
        cy = (b.y1 + b.y2) * 0.5f;
        if (kfa_g.cfg.has_roi) {
            const kpu_link_v1_Rect *roi = &kfa_g.cfg.roi;

            if (cx < (float)roi->x || cy < (float)roi->y || cx >= (float)(roi->x + roi->w) ||
                cy >= (float)(roi->y + roi->h))
                continue;
        }
        o = &det.boxes[det.boxes_count++];
        o->class_id = b.class_id;
        o->score = b.score;
        o->x = (int32_t)(b.x1 + 0.5f);
        o->y = (int32_t)(b.y1 + 0.5f);
        o->w = (uint32_t)(b.x2 - b.x1 + 0.5f);
        o->h = (uint32_t)(b.y2 - b.y1 + 0.5f);
    }
    return 0;
}

int kfa_pipeline_step(void)
{
    struct kfa_frame f;
    char text[KFA_TEXT_MAX];
    uint64_t now;
    uint32_t seq;
    int want_snap = kfa_g.snap.state == 1;

    if (!kfa_g.streaming && !want_snap)
        return 0;
    now = kfa_hal_time_us();
    if (kfa_g.streaming && kfa_g.cfg.fps_cap && kfa_g.last_frame_us &&
        now - kfa_g.last_frame_us < 1000000u / kfa_g.cfg.fps_cap && !want_snap)
        return 0;
    if (kfa_hal_camera_get(&f) != 0)
        return 0;
    seq = kfa_g.frame_seq;
    if (kfa_g.streaming && f.rgb888) {
        kfa_g.last_frame_us = now;
        if (process(&f, text, sizeof(text)) == 0) {
            kfa_g.stats.frames++;
            kfa_g.interval_frames++;
            kfa_g.interval_kpu_us += det.kpu_us;
            if (kfa_send(kpu_link_v1_MsgType_MSG_DETECTION_FRAME, 0, 0,
                         kpu_link_v1_DetectionFrame_fields, &det) != 0)
                kfa_g.stats.frames_dropped++;
            kfa_g.frame_seq++;
        } else {
            /* A model that fails at run time is stopped, not retried at frame rate. */
            kfa_g.stats.pipeline_errors++;
            kfa_g.streaming = 0;
            kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "pipeline stopped: %s", text);
        }
    }
    if (want_snap && f.rgb888)
        snapshot_capture(&f, seq);
    kfa_hal_camera_release();
    return 1;
}

void kfa_snapshot_step(void)
{
    /* A few chunks per main-loop step: at 2 Mbaud three 2 KiB chunks take ~30 ms, about
     * one frame period, so detection frames still go out every step. */
    for (int i = 0; i < KFA_SNAPSHOT_CHUNKS_PER_STEP; i++)
        snapshot_send_chunk();
}

static void snapshot_send_chunk(void)
{
    struct kfa_snapshot *s = &kfa_g.snap;
    uint32_t n;

    if (s->state != 2 || s->credits == 0)
        return;
    n = s->total - s->offset;
    if (n > KFA_SNAPSHOT_CHUNK)
        n = KFA_SNAPSHOT_CHUNK;
    memset(&chunk, 0, sizeof(chunk));
    chunk.snapshot_id = s->id;
    chunk.offset = s->offset;
    chunk.total = s->total;
    chunk.width = s->width;
    chunk.height = s->height;
    chunk.format = (kpu_link_v1_SnapshotFormat)s->format;
    chunk.data.size = (pb_size_t)n;
    memcpy(chunk.data.bytes, snap_buf + s->offset, n);
    chunk.frame_seq = s->frame_seq;
    (void)kfa_send(kpu_link_v1_MsgType_MSG_SNAPSHOT_CHUNK, 0, 0, kpu_link_v1_SnapshotChunk_fields,
                   &chunk);
    s->offset += n;
    s->credits--;
    if (s->offset >= s->total)
        s->state = 0;
}

void kfa_handle_snapshot_request(uint16_t seq, const kpu_link_v1_SnapshotRequest *m)
{
    struct kfa_snapshot *s = &kfa_g.snap;

    if (m->format != kpu_link_v1_SnapshotFormat_SNAPSHOT_RGB565 &&
        m->format != kpu_link_v1_SnapshotFormat_SNAPSHOT_RGB888_PLANAR) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "format: want RGB565 or RGB888_PLANAR");
        return;
    }
    if (kfa_hal_camera_sensor() == KFA_SENSOR_NONE) {
        kfa_reply_status(seq, KFA_ST_CAMERA_ERROR, "no camera sensor");
        return;
    }
    /* A new request replaces one in progress: a host that lost track can always restart. */
    memset(s, 0, sizeof(*s));
    s->id = ++kfa_g.snapshot_ids;
    s->format = m->format;
    s->credits = m->credits ? m->credits : KFA_SNAPSHOT_DEFAULT_CREDITS;
    s->state = 1;
    kfa_reply_status(seq, KFA_ST_OK, "");
}

void kfa_handle_snapshot_credit(const kpu_link_v1_SnapshotCredit *m)
{
    struct kfa_snapshot *s = &kfa_g.snap;

    /* Credits for an older snapshot are stale, not errors: the host may not know yet. */
    if (s->state == 0 || m->snapshot_id != s->id)
        return;
    if (m->credits > UINT32_MAX - s->credits)
        s->credits = UINT32_MAX;
    else
        s->credits += m->credits;
}
