/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of `kpu-agent-sim infer` and `inspect`, run as the real binary (path in
 * KFA_SIM_BIN) with its --json output parsed by json-c:
 *   - every detection model on every shared image, both rounding modes, against the
 *     results listed in the model and image .md files (same classes, IoU >= 0.8, score
 *     within 0.03);
 *   - Iris and MNIST classify as their .md says;
 *   - resize and letterbox map boxes back to the source image; RGB565, --max-boxes;
 *   - errors: bad flags, unreadable files, missing or mismatched manifests.
 * The shared data comes from KPU_TEST_DATA; without it the data tests pass with a
 * "skipped" message, except when CI=true, where they fail.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define IOU_MIN 0.8
/* The score tolerance, plus 0.005 because the .md files round scores to two
 * decimals (a listed 0.69 may be anything in [0.685, 0.695)). */
#define SCORE_TOL (0.03 + 0.005)
#define RGB565_IOU_MIN 0.7 /* no reference exists for the RGB565 path: only "same place" */
#define MAX_DETS 16
#define OUT_CAP (256 * 1024)

/* ---- running the binary ---------------------------------------------------------- */

struct run {
    int status; /* exit status, or -1 if it did not exit normally */
    char out[OUT_CAP];
    char err[8192];
};

static struct run run_result;

static void read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
}

/* Run kpu-agent-sim with args (NULL-terminated); stdout and stderr go to run_result. */
static struct run *sim(const char *const *args)
{
    char *argv[32];
    int n = 0, out_fd, err_fd;
    char out_path[] = "/tmp/check_infer_outXXXXXX", err_path[] = "/tmp/check_infer_errXXXXXX";
    pid_t pid;
    int st;

    argv[n++] = (char *)KFA_SIM_BIN;
    for (; *args && n < 31; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    out_fd = mkstemp(out_path);
    err_fd = mkstemp(err_path);
    ck_assert(out_fd >= 0 && err_fd >= 0);
    unlink(out_path);
    unlink(err_path);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    run_result.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    lseek(out_fd, 0, SEEK_SET);
    lseek(err_fd, 0, SEEK_SET);
    read_all(out_fd, run_result.out, sizeof(run_result.out));
    read_all(err_fd, run_result.err, sizeof(run_result.err));
    close(out_fd);
    close(err_fd);
    /* Under KPU_SANITIZE a report also means exit 1, which some error cases expect. */
    ck_assert_msg(!strstr(run_result.err, "Sanitizer") && !strstr(run_result.err, "runtime error"),
                  "sanitizer report:\n%s", run_result.err);
    return &run_result;
}

/* ---- test data ------------------------------------------------------------------- */

static char data_dir[1024];

/* 1 if the shared data is there; otherwise skip (pass with a message) or, under CI, fail. */
static int have_data(void)
{
    const char *d = getenv("KPU_TEST_DATA");
    const char *ci = getenv("CI");
    char probe[1200];
    struct stat st;

    snprintf(data_dir, sizeof(data_dir), "%s", d ? d : "");
    snprintf(probe, sizeof(probe), "%s/models/maixpy_facedetect_320x240.kmodel", data_dir);
    if (d && stat(probe, &st) == 0)
        return 1;
    if (ci && !strcmp(ci, "true"))
        ck_abort_msg("shared test data missing at KPU_TEST_DATA='%s' (CI=true)", d ? d : "");
    fprintf(stderr, "check_infer: skipped, no shared data at KPU_TEST_DATA='%s'\n", d ? d : "");
    return 0;
}

static const char *model_path(const char *stem)
{
    static char p[4][1200];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/models/%s.kmodel", data_dir, stem);
    return p[i];
}

static const char *image_path(const char *name)
{
    static char p[4][1200];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/images/%s", data_dir, name);
    return p[i];
}

/* ---- parsed detections ----------------------------------------------------------- */

struct det {
    char label[32];
    int class_id;
    double score, x1, y1, x2, y2;
};

/* Parse NDJSON detections; every line must be a JSON object with all fields. */
static int parse_dets(const char *text, struct det *d, int cap)
{
    int n = 0;
    const char *line = text;

    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        ck_assert_uint_lt(len, sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        json_object *o = json_tokener_parse(buf), *v;
        ck_assert_msg(o && json_object_is_type(o, json_type_object), "not JSON: %s", buf);
        ck_assert_int_lt(n, cap);
        ck_assert(json_object_object_get_ex(o, "label", &v));
        snprintf(d[n].label, sizeof(d[n].label), "%s", json_object_get_string(v));
        ck_assert(json_object_object_get_ex(o, "class", &v));
        d[n].class_id = json_object_get_int(v);
        ck_assert(json_object_object_get_ex(o, "score", &v));
        d[n].score = json_object_get_double(v);
        if (json_object_object_get_ex(o, "x1", &v)) {
            d[n].x1 = json_object_get_double(v);
            ck_assert(json_object_object_get_ex(o, "y1", &v));
            d[n].y1 = json_object_get_double(v);
            ck_assert(json_object_object_get_ex(o, "x2", &v));
            d[n].x2 = json_object_get_double(v);
            ck_assert(json_object_object_get_ex(o, "y2", &v));
            d[n].y2 = json_object_get_double(v);
        }
        json_object_put(o);
        n++;
        line = end ? end + 1 : line + len;
    }
    return n;
}

static double iou(double ax1, double ay1, double ax2, double ay2, double bx1, double by1,
                  double bx2, double by2)
{
    double iw = fmin(ax2, bx2) - fmax(ax1, bx1), ih = fmin(ay2, by2) - fmax(ay1, by1);
    if (iw <= 0 || ih <= 0)
        return 0;
    double inter = iw * ih;
    return inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter);
}

/* ---- expected results, transcribed from the .md files of the shared models/images - */

struct want {
    const char *label;
    double score;
    int has_box;
    double x1, y1, x2, y2;
    double up_score; /* score listed for half-up rounding, 0 if the .md gives none */
};

struct want_case {
    const char *model;
    const char *image;
    int n; /* -1: not listed in any .md; only check that it runs */
    struct want w[4];
};

/* face_mask_detect5's .md gives y in 320x256 input coordinates; we report source pixels. */
#define MASK5_DY 8

static const struct want_case cases[] = {
    /* maixpy_facedetect_320x240.kmodel.md "Emulated results" (thr 0.5, nms 0.3) */
    {"maixpy_facedetect_320x240",
     "astronaut_320x240.png",
     1,
     {{"face", 0.94, 1, 109, 31, 173, 117}}},
    {"maixpy_facedetect_320x240",
     "face_man_cap_320x240.jpg",
     1,
     {{"face", 0.94, 1, 65, 70, 148, 181}}},
    {"maixpy_facedetect_320x240",
     "face_soldier_beret_320x240.jpg",
     1,
     {{"face", 0.91, 1, 30, 62, 112, 173}}},
    {"maixpy_facedetect_320x240",
     "two_faces_320x240.jpg",
     2,
     {{"face", 0.83, 1, 63, 14, 87, 47}, {"face", 0.83, 1, 223, 16, 243, 42}}},
    {"maixpy_facedetect_320x240", "dog_320x240.bmp", 0, {{0}}},
    /* yolo2_voc20_320x240.kmodel.md (thr 0.5, nms 0.2) and the image .md files */
    {"yolo2_voc20_320x240",
     "dog_320x240.bmp",
     3,
     {{"car", 0.75, 1, 181, 37, 235, 78, 0.73},
      {"dog", 0.60, 1, 39, 77, 131, 231, 0.58},
      {"bicycle", 0.97, 1, 36, 41, 256, 200, 0.97}}},
    {"yolo2_voc20_320x240", "astronaut_320x240.png", 1, {{"person", 0.80, 0, 0, 0, 0, 0}}},
    {"yolo2_voc20_320x240", "face_man_cap_320x240.jpg", 1, {{"person", 0.97, 0, 0, 0, 0, 0}}},
    {"yolo2_voc20_320x240",
     "two_faces_320x240.jpg",
     4,
     {{"person", 0.93, 0, 0, 0, 0, 0},
      {"person", 0.69, 0, 0, 0, 0, 0},
      {"person", 0.99, 0, 0, 0, 0, 0},
      {"bottle", 0.53, 0, 0, 0, 0, 0}}},
    {"yolo2_voc20_320x240", "face_soldier_beret_320x240.jpg", 0, {{0}}},
    /* mask_yolo2_320x240.kmodel.md (thr 0.5, nms 0.3) */
    {"mask_yolo2_320x240", "astronaut_320x240.png", 1, {{"no_mask", 0.84, 1, 120, 31, 180, 103}}},
    {"mask_yolo2_320x240", "face_man_cap_320x240.jpg", 1, {{"no_mask", 0.88, 1, 61, 60, 171, 187}}},
    {"mask_yolo2_320x240",
     "two_faces_320x240.jpg",
     2,
     {{"no_mask", 0.78, 0, 0, 0, 0, 0}, {"no_mask", 0.75, 0, 0, 0, 0, 0}}},
    {"mask_yolo2_320x240", "dog_320x240.bmp", 0, {{0}}},
    {"mask_yolo2_320x240", "face_soldier_beret_320x240.jpg", -1, {{0}}},
    /* face_mask_detect5_320x256.kmodel.md (thr 0.7, nms 0.4) and the image .md files */
    {"face_mask_detect5_320x256",
     "astronaut_320x240.png",
     1,
     {{"no_mask", 0.99, 1, 111, 46 - MASK5_DY, 169, 116 - MASK5_DY}}},
    {"face_mask_detect5_320x256",
     "two_faces_320x240.jpg",
     2,
     {{"no_mask", 1.00, 0, 0, 0, 0, 0}, {"no_mask", 0.98, 0, 0, 0, 0, 0}}},
    {"face_mask_detect5_320x256", "dog_320x240.bmp", 0, {{0}}},
    {"face_mask_detect5_320x256",
     "face_soldier_beret_320x240.jpg",
     1,
     {{"no_mask", 1.00, 0, 0, 0, 0, 0}}},
    {"face_mask_detect5_320x256", "face_man_cap_320x240.jpg", -1, {{0}}},
};

static void check_case(const struct want_case *c, const char *rounding)
{
    const char *args[] = {"infer",
                          "--model",
                          model_path(c->model),
                          "--image",
                          image_path(c->image),
                          "--rounding",
                          rounding,
                          "--json",
                          NULL};
    struct run *r = sim(args);
    struct det d[MAX_DETS];
    int used[MAX_DETS] = {0};

    ck_assert_msg(r->status == 0, "%s on %s (%s): exit %d: %s", c->model, c->image, rounding,
                  r->status, r->err);
    int n = parse_dets(r->out, d, MAX_DETS);
    if (c->n < 0)
        return;
    ck_assert_msg(n == c->n, "%s on %s (%s): %d detections, want %d:\n%s", c->model, c->image,
                  rounding, n, c->n, r->out);
    for (int i = 0; i < c->n; i++) {
        const struct want *w = &c->w[i];
        double want_score = (!strcmp(rounding, "up") && w->up_score > 0) ? w->up_score : w->score;
        int best = -1;
        double best_err = 1e9;
        for (int j = 0; j < n; j++) {
            if (used[j] || strcmp(d[j].label, w->label) ||
                fabs(d[j].score - want_score) > SCORE_TOL)
                continue;
            double e = fabs(d[j].score - want_score);
            if (w->has_box) {
                double o = iou(d[j].x1, d[j].y1, d[j].x2, d[j].y2, w->x1, w->y1, w->x2, w->y2);
                if (o < IOU_MIN)
                    continue;
                e = 1.0 - o;
            }
            if (e < best_err) {
                best_err = e;
                best = j;
            }
        }
        ck_assert_msg(
            best >= 0, "%s on %s (%s): no match for %s %.2f (%.0f,%.0f)-(%.0f,%.0f) in:\n%s",
            c->model, c->image, rounding, w->label, want_score, w->x1, w->y1, w->x2, w->y2, r->out);
        used[best] = 1;
    }
}

START_TEST(model_matrix)
{
    if (!have_data())
        return;
    const struct want_case *c = &cases[_i / 2];
    check_case(c, (_i % 2) ? "up" : "even");
}
END_TEST

/* The done-when check, in text form: one face near (109,31)-(173,117). */
START_TEST(face_done_when_text)
{
    if (!have_data())
        return;
    const char *args[] = {"infer",
                          "--model",
                          model_path("maixpy_facedetect_320x240"),
                          "--image",
                          image_path("astronaut_320x240.png"),
                          NULL};
    struct run *r = sim(args);
    unsigned cls;
    char label[32];
    double s, x1, y1, x2, y2;

    ck_assert_int_eq(r->status, 0);
    ck_assert_int_eq(
        sscanf(r->out, "%u\t%31s\t%lf\t%lf\t%lf\t%lf\t%lf", &cls, label, &s, &x1, &y1, &x2, &y2),
        7);
    ck_assert_ptr_eq(strchr(r->out, '\n'), r->out + strlen(r->out) - 1); /* one line */
    ck_assert_str_eq(label, "face");
    ck_assert_double_ge(iou(x1, y1, x2, y2, 109, 31, 173, 117), IOU_MIN);
}
END_TEST

/* ---- classifiers ----------------------------------------------------------------- */

START_TEST(iris_classes)
{
    static const struct {
        const char *values;
        const char *label;
        double logits[3];
    } iris[] = {
        /* iris_fc.kmodel.md "Emulated results" */
        {"5.1,3.5,1.4,0.2", "setosa", {18.59, 5.55, -2.23}},
        {"6.7,3.0,5.2,2.3", "virginica", {-16.51, -0.44, 11.26}},
        {"5.9,3.0,4.2,1.5", "versicolor", {-1.91, 10.98, 0.95}},
    };
    if (!have_data())
        return;
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"infer",
                              "--model",
                              model_path("iris_fc"),
                              "--values",
                              iris[i].values,
                              "--json",
                              "--top",
                              "1",
                              NULL};
        struct run *r = sim(args);
        struct det d[4];
        ck_assert_msg(r->status == 0, "%s", r->err);
        ck_assert_int_eq(parse_dets(r->out, d, 4), 1);
        ck_assert_str_eq(d[0].label, iris[i].label);
        double mx = fmax(iris[i].logits[0], fmax(iris[i].logits[1], iris[i].logits[2])), sum = 0;
        for (int k = 0; k < 3; k++)
            sum += exp(iris[i].logits[k] - mx);
        ck_assert_double_eq_tol(d[0].score, 1.0 / sum, 1e-3);
    }
}
END_TEST

/* Draw a black digit on white, 112x112 (the manifest resizes to 28x28 and inverts). */
static void draw_digit(uint8_t *img, int side, char digit)
{
    memset(img, 255, (size_t)side * side);
    double s = side / 28.0;
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            double u = x / s, v = y / s; /* 28x28 coordinates */
            int ink = 0;
            if (digit == '1') {
                ink = fabs(u - 14.0) < 1.6 && v > 4 && v < 24;
            } else if (digit == '0') {
                double e = pow((u - 14) / 6.5, 2) + pow((v - 14) / 9.5, 2);
                ink = e > 0.62 && e < 1.25;
            } else if (digit == '8') {
                double e1 = pow((u - 14) / 4.8, 2) + pow((v - 9) / 4.6, 2);
                double e2 = pow((u - 14) / 5.8, 2) + pow((v - 18.5) / 5.4, 2);
                ink = (e1 > 0.5 && e1 < 1.45) || (e2 > 0.5 && e2 < 1.4);
            }
            if (ink)
                img[y * side + x] = 0;
        }
}

START_TEST(mnist_digits)
{
    static const char digits[] = "018";
    char dir[] = "/tmp/check_infer_mnistXXXXXX";
    uint8_t img[112 * 112];

    if (!have_data())
        return;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int i = 0; digits[i]; i++) {
        char path[128], want[2] = {digits[i], 0};
        snprintf(path, sizeof(path), "%s/digit_%c.png", dir, digits[i]);
        draw_digit(img, 112, digits[i]);
        ck_assert(stbi_write_png(path, 112, 112, 1, img, 112));
        const char *args[] = {"infer",  "--model", model_path("mnist_28x28"), "--image", path,
                              "--json", NULL};
        struct run *r = sim(args);
        struct det d[4];
        unlink(path);
        ck_assert_msg(r->status == 0, "%s", r->err);
        ck_assert_int_eq(parse_dets(r->out, d, 4), 3); /* manifest top_k = 3 */
        ck_assert_msg(!strcmp(d[0].label, want), "digit %c classified as %s:\n%s", digits[i],
                      d[0].label, r->out);
        ck_assert(d[0].score > 0.5 && d[0].score <= 1.0);
        ck_assert(d[0].score >= d[1].score && d[1].score >= d[2].score);
    }
    rmdir(dir);
}
END_TEST

/* ---- geometry through the whole path --------------------------------------------- */

START_TEST(resize_maps_back)
{
    char dir[] = "/tmp/check_infer_geomXXXXXX", path[128];
    int w, h, n;

    if (!have_data())
        return;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    uint8_t *src = stbi_load(image_path("astronaut_320x240.png"), &w, &h, &n, 3);
    ck_assert_ptr_nonnull(src);
    ck_assert(w == 320 && h == 240);

    /* 2x pixel doubling: bilinear halving gives back the exact original input, so the
     * boxes must be exactly twice the original ones. */
    uint8_t *big = malloc(640 * 480 * 3);
    for (int y = 0; y < 480; y++)
        for (int x = 0; x < 640; x++)
            memcpy(big + (y * 640 + x) * 3, src + ((y / 2) * 320 + x / 2) * 3, 3);
    snprintf(path, sizeof(path), "%s/big.png", dir);
    ck_assert(stbi_write_png(path, 640, 480, 3, big, 640 * 3));
    const char *a1[] = {"infer",  "--model", model_path("maixpy_facedetect_320x240"),
                        "--json", "--image", image_path("astronaut_320x240.png"),
                        NULL};
    struct det d0[4], d1[4], d2[4];
    struct run *r = sim(a1);
    ck_assert_int_eq(parse_dets(r->out, d0, 4), 1);
    const char *a2[] = {"infer",  "--model", model_path("maixpy_facedetect_320x240"),
                        "--json", "--image", path,
                        NULL};
    r = sim(a2);
    ck_assert_msg(r->status == 0, "%s", r->err);
    ck_assert_int_eq(parse_dets(r->out, d1, 4), 1);
    ck_assert_double_eq_tol(d1[0].x1, 2 * d0[0].x1, 0.2);
    ck_assert_double_eq_tol(d1[0].y1, 2 * d0[0].y1, 0.2);
    ck_assert_double_eq_tol(d1[0].x2, 2 * d0[0].x2, 0.2);
    ck_assert_double_eq_tol(d1[0].y2, 2 * d0[0].y2, 0.2);
    ck_assert_double_eq_tol(d1[0].score, d0[0].score, 1e-4);
    unlink(path);

    /* Letterbox: 40 black columns each side (400x240 -> 320x192 at y 24); the face must
     * come back near its place in the wider image. */
    uint8_t *wide = calloc(400 * 240 * 3, 1);
    for (int y = 0; y < 240; y++)
        memcpy(wide + (y * 400 + 40) * 3, src + y * 320 * 3, 320 * 3);
    snprintf(path, sizeof(path), "%s/wide.png", dir);
    ck_assert(stbi_write_png(path, 400, 240, 3, wide, 400 * 3));
    const char *a3[] = {"infer",  "--model", model_path("maixpy_facedetect_320x240"),
                        "--json", "--image", path,
                        NULL};
    r = sim(a3);
    ck_assert_msg(r->status == 0, "%s", r->err);
    ck_assert_int_ge(parse_dets(r->out, d2, 4), 1);
    ck_assert_msg(iou(d2[0].x1, d2[0].y1, d2[0].x2, d2[0].y2, d0[0].x1 + 40, d0[0].y1,
                      d0[0].x2 + 40, d0[0].y2) >= 0.7,
                  "letterboxed face at (%.0f,%.0f)-(%.0f,%.0f)", d2[0].x1, d2[0].y1, d2[0].x2,
                  d2[0].y2);
    unlink(path);
    rmdir(dir);
    free(big);
    free(wide);
    stbi_image_free(src);
}
END_TEST

START_TEST(options_rgb565_and_max_boxes)
{
    if (!have_data())
        return;
    const char *a1[] = {"infer",    "--model", model_path("maixpy_facedetect_320x240"), "--json",
                        "--rgb565", "--image", image_path("astronaut_320x240.png"),     NULL};
    struct det d[MAX_DETS];
    struct run *r = sim(a1);
    ck_assert_msg(r->status == 0, "%s", r->err);
    ck_assert_int_eq(parse_dets(r->out, d, MAX_DETS), 1);
    ck_assert_double_ge(iou(d[0].x1, d[0].y1, d[0].x2, d[0].y2, 109, 31, 173, 117), RGB565_IOU_MIN);

    const char *a2[] = {
        "infer", "--model", model_path("yolo2_voc20_320x240"), "--json", "--max-boxes",
        "1",     "--image", image_path("dog_320x240.bmp"),     NULL};
    r = sim(a2);
    ck_assert_int_eq(r->status, 0);
    ck_assert_int_eq(parse_dets(r->out, d, MAX_DETS), 1);
    ck_assert_str_eq(d[0].label, "bicycle"); /* the best of the three */
    ck_assert(strstr(r->err, "2 more") != NULL);

    const char *a3[] = {
        "infer", "--model", model_path("yolo2_voc20_320x240"), "--json", "--threshold",
        "0.99",  "--image", image_path("dog_320x240.bmp"),     NULL};
    r = sim(a3);
    ck_assert_int_eq(r->status, 0);
    ck_assert_int_eq(parse_dets(r->out, d, MAX_DETS), 0);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------- */

START_TEST(usage_errors)
{
    const char *h[] = {"infer", "--help", NULL};
    struct run *r = sim(h);
    ck_assert_int_eq(r->status, 0);
    ck_assert(strstr(r->out, "usage:") != NULL);

    const char *none[] = {NULL};
    ck_assert_int_eq(sim(none)->status, 2);
    const char *unk[] = {"frobnicate", NULL};
    ck_assert_int_eq(sim(unk)->status, 2);
    const char *bad[] = {"infer", "--model", "m", "--image", "i", "--bogus", NULL};
    r = sim(bad);
    ck_assert_int_eq(r->status, 2);
    ck_assert(strstr(r->err, "--bogus") != NULL);
    const char *thr[] = {"infer", "--model", "m", "--image", "i", "--threshold", "2", NULL};
    r = sim(thr);
    ck_assert_int_eq(r->status, 2);
    ck_assert(strstr(r->err, "--threshold") != NULL);
    const char *rnd[] = {"infer", "--model", "m", "--image", "i", "--rounding", "down", NULL};
    ck_assert_int_eq(sim(rnd)->status, 2);
    const char *noimg[] = {"infer", "--model", "m", NULL};
    ck_assert_int_eq(sim(noimg)->status, 2);
    const char *noval[] = {"infer", "--model", "m", "--image", "i", "--max-boxes", NULL};
    ck_assert_int_eq(sim(noval)->status, 2);
    const char *ins[] = {"inspect", NULL};
    ck_assert_int_eq(sim(ins)->status, 2);
}
END_TEST

START_TEST(file_errors)
{
    char dir[] = "/tmp/check_infer_errXXXXXX", path[256], cmd[1400];

    if (!have_data())
        return;
    ck_assert_ptr_nonnull(mkdtemp(dir));

    /* Missing model file. */
    const char *a1[] = {"infer",
                        "--model",
                        "/nonexistent/face.kmodel",
                        "--manifest",
                        "/nonexistent/x.ini",
                        "--image",
                        image_path("dog_320x240.bmp"),
                        NULL};
    struct run *r = sim(a1);
    ck_assert_int_eq(r->status, 1);
    ck_assert(strstr(r->err, "/nonexistent/x.ini") != NULL);

    /* A model with no manifest anywhere. */
    snprintf(path, sizeof(path), "%s/unknown_model.kmodel", dir);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", model_path("maixpy_facedetect_320x240"), path);
    ck_assert_int_eq(system(cmd), 0);
    const char *a2[] = {"infer", "--model", path, "--image", image_path("dog_320x240.bmp"), NULL};
    r = sim(a2);
    ck_assert_int_eq(r->status, 1);
    ck_assert(strstr(r->err, "no manifest") != NULL);
    ck_assert(strstr(r->err, "unknown_model.ini") != NULL);

    /* A manifest next to the model is found by its stem. */
    char ini[300];
    snprintf(ini, sizeof(ini), "%s/unknown_model.ini", dir);
    snprintf(cmd, sizeof(cmd), "cp '%s/maixpy_facedetect_320x240.ini' '%s'", KFA_MODELS_DIR, ini);
    ck_assert_int_eq(system(cmd), 0);
    const char *a3[] = {"infer", "--model", path, "--image", image_path("astronaut_320x240.png"),
                        NULL};
    r = sim(a3);
    ck_assert_msg(r->status == 0, "%s", r->err);
    ck_assert(strstr(r->out, "face") != NULL);

    /* An image that is not an image. */
    const char *a4[] = {"infer", "--model", path, "--image", ini, NULL};
    r = sim(a4);
    ck_assert_int_eq(r->status, 1);
    ck_assert(strstr(r->err, "cannot decode") != NULL);

    /* A truncated JPEG: an error or a (partial) decode, never a crash. */
    snprintf(cmd, sizeof(cmd), "head -c 3000 '%s' > '%s/cut.jpg'",
             image_path("two_faces_320x240.jpg"), dir);
    ck_assert_int_eq(system(cmd), 0);
    char cut[300];
    snprintf(cut, sizeof(cut), "%s/cut.jpg", dir);
    const char *a5[] = {"infer", "--model", path, "--image", cut, NULL};
    r = sim(a5);
    ck_assert(r->status == 0 || r->status == 1);

    /* Manifest that does not fit the model: MNIST's (1x28x28) for the face model. */
    char mn[300];
    snprintf(mn, sizeof(mn), "%s/mnist_28x28.ini", KFA_MODELS_DIR);
    const char *a6[] = {"infer", "--model", path, "--manifest", mn, "--image", cut, NULL};
    r = sim(a6);
    ck_assert_int_eq(r->status, 1);
    ck_assert(strstr(r->err, "1x28x28") != NULL);

    /* Iris needs --values, not --image; wrong count of values. */
    const char *a7[] = {"infer", "--model", model_path("iris_fc"), "--image", ini, NULL};
    ck_assert_int_eq(sim(a7)->status, 2);
    const char *a8[] = {"infer", "--model", model_path("iris_fc"), "--values", "1,2,3", NULL};
    r = sim(a8);
    ck_assert_int_eq(r->status, 2);
    ck_assert(strstr(r->err, "takes 4 values") != NULL);

    /* A broken manifest names file and line. */
    snprintf(cmd, sizeof(cmd), "printf '[model]\\nname = x\\nkind = ssd\\n' > '%s'", ini);
    ck_assert_int_eq(system(cmd), 0);
    r = sim(a3);
    ck_assert_int_eq(r->status, 1);
    ck_assert(strstr(r->err, "unknown_model.ini:3") != NULL);

    /* A file that is not a kmodel. */
    const char *a9[] = {"inspect", image_path("dog_320x240.bmp"), NULL};
    ck_assert_int_eq(sim(a9)->status, 1);

    unlink(cut);
    unlink(ini);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(inspect_json)
{
    if (!have_data())
        return;
    const char *args[] = {"inspect", model_path("maixpy_facedetect_320x240"), "--json", NULL};
    struct run *r = sim(args);
    json_object *o, *v, *layers, *l0;

    ck_assert_msg(r->status == 0, "%s", r->err);
    o = json_tokener_parse(r->out);
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "layers", &layers));
    ck_assert_int_eq(json_object_array_length(layers), 24); /* the .md's layer list */
    l0 = json_object_array_get_idx(layers, 0);
    ck_assert(json_object_object_get_ex(l0, "name", &v));
    ck_assert_str_eq(json_object_get_string(v), "K210_CONV");
    ck_assert(json_object_object_get_ex(l0, "body_size", &v));
    ck_assert_int_eq(json_object_get_int(v), 940);
    ck_assert(json_object_object_get_ex(l0, "out", &v));
    ck_assert_int_eq(json_object_get_int(json_object_array_get_idx(v, 0)), 16);
    ck_assert_int_eq(json_object_get_int(json_object_array_get_idx(v, 1)), 120);
    ck_assert(json_object_object_get_ex(o, "main_mem_usage", &v));
    ck_assert_int_eq(json_object_get_int(v), 45000);
    ck_assert(json_object_object_get_ex(o, "outputs", &v));
    ck_assert_int_eq(
        json_object_get_int(json_object_object_get(json_object_array_get_idx(v, 0), "address")),
        9000);
    json_object_put(o);

    const char *txt[] = {"inspect", model_path("maixpy_facedetect_320x240"), NULL};
    r = sim(txt);
    ck_assert_int_eq(r->status, 0);
    ck_assert(strstr(r->out, "DEQUANTIZE") != NULL);
    ck_assert(strstr(r->out, "KPU RAM peak") != NULL);
}
END_TEST

static Suite *infer_suite(void)
{
    Suite *s = suite_create("infer");
    TCase *models = tcase_create("models");
    TCase *cli = tcase_create("cli");

    tcase_set_timeout(models, 120);
    tcase_add_loop_test(models, model_matrix, 0, (int)(2 * sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(models, face_done_when_text);
    tcase_add_test(models, iris_classes);
    tcase_add_test(models, mnist_digits);
    tcase_add_test(models, resize_maps_back);
    tcase_add_test(models, options_rgb565_and_max_boxes);
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, usage_errors);
    tcase_add_test(cli, file_errors);
    tcase_add_test(cli, inspect_json);
    suite_add_tcase(s, models);
    suite_add_tcase(s, cli);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(infer_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
