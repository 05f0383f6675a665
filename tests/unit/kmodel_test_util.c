/* SPDX-License-Identifier: MIT */
/* Helpers for the kmodel Check tests (see kmodel_test_util.h). Test-only code. */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#include <stb/stb_image.h>

#include "kmodel_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *kt_data_path(const char *rel)
{
    static char buf[4096];
    const char *d = getenv("KPU_TEST_DATA");
    if (!d)
        return NULL;
    snprintf(buf, sizeof buf, "%s/%s", d, rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

uint8_t *kt_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        b = malloc((size_t)n ? (size_t)n : 1);
        if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
            free(b);
            b = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return b;
}

uint8_t *kt_image_chw(const char *path, uint32_t w, uint32_t h, uint32_t y_off, uint8_t fill)
{
    int iw, ih, ic;
    uint8_t *px = stbi_load(path, &iw, &ih, &ic, 3);
    if (!px)
        return NULL;
    if ((uint32_t)iw != w || (uint32_t)ih + y_off > h) {
        stbi_image_free(px);
        return NULL;
    }
    uint8_t *out = malloc((size_t)3 * w * h);
    memset(out, fill, (size_t)3 * w * h);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++)
                out[((size_t)c * h + y + y_off) * w + x] = px[((size_t)y * iw + x) * 3 + c];
    stbi_image_free(px);
    return out;
}

uint8_t *kt_run(const struct kfa_kmodel *m, const void *input, enum kfa_soft_kpu_impl impl,
                enum kfa_rounding rounding, int *ret)
{
    struct kfa_kmodel_error err;
    uint8_t *mb = malloc(kfa_kmodel_main_size(m) + 1);
    kfa_soft_kpu_set_impl(impl);
    *ret = kfa_kmodel_run(m, input, m->input_bytes, mb, kfa_kmodel_main_size(m), kfa_hal_kpu_ram(),
                          rounding, &err);
    if (*ret)
        fprintf(stderr, "run: %s\n", err.text);
    kfa_soft_kpu_set_impl(KFA_SOFT_KPU_FAST);
    return mb;
}

static float sigm(float x)
{
    return 1.f / (1.f + expf(-x));
}

float kt_iou(const struct kt_box *a, const struct kt_box *b)
{
    float iw = fminf(a->x2, b->x2) - fmaxf(a->x1, b->x1);
    float ih = fminf(a->y2, b->y2) - fmaxf(a->y1, b->y1);
    if (iw <= 0 || ih <= 0)
        return 0;
    float in = iw * ih;
    return in / ((a->x2 - a->x1) * (a->y2 - a->y1) + (b->x2 - b->x1) * (b->y2 - b->y1) - in);
}

struct cand {
    float bx, by, bw, bh;
    float prob[32];
};

static const struct cand *sort_base;
static int sort_cls;

static int by_prob(const void *a, const void *b)
{
    float pa = sort_base[*(const int *)a].prob[sort_cls];
    float pb = sort_base[*(const int *)b].prob[sort_cls];
    return pa < pb ? 1 : pa > pb ? -1 : 0;
}

static float cand_iou(const struct cand *a, const struct cand *b)
{
    struct kt_box x = {
        0, 0, a->bx - a->bw / 2, a->by - a->bh / 2, a->bx + a->bw / 2, a->by + a->bh / 2};
    struct kt_box y = {
        0, 0, b->bx - b->bw / 2, b->by - b->bh / 2, b->bx + b->bw / 2, b->by + b->bh / 2};
    return kt_iou(&x, &y);
}

int kt_yolo2(const float *out, int gw, int gh, int classes, const float *anchors, int n_anchor,
             float thr, float nms, float img_w, float img_h, struct kt_box *boxes, int cap)
{
    int n = gw * gh * n_anchor, found = 0;
    struct cand *c = calloc((size_t)n, sizeof *c);
    int *idx = malloc(sizeof(int) * (size_t)n);
#define E(a, k, y, x) out[(((a) * (5 + classes) + (k)) * gh + (y)) * gw + (x)]
    for (int a = 0; a < n_anchor; a++)
        for (int y = 0; y < gh; y++)
            for (int x = 0; x < gw; x++) {
                struct cand *p = &c[(a * gh + y) * gw + x];
                float obj = sigm(E(a, 4, y, x)), mx = -INFINITY, sum = 0;
                p->bx = (x + sigm(E(a, 0, y, x))) / gw;
                p->by = (y + sigm(E(a, 1, y, x))) / gh;
                p->bw = expf(E(a, 2, y, x)) * anchors[2 * a] / gw;
                p->bh = expf(E(a, 3, y, x)) * anchors[2 * a + 1] / gh;
                for (int k = 0; k < classes; k++)
                    mx = fmaxf(mx, E(a, 5 + k, y, x));
                for (int k = 0; k < classes; k++)
                    sum += expf(E(a, 5 + k, y, x) - mx);
                for (int k = 0; k < classes; k++) {
                    float pr = obj * expf(E(a, 5 + k, y, x) - mx) / sum;
                    p->prob[k] = pr > thr ? pr : 0;
                }
            }
#undef E
    for (int k = 0; k < classes; k++) {
        for (int i = 0; i < n; i++)
            idx[i] = i;
        sort_base = c;
        sort_cls = k;
        qsort(idx, (size_t)n, sizeof idx[0], by_prob);
        for (int i = 0; i < n; i++) {
            if (c[idx[i]].prob[k] == 0)
                continue;
            for (int j = i + 1; j < n; j++)
                if (cand_iou(&c[idx[i]], &c[idx[j]]) > nms)
                    c[idx[j]].prob[k] = 0;
        }
    }
    for (int i = 0; i < n && found < cap; i++) {
        int best = 0;
        for (int k = 1; k < classes; k++)
            if (c[i].prob[k] > c[i].prob[best])
                best = k;
        if (c[i].prob[best] > thr) {
            struct kt_box *b = &boxes[found++];
            b->cls = best;
            b->score = c[i].prob[best];
            b->x1 = (c[i].bx - c[i].bw / 2) * img_w;
            b->y1 = (c[i].by - c[i].bh / 2) * img_h;
            b->x2 = (c[i].bx + c[i].bw / 2) * img_w;
            b->y2 = (c[i].by + c[i].bh / 2) * img_h;
        }
    }
    free(c);
    free(idx);
    return found;
}
