/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the kmodel Check tests: test data lookup (skip unless CI=true),
 * image decoding to planar RGB (stb_image, test-only), running a model with a chosen
 * soft-KPU implementation, and a minimal YOLOv2 region decode + NMS written from
 * kmodel-facts.md §7, independent of the production post-processing.
 */
#ifndef KMODEL_TEST_UTIL_H
#define KMODEL_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "hal/soft_kpu/soft_kpu.h"
#include "kmodel/kmodel.h"

/* kt_data_path - "$KPU_TEST_DATA/rel" if it exists, else NULL (the test then skips, or
 * fails when CI=true). Returned string is static. */
const char *kt_data_path(const char *rel);

/* kt_read_file - whole file, malloc'd; NULL on error. */
uint8_t *kt_read_file(const char *path, size_t *size);

/* kt_image_chw - decode an image into a c x h x w planar RGB buffer (malloc'd), the image
 * placed at row y_off and the rest filled with fill. NULL on error. */
uint8_t *kt_image_chw(const char *path, uint32_t w, uint32_t h, uint32_t y_off, uint8_t fill);

/* kt_run - run m on input with impl; returns a malloc'd copy of the main buffer. */
uint8_t *kt_run(const struct kfa_kmodel *m, const void *input, enum kfa_soft_kpu_impl impl,
                enum kfa_rounding rounding, int *ret);

struct kt_box {
    int cls;
    float score;
    float x1, y1, x2, y2;
};

/* kt_yolo2 - decode a [anchor][4+1+classes][gh][gw] float output; returns box count. */
int kt_yolo2(const float *out, int gw, int gh, int classes, const float *anchors, int n_anchor,
             float thr, float nms, float img_w, float img_h, struct kt_box *boxes, int cap);

/* kt_iou - intersection over union of two corner boxes. */
float kt_iou(const struct kt_box *a, const struct kt_box *b);

#endif
