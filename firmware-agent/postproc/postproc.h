/* SPDX-License-Identifier: MIT */
/*
 * Pre- and post-processing around the kmodel runtime, shared by the agent firmware and the
 * host simulator: an 8-bit image (any size) becomes the model input (planar RGB888 C x H x W
 * or one grey plane), optionally through MaixPy's RGB565 round trip; a YOLOv2 output tensor
 * becomes boxes with MaixPy's region-layer semantics; boxes map back to the source image;
 * classifier outputs become a top-k list.
 *
 * Portable C11 with libm only: no malloc, no stdio. Every buffer is the caller's.
 * Facts: ../shared/research/kmodel-facts.md §7 (MaixPy sipeed_yolo2.c region layer and NMS,
 * pix_to_ai's RGB565 tables).
 */
#ifndef KFA_POSTPROC_H
#define KFA_POSTPROC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Errors (negative). */
#define KFA_PP_E_ARG (-1)   /* invalid configuration or argument */
#define KFA_PP_E_SIZE (-2)  /* a buffer or tensor length does not match the configuration */
#define KFA_PP_E_SPACE (-3) /* caller's scratch array too small (see kfa_yolo2_scratch_count) */

/* ---- preprocessing --------------------------------------------------------------- */

/* Source pixel layout. */
enum kfa_pixel_layout {
    KFA_PIXELS_INTERLEAVED = 0, /* RGBRGB... (or one byte per pixel for grey) */
    KFA_PIXELS_PLANAR = 1,      /* all R, then all G, then all B (the K210 DVP's AI output) */
};

/* An 8-bit source image, read only. */
struct kfa_image {
    const uint8_t *pixels;        /* width*height*channels bytes, rows top to bottom */
    uint32_t width;               /* pixels, >= 1 */
    uint32_t height;              /* pixels, >= 1 */
    uint32_t channels;            /* 1 (grey) or 3 (RGB) */
    enum kfa_pixel_layout layout; /* ignored when channels == 1 */
};

/* How a source of another size is fitted into the model input. */
enum kfa_fit {
    KFA_FIT_STRETCH = 0,   /* scale x and y independently to fill the whole input */
    KFA_FIT_LETTERBOX = 1, /* keep the aspect ratio; the rest of the input is `fill` */
};

/*
 * Interpolation when sizes differ. Both use pixel centres: source coordinate
 * s = (d + 0.5) * src / dst - 0.5 (like OpenCV INTER_LINEAR without antialiasing). Bilinear
 * weights are 16-bit fixed point, so results are the same on every platform.
 */
enum kfa_filter {
    KFA_FILTER_BILINEAR = 0,
    KFA_FILTER_NEAREST = 1, /* source index floor((d + 0.5) * src / dst) */
};

#define KFA_PREP_CENTRE (-1) /* letterbox offset: centre the image on that axis */

struct kfa_prep_config {
    uint32_t width;    /* model input width, >= 1 */
    uint32_t height;   /* model input height, >= 1 */
    uint32_t channels; /* 3 = planar RGB888 (R, G, B planes), 1 = one grey plane */
    enum kfa_fit fit;  /* used only when the source size differs from width x height */
    enum kfa_filter filter;
    uint8_t fill;     /* letterbox border value, every channel */
    int32_t offset_x; /* letterbox: left edge of the image, or KFA_PREP_CENTRE */
    int32_t offset_y; /* letterbox: top edge of the image, or KFA_PREP_CENTRE */
    int rgb565;       /* nonzero: quantise source pixels to RGB565 and expand them back */
    int invert;       /* nonzero: every output value v becomes 255 - v (not the fill) */
};

/* Where the source image landed in the model input (filled by kfa_prep_plan/_run). */
struct kfa_prep_map {
    uint32_t src_w, src_h; /* source size */
    uint32_t dst_x, dst_y; /* top-left of the image inside the model input */
    uint32_t dst_w, dst_h; /* size of the image inside the model input */
    uint32_t net_w, net_h; /* model input size */
};

/*
 * kfa_prep_plan - compute where a src_w x src_h image goes in the model input. Equal sizes
 * give the identity; otherwise KFA_FIT_STRETCH fills the input and KFA_FIT_LETTERBOX scales
 * by min(width/src_w, height/src_h), rounds the scaled size to the nearest pixel (at least
 * 1) and places it at the configured offset (centred: floor of half the spare pixels).
 * Returns 0, or KFA_PP_E_ARG for a bad configuration or an offset that pushes the image
 * out of the input.
 */
int kfa_prep_plan(const struct kfa_prep_config *cfg, uint32_t src_w, uint32_t src_h,
                  struct kfa_prep_map *map);

/*
 * kfa_prep_run - write the model input for img into out (out_len must be
 * width*height*channels) and fill *map (may be NULL). Per source pixel, the RGB565 round
 * trip happens first, then conversion to grey (Y = (77 R + 150 G + 29 B + 128) >> 8,
 * BT.601 weights in 8-bit fixed point) or grey-to-RGB replication, then interpolation,
 * then inversion. Returns 0, KFA_PP_E_ARG or KFA_PP_E_SIZE.
 */
int kfa_prep_run(const struct kfa_prep_config *cfg, const struct kfa_image *img, uint8_t *out,
                 size_t out_len, struct kfa_prep_map *map);

/*
 * kfa_rgb565_round_trip - one 8-bit RGB pixel through RGB565 and back, as MaixPy's camera
 * and pix_to_ai path does: keep the top 5/6/5 bits, then expand with
 * round(v5 * 255 / 31) and round(v6 * 255 / 63) (kmodel-facts §7 item 8, MaixPy
 * rgb2rgb_tab.c). Updates r, g, b in place.
 */
void kfa_rgb565_round_trip(uint8_t *r, uint8_t *g, uint8_t *b);

/* ---- detections ------------------------------------------------------------------ */

/* One detection. Coordinates are pixels, x2/y2 exclusive-ish edges (centre +- size/2). */
struct kfa_box {
    float x1, y1, x2, y2; /* clamped to the image they refer to */
    float score;          /* objectness * class probability */
    uint32_t class_id;
    uint32_t index; /* region box index: (anchor * grid_h + row) * grid_w + col */
};

/*
 * kfa_prep_map_box - convert a box from model-input pixels to source-image pixels (undo
 * the letterbox offset and the scale), clamping to [0, src_w] x [0, src_h].
 */
void kfa_prep_map_box(const struct kfa_prep_map *map, struct kfa_box *box);

/* ---- YOLOv2 region layer --------------------------------------------------------- */

#define KFA_YOLO2_MAX_ANCHORS 16u /* MaixPy hard-codes 5; detect_9 uses 9 */

struct kfa_yolo2_config {
    uint32_t grid_w, grid_h; /* output tensor W x H */
    uint32_t anchor_count;   /* 1..KFA_YOLO2_MAX_ANCHORS */
    const float *anchors;    /* anchor_count (w, h) pairs in grid cells */
    uint32_t class_count;    /* >= 1 */
    float threshold;         /* keep class probabilities > threshold, in [0, 1] */
    float nms;               /* suppress a box whose IoU with a better one is > nms */
    uint32_t net_w, net_h;   /* model input size: boxes come out in these pixels */
};

/* A candidate (box, class) pair; the caller supplies an array of them as scratch. */
struct kfa_yolo2_cand {
    float x, y, w, h; /* centre and size, fractions of the input */
    float prob;
    uint32_t box;
    uint32_t class_id;
};

/*
 * kfa_yolo2_scratch_count - candidates the decoder may need in the worst case
 * (grid_w * grid_h * anchor_count * class_count); 0 for a bad configuration.
 */
size_t kfa_yolo2_scratch_count(const struct kfa_yolo2_config *cfg);

/*
 * kfa_yolo2_decode - MaixPy's region layer and NMS on a float tensor laid out
 * [anchor][entry][row][col], entry = tx, ty, tw, th, objectness, class logits
 * (out_count must be anchor_count * (5 + class_count) * grid_h * grid_w).
 *
 * Semantics (kmodel-facts §7): sigmoid on tx, ty, objectness; softmax over the classes;
 * centre ((col + sx) / grid_w, (row + sy) / grid_h), size (e^tw * aw / grid_w,
 * e^th * ah / grid_h); prob = objectness * class probability, dropped unless > threshold;
 * per class, boxes in order of descending prob suppress later boxes with IoU > nms (a
 * suppressed box suppresses nothing); each box then reports the first class with the highest
 * surviving prob. Differences from MaixPy, on purpose: corners are clamped to [0, net_w] x
 * [0, net_h] instead of MaixPy's undefined negative float -> uint32; equal probs are ordered
 * by box index then class id (MaixPy's qsort leaves them undefined); results are sorted by
 * descending score, ties by ascending box index, and only the first max_boxes are written
 * (MaixPy writes up to 10 without a bound check).
 *
 * scratch holds scratch_count candidates; kfa_yolo2_scratch_count() always suffices.
 * Returns the number of boxes written (0..max_boxes), KFA_PP_E_ARG, KFA_PP_E_SIZE, or
 * KFA_PP_E_SPACE if more candidates passed the threshold than scratch holds.
 * *total (may be NULL) receives the number of detections before the max_boxes cap.
 */
int kfa_yolo2_decode(const struct kfa_yolo2_config *cfg, const float *out, size_t out_count,
                     struct kfa_yolo2_cand *scratch, size_t scratch_count, struct kfa_box *boxes,
                     size_t max_boxes, size_t *total);

/*
 * kfa_yolo2_grid - guess the output grid from the input size and tensor length: the first
 * stride s in 8, 16, 32, 64 for which floor or ceil of (net / s) on both axes gives
 * cells == grid_w * grid_h. Returns 0 and sets *grid_w, *grid_h, or KFA_PP_E_SIZE.
 */
int kfa_yolo2_grid(uint32_t net_w, uint32_t net_h, size_t cells, uint32_t *grid_w,
                   uint32_t *grid_h);

/* ---- classifiers ----------------------------------------------------------------- */

struct kfa_class_score {
    uint32_t class_id;
    float score; /* the raw value, or its softmax probability */
};

/*
 * kfa_topk - the k highest of values[0..count), best first; equal values keep ascending
 * class order and NaN ranks below everything. With softmax nonzero, scores are
 * exp(v - max) / sum over all values. Writes min(k, count) entries to out and returns that
 * number, or KFA_PP_E_ARG.
 */
int kfa_topk(const float *values, size_t count, int softmax, struct kfa_class_score *out, size_t k);

#ifdef __cplusplus
}
#endif

#endif /* KFA_POSTPROC_H */
