/* SPDX-License-Identifier: MIT */
/*
 * Models: loading the selected kmodel from the store into RAM, the decode settings that
 * follow from its manifest and the host's configuration, and the model-store requests
 * (upload begin/chunk/commit, list, select, delete).
 */
#include "agent_int.h"

#include <string.h>

#include "klink.h"
#include "util.h"

static uint8_t model_ram[KFA_MODEL_RAM] __attribute__((aligned(8)));
static uint8_t main_ram[KFA_MAIN_RAM] __attribute__((aligned(8)));
static char manifest_text[KFA_STORE_MANIFEST_MAX + 1];

static kpu_link_v1_ModelUploadState up_state;
static kpu_link_v1_ModelList list_msg;

uint8_t *kfa_model_ram(size_t *len)
{
    *len = sizeof(model_ram);
    return model_ram;
}

uint8_t *kfa_model_main_buf(size_t *len)
{
    *len = sizeof(main_ram);
    return main_ram;
}

int kfa_model_validate(const uint8_t *data, size_t size, char *text, size_t cap)
{
    struct kfa_kmodel km;
    struct kfa_kmodel_error err;
    int r;

    memset(&err, 0, sizeof(err));
    r = kfa_kmodel_load(&km, data, size, &err);
    if (r < 0) {
        kfa_fmt(text, cap, "kmodel: %s", err.text[0] ? err.text : "rejected by the loader");
        return r;
    }
    if (kfa_kmodel_main_size(&km) > KFA_MAIN_RAM) {
        kfa_fmt(text, cap, "kmodel: needs %u bytes of main memory, agent has %u",
                (unsigned)kfa_kmodel_main_size(&km), KFA_MAIN_RAM);
        return -1;
    }
    if (km.input_kind == KFA_INPUT_U8_CHW && km.input_bytes > KFA_INPUT_MAX) {
        kfa_fmt(text, cap, "kmodel: input of %u bytes, agent has %u", (unsigned)km.input_bytes,
                KFA_INPUT_MAX);
        return -1;
    }
    return 0;
}

void kfa_model_unload(void)
{
    kfa_g.model_loaded = 0;
    kfa_g.streaming = 0;
    memset(&kfa_g.km, 0, sizeof(kfa_g.km));
    memset(&kfa_g.dec, 0, sizeof(kfa_g.dec));
    kfa_g.model_crc = 0;
}

static uint32_t output_floats(void)
{
    const void *out;
    size_t len;

    if (kfa_kmodel_output(&kfa_g.km, main_ram, kfa_g.mp.output_index, &out, &len) != 0)
        return 0;
    return (uint32_t)(len / sizeof(float));
}

int kfa_decode_compute(const struct kfa_cfg *cfg, struct kfa_decode *d, char *text, size_t cap)
{
    const struct kfa_model_params *mp = &kfa_g.mp;
    const struct kfa_kmodel *km = &kfa_g.km;
    uint32_t outn = output_floats(), a, classes, gw = mp->grid_w, gh = mp->grid_h;

    memset(d, 0, sizeof(*d));
    if (km->input_kind != KFA_INPUT_U8_CHW || (km->input_c != 3 && km->input_c != 1)) {
        kfa_fmt(d->why, sizeof(d->why), "model input is not an image");
        return 0;
    }
    if (mp->kind == 2) {
        kfa_fmt(d->why, sizeof(d->why), "classifier models do not stream detections");
        return 0;
    }
    if (cfg->anchor_floats) {
        a = cfg->anchor_floats / 2u;
        memcpy(d->anchors, cfg->anchors, cfg->anchor_floats * sizeof(float));
    } else {
        a = mp->anchor_count;
        memcpy(d->anchors, mp->anchors, a * 2u * sizeof(float));
    }
    if (a == 0) {
        kfa_fmt(d->why, sizeof(d->why), "no anchors: send Configure.anchors or a manifest");
        return 0;
    }
    classes = mp->class_count;
    if (gw == 0 || gh == 0) {
        static const uint32_t strides[] = {8, 16, 32, 64};
        int found = 0;

        for (unsigned s = 0; s < 4 && !found; s++) {
            for (unsigned rnd = 0; rnd < 2 && !found; rnd++) {
                uint32_t w = (km->input_w + (rnd ? strides[s] - 1 : 0)) / strides[s];
                uint32_t h = (km->input_h + (rnd ? strides[s] - 1 : 0)) / strides[s];
                uint32_t cells = w * h, per;

                if (cells == 0 || outn % cells)
                    continue;
                per = outn / cells;
                if (per % a || per / a <= 5u)
                    continue;
                if (classes && per / a != 5u + classes)
                    continue;
                gw = w;
                gh = h;
                found = 1;
            }
        }
    }
    if (gw == 0 || gh == 0 || outn % (gw * gh) || (outn / (gw * gh)) % a ||
        outn / (gw * gh) / a <= 5u) {
        kfa_fmt(text, cap, "anchors: %u pairs do not fit the output of %u values", (unsigned)a,
                (unsigned)outn);
        return -KFA_ST_BAD_REQUEST;
    }
    if (classes == 0)
        classes = outn / (gw * gh) / a - 5u;
    if (outn != a * (5u + classes) * gw * gh) {
        kfa_fmt(text, cap, "anchors: %u pairs x %u classes do not fit %u values", (unsigned)a,
                (unsigned)classes, (unsigned)outn);
        return -KFA_ST_BAD_REQUEST;
    }
    d->y.grid_w = gw;
    d->y.grid_h = gh;
    d->y.anchor_count = a;
    d->y.anchors = NULL; /* set by the pipeline to its copy, which does not move */
    d->y.class_count = classes;
    d->y.threshold = cfg->threshold > 0.0f ? cfg->threshold : mp->threshold;
    d->y.nms = cfg->nms > 0.0f ? cfg->nms : mp->nms;
    d->y.net_w = km->input_w;
    d->y.net_h = km->input_h;
    d->max_boxes = cfg->max_boxes ? cfg->max_boxes : mp->max_boxes;
    if (d->max_boxes == 0 || d->max_boxes > 32u)
        d->max_boxes = 32u;
    d->prep.width = km->input_w;
    d->prep.height = km->input_h;
    d->prep.channels = km->input_c;
    d->prep.fit = mp->fit;
    d->prep.filter = mp->filter;
    d->prep.fill = mp->fill;
    d->prep.offset_x = KFA_PREP_CENTRE;
    d->prep.offset_y = KFA_PREP_CENTRE;
    d->prep.invert = mp->invert;
    d->ready = 1;
    return 0;
}

int kfa_model_activate(const char *name, char *text, size_t cap)
{
    const struct kfa_store_entry *e = kfa_store_find(name);
    struct kfa_kmodel_error err;
    int r;

    if (kfa_image_write_active()) {
        kfa_fmt(text, cap, "an agent image write holds the model RAM");
        return -KFA_ST_BUSY;
    }
    kfa_model_unload();
    if (!e) {
        kfa_fmt(text, cap, "model %s is not in the store", name);
        return -KFA_ST_NO_SUCH_MODEL;
    }
    r = kfa_store_load(e, model_ram, sizeof(model_ram), text, cap);
    if (r < 0)
        return r;
    memset(&err, 0, sizeof(err));
    if (kfa_model_validate(model_ram, e->size, text, cap) != 0 ||
        kfa_kmodel_load(&kfa_g.km, model_ram, e->size, &err) != 0)
        return -KFA_ST_MODEL_INVALID;
    memset(&kfa_g.mp, 0, sizeof(kfa_g.mp));
    manifest_text[0] = '\0';
    if (e->manifest_len && kfa_store_read(e, 1, 0, manifest_text, e->manifest_len) == 0 &&
        klink_crc32c(0, manifest_text, e->manifest_len) == e->manifest_crc) {
        manifest_text[e->manifest_len] = '\0';
        if (kfa_params_parse(manifest_text, e->manifest_len, &kfa_g.mp, text, cap) != 0)
            kfa_log(kpu_link_v1_LogLevel_LOG_WARNING, "model %s manifest: %s", name, text);
    } else {
        (void)kfa_params_parse("", 0, &kfa_g.mp, text, cap);
    }
    kfa_g.model_crc = e->crc32c;
    kfa_g.model_loaded = 1;
    text[0] = '\0';
    r = kfa_decode_compute(&kfa_g.cfg, &kfa_g.dec, text, cap);
    if (r < 0) {
        /* The stored configuration does not fit this model: fall back to the manifest. */
        static const struct kfa_cfg none;

        kfa_log(kpu_link_v1_LogLevel_LOG_WARNING, "config does not fit %s: %s", name, text);
        kfa_g.cfg = none;
        (void)kfa_decode_compute(&kfa_g.cfg, &kfa_g.dec, text, cap);
    }
    text[0] = '\0';
    return 0;
}

/* ---- requests ----------------------------------------------------------------------- */

void kfa_send_upload_state(uint16_t seq, uint32_t id, uint32_t next, int r, const char *text)
{
    memset(&up_state, 0, sizeof(up_state));
    up_state.upload_id = id;
    up_state.next_offset = next;
    up_state.code = (kpu_link_v1_StatusCode)(r < 0 ? -r : 0);
    kfa_strlcpy(up_state.text, r < 0 ? text : "", sizeof(up_state.text));
    (void)kfa_send(kpu_link_v1_MsgType_MSG_MODEL_UPLOAD_STATE, KLINK_FLAG_RESPONSE, seq,
                   kpu_link_v1_ModelUploadState_fields, &up_state);
}

void kfa_handle_upload_begin(uint16_t seq, const kpu_link_v1_ModelUploadBegin *m)
{
    char text[KFA_TEXT_MAX] = "";
    uint32_t id = 0, next = 0;
    int r = kfa_store_upload_begin(m->name, m->size, m->crc32c, m->manifest.bytes, m->manifest.size,
                                   KFA_MODEL_RAM, &id, &next, text, sizeof(text));

    kfa_send_upload_state(seq, id, next, r, text);
}

void kfa_handle_upload_chunk(uint16_t seq, const kpu_link_v1_ModelUploadChunk *m)
{
    char text[KFA_TEXT_MAX] = "";
    uint32_t next = 0;
    int r = kfa_store_upload_chunk(m->upload_id, m->offset, m->data.bytes, m->data.size, &next,
                                   text, sizeof(text));

    kfa_send_upload_state(seq, m->upload_id, next, r, text);
}

void kfa_handle_upload_commit(uint16_t seq, const kpu_link_v1_ModelUploadCommit *m)
{
    char text[KFA_TEXT_MAX] = "", why[KFA_TEXT_MAX] = "";
    char sel[KFA_STORE_NAME_MAX];
    int was_streaming = kfa_g.streaming;
    int r;

    if (kfa_image_write_active()) {
        kfa_reply_status(seq, KFA_ST_BUSY, "an agent image write holds the model RAM");
        return;
    }
    /* The check reads the candidate into model RAM: the loaded model is reloaded after. */
    kfa_model_unload();
    r = kfa_store_upload_commit(m->upload_id, model_ram, sizeof(model_ram), kfa_model_validate,
                                text, sizeof(text));
    kfa_strlcpy(sel, kfa_store_selected(), sizeof(sel));
    if (sel[0] && kfa_model_activate(sel, why, sizeof(why)) < 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "model %s: %s", sel, why);
    if (was_streaming && kfa_g.model_loaded && kfa_g.dec.ready)
        kfa_g.streaming = 1;
    if (r == 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_INFO, "model upload %u committed", (unsigned)m->upload_id);
    kfa_reply_status(seq, -r, text);
}

void kfa_handle_model_list(uint16_t seq)
{
    memset(&list_msg, 0, sizeof(list_msg));
    for (unsigned i = 0; i < kfa_store_count() && i < KFA_STORE_MAX_MODELS; i++) {
        const struct kfa_store_entry *e = kfa_store_entry_at(i);
        kpu_link_v1_StoredModel *s = &list_msg.models[list_msg.models_count++];

        kfa_strlcpy(s->name, e->name, sizeof(s->name));
        s->size = e->size;
        s->crc32c = e->crc32c;
        s->selected = strcmp(e->name, kfa_store_selected()) == 0;
    }
    list_msg.free_bytes = kfa_store_free_bytes();
    (void)kfa_send(kpu_link_v1_MsgType_MSG_MODEL_LIST_REPLY, KLINK_FLAG_RESPONSE, seq,
                   kpu_link_v1_ModelList_fields, &list_msg);
}

void kfa_handle_model_select(uint16_t seq, const kpu_link_v1_ModelSelect *m)
{
    char text[KFA_TEXT_MAX] = "", why[KFA_TEXT_MAX] = "";
    char prev[KFA_STORE_NAME_MAX];
    int was_streaming = kfa_g.streaming;
    int r;

    if (!kfa_store_name_valid(m->name)) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "name: want [A-Za-z0-9._-]{1,31}");
        return;
    }
    if (!kfa_store_find(m->name)) {
        kfa_reply_status(seq, KFA_ST_NO_SUCH_MODEL, "no such model");
        return;
    }
    kfa_strlcpy(prev, kfa_store_selected(), sizeof(prev));
    r = kfa_model_activate(m->name, text, sizeof(text));
    if (r == 0) {
        r = kfa_store_select(m->name);
        if (r < 0)
            kfa_fmt(text, sizeof(text), "flash write of the selection failed");
    }
    if (r < 0 && prev[0] && kfa_model_activate(prev, why, sizeof(why)) < 0)
        kfa_log(kpu_link_v1_LogLevel_LOG_ERROR, "model %s: %s", prev, why);
    if (was_streaming && kfa_g.model_loaded && kfa_g.dec.ready)
        kfa_g.streaming = 1;
    kfa_reply_status(seq, -r, text);
}

void kfa_handle_model_delete(uint16_t seq, const kpu_link_v1_ModelDelete *m)
{
    int selected, r;

    if (!kfa_store_name_valid(m->name)) {
        kfa_reply_status(seq, KFA_ST_BAD_REQUEST, "name: want [A-Za-z0-9._-]{1,31}");
        return;
    }
    if (!kfa_store_find(m->name)) {
        kfa_reply_status(seq, KFA_ST_NO_SUCH_MODEL, "no such model");
        return;
    }
    selected = strcmp(m->name, kfa_store_selected()) == 0;
    if (selected && kfa_g.streaming) {
        kfa_reply_status(seq, KFA_ST_BUSY, "model is streaming; stop first");
        return;
    }
    r = kfa_store_delete(m->name);
    if (r == 0 && selected)
        kfa_model_unload();
    kfa_reply_status(seq, -r, r ? "flash write of the directory failed" : "");
}

int kfa_agent_seed_model(const char *name, const uint8_t *data, size_t size,
                         const uint8_t *manifest, size_t manifest_len, char *text, size_t cap)
{
    const struct kfa_store_entry *e;
    uint32_t id, next, crc;
    int r;

    r = kfa_store_open();
    if (r < 0) {
        kfa_fmt(text, cap, "no flash for a model store");
        return r;
    }
    if (size > UINT32_MAX) {
        kfa_fmt(text, cap, "model too large");
        return -KFA_ST_NO_SPACE;
    }
    crc = klink_crc32c(0, data, size);
    e = kfa_store_find(name);
    if (!e || e->crc32c != crc || e->size != size || e->manifest_len != manifest_len ||
        e->manifest_crc != klink_crc32c(0, manifest, manifest_len)) {
        r = kfa_store_upload_begin(name, (uint32_t)size, crc, manifest, manifest_len,
                                   sizeof(model_ram), &id, &next, text, cap);
        while (r == 0 && next < size) {
            size_t n = size - next > 2048u ? 2048u : size - next;

            r = kfa_store_upload_chunk(id, next, data + next, n, &next, text, cap);
        }
        if (r == 0)
            r = kfa_store_upload_commit(id, model_ram, sizeof(model_ram), kfa_model_validate, text,
                                        cap);
        if (r < 0)
            return r;
    }
    return kfa_store_select(name);
}
