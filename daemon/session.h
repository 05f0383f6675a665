/* SPDX-License-Identifier: MIT */
/*
 * One board's session: the state machine over a link transport (DESIGN.md §4).
 *
 *   PROBING --link up--> HELLO --AgentHello--> CONFIGURING --Status OK--> STREAMING
 *      ^                   |  no answer after retries: reset the board      |
 *      |                   v                                                 |
 *   BACKOFF <------------ LOST <--- link down, or silence > heartbeat timeout +
 *
 * An unsolicited AgentHello (the agent rebooted) restarts the handshake from CONFIGURING.
 * Requests other than the handshake (config, snapshot, models) go through
 * kpud_session_request() with ids, retries and a timeout.
 */
#ifndef KPUD_SESSION_H
#define KPUD_SESSION_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "klink.h"
#include "kpu/link/v1/link.pb-c.h"
#include "link/transport.h"

enum kpud_dev_state {
    KPUD_DEV_PROBING = 1,
    KPUD_DEV_HELLO = 3,
    KPUD_DEV_CONFIGURING = 4,
    KPUD_DEV_STREAMING = 5,
    KPUD_DEV_LOST = 6,
    KPUD_DEV_BACKOFF = 7,
    KPUD_DEV_IDLE = 8,
    KPUD_DEV_RELEASED = 9, /* a usb port given back (devices.c); never a session's state */
};                         /* values match kpu.ipc.v1.DeviceState */

/* kpud_dev_state_name - "streaming", "lost", ... */
const char *kpud_dev_state_name(enum kpud_dev_state st);

/* What the host asks the agent to do (sent in Configure). */
struct kpud_session_config {
    char model[32];     /* stored model name; "" = the agent's current */
    float threshold;    /* 0..1 */
    float nms;          /* 0..1 */
    uint32_t max_boxes; /* 1..32 */
    uint32_t fps_cap;   /* 0 = unlimited */
    float anchors[20];
    uint32_t n_anchors; /* 0 = the manifest's */
};

struct kpud_session_timing {
    uint32_t heartbeat_ms;       /* 0 = 1000: our heartbeat period */
    uint32_t silence_timeout_ms; /* 0 = 3500: no frame this long = agent lost */
    uint32_t request_timeout_ms; /* 0 = 1000 */
    uint32_t request_retries;    /* 0 = 3 */
};

/* Counters and identity, for DeviceInfo and the store. */
struct kpud_session_info {
    enum kpud_dev_state state;
    char id[40]; /* chip uid hex, or "port:<path>" before HELLO */
    char board[24];
    char agent_version[32];
    char sensor[16];
    char reset_cause[16];
    char model[32];
    uint32_t image_width, image_height;
    float fps;
    uint32_t kpu_us;
    uint64_t frames;           /* DetectionFrames received, this daemon run */
    uint64_t frames_lost;      /* frame_seq gaps */
    uint64_t link_errors;      /* klink CRC, malformed, oversize */
    uint64_t decode_errors;    /* frames whose payload did not decode */
    uint64_t duplicates;       /* detection frames dropped as repeats of an earlier seq */
    uint64_t unclaimed_frames; /* detection frames dropped: no handshake on this link yet */
    uint32_t reconnects;       /* handshakes after the first */
    char last_error[128];
    int64_t connected_since_ns;
    uint32_t features; /* AgentHello.features of the last handshake (kpu.link.v1.Feature) */
};

struct kpud_session;

struct kpud_session_callbacks {
    /* The state changed; reason is a short text. */
    void (*state)(struct kpud_session *s, enum kpud_dev_state st, const char *reason, void *user);
    /* A handshake completed (AgentHello decoded); info has the identity. */
    void (*hello)(struct kpud_session *s, const Kpu__Link__V1__AgentHello *hello, void *user);
    /* A detection frame arrived; host_ns is its receive time (Unix epoch ns). */
    void (*detection)(struct kpud_session *s, const Kpu__Link__V1__DetectionFrame *f,
                      int64_t host_ns, void *user);
    /* An agent log line. */
    void (*log_line)(struct kpud_session *s, const Kpu__Link__V1__LogLine *l, void *user);
    /* The transport has ended for good (a replayed capture reached its end). */
    void (*ended)(struct kpud_session *s, void *user);
};

/*
 * kpud_session_open - take ownership of transport t (not started) and start it; the
 * session runs the handshake whenever the link comes up. cfg, timing and cbs are copied.
 * Returns 0 and sets *ret, or a negative errno (t is closed on failure).
 */
int kpud_session_open(uv_loop_t *loop, struct kpud_transport *t,
                      const struct kpud_session_config *cfg,
                      const struct kpud_session_timing *timing,
                      const struct kpud_session_callbacks *cbs, void *user,
                      struct kpud_session **ret);

/* kpud_session_close - stop, close the transport, free when its handles are closed;
 * done (may be NULL) is called then. Pending requests complete with -ECANCELED. */
void kpud_session_close(struct kpud_session *s, void (*done)(void *arg), void *arg);

/* The handshake settled (status 0: info has the new agent's identity and features), or
 * -ECANCELED when the session closes. */
typedef void (*kpud_session_hello_fn)(struct kpud_session *s, int status, void *user);

/*
 * kpud_session_wait_hello - call fn once, when the next handshake has settled (AgentHello,
 * CONFIGURE and START answered: state STREAMING, or IDLE when the agent refused to stream),
 * or when the session closes. One waiter per session; fn NULL removes it without a call.
 * Returns 0, -EBUSY (a waiter is set) or -ECANCELED.
 */
int kpud_session_wait_hello(struct kpud_session *s, kpud_session_hello_fn fn, void *user);

/* kpud_session_get_info - copy identity and counters. */
void kpud_session_get_info(const struct kpud_session *s, struct kpud_session_info *out);

/* kpud_session_transport - the session's transport (kind, path, bridge). */
const struct kpud_transport *kpud_session_transport(const struct kpud_session *s);

/*
 * kpud_session_set_config - replace the configuration; when streaming it is sent to the
 * agent at once (Configure). Returns 0, or -EINVAL for out-of-range values.
 */
int kpud_session_set_config(struct kpud_session *s, const struct kpud_session_config *cfg);

/* kpud_session_get_config - the configuration the session sends. */
void kpud_session_get_config(const struct kpud_session *s, struct kpud_session_config *out);

/*
 * A request's completion: status 0 with the reply's type and decoded message (owned by
 * the session, valid during the call), or a negative errno (-ETIMEDOUT, -ENOTCONN,
 * -ECANCELED) with type 0 and msg NULL.
 */
typedef void (*kpud_session_reply_fn)(struct kpud_session *s, int status, uint8_t type,
                                      const ProtobufCMessage *msg, void *user);

/*
 * kpud_session_request - send msg as a frame of the given link type and call cb with the
 * reply (matched by the frame header's ref), retrying on timeout. Returns 0, -ENOTCONN if
 * no agent is connected, -EBUSY if too many requests are pending, -EMSGSIZE if msg does
 * not fit a frame.
 */
int kpud_session_request(struct kpud_session *s, uint8_t type, const ProtobufCMessage *msg,
                         kpud_session_reply_fn cb, void *user);

/* One box of a snapshot's frame, as the agent reported it in that DetectionFrame. */
struct kpud_snap_box {
    uint32_t class_id;
    float score;
    int32_t x, y;
    uint32_t w, h;
};

#define KPUD_SNAP_MAX_BOXES 32 /* link.options: DetectionFrame.boxes max_count */

/* An assembled snapshot, valid during the completion callback only. */
struct kpud_snapshot {
    uint32_t width, height;
    int format;          /* Kpu__Link__V1__SnapshotFormat */
    uint32_t frame_seq;  /* the detection frame the agent says the image belongs to */
    const uint8_t *data; /* RGB565 little-endian, or planar RGB888 */
    size_t size;
    int have_frame; /* 1 if that detection frame was seen: boxes are its boxes */
    size_t n_boxes;
    const struct kpud_snap_box *boxes;
};

/*
 * A snapshot's completion: status 0 with snap; or a negative errno with snap NULL:
 * -EREMOTEIO the agent refused (agent_code is its kpu.link.v1.StatusCode, text its words),
 * -ETIMEDOUT no answer or the chunks stopped, -EPROTO chunks that do not fit together
 * (after retries), -ENOTCONN the link went down, -ECONNRESET the agent rebooted,
 * -ECANCELED the session closed. text is never NULL.
 */
typedef void (*kpud_session_snapshot_fn)(struct kpud_session *s, int status,
                                         const struct kpud_snapshot *snap, int agent_code,
                                         const char *text, void *user);

/*
 * kpud_session_snapshot - ask the agent for its next camera frame in format (a
 * kpu.link.v1.SnapshotFormat), assemble the SnapshotChunk stream (paced with
 * SnapshotCredit) and call cb exactly once, within KPUD_SNAPSHOT_DEADLINE_MS. Returns 0,
 * -ENOTCONN (no agent connected), -EBUSY (a snapshot of this board is in progress) or
 * -EINVAL (format); cb is not called then.
 */
int kpud_session_snapshot(struct kpud_session *s, int format, kpud_session_snapshot_fn cb,
                          void *user);

/* Largest data field of a chunk on the link (link.options: ModelUploadChunk.data and
 * SnapshotChunk.data max_size): model uploads and agent images go in pieces of this. */
#define KPUD_LINK_CHUNK 2048u

/* Whole-snapshot bound for a board that keeps sending, slowly: the agent sends one chunk
 * per main-loop step, so a board busy with its model (or an emulated KPU) needs seconds for
 * a 320x240 image. A board that stops sending is noticed by the stall timer (2 s, one
 * fresh request) or the session's silence timeout, within libkpu-client's default 5 s. */
#define KPUD_SNAPSHOT_DEADLINE_MS 30000u

/* kpud_session_note_model - the agent now runs stored model name (after a ModelSelect):
 * keep it for the next handshake if the configuration names a model. */
void kpud_session_note_model(struct kpud_session *s, const char *name);

/*
 * kpud_session_reset - reset the board (DTR/RTS, or restart the simulator) and
 * re-handshake. Returns 0 or -ENOTSUP (a replay).
 */
int kpud_session_reset(struct kpud_session *s);

/*
 * kpud_session_record_start - write everything the link carries from now on to a new
 * .kcap file at path, with header notes. Returns 0 or a negative errno.
 */
int kpud_session_record_start(struct kpud_session *s, const char *path, const char *notes);

/* kpud_session_record_stop - close the capture; returns bytes written (0 if none). */
uint64_t kpud_session_record_stop(struct kpud_session *s);

/* kpud_session_recording - 1 and the path / bytes so far if recording. */
int kpud_session_recording(const struct kpud_session *s, const char **path, uint64_t *bytes);

#endif
