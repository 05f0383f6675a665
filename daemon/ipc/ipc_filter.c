/* SPDX-License-Identifier: MIT */
/*
 * Subscription filters and request roles of kpud's IPC server: which detections a filter
 * keeps (docs/protocol.md §4 "Filters": unset fields match everything, set fields must all
 * match, a region matches boxes whose centre lies inside) and which requests need ADMIN
 * (docs/protocol.md §4, the "role" column). Pure functions, no I/O.
 */
#include "ipc_internal.h"

#include <math.h>
#include <string.h>

int kpud_ipc_filter_device(const Kpu__Ipc__V1__Filter *f, const char *dev)
{
    if (!f || f->n_devices == 0)
        return 1;
    for (size_t i = 0; i < f->n_devices; i++)
        if (f->devices[i] && dev && strcmp(f->devices[i], dev) == 0)
            return 1;
    return 0;
}

int kpud_ipc_filter_box(const Kpu__Ipc__V1__Filter *f, const Kpu__Ipc__V1__Box *b)
{
    if (!f)
        return 1;
    if (f->n_class_ids) {
        size_t i;
        for (i = 0; i < f->n_class_ids; i++)
            if (f->class_ids[i] == b->class_id)
                break;
        if (i == f->n_class_ids)
            return 0;
    }
    if (f->n_labels) {
        size_t i;
        for (i = 0; i < f->n_labels; i++)
            if (f->labels[i] && b->label && strcmp(f->labels[i], b->label) == 0)
                break;
        if (i == f->n_labels)
            return 0;
    }
    if (f->min_score > 0.0f && !(b->score >= f->min_score))
        return 0;
    if (f->region) {
        /* Twice the centre, in integers: no rounding question for odd widths. */
        int64_t cx2 = 2 * (int64_t)b->x + b->w;
        int64_t cy2 = 2 * (int64_t)b->y + b->h;
        int64_t l = 2 * (int64_t)f->region->x, t = 2 * (int64_t)f->region->y;
        int64_t r = l + 2 * (int64_t)f->region->w, bt = t + 2 * (int64_t)f->region->h;
        if (cx2 < l || cx2 >= r || cy2 < t || cy2 >= bt)
            return 0;
    }
    return 1;
}

const char *kpud_ipc_filter_validate(const Kpu__Ipc__V1__Filter *f, size_t max_items)
{
    if (!f)
        return NULL;
    if (isnan(f->min_score) || f->min_score < 0.0f || f->min_score > 1.0f)
        return "filter.min_score must be within 0..1";
    if (f->n_devices > max_items)
        return "filter.devices has too many entries";
    if (f->n_class_ids > max_items)
        return "filter.class_ids has too many entries";
    if (f->n_labels > max_items)
        return "filter.labels has too many entries";
    return NULL;
}

int kpud_ipc_is_admin_request(const Kpu__Ipc__V1__Frame *frame)
{
    switch (frame->body_case) {
    case KPU__IPC__V1__FRAME__BODY_SET_CONFIG:
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_BEGIN:
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_CHUNK:
    case KPU__IPC__V1__FRAME__BODY_MODEL_UPLOAD_COMMIT:
    case KPU__IPC__V1__FRAME__BODY_SELECT_MODEL:
    case KPU__IPC__V1__FRAME__BODY_DELETE_MODEL:
    case KPU__IPC__V1__FRAME__BODY_RESET_DEVICE:
    case KPU__IPC__V1__FRAME__BODY_SET_RETENTION:
    case KPU__IPC__V1__FRAME__BODY_APPLY_RETENTION:
    case KPU__IPC__V1__FRAME__BODY_DELETE_HISTORY:
    case KPU__IPC__V1__FRAME__BODY_RECORD_START:
    case KPU__IPC__V1__FRAME__BODY_RECORD_STOP:
        return 1;
    case KPU__IPC__V1__FRAME__BODY_AGENT_CONTROL:
        /* Reading the agent's version is harmless; booting and flashing are not. */
        return frame->agent_control &&
               frame->agent_control->action != KPU__IPC__V1__AGENT_ACTION__AGENT_VERSION;
    default:
        return 0;
    }
}
