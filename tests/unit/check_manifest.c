/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of firmware-agent/manifest: the six shipped manifests parse and carry the
 * facts of their model .md files; malformed manifests fail with the right code, line and
 * key; limits (label count and length, line length, NUL bytes) hold.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

static struct kfa_manifest m;
static struct kfa_manifest_error err;

static int parse(const char *text)
{
    return kfa_manifest_parse_string(text, strlen(text), "t.ini", &m, &err);
}

static int load_shipped(const char *stem)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s.ini", KFA_MODELS_DIR, stem);
    int r = kfa_manifest_load(path, &m, &err);
    if (r)
        fprintf(stderr, "%s\n", err.text);
    return r;
}

#define MINIMAL                                                                                    \
    "[model]\nname = t\nkind = yolo2\n[input]\nwidth = 32\nheight = 16\nchannels = 3\n"            \
    "[output]\nclasses = 2\n[yolo2]\nanchors = 1, 2, 3, 4\n"

/* ---- shipped manifests ----------------------------------------------------------- */

START_TEST(shipped_face)
{
    ck_assert_int_eq(load_shipped("maixpy_facedetect_320x240"), 0);
    ck_assert_str_eq(m.name, "maixpy_facedetect_320x240");
    ck_assert_int_eq(m.kind, KFA_MODEL_YOLO2);
    ck_assert_str_eq(m.sha256, "e3c6669f96761e697de71f8f33116747025bc185c5238f7760e4bddc0be23a03");
    ck_assert_uint_eq(m.input_w, 320);
    ck_assert_uint_eq(m.input_h, 240);
    ck_assert_uint_eq(m.input_c, 3);
    ck_assert_uint_eq(m.class_count, 1);
    ck_assert_uint_eq(m.label_count, 1);
    ck_assert_str_eq(m.labels[0], "face");
    ck_assert_uint_eq(m.anchor_count, 5);
    ck_assert_float_eq_tol(m.anchors[0], 1.889f, 1e-6);
    ck_assert_float_eq_tol(m.anchors[9], 9.01025f, 1e-6); /* from the continuation line */
    ck_assert_uint_eq(m.grid_w, 20);
    ck_assert_uint_eq(m.grid_h, 15);
    ck_assert_float_eq_tol(m.threshold, 0.5f, 1e-6);
    ck_assert_float_eq_tol(m.nms, 0.3f, 1e-6);
}
END_TEST

START_TEST(shipped_voc20)
{
    ck_assert_int_eq(load_shipped("yolo2_voc20_320x240"), 0);
    ck_assert_uint_eq(m.class_count, 20);
    ck_assert_uint_eq(m.label_count, 20);
    ck_assert_str_eq(m.labels[0], "aeroplane");
    ck_assert_str_eq(m.labels[11], "dog");
    ck_assert_str_eq(m.labels[19], "tvmonitor");
    ck_assert_uint_eq(m.grid_h, 7);
    ck_assert_float_eq_tol(m.nms, 0.2f, 1e-6);
    ck_assert(strstr(m.url, "yolo.kmodel") != NULL);
}
END_TEST

START_TEST(shipped_masks)
{
    ck_assert_int_eq(load_shipped("face_mask_detect5_320x256"), 0);
    ck_assert_uint_eq(m.input_h, 256);
    ck_assert_int_eq(m.fit, KFA_FIT_LETTERBOX);
    ck_assert_uint_eq(m.fill, 127);
    ck_assert_int_eq(m.offset_y, KFA_PREP_CENTRE);
    ck_assert_float_eq_tol(m.threshold, 0.7f, 1e-6);
    ck_assert_float_eq_tol(m.nms, 0.4f, 1e-6);
    ck_assert_str_eq(m.labels[1], "mask");
    ck_assert_int_eq(load_shipped("mask_yolo2_320x240"), 0);
    ck_assert_uint_eq(m.grid_h, 8);
    ck_assert_str_eq(m.labels[0], "no_mask");
}
END_TEST

START_TEST(shipped_classifiers)
{
    ck_assert_int_eq(load_shipped("mnist_28x28"), 0);
    ck_assert_int_eq(m.kind, KFA_MODEL_CLASSIFIER);
    ck_assert_uint_eq(m.input_c, 1);
    ck_assert_int_eq(m.invert, 1);
    ck_assert_uint_eq(m.label_count, 10);
    ck_assert_int_eq(m.softmax, 0);
    ck_assert_uint_eq(m.anchor_count, 0);
    ck_assert_int_eq(load_shipped("iris_fc"), 0);
    ck_assert_int_eq(m.input_kind, KFA_MANIFEST_INPUT_F32);
    ck_assert_uint_eq(m.input_w * m.input_h * m.input_c, 4);
    ck_assert_int_eq(m.softmax, 1);
    ck_assert_str_eq(kfa_manifest_label(&m, 2), "virginica");
    ck_assert_ptr_null(kfa_manifest_label(&m, 3));
}
END_TEST

/* ---- good text ------------------------------------------------------------------- */

START_TEST(minimal_and_defaults)
{
    ck_assert_int_eq(parse(MINIMAL), 0);
    ck_assert_uint_eq(m.anchor_count, 2);
    ck_assert_float_eq(m.anchors[3], 4.0f);
    ck_assert_uint_eq(m.label_count, 0);
    ck_assert_float_eq_tol(m.threshold, 0.5f, 1e-6);
    ck_assert_uint_eq(m.max_boxes, 10);
    ck_assert_int_eq(m.fit, KFA_FIT_STRETCH);
    ck_assert_int_eq(m.filter, KFA_FILTER_BILINEAR);
    ck_assert_int_eq(m.offset_x, KFA_PREP_CENTRE);
    ck_assert_uint_eq(m.grid_w, 0);
    ck_assert_str_eq(m.sha256, "");
    ck_assert_str_eq(kfa_model_kind_name(m.kind), "yolo2");
}
END_TEST

START_TEST(length_not_nul_terminated)
{
    /* Only the first len bytes count: the tail would be a syntax error. */
    char buf[sizeof(MINIMAL) + 16];
    memcpy(buf, MINIMAL, strlen(MINIMAL));
    memcpy(buf + strlen(MINIMAL), "garbage!!", 9);
    ck_assert_int_eq(kfa_manifest_parse_string(buf, strlen(MINIMAL), NULL, &m, &err), 0);
    ck_assert_int_eq(kfa_manifest_parse_string(buf, strlen(MINIMAL) + 9, NULL, &m, &err),
                     KFA_MANIFEST_E_SYNTAX);
    ck_assert(strstr(err.text, "<string>:12") != NULL);
}
END_TEST

START_TEST(labels_continue_and_trim)
{
    ck_assert_int_eq(parse(MINIMAL "labels = a b , c,\n"), KFA_MANIFEST_E_SYNTAX); /* wrong
                                                                                    section */
    ck_assert_str_eq(err.key, "yolo2.labels");
    ck_assert_int_eq(parse("[output]\nlabels =  cat , big dog,\n   cow\n[model]\nname=x\n"
                           "kind=classifier\n[input]\nwidth=1\nheight=1\nchannels=1\n"),
                     0);
    ck_assert_uint_eq(m.label_count, 3);
    ck_assert_str_eq(m.labels[0], "cat");
    ck_assert_str_eq(m.labels[1], "big dog");
    ck_assert_str_eq(m.labels[2], "cow");
    ck_assert_str_eq(kfa_model_kind_name(m.kind), "classifier");
}
END_TEST

START_TEST(sha256_and_offsets)
{
    ck_assert_int_eq(parse("[model]\nsha256 = "
                           "E3C6669F96761E697DE71F8F33116747025BC185C5238F7760E4BDDC0BE23A03\n"
                           "[input]\nfit = letterbox\noffset_x = center\noffset_y = 8\n"
                           "fill = 255 ; inline comment\n" MINIMAL),
                     0);
    ck_assert_str_eq(m.sha256, "e3c6669f96761e697de71f8f33116747025bc185c5238f7760e4bddc0be23a03");
    ck_assert_int_eq(m.fit, KFA_FIT_LETTERBOX);
    ck_assert_int_eq(m.offset_x, KFA_PREP_CENTRE);
    ck_assert_int_eq(m.offset_y, 8);
    ck_assert_uint_eq(m.fill, 255);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------- */

START_TEST(error_missing_key)
{
    ck_assert_int_eq(parse("[model]\nkind = yolo2\n"), KFA_MANIFEST_E_MISSING);
    ck_assert_str_eq(err.key, "model.name");
    ck_assert(strstr(err.text, "t.ini") != NULL);
    ck_assert(strstr(err.text, "name") != NULL);
    /* yolo2 without classes */
    ck_assert_int_eq(parse("[model]\nname=t\nkind=yolo2\n[input]\nwidth=1\nheight=1\n"
                           "channels=3\n[yolo2]\nanchors=1,1\n"),
                     KFA_MANIFEST_E_MISSING);
    ck_assert_str_eq(err.key, "output.classes");
}
END_TEST

START_TEST(error_unknown_key_has_line)
{
    ck_assert_int_eq(parse("[model]\nname = t\nkind = yolo2\nflavour = mint\n"),
                     KFA_MANIFEST_E_SYNTAX);
    ck_assert_int_eq(err.line, 4);
    ck_assert_str_eq(err.key, "model.flavour");
    ck_assert(strstr(err.text, "t.ini:4: [model] flavour") != NULL);
    ck_assert_int_eq(parse("\n[colour]\nred = 1\n"), KFA_MANIFEST_E_SYNTAX);
    ck_assert_int_eq(err.line, 3);
    ck_assert(strstr(err.text, "unknown section") != NULL);
}
END_TEST

START_TEST(error_bad_values)
{
    static const struct {
        const char *extra;
        const char *key;
    } cases[] = {
        {"[model]\nsha256 = 1234\n", "model.sha256"},
        {"[model]\nsha256 = "
         "zz3c6669f96761e697de71f8f33116747025bc185c5238f7760e4bddc0be23a0\n",
         "model.sha256"},
        {"[yolo2]\nthreshold = 1.5\n", "yolo2.threshold"},
        {"[yolo2]\nnms = -0.1\n", "yolo2.nms"},
        {"[yolo2]\nnms = 0.3x\n", "yolo2.nms"},
        {"[yolo2]\nmax_boxes = 0\n", "yolo2.max_boxes"},
        {"[input]\nfill = 256\n", "input.fill"},
        {"[input]\noffset_y = -3\n", "input.offset_y"},
        {"[input]\nfit = crop\n", "input.fit"},
        {"[input]\nresize = cubic\n", "input.resize"},
        {"[input]\ninvert = maybe\n", "input.invert"},
        {"[input]\nformat = i16\n", "input.format"},
        {"[yolo2]\nanchors = 1, -2\n", "yolo2.anchors"},
        {"[yolo2]\nanchors = 1, , 2\n", "yolo2.anchors"},
        {"[yolo2]\nanchors = 1, nan\n", "yolo2.anchors"},
        {"[yolo2]\ngrid_w = 99999\n", "yolo2.grid_w"},
    };
    char buf[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Put the bad key first so no duplicate-key error wins. */
        snprintf(buf, sizeof(buf), "%s%s", cases[i].extra, MINIMAL);
        int r = parse(buf);
        ck_assert_msg(r == KFA_MANIFEST_E_VALUE, "case %zu: %d (%s)", i, r, err.text);
        ck_assert_str_eq(err.key, cases[i].key);
        ck_assert_int_eq(err.line, 2);
    }
    ck_assert_int_eq(parse("[model]\nname = t\nkind = ssd\n"), KFA_MANIFEST_E_VALUE);
    ck_assert_int_eq(err.line, 3);
}
END_TEST

START_TEST(error_duplicate_and_syntax)
{
    ck_assert_int_eq(parse(MINIMAL "[input]\nwidth = 32\n"), KFA_MANIFEST_E_SYNTAX);
    ck_assert_int_eq(err.line, 13);
    ck_assert(strstr(err.text, "twice") != NULL);
    ck_assert_int_eq(parse("[model]\nname = t\nthis line has no equals sign\n"),
                     KFA_MANIFEST_E_SYNTAX);
    ck_assert_int_eq(err.line, 3);
    ck_assert_int_eq(parse("[model\nname = t\n"), KFA_MANIFEST_E_SYNTAX);
    ck_assert_int_eq(err.line, 1);
}
END_TEST

START_TEST(error_cross_checks)
{
    /* Odd number of anchor values. */
    ck_assert_int_eq(parse("[model]\nname=t\nkind=yolo2\n[input]\nwidth=1\nheight=1\nchannels=3\n"
                           "[output]\nclasses=1\n[yolo2]\nanchors=1,2,3\n"),
                     KFA_MANIFEST_E_MISSING);
    ck_assert_str_eq(err.key, "yolo2.anchors");
    /* Labels vs classes. */
    ck_assert_int_eq(parse("[model]\nname=t\nkind=yolo2\n[input]\nwidth=1\nheight=1\nchannels=3\n"
                           "[output]\nclasses=2\nlabels=a\n[yolo2]\nanchors=1,2\n"),
                     KFA_MANIFEST_E_MISSING);
    ck_assert_str_eq(err.key, "output.labels");
    /* yolo2 keys on a classifier. */
    ck_assert_int_eq(parse("[model]\nname=t\nkind=classifier\n[input]\nwidth=1\nheight=1\n"
                           "channels=3\n[yolo2]\nthreshold=0.4\n"),
                     KFA_MANIFEST_E_MISSING);
    /* u8 image with 2 channels; yolo2 with float input. */
    ck_assert_int_eq(parse("[model]\nname=t\nkind=classifier\n[input]\nwidth=1\nheight=1\n"
                           "channels=2\n"),
                     KFA_MANIFEST_E_VALUE);
    ck_assert_str_eq(err.key, "input.channels");
    ck_assert_int_eq(parse("[model]\nname=t\nkind=yolo2\n[input]\nwidth=1\nheight=1\n"
                           "channels=3\nformat=float\n[output]\nclasses=1\n[yolo2]\nanchors=1,2\n"),
                     KFA_MANIFEST_E_VALUE);
    ck_assert_str_eq(err.key, "input.format");
}
END_TEST

START_TEST(error_limits)
{
    static char buf[8192];
    size_t n;

    /* 65 labels, in short continued lines. */
    n = (size_t)snprintf(buf, sizeof(buf), "%s[output]\nlabels = l0", MINIMAL);
    for (int i = 1; i < 65; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\n  l%d", i);
    buf[n++] = '\n';
    buf[n] = '\0';
    ck_assert_int_eq(parse(buf), KFA_MANIFEST_E_VALUE);
    ck_assert(strstr(err.text, "more than 64 labels") != NULL);
    /* Exactly 64 is fine (a classifier, so no class count to match). */
    n = (size_t)snprintf(buf, sizeof(buf),
                         "[model]\nname=t\nkind=classifier\n[input]\nwidth=1\nheight=1\n"
                         "channels=1\n[output]\nlabels = l0");
    for (int i = 1; i < 64; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\n  l%d", i);
    buf[n] = '\0';
    ck_assert_int_eq(parse(buf), 0);
    ck_assert_uint_eq(m.label_count, 64);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, ", l64\n");
    ck_assert_int_eq(parse(buf), KFA_MANIFEST_E_VALUE);
    ck_assert(strstr(err.text, "more than 64 labels") != NULL);

    /* A label of 31 bytes fits, 32 does not. */
    static const char as[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
#define LABEL_FMT                                                                                  \
    "[model]\nname=t\nkind=classifier\n[input]\nwidth=1\nheight=1\nchannels=1\n[output]\n"         \
    "labels=%.*s\n"
    snprintf(buf, sizeof(buf), LABEL_FMT, (int)KFA_MANIFEST_LABEL_MAX - 1, as);
    ck_assert_int_eq(parse(buf), 0);
    ck_assert_uint_eq(strlen(m.labels[0]), KFA_MANIFEST_LABEL_MAX - 1);
    snprintf(buf, sizeof(buf), LABEL_FMT, (int)KFA_MANIFEST_LABEL_MAX, as);
    ck_assert_int_eq(parse(buf), KFA_MANIFEST_E_VALUE);
    ck_assert_int_eq(err.line, 9);

    /* Over-long line. */
    memset(buf, 0, sizeof(buf));
    memcpy(buf, "[model]\nname = ", 15);
    memset(buf + 15, 'x', 300);
    ck_assert_int_eq(parse(buf), KFA_MANIFEST_E_SYNTAX);
    ck_assert_int_eq(err.line, 2);
    ck_assert(strstr(err.text, "longer") != NULL);

    /* NUL byte inside the given length. */
    ck_assert_int_eq(kfa_manifest_parse_string("[model]\0name=t\n", 15, "x", &m, &err),
                     KFA_MANIFEST_E_SYNTAX);
    ck_assert(strstr(err.text, "NUL") != NULL);

    /* Missing file. */
    ck_assert_int_eq(kfa_manifest_load("/nonexistent/x.ini", &m, &err), KFA_MANIFEST_E_IO);
    ck_assert(strstr(err.text, "/nonexistent/x.ini") != NULL);

    /* Empty text: every required key missing, no crash. */
    ck_assert_int_eq(kfa_manifest_parse_string("", 0, NULL, &m, &err), KFA_MANIFEST_E_MISSING);
    ck_assert_int_eq(kfa_manifest_parse_string(NULL, 0, NULL, &m, NULL), KFA_MANIFEST_E_MISSING);
}
END_TEST

static Suite *manifest_suite(void)
{
    Suite *s = suite_create("manifest");
    TCase *shipped = tcase_create("shipped");
    TCase *good = tcase_create("good");
    TCase *bad = tcase_create("bad");

    tcase_add_test(shipped, shipped_face);
    tcase_add_test(shipped, shipped_voc20);
    tcase_add_test(shipped, shipped_masks);
    tcase_add_test(shipped, shipped_classifiers);
    tcase_add_test(good, minimal_and_defaults);
    tcase_add_test(good, length_not_nul_terminated);
    tcase_add_test(good, labels_continue_and_trim);
    tcase_add_test(good, sha256_and_offsets);
    tcase_add_test(bad, error_missing_key);
    tcase_add_test(bad, error_unknown_key_has_line);
    tcase_add_test(bad, error_bad_values);
    tcase_add_test(bad, error_duplicate_and_syntax);
    tcase_add_test(bad, error_cross_checks);
    tcase_add_test(bad, error_limits);
    suite_add_tcase(s, shipped);
    suite_add_tcase(s, good);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(manifest_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
