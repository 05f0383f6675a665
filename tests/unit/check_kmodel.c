/* SPDX-License-Identifier: MIT */
/*
 * kmodel runtime on the real shared models: loading, end results against the values in
 * each model's .md (detections: class, IoU >= 0.8, score within 0.03; Iris logits; MNIST
 * softmax), the fast soft-KPU bit-identical to the naive reference on every K210_CONV
 * layer (both rounding modes), and loader robustness: every truncation, corrupted
 * offsets, kmodel v4/v5 and byte-swapped headers.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel_test_util.h"

/* Returns the model bytes, or NULL after printing why the test is skipped. */
static uint8_t *need_model(const char *name, size_t *size)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s.kmodel", name);
    const char *p = kt_data_path(rel);
    if (!p) {
        const char *ci = getenv("CI");
        ck_assert_msg(!(ci && strcmp(ci, "true") == 0), "test data %s missing in CI", rel);
        fprintf(stderr, "SKIP: %s not found (set KPU_TEST_DATA)\n", rel);
        return NULL;
    }
    uint8_t *d = kt_read_file(p, size);
    ck_assert_ptr_nonnull(d);
    return d;
}

static uint8_t *need_image(const char *name, uint32_t w, uint32_t h, uint32_t y_off)
{
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", name);
    const char *p = kt_data_path(rel);
    ck_assert_msg(p != NULL, "image %s missing", rel);
    uint8_t *img = kt_image_chw(p, w, h, y_off, 127);
    ck_assert_ptr_nonnull(img);
    return img;
}

struct expect {
    int cls;
    float score;
    float x1, y1, x2, y2;
};

struct det_case {
    const char *model, *image;
    uint32_t h, y_off; /* model input height, image row offset (letterbox) */
    int gw, gh, classes;
    float anchors[10];
    float thr, nms;
    int n_expect[2]; /* per rounding: half-even, half-up */
    struct expect expect[2][4];
};

/* Expected values: the model .md files in ../shared/data/models (independent emulator). */
static const struct det_case det_cases[] = {
    {"maixpy_facedetect_320x240",
     "astronaut_320x240.png",
     240,
     0,
     20,
     15,
     1,
     {1.889f, 2.5245f, 2.9465f, 3.94056f, 3.99987f, 5.3658f, 5.155437f, 6.92275f, 6.718375f,
      9.01025f},
     0.5f,
     0.3f,
     {1, 1},
     {{{0, 0.94f, 109, 31, 173, 117}}, {{0, 0.94f, 109, 31, 173, 117}}}},
    {"yolo2_voc20_320x240",
     "dog_320x240.bmp",
     240,
     0,
     10,
     7,
     20,
     {1.08f, 1.19f, 3.42f, 4.41f, 6.63f, 11.38f, 9.42f, 5.11f, 16.62f, 10.52f},
     0.5f,
     0.2f,
     {3, 3},
     {{{6, 0.75f, 181, 37, 235, 78}, {11, 0.60f, 39, 77, 131, 231}, {1, 0.97f, 36, 41, 256, 200}},
      {{6, 0.73f, 181, 37, 235, 78}, {11, 0.58f, 39, 77, 131, 231}, {1, 0.97f, 36, 41, 256, 200}}}},
    {"mask_yolo2_320x240",
     "astronaut_320x240.png",
     240,
     0,
     10,
     8,
     2,
     {0.1606f, 0.3562f, 0.4712f, 0.9568f, 0.9877f, 1.9108f, 1.8761f, 3.5310f, 3.4423f, 5.6823f},
     0.5f,
     0.3f,
     {1, 1},
     {{{0, 0.84f, 120, 31, 180, 103}}, {{0, 0.84f, 120, 31, 180, 103}}}},
    {"face_mask_detect5_320x256",
     "astronaut_320x240.png",
     256,
     8,
     10,
     8,
     2,
     {0.156250f, 0.222548f, 0.361328f, 0.489583f, 0.781250f, 0.983133f, 1.621094f, 1.964286f,
      3.574219f, 3.940000f},
     0.7f,
     0.4f,
     {1, 1},
     {{{0, 0.99f, 111, 46, 169, 116}}, {{0, 0.99f, 111, 46, 169, 116}}}},
};

START_TEST(test_detection_models)
{
    const struct det_case *dc = &det_cases[_i / 2];
    enum kfa_rounding rounding = (_i % 2) ? KFA_ROUND_HALF_UP : KFA_ROUND_HALF_EVEN;
    size_t size;
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    int r;
    uint8_t *file = need_model(dc->model, &size);
    if (!file)
        return;
    ck_assert_int_eq(kfa_kmodel_load(&m, file, size, &err), 0);
    ck_assert_uint_eq(m.input_kind, KFA_INPUT_U8_CHW);
    ck_assert_uint_eq(m.input_w, 320);
    ck_assert_uint_eq(m.input_h, dc->h);
    uint8_t *img = need_image(dc->image, 320, dc->h, dc->y_off);

    /* CHECK mode: every conv runs naive and fast on copies and must agree exactly. */
    uint32_t layers0, mism0, layers1, mism1;
    kfa_soft_kpu_check_counts(&layers0, &mism0);
    uint8_t *ref = kt_run(&m, img, KFA_SOFT_KPU_CHECK, rounding, &r);
    ck_assert_int_eq(r, 0);
    kfa_soft_kpu_check_counts(&layers1, &mism1);
    ck_assert_uint_gt(layers1 - layers0, 0);
    ck_assert_uint_eq(mism1 - mism0, 0);
    uint8_t *fast = kt_run(&m, img, KFA_SOFT_KPU_FAST, rounding, &r);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(memcmp(ref, fast, m.main_size), 0);

    const void *out;
    size_t out_len;
    ck_assert_int_eq(kfa_kmodel_output(&m, fast, 0, &out, &out_len), 0);
    ck_assert_uint_eq(out_len, (size_t)dc->gw * dc->gh * 5 * (5 + dc->classes) * 4);
    struct kt_box boxes[64];
    int n = kt_yolo2(out, dc->gw, dc->gh, dc->classes, dc->anchors, 5, dc->thr, dc->nms, 320,
                     (float)dc->h, boxes, 64);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s rounding %d: class %d %.2f (%.0f,%.0f)-(%.0f,%.0f)\n", dc->model,
                (int)rounding, boxes[i].cls, boxes[i].score, boxes[i].x1, boxes[i].y1, boxes[i].x2,
                boxes[i].y2);
    ck_assert_int_eq(n, dc->n_expect[_i % 2]);
    for (int e = 0; e < dc->n_expect[_i % 2]; e++) {
        const struct expect *x = &dc->expect[_i % 2][e];
        struct kt_box want = {x->cls, x->score, x->x1, x->y1, x->x2, x->y2};
        int ok = 0;
        for (int i = 0; i < n; i++)
            if (boxes[i].cls == x->cls && kt_iou(&boxes[i], &want) >= 0.8f &&
                fabsf(boxes[i].score - x->score) <= 0.03f)
                ok = 1;
        ck_assert_msg(ok, "%s: expected class %d %.2f not found", dc->model, x->cls, x->score);
    }
    free(ref);
    free(fast);
    free(img);
    free(file);
}
END_TEST

START_TEST(test_iris)
{
    static const float in[3][4] = {
        {5.1f, 3.5f, 1.4f, 0.2f}, {6.7f, 3.0f, 5.2f, 2.3f}, {5.9f, 3.0f, 4.2f, 1.5f}};
    static const float want[3][3] = {
        {18.59f, 5.55f, -2.23f}, {-16.51f, -0.44f, 11.26f}, {-1.91f, 10.98f, 0.95f}};
    size_t size;
    struct kfa_kmodel m;
    int r;
    uint8_t *file = need_model("iris_fc", &size);
    if (!file)
        return;
    ck_assert_int_eq(kfa_kmodel_load(&m, file, size, NULL), 0);
    ck_assert_uint_eq(m.input_kind, KFA_INPUT_F32);
    ck_assert_uint_eq(m.input_bytes, 16);
    for (int t = 0; t < 3; t++) {
        uint8_t *mb = kt_run(&m, in[t], KFA_SOFT_KPU_FAST, KFA_ROUND_HALF_EVEN, &r);
        const void *out;
        size_t len;
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(kfa_kmodel_output(&m, mb, 0, &out, &len), 0);
        ck_assert_uint_eq(len, 12);
        float o[3];
        memcpy(o, out, sizeof o);
        for (int k = 0; k < 3; k++)
            ck_assert_float_eq_tol(o[k], want[t][k], 0.01f);
        free(mb);
    }
    free(file);
}
END_TEST

START_TEST(test_mnist)
{
    size_t size;
    struct kfa_kmodel m;
    int r;
    uint8_t *file = need_model("mnist_28x28", &size);
    if (!file)
        return;
    ck_assert_int_eq(kfa_kmodel_load(&m, file, size, NULL), 0);
    ck_assert_uint_eq(m.input_bytes, 28 * 28);
    /* A "1": a white vertical stroke on black, as the fmap demo feeds (inverted grey). */
    uint8_t img[28 * 28] = {0};
    for (int y = 4; y < 24; y++)
        for (int x = 13; x < 16; x++)
            img[y * 28 + x] = 255;
    uint32_t l0, m0, l1, m1;
    kfa_soft_kpu_check_counts(&l0, &m0);
    uint8_t *mb = kt_run(&m, img, KFA_SOFT_KPU_CHECK, KFA_ROUND_HALF_EVEN, &r);
    kfa_soft_kpu_check_counts(&l1, &m1);
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(l1 - l0, 3);
    ck_assert_uint_eq(m1 - m0, 0);
    const void *out;
    size_t len;
    ck_assert_int_eq(kfa_kmodel_output(&m, mb, 0, &out, &len), 0);
    ck_assert_uint_eq(len, 40);
    float p[10], sum = 0;
    int best = 0;
    memcpy(p, out, sizeof p);
    for (int k = 0; k < 10; k++) {
        ck_assert(p[k] >= 0.f && p[k] <= 1.f);
        sum += p[k];
        if (p[k] > p[best])
            best = k;
    }
    ck_assert_float_eq_tol(sum, 1.f, 1e-4f);
    ck_assert_int_eq(best, 1);
    free(mb);
    free(file);
}
END_TEST

/* ---- loader robustness ------------------------------------------------------------ */

static int load_copy(const uint8_t *src, size_t len, struct kfa_kmodel_error *err)
{
    /* an exact-size heap copy, so ASan sees any read past len */
    uint8_t *b = malloc(len ? len : 1);
    struct kfa_kmodel m;
    memcpy(b, src, len);
    int r = kfa_kmodel_load(&m, b, len, err);
    free(b);
    return r;
}

static const char *const all_models[] = {
    "maixpy_facedetect_320x240", "yolo2_voc20_320x240", "mask_yolo2_320x240",
    "face_mask_detect5_320x256", "mnist_28x28",         "iris_fc"};

START_TEST(test_truncations)
{
    size_t size;
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    uint8_t *file = need_model(all_models[_i], &size);
    if (!file)
        return;
    ck_assert_int_eq(kfa_kmodel_load(&m, file, size, &err), 0);
    /* every length for small files; header, tables and each body boundary +-16 otherwise */
    for (size_t len = 0; len < size; len++) {
        int test = size < 4096 || len < m.bodies_offset + 64 || size - len < 64;
        if (!test) {
            struct kfa_kmodel_layer_info li;
            for (uint32_t i = 0; i < m.layer_count && !test; i++) {
                kfa_kmodel_layer_info(&m, i, &li);
                size_t b = li.body_offset;
                test = (len + 16 >= b && len <= b + 16) ||
                       (len + 16 >= b + li.body_size && len <= b + li.body_size + 16);
            }
        }
        if (!test && len % 4099 != 0)
            continue;
        int r = load_copy(file, len, &err);
        ck_assert_msg(r == KFA_KMODEL_E_TRUNCATED, "%s: len %zu gave %d (%s)", all_models[_i], len,
                      r, err.text);
    }
    free(file);
}
END_TEST

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

START_TEST(test_corruptions)
{
    size_t size;
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    uint8_t *file = need_model("maixpy_facedetect_320x240", &size);
    if (!file)
        return;
    ck_assert_int_eq(kfa_kmodel_load(&m, file, size, &err), 0);
    uint8_t *c = malloc(size);
    size_t b0 = m.bodies_offset; /* layer 0 body: K210_CONV */
    struct {
        size_t at;
        uint32_t value;
        int code;
        const char *text;
    } cases[] = {
        {b0 + 12, (uint32_t)size, KFA_KMODEL_E_BOUNDS, "layer 0 (K210_CONV): weights end"},
        {b0 + 8, (uint32_t)size - 8, KFA_KMODEL_E_BOUNDS, "layer 0 (K210_CONV): layer argument"},
        {b0 + 16, 0, KFA_KMODEL_E_BOUNDS, "layer 0 (K210_CONV): batch-norm table end 0 <"},
        {b0 + 20, (uint32_t)(b0 + 900), KFA_KMODEL_E_BOUNDS, "activation table end"},
        {20, 100, KFA_KMODEL_E_BOUNDS, "header: output end"},
        {m.layers_offset, 7, KFA_KMODEL_E_UNSUPPORTED, "layer 0 (MAX_POOL2D): type id 7"},
        {m.layers_offset + 8 * 23, 999, KFA_KMODEL_E_UNSUPPORTED, "layer 23 (UNKNOWN)"},
        {m.layers_offset + 4, 0x7FFFFFFF, KFA_KMODEL_E_TRUNCATED, "layer 0 (K210_CONV): body end"},
        {8, 1, KFA_KMODEL_E_FORMAT, "arch"},
        {12, 0, KFA_KMODEL_E_UNSUPPORTED, "layers_length"},
        {24, 1000, KFA_KMODEL_E_UNSUPPORTED, "output_count"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(c, file, size);
        put32(c + cases[i].at, cases[i].value);
        int r = load_copy(c, size, &err);
        ck_assert_msg(r == cases[i].code, "case %zu: %d (%s)", i, r, err.text);
        ck_assert_msg(strstr(err.text, cases[i].text) != NULL, "case %zu: text '%s'", i, err.text);
    }
    /* Layer argument fields: pool type 12, kernel type 2, source line near the end. */
    size_t arg = get32(file + b0 + 8);
    memcpy(c, file, size);
    c[arg + 32] = (uint8_t)((c[arg + 32] & 0x0F) | (12 << 4));
    ck_assert_int_eq(load_copy(c, size, &err), KFA_KMODEL_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.text, "pool_type 12"));
    memcpy(c, file, size);
    c[arg + 32] = (uint8_t)((c[arg + 32] & ~7) | 2);
    ck_assert_int_eq(load_copy(c, size, &err), KFA_KMODEL_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.text, "kernel_type 2"));
    memcpy(c, file, size);
    put32(c + arg + 8, 32767);
    ck_assert_int_eq(load_copy(c, size, &err), KFA_KMODEL_E_BOUNDS);
    ck_assert_ptr_nonnull(strstr(err.text, "input end line"));
    ck_assert_int_eq(err.layer, 0);
    ck_assert_uint_eq(err.layer_type, 10240);
    /* The final DEQUANTIZE writing past main_mem_usage. */
    memcpy(c, file, size);
    {
        size_t off = m.bodies_offset;
        for (uint32_t i = 0; i < 23; i++)
            off += get32(file + m.layers_offset + 8 * i + 4);
        put32(c + off + 8, 44000);
    }
    ck_assert_int_eq(load_copy(c, size, &err), KFA_KMODEL_E_BOUNDS);
    ck_assert_ptr_nonnull(strstr(err.text, "layer 23 (DEQUANTIZE): output end"));
    free(c);
    free(file);
}
END_TEST

START_TEST(test_other_formats)
{
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    uint8_t v4[64] = {'K', 'M', 'D', 'L', 4};
    uint8_t v5[64] = {'K', 'M', 'D', 'L', 5};
    uint8_t v1[64] = {1};
    ck_assert_int_eq(kfa_kmodel_load(&m, v4, sizeof v4, &err), KFA_KMODEL_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.text, "kmodel v4"));
    ck_assert_int_eq(kfa_kmodel_load(&m, v5, sizeof v5, &err), KFA_KMODEL_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.text, "kmodel v5"));
    ck_assert_int_eq(kfa_kmodel_load(&m, v1, sizeof v1, &err), KFA_KMODEL_E_FORMAT);
    ck_assert_int_eq(kfa_kmodel_load(&m, v4, 3, &err), KFA_KMODEL_E_TRUNCATED);
    ck_assert_int_eq(kfa_kmodel_load(&m, NULL, 0, &err), KFA_KMODEL_E_TRUNCATED);

    size_t size;
    uint8_t *file = need_model("maixpy_facedetect_320x240", &size);
    if (!file)
        return;
    /* MaixPy's load_flash variant: every 32-bit word byte-swapped. */
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint8_t t0 = file[i], t1 = file[i + 1];
        file[i] = file[i + 3];
        file[i + 1] = file[i + 2];
        file[i + 2] = t1;
        file[i + 3] = t0;
    }
    ck_assert_int_eq(kfa_kmodel_load(&m, file, size, &err), KFA_KMODEL_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.text, "byte-swapped"));
    ck_assert_int_eq(err.layer, -1);
    free(file);
}
END_TEST

START_TEST(test_run_arguments)
{
    size_t size;
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    uint8_t *file = need_model("mnist_28x28", &size);
    if (!file)
        return;
    ck_assert_int_eq(kfa_kmodel_load(&m, file, size, &err), 0);
    ck_assert_uint_eq(kfa_kmodel_main_size(&m), 14112);
    uint8_t in[28 * 28] = {0};
    uint8_t *mb = malloc(m.main_size);
    ck_assert_int_eq(
        kfa_kmodel_run(&m, in, 100, mb, m.main_size, kfa_hal_kpu_ram(), KFA_ROUND_HALF_EVEN, &err),
        KFA_KMODEL_E_INPUT);
    ck_assert_int_eq(kfa_kmodel_run(&m, in, sizeof in, mb, m.main_size - 1, kfa_hal_kpu_ram(),
                                    KFA_ROUND_HALF_EVEN, &err),
                     KFA_KMODEL_E_BUFFER);
    const void *o;
    size_t ol;
    ck_assert_int_eq(kfa_kmodel_output(&m, mb, 1, &o, &ol), KFA_KMODEL_E_BOUNDS);
    struct kfa_kmodel_layer_info li;
    ck_assert_int_eq(kfa_kmodel_layer_info(&m, 11, &li), KFA_KMODEL_E_BOUNDS);
    ck_assert_int_eq(kfa_kmodel_layer_info(&m, 7, &li), 0);
    ck_assert_str_eq(li.name, "K210_CONV");
    ck_assert_uint_eq(li.in_c, 32);
    ck_assert_uint_eq(li.out_c, 10);
    ck_assert_uint_eq(li.kernel, 1);
    ck_assert_uint_eq(li.main_out, 13952);
    free(mb);
    free(file);
}
END_TEST

static Suite *kmodel_suite(void)
{
    Suite *s = suite_create("kmodel");
    TCase *t = tcase_create("models");
    tcase_add_loop_test(t, test_detection_models, 0,
                        2 * (int)(sizeof det_cases / sizeof det_cases[0]));
    tcase_add_test(t, test_iris);
    tcase_add_test(t, test_mnist);
    suite_add_tcase(s, t);
    t = tcase_create("loader");
    tcase_add_loop_test(t, test_truncations, 0, (int)(sizeof all_models / sizeof all_models[0]));
    tcase_add_test(t, test_corruptions);
    tcase_add_test(t, test_other_formats);
    tcase_add_test(t, test_run_arguments);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kmodel_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
