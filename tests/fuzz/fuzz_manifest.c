/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the model manifest parser (kfa_manifest_parse_string, which feeds inih's
 * stream parser) on arbitrary bytes. A manifest that parses is then used the way infer uses
 * it (preprocessing plan, YOLOv2 configuration, label lookup), so values the parser accepts
 * must be safe for the consumers too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "manifest.h"
#include "postproc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kfa_manifest m;
    struct kfa_manifest_error err;
    struct kfa_prep_map map;

    if (kfa_manifest_parse_string((const char *)data, size, "fuzz", &m, &err) != 0) {
        /* The message is one NUL-terminated line. */
        if (memchr(err.text, '\0', sizeof(err.text)) == NULL || err.code >= 0)
            __builtin_trap();
        return 0;
    }
    if (m.name[0] == '\0' || m.label_count > KFA_MANIFEST_MAX_LABELS ||
        m.anchor_count > KFA_YOLO2_MAX_ANCHORS)
        __builtin_trap();
    for (uint32_t i = 0; i < m.label_count + 1; i++) {
        const char *l = kfa_manifest_label(&m, i);
        if (l && strlen(l) >= KFA_MANIFEST_LABEL_MAX)
            __builtin_trap();
    }
    if (m.input_kind == KFA_MANIFEST_INPUT_U8) {
        struct kfa_prep_config pc = {
            .width = m.input_w,
            .height = m.input_h,
            .channels = m.input_c,
            .fit = m.fit,
            .filter = m.filter,
            .fill = m.fill,
            .offset_x = m.offset_x,
            .offset_y = m.offset_y,
            .invert = m.invert,
        };
        (void)kfa_prep_plan(&pc, 320, 240, &map);
    }
    if (m.kind == KFA_MODEL_YOLO2) {
        struct kfa_yolo2_config yc = {
            .grid_w = m.grid_w ? m.grid_w : 1,
            .grid_h = m.grid_h ? m.grid_h : 1,
            .anchor_count = m.anchor_count,
            .anchors = m.anchors,
            .class_count = m.class_count,
            .threshold = m.threshold,
            .nms = m.nms,
            .net_w = m.input_w,
            .net_h = m.input_h,
        };
        if (kfa_yolo2_scratch_count(&yc) == 0 && yc.grid_w <= 4096 && yc.grid_h <= 4096 &&
            yc.class_count <= 65536)
            __builtin_trap(); /* the parser let through a configuration decode refuses */
    }
    return 0;
}
