/* SPDX-License-Identifier: MIT */
/*
 * Internal state and cross-file functions of the core (agent.c, models.c, pipeline.c,
 * params.c). Not for backends: they use agent.h and store.h.
 */
#ifndef KFA_AGENT_INT_H
#define KFA_AGENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pb.h>

#include "agent.h"
#include "hal/hal.h"
#include "kmodel/kmodel.h"
#include "kpu/link/v1/link.pb.h"
#include "postproc.h"
#include "status.h"
#include "store.h"

#define KFA_TEXT_MAX 96u /* link.options: Status.text max_size */

/* How a model's output is read and its input fed: the manifest's keys the agent uses. */
struct kfa_model_params {
    int have_manifest;
    int kind;                  /* 0 unknown, 1 yolo2, 2 classifier (manifest.h values) */
    uint32_t input_w, input_h; /* 0 = the kmodel's */
    enum kfa_fit fit;
    enum kfa_filter filter;
    uint8_t fill;
    int invert;
    uint32_t output_index;
    uint32_t class_count;  /* 0 = derived from the output size */
    uint32_t anchor_count; /* pairs */
    float anchors[2 * KFA_YOLO2_MAX_ANCHORS];
    uint32_t grid_w, grid_h; /* 0 = derived */
    float threshold, nms;
    uint32_t max_boxes;
};

/* The host's configuration (Configure minus model, which lives in the store directory). */
struct kfa_cfg {
    float threshold;        /* 0 = the manifest's */
    float nms;              /* 0 = the manifest's */
    uint32_t anchor_floats; /* 0 = the manifest's */
    float anchors[20];
    uint32_t max_boxes; /* 0 = the manifest's */
    uint32_t fps_cap;   /* 0 = uncapped */
    bool has_roi;
    kpu_link_v1_Rect roi;
    bool persisted; /* equals the persisted boot configuration */
};

/* The decode settings in force: manifest defaults overridden by the host's config. */
struct kfa_decode {
    int ready;              /* 1 when the model can stream detections */
    char why[KFA_TEXT_MAX]; /* when not ready: why */
    struct kfa_yolo2_config y;
    float anchors[2 * KFA_YOLO2_MAX_ANCHORS];
    uint32_t max_boxes;
    struct kfa_prep_config prep;
};

struct kfa_snapshot {
    int state; /* 0 idle, 1 waiting for a frame, 2 sending */
    uint32_t id;
    uint32_t format; /* kpu_link_v1_SnapshotFormat */
    uint32_t credits;
    uint32_t offset, total;
    uint16_t width, height;
    uint32_t frame_seq;
};

struct kfa_agent {
    /* link */
    uint16_t tx_seq;
    int connected;
    uint64_t last_host_us;
    uint64_t last_hb_us;
    int closed;
    /* pipeline */
    int streaming;
    uint32_t frame_seq;
    uint64_t last_frame_us;
    uint32_t interval_frames; /* since the last heartbeat */
    uint64_t interval_kpu_us;
    /* model */
    int model_loaded;
    struct kfa_kmodel km;
    uint32_t model_crc;
    struct kfa_model_params mp;
    struct kfa_decode dec;
    struct kfa_cfg cfg;
    struct kfa_snapshot snap;
    uint32_t snapshot_ids;
    struct kfa_agent_stats stats;
};

extern struct kfa_agent kfa_g;

/* Send one message (nanopb struct msg of type fields) in a klink frame. 0 or negative. */
int kfa_send(uint8_t type, uint8_t flags, uint16_t ref, const pb_msgdesc_t *fields,
             const void *msg);

/* Status reply to request seq ref. */
void kfa_reply_status(uint16_t ref, int code, const char *text);

/* LogLine to the host (unsolicited). */
void kfa_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- models.c ---- */

/* Load and validate the selected model into RAM and compute decode settings. 0 or -KFA_ST_*. */
int kfa_model_activate(const char *name, char *text, size_t cap);

/* The model RAM (KFA_MODEL_RAM bytes, static); *len gets its size. Holds the loaded model,
 * or an upload's candidate during its commit, or a staged agent image (image.c). */
uint8_t *kfa_model_ram(size_t *len);

/* ModelUploadState reply to request seq: upload id, next offset, r 0 or -KFA_ST_* + text. */
void kfa_send_upload_state(uint16_t seq, uint32_t id, uint32_t next, int r, const char *text);

/* ---- image.c ---- */

/* 1 while an agent image write holds the model RAM (models refuse to load then). */
int kfa_image_write_active(void);

/* Drop an image write in progress (a new HostHello: the host that started it is gone) and
 * reload the selected model. Flash is untouched. */
void kfa_image_write_abandon(void);

/* ImageWriteBegin/Chunk/Commit requests (link.proto); each sends its reply. */
void kfa_handle_image_begin(uint16_t seq, const kpu_link_v1_ImageWriteBegin *m);
void kfa_handle_image_chunk(uint16_t seq, const kpu_link_v1_ModelUploadChunk *m);
void kfa_handle_image_commit(uint16_t seq, const kpu_link_v1_ImageWriteCommit *m);

/* The kmodel main buffer (static, next to the model RAM); *len gets its size. */
uint8_t *kfa_model_main_buf(size_t *len);

/* Forget the loaded model. */
void kfa_model_unload(void);

/* Recompute kfa_g.dec from kfa_g.mp and the config cfg; 0 or -KFA_ST_BAD_REQUEST + text. */
int kfa_decode_compute(const struct kfa_cfg *cfg, struct kfa_decode *out, char *text, size_t cap);

/* The kmodel validator used by upload commit. */
int kfa_model_validate(const uint8_t *data, size_t size, char *text, size_t cap);

/* Request handlers for the model store. */
void kfa_handle_upload_begin(uint16_t seq, const kpu_link_v1_ModelUploadBegin *m);
void kfa_handle_upload_chunk(uint16_t seq, const kpu_link_v1_ModelUploadChunk *m);
void kfa_handle_upload_commit(uint16_t seq, const kpu_link_v1_ModelUploadCommit *m);
void kfa_handle_model_list(uint16_t seq);
void kfa_handle_model_select(uint16_t seq, const kpu_link_v1_ModelSelect *m);
void kfa_handle_model_delete(uint16_t seq, const kpu_link_v1_ModelDelete *m);

/* ---- params.c ---- */

/*
 * kfa_params_parse - read the keys the agent needs from manifest text (docs/models.md INI
 * format) into *p (defaults first). Unknown keys are ignored: the host validated the
 * manifest. Returns 0, or -1 on a malformed value of a key it reads (text says which).
 */
int kfa_params_parse(const char *text, size_t len, struct kfa_model_params *p, char *why,
                     size_t cap);

/* ---- pipeline.c ---- */

/* One pipeline step if streaming (and the snapshot grab); returns 1 if a frame was used. */
int kfa_pipeline_step(void);

/* Send at most one snapshot chunk if credits allow. */
void kfa_snapshot_step(void);

void kfa_handle_snapshot_request(uint16_t seq, const kpu_link_v1_SnapshotRequest *m);
void kfa_handle_snapshot_credit(const kpu_link_v1_SnapshotCredit *m);

#endif /* KFA_AGENT_INT_H */
