/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of firmware-agent/postproc: YOLOv2 region decoding and NMS on synthetic output
 * tensors with answers computed here independently (double precision, straight from the
 * formulas in kmodel-facts §7), preprocessing geometry and values, the inverse box mapping,
 * the RGB565 round trip, and classifier top-k.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "postproc.h"

/* ---- helpers: a synthetic YOLOv2 tensor ------------------------------------------ */

#define GW 4
#define GH 3
#define NA 2
#define NC 2
#define NET_W 64
#define NET_H 48
#define ENTRIES (5 + NC)
#define TENSOR (NA * ENTRIES * GH * GW)
#define QUIET (-20.0f) /* objectness logit that never passes a threshold */

static const float anchors[2 * NA] = {1.0f, 1.5f, 2.0f, 0.5f};

static float *at(float *t, int a, int e, int row, int col)
{
    return &t[((a * ENTRIES + e) * GH + row) * GW + col];
}

static void quiet_tensor(float *t)
{
    memset(t, 0, sizeof(float) * TENSOR);
    for (int a = 0; a < NA; a++)
        for (int r = 0; r < GH; r++)
            for (int c = 0; c < GW; c++)
                *at(t, a, 4, r, c) = QUIET;
}

/* Put a box: centre offsets tx, ty (logits), log-size tw, th, objectness and class logits. */
static void put(float *t, int a, int row, int col, float tx, float ty, float tw, float th,
                float obj, float c0, float c1)
{
    *at(t, a, 0, row, col) = tx;
    *at(t, a, 1, row, col) = ty;
    *at(t, a, 2, row, col) = tw;
    *at(t, a, 3, row, col) = th;
    *at(t, a, 4, row, col) = obj;
    *at(t, a, 5, row, col) = c0;
    *at(t, a, 6, row, col) = c1;
}

static struct kfa_yolo2_config cfg_default(float thr, float nms)
{
    struct kfa_yolo2_config c = {
        .grid_w = GW,
        .grid_h = GH,
        .anchor_count = NA,
        .anchors = anchors,
        .class_count = NC,
        .threshold = thr,
        .nms = nms,
        .net_w = NET_W,
        .net_h = NET_H,
    };
    return c;
}

static double sig(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static struct kfa_yolo2_cand scratch[GW * GH * NA * NC];

static int decode(const struct kfa_yolo2_config *c, const float *t, struct kfa_box *boxes,
                  size_t max, size_t *total)
{
    return kfa_yolo2_decode(c, t, TENSOR, scratch, sizeof(scratch) / sizeof(scratch[0]), boxes, max,
                            total);
}

/* ---- region decoding ------------------------------------------------------------- */

START_TEST(one_strong_cell)
{
    float t[TENSOR];
    struct kfa_box b[4];
    size_t total;
    struct kfa_yolo2_config c = cfg_default(0.5f, 0.3f);

    quiet_tensor(t);
    /* anchor 1 (2.0 x 0.5 cells), row 2, col 1 */
    put(t, 1, 2, 1, 0.4f, -0.2f, 0.3f, -0.1f, 6.0f, 0.5f, 2.5f);
    ck_assert_int_eq(decode(&c, t, b, 4, &total), 1);
    ck_assert_uint_eq(total, 1);

    double obj = sig(6.0), p1 = exp(2.5) / (exp(0.5) + exp(2.5));
    double cx = (1 + sig(0.4)) / GW, cy = (2 + sig(-0.2)) / GH;
    double w = exp(0.3) * 2.0 / GW, h = exp(-0.1) * 0.5 / GH;
    ck_assert_uint_eq(b[0].class_id, 1);
    ck_assert_uint_eq(b[0].index, (1 * GH + 2) * GW + 1);
    ck_assert_double_eq_tol(b[0].score, obj * p1, 1e-5);
    ck_assert_double_eq_tol(b[0].x1, (cx - w / 2) * NET_W, 1e-3);
    ck_assert_double_eq_tol(b[0].x2, (cx + w / 2) * NET_W, 1e-3);
    ck_assert_double_eq_tol(b[0].y1, (cy - h / 2) * NET_H, 1e-3);
    ck_assert_double_eq_tol(b[0].y2, (cy + h / 2) * NET_H, 1e-3);
}
END_TEST

START_TEST(quiet_tensor_gives_nothing)
{
    float t[TENSOR];
    struct kfa_box b[4];
    size_t total = 99;
    struct kfa_yolo2_config c = cfg_default(0.0f, 0.3f);

    quiet_tensor(t);
    /* sigmoid(-20) * 0.5 > 0 even at threshold 0: every (box, class) passes, so use a
     * slightly higher threshold to check the quiet case. */
    c.threshold = 0.001f;
    ck_assert_int_eq(decode(&c, t, b, 4, &total), 0);
    ck_assert_uint_eq(total, 0);
}
END_TEST

START_TEST(threshold_is_strict)
{
    float t[TENSOR];
    struct kfa_box b[4];
    struct kfa_yolo2_config c = cfg_default(0.5f, 0.3f);
    /* One class: softmax is exactly 1, so prob == sigmoid(obj) as float. */
    float one_anchor[2] = {1.0f, 1.0f};
    float t1[1 * 6 * GH * GW];

    (void)t;
    c.class_count = 1;
    c.anchor_count = 1;
    c.anchors = one_anchor;
    for (size_t i = 0; i < sizeof(t1) / sizeof(t1[0]); i++)
        t1[i] = 0.0f;
    for (int i = 0; i < GH * GW; i++)
        t1[4 * GH * GW + i] = QUIET;
    t1[4 * GH * GW + 5] = 1.25f;
    float p = 1.0f / (1.0f + expf(-1.25f));

    c.threshold = p; /* prob == threshold: dropped */
    ck_assert_int_eq(kfa_yolo2_decode(&c, t1, sizeof(t1) / 4, scratch, 64, b, 4, NULL), 0);
    c.threshold = nextafterf(p, 0.0f); /* just below: kept */
    ck_assert_int_eq(kfa_yolo2_decode(&c, t1, sizeof(t1) / 4, scratch, 64, b, 4, NULL), 1);
    ck_assert_float_eq(b[0].score, p);
    ck_assert_uint_eq(b[0].index, 5);
}
END_TEST

START_TEST(nms_suppresses_same_class_only)
{
    float t[TENSOR];
    struct kfa_box b[8];
    struct kfa_yolo2_config c = cfg_default(0.5f, 0.3f);

    quiet_tensor(t);
    /* Two near-identical boxes in neighbouring cells (same anchor, large), class 0. */
    put(t, 0, 1, 1, 2.0f, 0.0f, 1.0f, 1.0f, 5.0f, 5.0f, -5.0f);
    put(t, 0, 1, 2, -2.0f, 0.0f, 1.0f, 1.0f, 3.0f, 5.0f, -5.0f);
    ck_assert_int_eq(decode(&c, t, b, 8, NULL), 1);
    ck_assert_uint_eq(b[0].index, 1 * GW + 1); /* the stronger one */

    /* Same geometry but the weaker box is class 1: both survive. */
    put(t, 0, 1, 2, -2.0f, 0.0f, 1.0f, 1.0f, 3.0f, -5.0f, 5.0f);
    ck_assert_int_eq(decode(&c, t, b, 8, NULL), 2);
    ck_assert_uint_eq(b[0].class_id, 0);
    ck_assert_uint_eq(b[1].class_id, 1);

    /* nms = 1: IoU > 1 never holds, nothing is suppressed. */
    put(t, 0, 1, 2, -2.0f, 0.0f, 1.0f, 1.0f, 3.0f, 5.0f, -5.0f);
    c.nms = 1.0f;
    ck_assert_int_eq(decode(&c, t, b, 8, NULL), 2);
}
END_TEST

START_TEST(suppressed_box_suppresses_nothing)
{
    float t[TENSOR];
    struct kfa_box b[8];
    struct kfa_yolo2_config c = cfg_default(0.5f, 0.2f);

    quiet_tensor(t);
    /* A (col 0) overlaps B (col 1); B overlaps C (col 2); A and C are apart. Anchor 0 is one
     * cell wide; tw = log 2 makes boxes two cells wide, centred in their cells. */
    float tw = logf(2.0f);
    put(t, 0, 1, 0, 0.0f, 0.0f, tw, 0.0f, 6.0f, 5.0f, -5.0f); /* A, best */
    put(t, 0, 1, 1, 0.0f, 0.0f, tw, 0.0f, 4.0f, 5.0f, -5.0f); /* B */
    put(t, 0, 1, 2, 0.0f, 0.0f, tw, 0.0f, 2.0f, 5.0f, -5.0f); /* C, weakest */
    /* IoU(A,B) = 1 cell overlap / 3 = 0.33 > 0.2; IoU(A,C) = 0. */
    ck_assert_int_eq(decode(&c, t, b, 8, NULL), 2);
    ck_assert_uint_eq(b[0].index, 1 * GW + 0);
    ck_assert_uint_eq(b[1].index, 1 * GW + 2);
}
END_TEST

START_TEST(box_falls_back_to_surviving_class)
{
    float t[TENSOR];
    struct kfa_box b[8];
    struct kfa_yolo2_config c = cfg_default(0.3f, 0.3f);

    quiet_tensor(t);
    /* Box X: class 0 p ~ 0.62, class 1 p ~ 0.37, both above 0.3. Box Y on top of it with a
     * stronger class 0. NMS removes X's class 0; X then reports class 1 (MaixPy's argmax
     * over the probabilities left after NMS). */
    put(t, 0, 0, 0, 0.0f, 0.0f, 0.0f, 0.0f, 10.0f, 0.5f, 0.0f);              /* X */
    put(t, 1, 0, 0, 0.0f, 0.0f, logf(0.5f), logf(3.0f), 10.0f, 5.0f, -5.0f); /* Y, same box */
    ck_assert_int_eq(decode(&c, t, b, 8, NULL), 2);
    ck_assert_uint_eq(b[0].index, 1 * GH * GW); /* Y: score ~1 */
    ck_assert_uint_eq(b[0].class_id, 0);
    ck_assert_uint_eq(b[1].index, 0); /* X */
    ck_assert_uint_eq(b[1].class_id, 1);
    ck_assert_double_eq_tol(b[1].score, sig(10.0) * 1.0 / (1.0 + exp(0.5)), 1e-5);
}
END_TEST

START_TEST(max_boxes_keeps_best_and_orders_ties)
{
    float t[TENSOR];
    struct kfa_box b[8];
    size_t total;
    struct kfa_yolo2_config c = cfg_default(0.5f, 0.3f);

    quiet_tensor(t);
    /* Five small separate boxes, class 0; two with the same score. */
    const float objs[5] = {2.0f, 4.0f, 3.0f, 4.0f, 1.0f};
    const int cols[5] = {0, 1, 2, 3, 0};
    const int rows[5] = {0, 0, 0, 0, 2};
    for (int i = 0; i < 5; i++)
        put(t, 0, rows[i], cols[i], 0.0f, 0.0f, -1.0f, -1.0f, objs[i], 5.0f, -5.0f);
    ck_assert_int_eq(decode(&c, t, b, 3, &total), 3);
    ck_assert_uint_eq(total, 5);
    ck_assert_uint_eq(b[0].index, 1); /* obj 4, lower index first */
    ck_assert_uint_eq(b[1].index, 3); /* obj 4 */
    ck_assert_uint_eq(b[2].index, 2); /* obj 3 */
    ck_assert_float_eq(b[0].score, b[1].score);
    ck_assert_int_eq(decode(&c, t, b, 8, &total), 5);
    ck_assert_uint_eq(b[4].index, 2 * GW); /* obj 1 last */
    for (int i = 1; i < 5; i++)
        ck_assert(b[i - 1].score >= b[i].score);
    ck_assert_int_eq(decode(&c, t, NULL, 0, &total), 0);
    ck_assert_uint_eq(total, 5);
}
END_TEST

START_TEST(boxes_are_clamped)
{
    float t[TENSOR];
    struct kfa_box b[2];
    struct kfa_yolo2_config c = cfg_default(0.5f, 0.3f);

    quiet_tensor(t);
    /* Top-left cell, 8x the anchor: corners far outside the image. */
    put(t, 0, 0, 0, -3.0f, -3.0f, logf(8.0f), logf(8.0f), 5.0f, 5.0f, -5.0f);
    /* Bottom-right cell, also huge. */
    put(t, 1, GH - 1, GW - 1, 3.0f, 3.0f, logf(8.0f), logf(8.0f), 4.0f, 5.0f, -5.0f);
    ck_assert_int_eq(decode(&c, t, b, 2, NULL), 2);
    for (int i = 0; i < 2; i++) {
        ck_assert(b[i].x1 >= 0.0f && b[i].y1 >= 0.0f);
        ck_assert(b[i].x2 <= NET_W && b[i].y2 <= NET_H);
    }
    ck_assert_float_eq(b[0].x1, 0.0f);
    ck_assert_float_eq(b[0].y1, 0.0f);
    ck_assert_float_eq(b[1].x2, (float)NET_W);
    ck_assert_float_eq(b[1].y2, (float)NET_H);

    /* Non-finite values never produce a box and never crash. */
    quiet_tensor(t);
    put(t, 0, 0, 0, NAN, NAN, INFINITY, NAN, NAN, 5.0f, -5.0f);
    put(t, 0, 1, 1, NAN, 0.0f, INFINITY, -INFINITY, 5.0f, NAN, 1.0f);
    put(t, 0, 2, 2, 0.0f, 0.0f, INFINITY, INFINITY, 5.0f, 5.0f, -5.0f);
    int n = decode(&c, t, b, 2, NULL);
    ck_assert_int_eq(n, 1);
    ck_assert(b[0].x1 >= 0.0f && b[0].x2 <= NET_W && b[0].y1 >= 0.0f && b[0].y2 <= NET_H);
}
END_TEST

START_TEST(decode_rejects_bad_input)
{
    float t[TENSOR];
    struct kfa_box b[2];
    struct kfa_yolo2_config c = cfg_default(0.5f, 0.3f);

    quiet_tensor(t);
    ck_assert_int_eq(kfa_yolo2_decode(&c, t, TENSOR - 1, scratch, 10, b, 2, NULL), KFA_PP_E_SIZE);
    c.threshold = 1.5f;
    ck_assert_int_eq(decode(&c, t, b, 2, NULL), KFA_PP_E_ARG);
    c = cfg_default(0.5f, 0.3f);
    c.anchor_count = 0;
    ck_assert_int_eq(decode(&c, t, b, 2, NULL), KFA_PP_E_ARG);
    ck_assert_uint_eq(kfa_yolo2_scratch_count(&c), 0);
    c = cfg_default(0.5f, 0.3f);
    ck_assert_uint_eq(kfa_yolo2_scratch_count(&c), GW * GH * NA * NC);
    ck_assert_int_eq(kfa_yolo2_decode(NULL, t, TENSOR, scratch, 10, b, 2, NULL), KFA_PP_E_ARG);

    /* Scratch too small for the candidates: an error, not an overflow. */
    put(t, 0, 0, 0, 0, 0, 0, 0, 5.0f, 0.0f, 0.0f); /* both classes ~0.5 > 0.4 */
    put(t, 0, 1, 1, 0, 0, 0, 0, 5.0f, 0.0f, 0.0f);
    c.threshold = 0.4f;
    ck_assert_int_eq(kfa_yolo2_decode(&c, t, TENSOR, scratch, 3, b, 2, NULL), KFA_PP_E_SPACE);
    ck_assert_int_eq(kfa_yolo2_decode(&c, t, TENSOR, scratch, 4, b, 2, NULL), 2);
}
END_TEST

START_TEST(grid_guess)
{
    uint32_t w, h;

    ck_assert_int_eq(kfa_yolo2_grid(320, 240, 300, &w, &h), 0); /* face: stride 16 */
    ck_assert_uint_eq(w, 20);
    ck_assert_uint_eq(h, 15);
    ck_assert_int_eq(kfa_yolo2_grid(320, 240, 70, &w, &h), 0); /* VOC: floor(7.5) */
    ck_assert_uint_eq(w, 10);
    ck_assert_uint_eq(h, 7);
    ck_assert_int_eq(kfa_yolo2_grid(320, 240, 80, &w, &h), 0); /* mask: ceil(7.5) */
    ck_assert_uint_eq(h, 8);
    ck_assert_int_eq(kfa_yolo2_grid(320, 256, 80, &w, &h), 0);
    ck_assert_uint_eq(h, 8);
    ck_assert_int_eq(kfa_yolo2_grid(320, 240, 71, &w, &h), KFA_PP_E_SIZE);
}
END_TEST

/* ---- preprocessing ---------------------------------------------------------------- */

static struct kfa_prep_config prep_cfg(uint32_t w, uint32_t h, uint32_t c)
{
    struct kfa_prep_config p = {
        .width = w,
        .height = h,
        .channels = c,
        .fit = KFA_FIT_STRETCH,
        .filter = KFA_FILTER_BILINEAR,
        .offset_x = KFA_PREP_CENTRE,
        .offset_y = KFA_PREP_CENTRE,
    };
    return p;
}

START_TEST(copy_interleaved_and_planar)
{
    uint8_t src[3 * 4 * 2], planar[3 * 4 * 2], out[3 * 4 * 2];
    struct kfa_prep_config p = prep_cfg(4, 2, 3);
    struct kfa_image img = {src, 4, 2, 3, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_map m;

    for (int i = 0; i < 8; i++)
        for (int c = 0; c < 3; c++) {
            src[3 * i + c] = (uint8_t)(i * 30 + c * 7);
            planar[c * 8 + i] = src[3 * i + c];
        }
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, sizeof(out), &m), 0);
    ck_assert_mem_eq(out, planar, sizeof(out));
    ck_assert_uint_eq(m.dst_w, 4);
    ck_assert_uint_eq(m.dst_x, 0);

    /* Planar source: same result. */
    img.pixels = planar;
    img.layout = KFA_PIXELS_PLANAR;
    memset(out, 0, sizeof(out));
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, sizeof(out), NULL), 0);
    ck_assert_mem_eq(out, planar, sizeof(out));

    /* Wrong output length. */
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, sizeof(out) - 1, NULL), KFA_PP_E_SIZE);
}
END_TEST

START_TEST(letterbox_mask_model_geometry)
{
    /* 320x240 into 320x256: the face-mask demo's 8 grey rows top and bottom. */
    static uint8_t src[320 * 240 * 3], out[320 * 256 * 3];
    struct kfa_prep_config p = prep_cfg(320, 256, 3);
    struct kfa_image img = {src, 320, 240, 3, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_map m;

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i % 251);
    p.fit = KFA_FIT_LETTERBOX;
    p.fill = 127;
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, sizeof(out), &m), 0);
    ck_assert_uint_eq(m.dst_x, 0);
    ck_assert_uint_eq(m.dst_y, 8);
    ck_assert_uint_eq(m.dst_w, 320);
    ck_assert_uint_eq(m.dst_h, 240);
    for (uint32_t c = 0; c < 3; c++) {
        const uint8_t *plane = out + c * 320 * 256;
        for (uint32_t x = 0; x < 320; x++) {
            ck_assert_uint_eq(plane[7 * 320 + x], 127);
            ck_assert_uint_eq(plane[248 * 320 + x], 127);
            ck_assert_uint_eq(plane[8 * 320 + x], src[3 * x + c]); /* source row 0 */
            ck_assert_uint_eq(plane[247 * 320 + x], src[3 * (239 * 320 + x) + c]); /* row 239 */
        }
    }
    /* A box in model pixels maps back 8 rows up. */
    struct kfa_box b = {10.0f, 18.0f, 100.0f, 250.0f, 1.0f, 0, 0};
    kfa_prep_map_box(&m, &b);
    ck_assert_float_eq_tol(b.x1, 10.0f, 1e-4);
    ck_assert_float_eq_tol(b.y1, 10.0f, 1e-4);
    ck_assert_float_eq_tol(b.x2, 100.0f, 1e-4);
    ck_assert_float_eq_tol(b.y2, 240.0f, 1e-4); /* 242 clamped */

    /* Explicit offset: image at the top. */
    p.offset_y = 0;
    ck_assert_int_eq(kfa_prep_plan(&p, 320, 240, &m), 0);
    ck_assert_uint_eq(m.dst_y, 0);
    p.offset_y = 17; /* 17 + 240 > 256 */
    ck_assert_int_eq(kfa_prep_plan(&p, 320, 240, &m), KFA_PP_E_ARG);
}
END_TEST

START_TEST(letterbox_scaled_geometry)
{
    struct kfa_prep_config p = prep_cfg(64, 64, 3);
    struct kfa_prep_map m;

    p.fit = KFA_FIT_LETTERBOX;
    ck_assert_int_eq(kfa_prep_plan(&p, 100, 50, &m), 0); /* wide: 64 x 32, centred */
    ck_assert_uint_eq(m.dst_w, 64);
    ck_assert_uint_eq(m.dst_h, 32);
    ck_assert_uint_eq(m.dst_x, 0);
    ck_assert_uint_eq(m.dst_y, 16);
    ck_assert_int_eq(kfa_prep_plan(&p, 30, 90, &m), 0); /* tall: round(21.33) x 64 */
    ck_assert_uint_eq(m.dst_w, 21);
    ck_assert_uint_eq(m.dst_h, 64);
    ck_assert_uint_eq(m.dst_x, 21);

    /* Inverse mapping of the wide case: model (0,16)-(64,48) is the whole source. */
    ck_assert_int_eq(kfa_prep_plan(&p, 100, 50, &m), 0);
    struct kfa_box b = {0.0f, 16.0f, 64.0f, 48.0f, 1.0f, 0, 0};
    kfa_prep_map_box(&m, &b);
    ck_assert_float_eq_tol(b.x1, 0.0f, 1e-4);
    ck_assert_float_eq_tol(b.y1, 0.0f, 1e-4);
    ck_assert_float_eq_tol(b.x2, 100.0f, 1e-4);
    ck_assert_float_eq_tol(b.y2, 50.0f, 1e-4);
    struct kfa_box c = {32.0f, 24.0f, 48.0f, 40.0f, 1.0f, 0, 0};
    kfa_prep_map_box(&m, &c);
    ck_assert_float_eq_tol(c.x1, 50.0f, 1e-4);
    ck_assert_float_eq_tol(c.y1, 12.5f, 1e-4);
    ck_assert_float_eq_tol(c.x2, 75.0f, 1e-4);
    ck_assert_float_eq_tol(c.y2, 37.5f, 1e-4);
    /* Above the image (in the border): clamped to 0. */
    struct kfa_box d = {-5.0f, 2.0f, 10.0f, 10.0f, 1.0f, 0, 0};
    kfa_prep_map_box(&m, &d);
    ck_assert_float_eq(d.x1, 0.0f);
    ck_assert_float_eq(d.y1, 0.0f);
    ck_assert_float_eq(d.y2, 0.0f);
}
END_TEST

START_TEST(resize_values)
{
    /* One grey row [0, 100, 200, 250] halved: centres at 0.5 and 2.5. */
    const uint8_t row[4] = {0, 100, 200, 250};
    uint8_t out[2];
    struct kfa_image img = {row, 4, 1, 1, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_config p = prep_cfg(2, 1, 1);

    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 2, NULL), 0);
    ck_assert_uint_eq(out[0], 50);
    ck_assert_uint_eq(out[1], 225);
    p.filter = KFA_FILTER_NEAREST; /* floor((2d + 1) * 4 / 4) = 1, 3 */
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 2, NULL), 0);
    ck_assert_uint_eq(out[0], 100);
    ck_assert_uint_eq(out[1], 250);

    /* Upscaling: a constant image stays constant; edges replicate. */
    uint8_t src2[2 * 2 * 3], big[7 * 5 * 3];
    memset(src2, 93, sizeof(src2));
    struct kfa_image img2 = {src2, 2, 2, 3, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_config q = prep_cfg(7, 5, 3);
    ck_assert_int_eq(kfa_prep_run(&q, &img2, big, sizeof(big), NULL), 0);
    for (size_t i = 0; i < sizeof(big); i++)
        ck_assert_uint_eq(big[i], 93);

    /* 1 x 2 -> 1 x 4 bilinear: s = (d + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 */
    const uint8_t col[2] = {0, 200};
    uint8_t up[4];
    struct kfa_image img3 = {col, 1, 2, 1, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_config r = prep_cfg(1, 4, 1);
    ck_assert_int_eq(kfa_prep_run(&r, &img3, up, 4, NULL), 0);
    ck_assert_uint_eq(up[0], 0);
    ck_assert_uint_eq(up[1], 50);
    ck_assert_uint_eq(up[2], 150);
    ck_assert_uint_eq(up[3], 200);
}
END_TEST

START_TEST(grey_and_invert)
{
    const uint8_t px[3 * 3] = {255, 0, 0, 0, 255, 0, 10, 20, 30};
    uint8_t out[3];
    struct kfa_image img = {px, 3, 1, 3, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_config p = prep_cfg(3, 1, 1);

    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 3, NULL), 0);
    /* BT.601 luma: 0.299 R + 0.587 G + 0.114 B */
    ck_assert_int_le(abs((int)out[0] - (int)lround(0.299 * 255)), 1);
    ck_assert_int_le(abs((int)out[1] - (int)lround(0.587 * 255)), 1);
    ck_assert_int_le(abs((int)out[2] - (int)lround(0.299 * 10 + 0.587 * 20 + 0.114 * 30)), 1);
    uint8_t inv[3];
    p.invert = 1;
    ck_assert_int_eq(kfa_prep_run(&p, &img, inv, 3, NULL), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(inv[i], 255 - out[i]);

    /* Grey source into an RGB input: replicated. */
    const uint8_t g[2] = {7, 200};
    uint8_t rgb[6];
    struct kfa_image gi = {g, 2, 1, 1, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_config q = prep_cfg(2, 1, 3);
    ck_assert_int_eq(kfa_prep_run(&q, &gi, rgb, 6, NULL), 0);
    const uint8_t want[6] = {7, 200, 7, 200, 7, 200};
    ck_assert_mem_eq(rgb, want, 6);
}
END_TEST

START_TEST(rgb565_round_trip)
{
    for (int v = 0; v < 256; v++) {
        uint8_t r = (uint8_t)v, g = (uint8_t)v, b = (uint8_t)v;
        kfa_rgb565_round_trip(&r, &g, &b);
        /* Top 5/6 bits, expanded with round(v * 255 / max) (MaixPy rgb2rgb_tab.c). */
        ck_assert_int_eq(r, (int)lround((v >> 3) * 255.0 / 31.0));
        ck_assert_int_eq(g, (int)lround((v >> 2) * 255.0 / 63.0));
        ck_assert_int_eq(b, r);
    }
    uint8_t r = 200, g = 200, b = 8;
    kfa_rgb565_round_trip(&r, &g, &b);
    ck_assert_uint_eq(r, 206); /* 25 * 255 / 31 = 205.6 */
    ck_assert_uint_eq(g, 202); /* 50 * 255 / 63 = 202.4 */
    ck_assert_uint_eq(b, 8);   /* 1 * 255 / 31 = 8.2 */

    /* Through kfa_prep_run: the option applies per source pixel. */
    const uint8_t px[3] = {200, 200, 8};
    uint8_t out[3];
    struct kfa_image img = {px, 1, 1, 3, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_config p = prep_cfg(1, 1, 3);
    p.rgb565 = 1;
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 3, NULL), 0);
    ck_assert_uint_eq(out[0], 206);
    ck_assert_uint_eq(out[1], 202);
    ck_assert_uint_eq(out[2], 8);
}
END_TEST

START_TEST(prep_rejects_bad_config)
{
    uint8_t px[3] = {0}, out[3];
    struct kfa_image img = {px, 1, 1, 3, KFA_PIXELS_INTERLEAVED};
    struct kfa_prep_config p = prep_cfg(1, 1, 2);
    struct kfa_prep_map m;

    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 2, NULL), KFA_PP_E_ARG);
    p = prep_cfg(0, 1, 3);
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 0, NULL), KFA_PP_E_ARG);
    p = prep_cfg(1, 1, 3);
    img.width = 0;
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 3, NULL), KFA_PP_E_ARG);
    ck_assert_int_eq(kfa_prep_plan(&p, 0, 5, &m), KFA_PP_E_ARG);
    img.width = 1;
    img.channels = 4;
    ck_assert_int_eq(kfa_prep_run(&p, &img, out, 3, NULL), KFA_PP_E_ARG);
}
END_TEST

/* ---- top-k ------------------------------------------------------------------------ */

START_TEST(topk_order_and_ties)
{
    const float v[6] = {0.1f, 0.5f, 0.5f, NAN, -1.0f, 0.3f};
    struct kfa_class_score out[6];

    ck_assert_int_eq(kfa_topk(v, 6, 0, out, 3), 3);
    ck_assert_uint_eq(out[0].class_id, 1);
    ck_assert_uint_eq(out[1].class_id, 2);
    ck_assert_uint_eq(out[2].class_id, 5);
    ck_assert_float_eq(out[2].score, 0.3f);
    ck_assert_int_eq(kfa_topk(v, 6, 0, out, 10), 6);
    ck_assert_uint_eq(out[3].class_id, 0);
    ck_assert_uint_eq(out[4].class_id, 4);
    ck_assert_uint_eq(out[5].class_id, 3); /* NaN last */
    ck_assert_int_eq(kfa_topk(v, 6, 0, out, 0), 0);
    ck_assert_int_eq(kfa_topk(NULL, 3, 0, out, 1), KFA_PP_E_ARG);
}
END_TEST

START_TEST(topk_softmax)
{
    const float v[4] = {1.0f, 3.0f, 2.0f, -1.0f};
    struct kfa_class_score out[4];
    double sum = exp(1.0) + exp(3.0) + exp(2.0) + exp(-1.0);

    ck_assert_int_eq(kfa_topk(v, 4, 1, out, 4), 4);
    ck_assert_uint_eq(out[0].class_id, 1);
    ck_assert_double_eq_tol(out[0].score, exp(3.0) / sum, 1e-6);
    ck_assert_double_eq_tol(out[1].score, exp(2.0) / sum, 1e-6);
    ck_assert_double_eq_tol(out[3].score, exp(-1.0) / sum, 1e-6);
    double total = 0;
    for (int i = 0; i < 4; i++)
        total += out[i].score;
    ck_assert_double_eq_tol(total, 1.0, 1e-6);
}
END_TEST

static Suite *postproc_suite(void)
{
    Suite *s = suite_create("postproc");
    TCase *yolo = tcase_create("yolo2");
    TCase *prep = tcase_create("prep");
    TCase *topk = tcase_create("topk");

    tcase_add_test(yolo, one_strong_cell);
    tcase_add_test(yolo, quiet_tensor_gives_nothing);
    tcase_add_test(yolo, threshold_is_strict);
    tcase_add_test(yolo, nms_suppresses_same_class_only);
    tcase_add_test(yolo, suppressed_box_suppresses_nothing);
    tcase_add_test(yolo, box_falls_back_to_surviving_class);
    tcase_add_test(yolo, max_boxes_keeps_best_and_orders_ties);
    tcase_add_test(yolo, boxes_are_clamped);
    tcase_add_test(yolo, decode_rejects_bad_input);
    tcase_add_test(yolo, grid_guess);
    tcase_add_test(prep, copy_interleaved_and_planar);
    tcase_add_test(prep, letterbox_mask_model_geometry);
    tcase_add_test(prep, letterbox_scaled_geometry);
    tcase_add_test(prep, resize_values);
    tcase_add_test(prep, grey_and_invert);
    tcase_add_test(prep, rgb565_round_trip);
    tcase_add_test(prep, prep_rejects_bad_config);
    tcase_add_test(topk, topk_order_and_ties);
    tcase_add_test(topk, topk_softmax);
    suite_add_tcase(s, yolo);
    suite_add_tcase(s, prep);
    suite_add_tcase(s, topk);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(postproc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
