/* SPDX-License-Identifier: MIT */
/*
 * `kpu-agent-sim infer`: one image (or a float vector) through a kmodel on the host, with
 * the model's manifest saying how to prepare the input and read the output. Prints one line
 * per detection or class, as text (tab separated) or NDJSON. Host only.
 */
#include "sim_cmds.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image_load.h"
#include "kmodel/kmodel.h"
#include "manifest.h"
#include "postproc.h"

#ifndef KFA_MODELS_DIR
#define KFA_MODELS_DIR "firmware-agent/models" /* CMake sets the source tree's path */
#endif

#define MANIFEST_EXT ".ini"
#define MAX_FLOAT_VALUES 4096u

struct infer_opts {
    const char *model;
    const char *image;
    const char *manifest;
    const char *values; /* comma-separated floats for float-input models */
    float threshold;    /* < 0: the manifest's */
    float nms;          /* < 0: the manifest's */
    long max_boxes;     /* 0: the manifest's */
    long top;           /* 0: the manifest's */
    enum kfa_rounding rounding;
    int rgb565;
    int json;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s infer --model M.kmodel (--image IMG | --values V1,V2,...) [options]\n"
            "\n"
            "Run a kmodel on an image file (JPEG, PNG, BMP) and print what it finds: for a\n"
            "YOLOv2 model one line per detection (class id, label, score, x1, y1, x2, y2 in\n"
            "the image's pixels), for a classifier the top classes (class id, label, score).\n"
            "\n"
            "options:\n"
            "  -m, --model FILE      kmodel v3 file\n"
            "  -i, --image FILE      input image, converted as the manifest says\n"
            "      --values LIST     comma-separated floats, for float-input models (iris)\n"
            "      --manifest FILE   model manifest (default: <model stem>.ini next to the\n"
            "                        model, then in %s)\n"
            "      --threshold T     YOLOv2 score threshold in [0,1] (default: manifest)\n"
            "      --nms N           YOLOv2 NMS IoU limit in [0,1] (default: manifest)\n"
            "      --max-boxes K     at most K detections, best first (default: manifest)\n"
            "      --top K           classifier: print the K best classes (default: manifest)\n"
            "      --rounding MODE   software KPU tie rounding: even (default) or up\n"
            "      --rgb565          pass pixels through RGB565 first, like MaixPy's camera\n"
            "      --json            one JSON object per line (NDJSON)\n"
            "  -h, --help            this text\n"
            "\n"
            "exit status: 0 ok (also when nothing is found), 1 file/model/run error, 2 usage\n",
            sim_prog, KFA_MODELS_DIR);
}

static int parse_unit(const char *s, float *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
        return -1;
    *out = (float)v;
    return 0;
}

static int parse_count(const char *s, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 65536)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct infer_opts *o)
{
    enum {
        O_MANIFEST = 256,
        O_THRESHOLD,
        O_NMS,
        O_MAX_BOXES,
        O_TOP,
        O_ROUNDING,
        O_RGB565,
        O_JSON,
        O_VALUES
    };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"image", required_argument, NULL, 'i'},
        {"manifest", required_argument, NULL, O_MANIFEST},
        {"values", required_argument, NULL, O_VALUES},
        {"threshold", required_argument, NULL, O_THRESHOLD},
        {"nms", required_argument, NULL, O_NMS},
        {"max-boxes", required_argument, NULL, O_MAX_BOXES},
        {"top", required_argument, NULL, O_TOP},
        {"rounding", required_argument, NULL, O_ROUNDING},
        {"rgb565", no_argument, NULL, O_RGB565},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->threshold = -1.0f;
    o->nms = -1.0f;
    o->rounding = KFA_ROUND_HALF_EVEN;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'i':
            o->image = optarg;
            break;
        case O_MANIFEST:
            o->manifest = optarg;
            break;
        case O_VALUES:
            o->values = optarg;
            break;
        case O_THRESHOLD:
            if (parse_unit(optarg, &o->threshold) < 0) {
                fprintf(stderr, "%s infer: --threshold wants a number in [0,1], not '%s'\n",
                        sim_prog, optarg);
                return -1;
            }
            break;
        case O_NMS:
            if (parse_unit(optarg, &o->nms) < 0) {
                fprintf(stderr, "%s infer: --nms wants a number in [0,1], not '%s'\n", sim_prog,
                        optarg);
                return -1;
            }
            break;
        case O_MAX_BOXES:
            if (parse_count(optarg, &o->max_boxes) < 0) {
                fprintf(stderr, "%s infer: --max-boxes wants 1..65536, not '%s'\n", sim_prog,
                        optarg);
                return -1;
            }
            break;
        case O_TOP:
            if (parse_count(optarg, &o->top) < 0) {
                fprintf(stderr, "%s infer: --top wants 1..65536, not '%s'\n", sim_prog, optarg);
                return -1;
            }
            break;
        case O_ROUNDING:
            if (!strcmp(optarg, "even")) {
                o->rounding = KFA_ROUND_HALF_EVEN;
            } else if (!strcmp(optarg, "up")) {
                o->rounding = KFA_ROUND_HALF_UP;
            } else {
                fprintf(stderr, "%s infer: --rounding is 'even' or 'up', not '%s'\n", sim_prog,
                        optarg);
                return -1;
            }
            break;
        case O_RGB565:
            o->rgb565 = 1;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            fprintf(stderr, "%s infer: option '%s' needs a value\n", sim_prog, argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "%s infer: unknown option '%s'\n", sim_prog, argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s infer: unexpected argument '%s'\n", sim_prog, argv[optind]);
        return -1;
    }
    if (!o->model) {
        fprintf(stderr, "%s infer: --model is required\n", sim_prog);
        return -1;
    }
    if (!o->image == !o->values) {
        fprintf(stderr, "%s infer: give exactly one of --image and --values\n", sim_prog);
        return -1;
    }
    return 0;
}

/* The model file's stem: basename without its last extension. */
static void model_stem(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    const char *dot;
    size_t n;

    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

/* Find the manifest for model_path: next to it, then in the source tree's models/. */
static int find_manifest(const char *model_path, char *out, size_t cap)
{
    char stem[256], dir[PATH_MAX];
    const char *slash = strrchr(model_path, '/');
    size_t dlen = slash ? (size_t)(slash - model_path) : 1;

    model_stem(model_path, stem, sizeof(stem));
    if (dlen >= sizeof(dir))
        dlen = sizeof(dir) - 1;
    memcpy(dir, slash ? model_path : ".", dlen);
    dir[dlen] = '\0';
    if (slash && dlen == 0)
        strcpy(dir, "/");

    snprintf(out, cap, "%s/%s%s", dir, stem, MANIFEST_EXT);
    if (access(out, R_OK) == 0)
        return 0;
    snprintf(out, cap, "%s/%s%s", KFA_MODELS_DIR, stem, MANIFEST_EXT);
    if (access(out, R_OK) == 0)
        return 0;
    fprintf(stderr,
            "%s infer: no manifest for model '%s': tried %s/%s%s and %s/%s%s; pass --manifest\n",
            sim_prog, model_path, dir, stem, MANIFEST_EXT, KFA_MODELS_DIR, stem, MANIFEST_EXT);
    return -1;
}

static int parse_values(const char *s, float *v, size_t cap, size_t *n)
{
    *n = 0;
    while (*s) {
        char *end;
        double d;
        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || !isfinite(d) || *n == cap)
            return -1;
        v[(*n)++] = (float)d;
        while (*end == ' ')
            end++;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        s = end;
    }
    return *n ? 0 : -1;
}

static void print_label(FILE *f, const struct kfa_manifest *man, uint32_t id, int json)
{
    const char *label = kfa_manifest_label(man, id);

    if (json) {
        if (label)
            sim_json_string(f, label);
        else
            fputs("null", f);
    } else {
        fputs(label ? label : "-", f);
    }
}

static int print_detections(const struct infer_opts *o, const struct kfa_manifest *man,
                            const struct kfa_kmodel *km, const float *out, size_t n,
                            const struct kfa_prep_map *map)
{
    struct kfa_yolo2_config cfg;
    struct kfa_yolo2_cand *scratch = NULL;
    struct kfa_box *boxes = NULL;
    size_t scratch_n, max_boxes, total = 0;
    int r, rc = SIM_EXIT_FAIL;

    memset(&cfg, 0, sizeof(cfg));
    cfg.anchor_count = man->anchor_count;
    cfg.anchors = man->anchors;
    cfg.class_count = man->class_count;
    cfg.threshold = o->threshold >= 0 ? o->threshold : man->threshold;
    cfg.nms = o->nms >= 0 ? o->nms : man->nms;
    cfg.net_w = km->input_w;
    cfg.net_h = km->input_h;
    cfg.grid_w = man->grid_w;
    cfg.grid_h = man->grid_h;
    size_t per_cell = (size_t)cfg.anchor_count * (5u + cfg.class_count);
    if (n % per_cell) {
        fprintf(stderr,
                "%s infer: output has %zu values, not a multiple of %u anchors x (5 + %u "
                "classes): does the manifest match the model?\n",
                sim_prog, n, cfg.anchor_count, cfg.class_count);
        return SIM_EXIT_FAIL;
    }
    if (!cfg.grid_w &&
        kfa_yolo2_grid(cfg.net_w, cfg.net_h, n / per_cell, &cfg.grid_w, &cfg.grid_h) < 0) {
        fprintf(stderr, "%s infer: cannot tell the output grid of %zu cells; set grid_w/grid_h\n",
                sim_prog, n / per_cell);
        return SIM_EXIT_FAIL;
    }
    scratch_n = kfa_yolo2_scratch_count(&cfg);
    max_boxes = o->max_boxes ? (size_t)o->max_boxes : man->max_boxes;
    scratch = calloc(scratch_n ? scratch_n : 1, sizeof(*scratch));
    boxes = calloc(max_boxes, sizeof(*boxes));
    if (!scratch || !boxes) {
        fprintf(stderr, "%s infer: out of memory\n", sim_prog);
        goto out;
    }
    r = kfa_yolo2_decode(&cfg, out, n, scratch, scratch_n, boxes, max_boxes, &total);
    if (r < 0) {
        fprintf(stderr,
                "%s infer: region decoding failed (%d): output of %zu values does not match "
                "grid %ux%u, %u anchors, %u classes\n",
                sim_prog, r, n, cfg.grid_w, cfg.grid_h, cfg.anchor_count, cfg.class_count);
        goto out;
    }
    for (int i = 0; i < r; i++) {
        struct kfa_box b = boxes[i];
        kfa_prep_map_box(map, &b);
        if (o->json) {
            printf("{\"class\":%u,\"label\":", b.class_id);
            print_label(stdout, man, b.class_id, 1);
            printf(",\"score\":%.4f,\"x1\":%.1f,\"y1\":%.1f,\"x2\":%.1f,\"y2\":%.1f}\n", b.score,
                   b.x1, b.y1, b.x2, b.y2);
        } else {
            printf("%u\t", b.class_id);
            print_label(stdout, man, b.class_id, 0);
            printf("\t%.4f\t%.1f\t%.1f\t%.1f\t%.1f\n", b.score, b.x1, b.y1, b.x2, b.y2);
        }
    }
    if ((size_t)r < total)
        fprintf(stderr, "%s infer: %zu more detections beyond --max-boxes %zu\n", sim_prog,
                total - (size_t)r, max_boxes);
    rc = SIM_EXIT_OK;
out:
    free(scratch);
    free(boxes);
    return rc;
}

static int print_classes(const struct infer_opts *o, const struct kfa_manifest *man,
                         const float *out, size_t n)
{
    size_t k = o->top ? (size_t)o->top : man->top_k;
    struct kfa_class_score *top;
    int r;

    if (man->class_count && man->class_count != n) {
        fprintf(stderr, "%s infer: output has %zu values but the manifest says %u classes\n",
                sim_prog, n, man->class_count);
        return SIM_EXIT_FAIL;
    }
    top = calloc(k, sizeof(*top));
    if (!top) {
        fprintf(stderr, "%s infer: out of memory\n", sim_prog);
        return SIM_EXIT_FAIL;
    }
    r = kfa_topk(out, n, man->softmax, top, k);
    for (int i = 0; i < r; i++) {
        if (o->json) {
            printf("{\"rank\":%d,\"class\":%u,\"label\":", i + 1, top[i].class_id);
            print_label(stdout, man, top[i].class_id, 1);
            if (isfinite(top[i].score))
                printf(",\"score\":%.6g}\n", top[i].score);
            else
                printf(",\"score\":null}\n");
        } else {
            printf("%u\t", top[i].class_id);
            print_label(stdout, man, top[i].class_id, 0);
            printf("\t%.6g\n", top[i].score);
        }
    }
    free(top);
    return r < 0 ? SIM_EXIT_FAIL : SIM_EXIT_OK;
}

/* Check that the manifest describes this model's input; prints why not. */
static int check_input(const struct kfa_manifest *man, const struct kfa_kmodel *km,
                       const char *man_path)
{
    if (man->input_kind == KFA_MANIFEST_INPUT_U8) {
        if (km->input_kind != KFA_INPUT_U8_CHW || km->input_w != man->input_w ||
            km->input_h != man->input_h || km->input_c != man->input_c) {
            fprintf(stderr,
                    "%s infer: manifest %s says u8 %ux%ux%u (CxHxW) but the model takes %s "
                    "%ux%ux%u\n",
                    sim_prog, man_path, man->input_c, man->input_h, man->input_w,
                    km->input_kind == KFA_INPUT_U8_CHW ? "u8" : "float", km->input_c, km->input_h,
                    km->input_w);
            return -1;
        }
    } else if (km->input_kind != KFA_INPUT_F32 ||
               (uint64_t)man->input_w * man->input_h * man->input_c != km->input_c) {
        fprintf(stderr, "%s infer: manifest %s says %u floats but the model takes %s %u\n",
                sim_prog, man_path, man->input_w * man->input_h * man->input_c,
                km->input_kind == KFA_INPUT_F32 ? "float" : "u8 channels", km->input_c);
        return -1;
    }
    return 0;
}

int cmd_infer(int argc, char **argv)
{
    struct infer_opts o;
    struct kfa_manifest *man = NULL;
    struct kfa_manifest_error merr;
    struct kfa_kmodel km;
    struct kfa_kmodel_error kerr;
    struct kfa_loaded_image img = {0};
    struct kfa_prep_map map;
    char man_path[PATH_MAX + 64];
    char errbuf[512];
    uint8_t *file = NULL, *main_buf = NULL, *kpu_ram = NULL, *input = NULL;
    float *values = NULL;
    size_t file_len = 0, n_out;
    const void *out;
    size_t out_len;
    int rc = SIM_EXIT_FAIL, r;

    r = parse_args(argc, argv, &o);
    if (r != 0)
        return r > 0 ? SIM_EXIT_OK : SIM_EXIT_USAGE;

    if (o.manifest) {
        snprintf(man_path, sizeof(man_path), "%s", o.manifest);
    } else if (find_manifest(o.model, man_path, sizeof(man_path)) < 0) {
        return SIM_EXIT_FAIL;
    }
    man = malloc(sizeof(*man));
    if (!man)
        return SIM_EXIT_FAIL;
    if (kfa_manifest_load(man_path, man, &merr) < 0) {
        fprintf(stderr, "%s infer: bad manifest: %s\n", sim_prog, merr.text);
        goto out;
    }
    if (man->kind == KFA_MODEL_YOLO2 && o.top) {
        fprintf(stderr, "%s infer: --top is for classifiers; %s is yolo2\n", sim_prog, man->name);
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    if (man->kind == KFA_MODEL_CLASSIFIER && (o.threshold >= 0 || o.nms >= 0 || o.max_boxes)) {
        fprintf(stderr,
                "%s infer: --threshold/--nms/--max-boxes are for yolo2; %s is a "
                "classifier\n",
                sim_prog, man->name);
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    if (man->input_kind == KFA_MANIFEST_INPUT_F32 && (o.image || o.rgb565)) {
        fprintf(stderr, "%s infer: %s takes float values: use --values, not --image/--rgb565\n",
                sim_prog, man->name);
        rc = SIM_EXIT_USAGE;
        goto out;
    }
    if (man->input_kind == KFA_MANIFEST_INPUT_U8 && o.values) {
        fprintf(stderr, "%s infer: %s takes an image: use --image\n", sim_prog, man->name);
        rc = SIM_EXIT_USAGE;
        goto out;
    }

    if (sim_read_file(o.model, SIM_MAX_MODEL_BYTES, &file, &file_len) < 0)
        goto out;
    if (kfa_kmodel_load(&km, file, file_len, &kerr) < 0) {
        fprintf(stderr, "%s infer: %s: %s\n", sim_prog, o.model, kerr.text);
        goto out;
    }
    if (check_input(man, &km, man_path) < 0)
        goto out;
    if (man->output_index >= km.output_count) {
        fprintf(stderr, "%s infer: manifest output index %u but the model has %u outputs\n",
                sim_prog, man->output_index, km.output_count);
        goto out;
    }

    input = malloc(km.input_bytes ? km.input_bytes : 1);
    if (!input)
        goto out;
    if (km.input_kind == KFA_INPUT_U8_CHW) {
        struct kfa_prep_config pc = {
            .width = man->input_w,
            .height = man->input_h,
            .channels = man->input_c,
            .fit = man->fit,
            .filter = man->filter,
            .fill = man->fill,
            .offset_x = man->offset_x,
            .offset_y = man->offset_y,
            .rgb565 = o.rgb565,
            .invert = man->invert,
        };
        struct kfa_image src;
        if (kfa_image_load(o.image, &img, errbuf, sizeof(errbuf)) < 0) {
            fprintf(stderr, "%s infer: %s\n", sim_prog, errbuf);
            goto out;
        }
        src.pixels = img.rgb;
        src.width = img.width;
        src.height = img.height;
        src.channels = 3;
        src.layout = KFA_PIXELS_INTERLEAVED;
        r = kfa_prep_run(&pc, &src, input, km.input_bytes, &map);
        if (r < 0) {
            fprintf(stderr, "%s infer: cannot fit a %ux%u image into %ux%u (error %d)\n", sim_prog,
                    img.width, img.height, pc.width, pc.height, r);
            goto out;
        }
    } else {
        size_t nv;
        values = calloc(MAX_FLOAT_VALUES, sizeof(*values));
        if (!values)
            goto out;
        if (parse_values(o.values, values, MAX_FLOAT_VALUES, &nv) < 0) {
            fprintf(stderr, "%s infer: --values wants comma-separated numbers\n", sim_prog);
            rc = SIM_EXIT_USAGE;
            goto out;
        }
        if (nv * sizeof(float) != km.input_bytes) {
            fprintf(stderr, "%s infer: %s takes %zu values, got %zu\n", sim_prog, man->name,
                    km.input_bytes / sizeof(float), nv);
            rc = SIM_EXIT_USAGE;
            goto out;
        }
        memcpy(input, values, km.input_bytes);
        memset(&map, 0, sizeof(map));
    }

    main_buf = calloc(1, kfa_kmodel_main_size(&km) ? kfa_kmodel_main_size(&km) : 1);
    kpu_ram = calloc(1, KFA_KPU_RAM_SIZE);
    if (!main_buf || !kpu_ram) {
        fprintf(stderr, "%s infer: out of memory\n", sim_prog);
        goto out;
    }
    if (kfa_kmodel_run(&km, input, km.input_bytes, main_buf, kfa_kmodel_main_size(&km), kpu_ram,
                       o.rounding, &kerr) < 0) {
        fprintf(stderr, "%s infer: %s: run failed: %s\n", sim_prog, o.model, kerr.text);
        goto out;
    }
    if (kfa_kmodel_output(&km, main_buf, man->output_index, &out, &out_len) < 0 ||
        out_len % sizeof(float)) {
        fprintf(stderr, "%s infer: %s: output %u is not a float tensor\n", sim_prog, o.model,
                man->output_index);
        goto out;
    }
    n_out = out_len / sizeof(float);
    free(values);
    values = malloc(out_len ? out_len : 1); /* aligned copy: outputs sit at any offset */
    if (!values)
        goto out;
    memcpy(values, out, out_len);

    if (man->kind == KFA_MODEL_YOLO2)
        rc = print_detections(&o, man, &km, values, n_out, &map);
    else
        rc = print_classes(&o, man, values, n_out);
    if (fflush(stdout) != 0)
        rc = SIM_EXIT_FAIL;
out:
    kfa_image_free(&img);
    free(values);
    free(input);
    free(main_buf);
    free(kpu_ram);
    free(file);
    free(man);
    return rc;
}
