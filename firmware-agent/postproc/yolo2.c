/* SPDX-License-Identifier: MIT */
/*
 * YOLOv2 region layer and per-class NMS with MaixPy's semantics (kmodel-facts §7, from
 * MaixPy components/kendryte_sdk/src/sipeed_yolo2.c), written from that description.
 * Only (box, class) pairs above the threshold are kept: MaixPy zeroes every other
 * probability, and a zero probability neither survives nor suppresses anything, so the
 * result is the same as MaixPy's full boxes x classes table without needing one.
 */
#include "postproc.h"

#include <math.h>
#include <stdlib.h>

#define YOLO2_COORDS 4 /* tx, ty, tw, th */
#define YOLO2_ENTRY_OBJ 4
#define YOLO2_ENTRY_CLASS0 5 /* entries per anchor = 5 + classes */

static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static int config_ok(const struct kfa_yolo2_config *c)
{
    if (!c || c->grid_w == 0 || c->grid_h == 0 || c->anchor_count == 0 ||
        c->anchor_count > KFA_YOLO2_MAX_ANCHORS || !c->anchors || c->class_count == 0 ||
        c->net_w == 0 || c->net_h == 0)
        return 0;
    /* Bound every product so size_t arithmetic below cannot overflow (also on 32 bits). */
    if (c->grid_w > 4096 || c->grid_h > 4096 || c->class_count > 65536)
        return 0;
    if (!(c->threshold >= 0.0f && c->threshold <= 1.0f) || !(c->nms >= 0.0f && c->nms <= 1.0f))
        return 0;
    return 1;
}

size_t kfa_yolo2_scratch_count(const struct kfa_yolo2_config *cfg)
{
    if (!config_ok(cfg))
        return 0;
    return (size_t)cfg->grid_w * cfg->grid_h * cfg->anchor_count * cfg->class_count;
}

/* IoU of two centre/size boxes; a negative overlap on either axis counts as 0. */
static float iou(const struct kfa_yolo2_cand *a, const struct kfa_yolo2_cand *b)
{
    float l = fmaxf(a->x - a->w / 2, b->x - b->w / 2);
    float r = fminf(a->x + a->w / 2, b->x + b->w / 2);
    float t = fmaxf(a->y - a->h / 2, b->y - b->h / 2);
    float d = fminf(a->y + a->h / 2, b->y + b->h / 2);
    float iw = r - l, ih = d - t;
    float inter, uni;

    if (!(iw > 0.0f) || !(ih > 0.0f))
        return 0.0f;
    inter = iw * ih;
    uni = a->w * a->h + b->w * b->h - inter;
    if (!(uni > 0.0f))
        return 0.0f;
    return inter / uni;
}

/* qsort orders: every one is total, so the result does not depend on qsort's stability. */
static int by_class_prob(const void *pa, const void *pb)
{
    const struct kfa_yolo2_cand *a = pa, *b = pb;

    if (a->class_id != b->class_id)
        return a->class_id < b->class_id ? -1 : 1;
    if (a->prob != b->prob)
        return a->prob > b->prob ? -1 : 1;
    return a->box < b->box ? -1 : (a->box > b->box);
}

static int by_box_prob(const void *pa, const void *pb)
{
    const struct kfa_yolo2_cand *a = pa, *b = pb;

    if (a->box != b->box)
        return a->box < b->box ? -1 : 1;
    if (a->prob != b->prob)
        return a->prob > b->prob ? -1 : 1;
    return a->class_id < b->class_id ? -1 : (a->class_id > b->class_id);
}

static int by_prob_box(const void *pa, const void *pb)
{
    const struct kfa_yolo2_cand *a = pa, *b = pb;

    if (a->prob != b->prob)
        return a->prob > b->prob ? -1 : 1;
    return a->box < b->box ? -1 : (a->box > b->box);
}

static float clamp_px(float v, float hi)
{
    if (!(v > 0.0f))
        return 0.0f;
    return v > hi ? hi : v;
}

int kfa_yolo2_decode(const struct kfa_yolo2_config *cfg, const float *out, size_t out_count,
                     struct kfa_yolo2_cand *scratch, size_t scratch_count, struct kfa_box *boxes,
                     size_t max_boxes, size_t *total)
{
    size_t cells, entries, n = 0, kept, found;

    if (total)
        *total = 0;
    if (!config_ok(cfg) || !out || (!scratch && scratch_count) || (!boxes && max_boxes))
        return KFA_PP_E_ARG;
    cells = (size_t)cfg->grid_w * cfg->grid_h;
    entries = YOLO2_ENTRY_CLASS0 + (size_t)cfg->class_count;
    if (out_count != cells * entries * cfg->anchor_count)
        return KFA_PP_E_SIZE;

    /* 1. Region layer: candidates (box, class) with prob > threshold. */
    for (uint32_t a = 0; a < cfg->anchor_count; a++) {
        const float *base = out + (size_t)a * entries * cells;
        float aw = cfg->anchors[2 * a], ah = cfg->anchors[2 * a + 1];
        for (uint32_t row = 0; row < cfg->grid_h; row++) {
            for (uint32_t col = 0; col < cfg->grid_w; col++) {
                size_t i = (size_t)row * cfg->grid_w + col;
                float obj = sigmoid(base[YOLO2_ENTRY_OBJ * cells + i]);
                /* prob = obj * p with p <= 1 never exceeds obj in IEEE arithmetic. */
                if (!(obj > cfg->threshold))
                    continue;
                const float *cls = base + YOLO2_ENTRY_CLASS0 * cells + i;
                float mx = cls[0], sum = 0.0f;
                for (uint32_t k = 1; k < cfg->class_count; k++)
                    mx = fmaxf(mx, cls[k * cells]);
                for (uint32_t k = 0; k < cfg->class_count; k++)
                    sum += expf(cls[k * cells] - mx);
                float x = ((float)col + sigmoid(base[i])) / (float)cfg->grid_w;
                float y = ((float)row + sigmoid(base[cells + i])) / (float)cfg->grid_h;
                float w = expf(base[2 * cells + i]) * aw / (float)cfg->grid_w;
                float h = expf(base[3 * cells + i]) * ah / (float)cfg->grid_h;
                for (uint32_t k = 0; k < cfg->class_count; k++) {
                    float prob = obj * (expf(cls[k * cells] - mx) / sum);
                    if (!(prob > cfg->threshold))
                        continue;
                    if (n == scratch_count)
                        return KFA_PP_E_SPACE;
                    struct kfa_yolo2_cand *c = &scratch[n++];
                    c->x = x;
                    c->y = y;
                    c->w = w;
                    c->h = h;
                    c->prob = prob;
                    c->box = (uint32_t)((size_t)a * cells + i);
                    c->class_id = k;
                }
            }
        }
    }
    if (n == 0)
        return 0;

    /* 2. Per-class NMS; suppressed candidates get prob 0 and are skipped thereafter. */
    qsort(scratch, n, sizeof(*scratch), by_class_prob);
    for (size_t g = 0; g < n;) {
        size_t end = g;
        while (end < n && scratch[end].class_id == scratch[g].class_id)
            end++;
        for (size_t i = g; i < end; i++) {
            if (scratch[i].prob == 0.0f)
                continue;
            for (size_t j = i + 1; j < end; j++)
                if (scratch[j].prob != 0.0f && iou(&scratch[i], &scratch[j]) > cfg->nms)
                    scratch[j].prob = 0.0f;
        }
        g = end;
    }

    /* 3. One detection per box: its first class with the highest surviving prob. */
    kept = 0;
    for (size_t i = 0; i < n; i++)
        if (scratch[i].prob > 0.0f)
            scratch[kept++] = scratch[i];
    qsort(scratch, kept, sizeof(*scratch), by_box_prob);
    found = 0;
    for (size_t i = 0; i < kept; i++)
        if (i == 0 || scratch[i].box != scratch[i - 1].box)
            scratch[found++] = scratch[i];
    qsort(scratch, found, sizeof(*scratch), by_prob_box);

    if (total)
        *total = found;
    size_t w = found < max_boxes ? found : max_boxes;
    float nw = (float)cfg->net_w, nh = (float)cfg->net_h;
    for (size_t i = 0; i < w; i++) {
        const struct kfa_yolo2_cand *c = &scratch[i];
        boxes[i].x1 = clamp_px(c->x * nw - c->w * nw / 2, nw);
        boxes[i].y1 = clamp_px(c->y * nh - c->h * nh / 2, nh);
        boxes[i].x2 = clamp_px(c->x * nw + c->w * nw / 2, nw);
        boxes[i].y2 = clamp_px(c->y * nh + c->h * nh / 2, nh);
        boxes[i].score = c->prob;
        boxes[i].class_id = c->class_id;
        boxes[i].index = c->box;
    }
    return (int)w;
}

int kfa_yolo2_grid(uint32_t net_w, uint32_t net_h, size_t cells, uint32_t *grid_w, uint32_t *grid_h)
{
    static const uint32_t strides[] = {8, 16, 32, 64};

    if (!grid_w || !grid_h)
        return KFA_PP_E_ARG;
    for (size_t s = 0; s < sizeof(strides) / sizeof(strides[0]); s++) {
        uint32_t st = strides[s];
        for (int ceil_mode = 0; ceil_mode < 2; ceil_mode++) {
            uint32_t gw = ceil_mode ? (net_w + st - 1) / st : net_w / st;
            uint32_t gh = ceil_mode ? (net_h + st - 1) / st : net_h / st;
            if (gw && gh && (size_t)gw * gh == cells) {
                *grid_w = gw;
                *grid_h = gh;
                return 0;
            }
        }
    }
    return KFA_PP_E_SIZE;
}
