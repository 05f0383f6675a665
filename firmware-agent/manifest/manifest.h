/* SPDX-License-Identifier: MIT */
/*
 * Model manifests: the small INI file that travels with every kmodel and says how to feed
 * it (input size, layout, letterbox) and how to read its output (YOLOv2 anchors, classes,
 * labels, thresholds, or classifier top-k), plus the sha256 that pins the model file.
 * The format is documented in docs/models.md. Parsing uses inih (host only); the struct is
 * fixed-size and self-contained so it can be copied anywhere, including to the firmware.
 */
#ifndef KFA_MANIFEST_H
#define KFA_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "postproc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KFA_MANIFEST_NAME_MAX 64u /* bytes incl. NUL */
#define KFA_MANIFEST_URL_MAX 192u /* bytes incl. NUL; fits inih's 200-byte line */
#define KFA_MANIFEST_MAX_LABELS 64u
#define KFA_MANIFEST_LABEL_MAX 32u /* bytes incl. NUL */
#define KFA_MANIFEST_MAX_LINE 196u /* longest line accepted (inih INI_MAX_LINE 200 - 4) */
#define KFA_MANIFEST_MAX_BYTES (64u * 1024u)

/* Errors (negative). */
#define KFA_MANIFEST_E_IO (-1)      /* cannot read the file */
#define KFA_MANIFEST_E_SYNTAX (-2)  /* not INI, line too long, NUL byte, unknown section/key */
#define KFA_MANIFEST_E_VALUE (-3)   /* a value out of range or of the wrong form */
#define KFA_MANIFEST_E_MISSING (-4) /* a required key is absent or keys contradict */

enum kfa_model_kind {
    KFA_MODEL_UNKNOWN = 0,
    KFA_MODEL_YOLO2 = 1,      /* YOLOv2 region output, decoded by kfa_yolo2_decode */
    KFA_MODEL_CLASSIFIER = 2, /* float vector, kfa_topk */
};

enum kfa_manifest_input {
    KFA_MANIFEST_INPUT_U8 = 0,  /* uint8 planar C x H x W image */
    KFA_MANIFEST_INPUT_F32 = 1, /* width * height * channels float32 values, no image */
};

struct kfa_manifest {
    char name[KFA_MANIFEST_NAME_MAX]; /* [model] name */
    enum kfa_model_kind kind;         /* [model] kind = yolo2 | classifier */
    char sha256[65];                  /* [model] sha256, 64 lowercase hex digits, "" if absent */
    char url[KFA_MANIFEST_URL_MAX];   /* [model] url, "" if absent */

    uint32_t input_w, input_h, input_c; /* [input] width, height, channels (1 or 3) */
    enum kfa_manifest_input input_kind; /* [input] format = u8 | float */
    enum kfa_fit fit;                   /* [input] fit = stretch | letterbox */
    enum kfa_filter filter;             /* [input] resize = bilinear | nearest */
    uint8_t fill;                       /* [input] fill (letterbox border), default 0 */
    int32_t offset_x, offset_y;         /* [input] offset_x/y, default KFA_PREP_CENTRE */
    int invert;                         /* [input] invert = yes | no */

    uint32_t output_index; /* [output] index, default 0 */
    uint32_t class_count;  /* [output] classes (0 = from the output size) */
    uint32_t label_count;  /* [output] labels, comma separated */
    char labels[KFA_MANIFEST_MAX_LABELS][KFA_MANIFEST_LABEL_MAX];

    uint32_t anchor_count; /* [yolo2] anchors: pairs w, h in grid cells */
    float anchors[2 * KFA_YOLO2_MAX_ANCHORS];
    uint32_t grid_w, grid_h; /* [yolo2] grid_w, grid_h (0 = guess) */
    float threshold;         /* [yolo2] threshold, default 0.5 */
    float nms;               /* [yolo2] nms, default 0.3 */
    uint32_t max_boxes;      /* [yolo2] max_boxes, default 10 (MaixPy's) */

    uint32_t top_k; /* [classifier] top_k, default 1 */
    int softmax;    /* [classifier] softmax = yes | no, default no */
};

struct kfa_manifest_error {
    int code;       /* KFA_MANIFEST_E_* */
    int line;       /* 1-based line of the problem, 0 if none */
    char key[48];   /* "section.key" concerned, "" if none */
    char text[256]; /* one line: "<origin>:<line>: [section] key: what is wrong" */
};

/*
 * kfa_manifest_parse_string - parse manifest text[0..len) (need not be NUL-terminated;
 * a NUL byte inside is an error). origin names the source in messages (a file name, or
 * NULL for "<string>"). Fills *m on success; on failure *m is unspecified and *err (may be
 * NULL) says what and where. Returns 0 or a negative KFA_MANIFEST_E_*.
 */
int kfa_manifest_parse_string(const char *text, size_t len, const char *origin,
                              struct kfa_manifest *m, struct kfa_manifest_error *err);

/*
 * kfa_manifest_load - read the file at path (at most KFA_MANIFEST_MAX_BYTES) and parse it
 * as kfa_manifest_parse_string does. Returns 0 or a negative KFA_MANIFEST_E_*.
 */
int kfa_manifest_load(const char *path, struct kfa_manifest *m, struct kfa_manifest_error *err);

/* kfa_manifest_label - label of class id, or NULL when the manifest has none for it. */
const char *kfa_manifest_label(const struct kfa_manifest *m, uint32_t id);

/* kfa_model_kind_name - "yolo2", "classifier" or "unknown". */
const char *kfa_model_kind_name(enum kfa_model_kind kind);

#ifdef __cplusplus
}
#endif

#endif /* KFA_MANIFEST_H */
