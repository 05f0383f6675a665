/* SPDX-License-Identifier: MIT */
/*
 * Per-board session state machine over a link transport (see session.h).
 */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "link/kcap.h"
#include "link_types.h"
#include "log.h"

#define PROTOCOL_MAJOR 1
#define PROTOCOL_MINOR 1
#define MAX_PENDING 8
#define TICK_MS 100
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

/* Snapshots (docs/agent.md "Snapshots"): the agent sends one SnapshotChunk per credit; we
 * grant SNAP_CREDITS at first and SNAP_REFILL more each time SNAP_REFILL chunks arrived,
 * so the agent never waits on a round trip while the link is healthy. */
#define SNAP_CREDITS 16u
#define SNAP_REFILL 8u
#define SNAP_MAX_BYTES (4u * 1024u * 1024u) /* 4096 x 341 RGB888: far above any K210 camera */
#define SNAP_STALL_MS 2000u                 /* no chunk this long: ask again */
#define SNAP_RESTARTS 1                     /* fresh requests after a stall or a gap */
#define SNAP_FRAME_WAIT_MS 500u             /* for the detection frame of the image */
#define RECENT_FRAMES 16                    /* detection frames remembered for snapshots */

enum snap_phase {
    SNAP_IDLE = 0,
    SNAP_REQUESTED, /* SnapshotRequest sent, its Status not yet back */
    SNAP_RECEIVING, /* Status OK; adopting / receiving chunks */
    SNAP_WAIT_FRAME /* image complete; waiting briefly for its detection frame */
};

struct snap {
    enum snap_phase phase;
    int format;
    kpud_session_snapshot_fn cb;
    void *user;
    int have_id;
    uint32_t id, total, width, height, frame_seq, received, since_credit;
    uint8_t *buf;
    uint64_t deadline_ms;   /* whole snapshot */
    uint64_t last_chunk_ms; /* stall detection */
    int restarts;
    int gen; /* bumps per request, so a stale Status is recognised */
    int have_frame;
    struct recent_frame *frame; /* the detection frame of the image, once it passed by */
};

struct recent_frame {
    uint32_t seq;
    uint32_t n;
    struct kpud_snap_box boxes[KPUD_SNAP_MAX_BOXES];
};

struct pending {
    int used;
    uint16_t seq;
    uint8_t type;
    uint32_t tries;
    uint64_t deadline_ms;
    size_t payload_len;
    uint8_t payload[KLINK_MAX_PAYLOAD];
    kpud_session_reply_fn cb;
    void *user;
};

struct kpud_session {
    uv_loop_t *loop;
    struct kpud_transport *t;
    struct kpud_session_config cfg;
    struct kpud_session_timing timing;
    struct kpud_session_callbacks cbs;
    void *user;
    struct kpud_session_info info;
    struct klink_decoder dec;
    uint8_t decbuf[KLINK_MAX_FRAME];
    uint16_t tx_seq;
    uv_timer_t tick;
    uint64_t last_rx_ms;
    uint64_t last_hb_tx_ms;
    uint64_t backoff_until_ms; /* in BACKOFF: when to try HELLO again */
    uint32_t backoff_ms;
    int have_frame_seq;
    uint32_t last_frame_seq;
    int handshakes; /* completed AgentHellos */
    struct pending pending[MAX_PENDING];
    struct snap snap;
    struct recent_frame recent[RECENT_FRAMES];
    unsigned recent_next; /* ring index of the next frame to remember */
    unsigned recent_n;
    FILE *rec;
    char *rec_path;
    uint64_t rec_bytes;
    uint64_t rec_t0_ms;
    /* A capture started before the first handshake: its header is written padded to
     * rec_hdr_len and rewritten in place once the agent has said who it is. */
    int rec_hdr_pending;
    size_t rec_hdr_len;
    char rec_date[32];
    char *rec_notes;
    int closing;
    int handles_open;
    void (*done)(void *arg);
    void *done_arg;
    kpud_session_hello_fn hello_waiter; /* one-shot, kpud_session_wait_hello() */
    void *hello_waiter_user;
};

static const char *const state_names[] = {
    [KPUD_DEV_PROBING] = "probing",
    [KPUD_DEV_HELLO] = "hello",
    [KPUD_DEV_CONFIGURING] = "configuring",
    [KPUD_DEV_STREAMING] = "streaming",
    [KPUD_DEV_LOST] = "lost",
    [KPUD_DEV_BACKOFF] = "backoff",
    [KPUD_DEV_IDLE] = "idle",
    [KPUD_DEV_RELEASED] = "released",
};

const char *kpud_dev_state_name(enum kpud_dev_state st)
{
    if ((unsigned)st < sizeof(state_names) / sizeof(state_names[0]) && state_names[st])
        return state_names[st];
    return "unknown";
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void notify_hello_waiter(struct kpud_session *s, int status);
static void rec_header_fixup(struct kpud_session *s);

static void set_state(struct kpud_session *s, enum kpud_dev_state st, const char *reason)
{
    int settled =
        s->info.state == KPUD_DEV_CONFIGURING && (st == KPUD_DEV_STREAMING || st == KPUD_DEV_IDLE);

    if (s->info.state == st)
        return;
    s->info.state = st;
    log_info("device %s: %s (%s)", s->info.id, kpud_dev_state_name(st), reason);
    if (s->cbs.state)
        s->cbs.state(s, st, reason, s->user);
    if (settled)
        notify_hello_waiter(s, 0);
}

static void record(struct kpud_session *s, enum kcap_dir dir, const uint8_t *buf, size_t len)
{
    if (!s->rec)
        return;
    if (kcap_write_record(s->rec, dir, (uv_now(s->loop) - s->rec_t0_ms) * 1000, buf, len) < 0) {
        log_err("device %s: recording to %s failed; stopped", s->info.id, s->rec_path);
        kpud_session_record_stop(s);
        return;
    }
    s->rec_bytes += KCAP_RECORD_HEADER + len;
}

/* Pack msg into payload (KLINK_MAX_PAYLOAD bytes). Returns its length, or -EMSGSIZE. */
static int pack(const ProtobufCMessage *msg, uint8_t *payload)
{
    size_t n = msg ? protobuf_c_message_get_packed_size(msg) : 0;

    if (n > KLINK_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (msg)
        protobuf_c_message_pack(msg, payload);
    return (int)n;
}

static int send_wire(struct kpud_session *s, const uint8_t *wire, size_t len)
{
    int r = s->t->ops->write(s->t, wire, len);
    if (r == 0)
        record(s, KCAP_HOST_TO_AGENT, wire, len);
    return r;
}

static int send_frame(struct kpud_session *s, uint8_t type, uint8_t flags, uint16_t seq,
                      const uint8_t *payload, size_t len)
{
    uint8_t wire[KLINK_MAX_ENCODED];
    size_t n = klink_encode(type, flags, seq, 0, payload, len, wire, sizeof(wire));
    if (!n)
        return -EMSGSIZE;
    return send_wire(s, wire, n);
}

static int send_msg(struct kpud_session *s, uint8_t type, const ProtobufCMessage *msg)
{
    uint8_t payload[KLINK_MAX_PAYLOAD];
    int n = pack(msg, payload);
    if (n < 0)
        return n;
    return send_frame(s, type, 0, s->tx_seq++, payload, (size_t)n);
}

static void snap_fail(struct kpud_session *s, int err, int agent_code, const char *text);

static void fail_pending(struct kpud_session *s, int err)
{
    snap_fail(s, err, 0, strerror(-err));
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &s->pending[i];
        if (!p->used)
            continue;
        p->used = 0;
        if (p->cb)
            p->cb(s, err, 0, NULL, p->user);
    }
}

int kpud_session_request(struct kpud_session *s, uint8_t type, const ProtobufCMessage *msg,
                         kpud_session_reply_fn cb, void *user)
{
    struct pending *p = NULL;
    int r;

    if (s->closing || !s->t->up)
        return -ENOTCONN;
    for (int i = 0; i < MAX_PENDING && !p; i++)
        if (!s->pending[i].used)
            p = &s->pending[i];
    if (!p)
        return -EBUSY;
    r = pack(msg, p->payload);
    if (r < 0)
        return r;
    p->payload_len = (size_t)r;
    p->seq = s->tx_seq++;
    p->type = type;
    p->tries = 1;
    p->deadline_ms = uv_now(s->loop) + s->timing.request_timeout_ms;
    p->cb = cb;
    p->user = user;
    p->used = 1;
    r = send_frame(s, type, 0, p->seq, p->payload, p->payload_len);
    if (r == -ENOTCONN) {
        p->used = 0;
        return r;
    }
    return 0; /* other write failures are retried by the timeout path */
}

/* ---- handshake ------------------------------------------------------------------ */

static void start_hello(struct kpud_session *s);

static void enter_backoff(struct kpud_session *s, const char *reason)
{
    s->backoff_until_ms = uv_now(s->loop) + s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    set_state(s, KPUD_DEV_BACKOFF, reason);
}

static void set_error(struct kpud_session *s, const char *what, const char *why)
{
    snprintf(s->info.last_error, sizeof(s->info.last_error), "%s: %s", what, why);
}

static void start_done(struct kpud_session *s, int status, uint8_t type,
                       const ProtobufCMessage *msg, void *user)
{
    const Kpu__Link__V1__Status *st = (const Kpu__Link__V1__Status *)msg;
    (void)user;
    if (status < 0 || type != KPU__LINK__V1__MSG_TYPE__MSG_STATUS) {
        set_error(s, "agent did not confirm START", status < 0 ? strerror(-status) : "bad reply");
        if (status != -ECANCELED && status != -ECONNRESET)
            enter_backoff(s, s->info.last_error);
        return;
    }
    if (st->code != KPU__LINK__V1__STATUS_CODE__STATUS_OK) {
        set_error(s, "agent refused START", st->text);
        set_state(s, KPUD_DEV_IDLE, s->info.last_error);
        return;
    }
    s->backoff_ms = BACKOFF_MIN_MS;
    set_state(s, KPUD_DEV_STREAMING, "agent streaming");
}

static int send_configure(struct kpud_session *s, kpud_session_reply_fn cb);

static void configure_done(struct kpud_session *s, int status, uint8_t type,
                           const ProtobufCMessage *msg, void *user)
{
    const Kpu__Link__V1__Status *st = (const Kpu__Link__V1__Status *)msg;
    Kpu__Link__V1__StreamControl sc = KPU__LINK__V1__STREAM_CONTROL__INIT;
    int r;

    (void)user;
    if (status < 0 || type != KPU__LINK__V1__MSG_TYPE__MSG_STATUS) {
        set_error(s, "agent did not confirm CONFIGURE",
                  status < 0 ? strerror(-status) : "bad reply");
        if (status != -ECANCELED && status != -ECONNRESET)
            enter_backoff(s, s->info.last_error);
        return;
    }
    if (st->code != KPU__LINK__V1__STATUS_CODE__STATUS_OK) {
        set_error(s, "agent refused the configuration", st->text);
        log_err("device %s: %s", s->info.id, s->info.last_error);
        set_state(s, KPUD_DEV_IDLE, s->info.last_error);
        return;
    }
    if (s->info.state != KPUD_DEV_CONFIGURING)
        return; /* a runtime reconfiguration: already streaming */
    sc.action = KPU__LINK__V1__STREAM_ACTION__STREAM_START;
    r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_STREAM_CONTROL, &sc.base, start_done,
                             NULL);
    if (r < 0)
        enter_backoff(s, "cannot send START");
}

static int send_configure(struct kpud_session *s, kpud_session_reply_fn cb)
{
    Kpu__Link__V1__Configure c = KPU__LINK__V1__CONFIGURE__INIT;

    c.model = s->cfg.model;
    c.threshold = s->cfg.threshold;
    c.nms = s->cfg.nms;
    c.max_boxes = s->cfg.max_boxes;
    c.fps_cap = s->cfg.fps_cap;
    c.n_anchors = s->cfg.n_anchors;
    c.anchors = s->cfg.anchors;
    return kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE, &c.base, cb, NULL);
}

static void hex(char *out, size_t outlen, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < outlen; i++) {
        out[o++] = digits[p[i] >> 4];
        out[o++] = digits[p[i] & 15];
    }
    out[o] = 0;
}

static const char *enum_name(const ProtobufCEnumDescriptor *d, int v, const char *prefix)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    size_t pl = strlen(prefix);
    if (!ev)
        return "unknown";
    /* "BOARD_MAIX_DOCK" -> "MAIX_DOCK"; callers lower-case as they need. */
    return strncmp(ev->name, prefix, pl) == 0 ? ev->name + pl : ev->name;
}

static void copy_lower(char *dst, size_t n, const char *src)
{
    size_t i;
    for (i = 0; i + 1 < n && src[i]; i++)
        dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] - 'A' + 'a'
                                                       : (src[i] == '_' ? '-' : src[i]));
    dst[i] = 0;
}

/* Complete a pending request without calling its callback (it is superseded). */
static void drop_pending_type(struct kpud_session *s, uint8_t type)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (s->pending[i].used && s->pending[i].type == type)
            s->pending[i].used = 0;
}

static void update_identity(struct kpud_session *s, const Kpu__Link__V1__AgentHello *h)
{
    if (h->chip_uid.len > 0)
        hex(s->info.id, sizeof(s->info.id), h->chip_uid.data,
            h->chip_uid.len > 16 ? 16 : h->chip_uid.len);
    copy_lower(s->info.board, sizeof(s->info.board),
               enum_name(&kpu__link__v1__board__descriptor, h->board, "BOARD_"));
    copy_lower(s->info.sensor, sizeof(s->info.sensor),
               enum_name(&kpu__link__v1__sensor__descriptor, h->sensor, "SENSOR_"));
    copy_lower(s->info.reset_cause, sizeof(s->info.reset_cause),
               enum_name(&kpu__link__v1__reset_cause__descriptor, h->reset_cause, "RESET_CAUSE_"));
    snprintf(s->info.agent_version, sizeof(s->info.agent_version), "%s",
             h->agent_version ? h->agent_version : "");
    s->info.features = h->features;
}

/* Call and clear the one-shot handshake waiter. */
static void notify_hello_waiter(struct kpud_session *s, int status)
{
    kpud_session_hello_fn fn = s->hello_waiter;

    s->hello_waiter = NULL;
    if (fn)
        fn(s, status, s->hello_waiter_user);
}

/*
 * An AgentHello arrived. It starts (or restarts) the handshake when we were waiting for
 * one (state HELLO or BACKOFF) or when it is unsolicited while configured, which means
 * the agent rebooted. A late reply to a HostHello we already gave up on only refreshes
 * the identity.
 */
static void handle_agent_hello(struct kpud_session *s, const Kpu__Link__V1__AgentHello *h,
                               int is_response)
{
    int waiting = s->info.state == KPUD_DEV_HELLO || s->info.state == KPUD_DEV_BACKOFF ||
                  s->info.state == KPUD_DEV_PROBING || s->info.state == KPUD_DEV_LOST;
    int r;

    if (h->protocol_major != PROTOCOL_MAJOR) {
        snprintf(s->info.last_error, sizeof(s->info.last_error),
                 "agent speaks link protocol %u.%u, kpud %u.%u", h->protocol_major,
                 h->protocol_minor, PROTOCOL_MAJOR, PROTOCOL_MINOR);
        log_err("device %s: %s; not streaming", s->info.id, s->info.last_error);
        drop_pending_type(s, KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO);
        set_state(s, KPUD_DEV_IDLE, s->info.last_error);
        return;
    }
    update_identity(s, h);
    if (!waiting && is_response)
        return; /* a duplicate or late answer to our HELLO: nothing restarted */
    if (!waiting) {
        /* Unsolicited while configured: the agent rebooted. Its pending answers are gone. */
        fail_pending(s, -ECONNRESET);
    }
    drop_pending_type(s, KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO);
    if (s->handshakes++ > 0)
        s->info.reconnects++;
    s->info.connected_since_ns = wall_ns();
    s->have_frame_seq = 0;
    log_info("device %s: agent %s on %s (%s), reset cause %s%s", s->info.id, s->info.agent_version,
             s->info.board, s->info.sensor, s->info.reset_cause,
             waiting ? "" : ": the agent restarted");
    rec_header_fixup(s);
    if (s->cbs.hello)
        s->cbs.hello(s, h, s->user);
    set_state(s, KPUD_DEV_CONFIGURING, "agent said hello");
    r = send_configure(s, configure_done);
    if (r < 0)
        enter_backoff(s, "cannot send CONFIGURE");
}

static void hello_done(struct kpud_session *s, int status, uint8_t type,
                       const ProtobufCMessage *msg, void *user)
{
    (void)user;
    /* -ENOTCONN: the link went down under the HELLO. That is no silent agent: resetting
     * the board now would take the next link down too, in a loop; link_up starts over. */
    if (status == -ECANCELED || status == -ECONNRESET || status == -ENOTCONN)
        return;
    if (status < 0) {
        set_error(s, "agent did not answer HELLO; resetting the board", strerror(-status));
        log_warn("device %s: %s", s->info.id, s->info.last_error);
        s->t->ops->reset(s->t, 0);
        enter_backoff(s, s->info.last_error);
        return;
    }
    if (type == KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO)
        handle_agent_hello(s, (const Kpu__Link__V1__AgentHello *)msg, 1);
    else
        enter_backoff(s, "agent answered HELLO with something else");
}

static void start_hello(struct kpud_session *s)
{
    Kpu__Link__V1__HostHello h = KPU__LINK__V1__HOST_HELLO__INIT;

    h.protocol_major = PROTOCOL_MAJOR;
    h.protocol_minor = PROTOCOL_MINOR;
    h.host_version = (char *)KPUD_VERSION;
    set_state(s, KPUD_DEV_HELLO, "link up");
    s->last_rx_ms = uv_now(s->loop);
    if (kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO, &h.base, hello_done,
                             NULL) < 0)
        enter_backoff(s, "cannot send HELLO");
}

/* ---- snapshots ------------------------------------------------------------------ */

static const struct recent_frame *find_recent(const struct kpud_session *s, uint32_t seq)
{
    for (unsigned i = 0; i < s->recent_n; i++)
        if (s->recent[i].seq == seq)
            return &s->recent[i];
    return NULL;
}

/* Finish the snapshot in progress: call its callback once, release the buffer first so a
 * callback may start the next one. */
static void snap_finish(struct kpud_session *s, int status, int agent_code, const char *text)
{
    struct snap sn = s->snap;
    struct kpud_snapshot out;
    const struct recent_frame *rf;

    if (sn.phase == SNAP_IDLE)
        return;
    memset(&s->snap, 0, sizeof(s->snap));
    s->snap.gen = sn.gen;
    if (status == 0) {
        memset(&out, 0, sizeof(out));
        out.width = sn.width;
        out.height = sn.height;
        out.format = sn.format;
        out.frame_seq = sn.frame_seq;
        out.data = sn.buf;
        out.size = sn.total;
        rf = sn.have_frame ? sn.frame : find_recent(s, sn.frame_seq);
        if (rf) {
            out.have_frame = 1;
            out.n_boxes = rf->n;
            out.boxes = rf->boxes;
        }
        sn.cb(s, 0, &out, 0, "", sn.user);
    } else {
        sn.cb(s, status, NULL, agent_code, text ? text : "", sn.user);
    }
    free(sn.buf);
    free(sn.frame);
}

static void snap_fail(struct kpud_session *s, int err, int agent_code, const char *text)
{
    snap_finish(s, err, agent_code, text);
}

/* The image is complete: reply now if its detection frame is known (or cannot come),
 * else wait a little for it. */
static void snap_complete(struct kpud_session *s)
{
    struct snap *sn = &s->snap;
    int32_t ahead = (int32_t)(sn->frame_seq - s->last_frame_seq);

    if (sn->have_frame || find_recent(s, sn->frame_seq) || s->info.state != KPUD_DEV_STREAMING ||
        (s->have_frame_seq && ahead <= 0) || ahead > 2) {
        snap_finish(s, 0, 0, "");
        return;
    }
    sn->phase = SNAP_WAIT_FRAME;
    sn->deadline_ms = uv_now(s->loop) + SNAP_FRAME_WAIT_MS;
}

static void remember_frame(struct kpud_session *s, const Kpu__Link__V1__DetectionFrame *f)
{
    struct recent_frame *rf = &s->recent[s->recent_next];
    size_t n = f->n_boxes < KPUD_SNAP_MAX_BOXES ? f->n_boxes : KPUD_SNAP_MAX_BOXES;

    rf->seq = f->frame_seq;
    rf->n = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const Kpu__Link__V1__Box *b = f->boxes[i];
        rf->boxes[i].class_id = b->class_id;
        rf->boxes[i].score = b->score;
        rf->boxes[i].x = b->x;
        rf->boxes[i].y = b->y;
        rf->boxes[i].w = b->w;
        rf->boxes[i].h = b->h;
    }
    /* A slow snapshot outlives the ring: keep its own frame when it passes by. */
    if (s->snap.phase != SNAP_IDLE && s->snap.have_id && f->frame_seq == s->snap.frame_seq &&
        (s->snap.frame || (s->snap.frame = malloc(sizeof(*rf))))) {
        *s->snap.frame = *rf;
        s->snap.have_frame = 1;
    }
    s->recent_next = (s->recent_next + 1) % RECENT_FRAMES;
    if (s->recent_n < RECENT_FRAMES)
        s->recent_n++;
    if (s->snap.phase == SNAP_WAIT_FRAME && (int32_t)(f->frame_seq - s->snap.frame_seq) >= 0)
        snap_finish(s, 0, 0, "");
}

static int snap_send_request(struct kpud_session *s);

/* Start over after a stall or a gap in the chunk stream, a bounded number of times. */
static void snap_restart(struct kpud_session *s, const char *why)
{
    struct snap *sn = &s->snap;

    if (sn->restarts >= SNAP_RESTARTS || uv_now(s->loop) >= sn->deadline_ms) {
        snap_fail(s, strcmp(why, "stalled") == 0 ? -ETIMEDOUT : -EPROTO, 0, why);
        return;
    }
    sn->restarts++;
    log_info("device %s: snapshot %s; asking again", s->info.id, why);
    if (snap_send_request(s) < 0)
        snap_fail(s, -ENOTCONN, 0, "cannot send the snapshot request");
}

static void snap_request_done(struct kpud_session *s, int status, uint8_t type,
                              const ProtobufCMessage *msg, void *user)
{
    const Kpu__Link__V1__Status *st = (const Kpu__Link__V1__Status *)msg;
    struct snap *sn = &s->snap;

    if (sn->phase != SNAP_REQUESTED || (int)(intptr_t)user != sn->gen)
        return; /* superseded by a newer request, or the snapshot already ended */
    if (status < 0) {
        snap_fail(s, status, 0, strerror(-status));
        return;
    }
    if (type != KPU__LINK__V1__MSG_TYPE__MSG_STATUS) {
        snap_fail(s, -EPROTO, 0, "agent answered the snapshot request with something else");
        return;
    }
    if (st->code != KPU__LINK__V1__STATUS_CODE__STATUS_OK) {
        snap_fail(s, -EREMOTEIO, (int)st->code, st->text);
        return;
    }
    sn->phase = SNAP_RECEIVING;
    sn->last_chunk_ms = uv_now(s->loop);
}

static int snap_send_request(struct kpud_session *s)
{
    Kpu__Link__V1__SnapshotRequest rq = KPU__LINK__V1__SNAPSHOT_REQUEST__INIT;
    struct snap *sn = &s->snap;

    sn->phase = SNAP_REQUESTED;
    sn->have_id = 0;
    sn->received = 0;
    sn->since_credit = 0;
    sn->gen++;
    sn->last_chunk_ms = uv_now(s->loop);
    rq.format = (Kpu__Link__V1__SnapshotFormat)sn->format;
    rq.credits = SNAP_CREDITS;
    return kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_REQUEST, &rq.base,
                                snap_request_done, (void *)(intptr_t)sn->gen);
}

int kpud_session_snapshot(struct kpud_session *s, int format, kpud_session_snapshot_fn cb,
                          void *user)
{
    struct snap *sn = &s->snap;
    int r;

    if (format != KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB565 &&
        format != KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB888_PLANAR)
        return -EINVAL;
    if (!cb)
        return -EINVAL;
    if (sn->phase != SNAP_IDLE)
        return -EBUSY;
    if (s->closing || !s->t->up || s->info.state == KPUD_DEV_HELLO ||
        s->info.state == KPUD_DEV_LOST || s->info.state == KPUD_DEV_BACKOFF ||
        s->info.state == KPUD_DEV_PROBING)
        return -ENOTCONN;
    sn->format = format;
    sn->cb = cb;
    sn->user = user;
    sn->restarts = 0;
    sn->deadline_ms = uv_now(s->loop) + KPUD_SNAPSHOT_DEADLINE_MS;
    r = snap_send_request(s);
    if (r < 0) {
        int gen = sn->gen;
        memset(sn, 0, sizeof(*sn));
        sn->gen = gen;
        return r == -EBUSY ? -EBUSY : -ENOTCONN;
    }
    return 0;
}

static void snap_credit(struct kpud_session *s, uint32_t n)
{
    Kpu__Link__V1__SnapshotCredit c = KPU__LINK__V1__SNAPSHOT_CREDIT__INIT;
    c.snapshot_id = s->snap.id;
    c.credits = n;
    send_msg(s, KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_CREDIT, &c.base);
}

static void handle_snapshot_chunk(struct kpud_session *s, const Kpu__Link__V1__SnapshotChunk *c)
{
    struct snap *sn = &s->snap;
    uint64_t bpp, want;

    /* Chunks before the Status (a retried request) or after the end belong to nothing. */
    if (sn->phase != SNAP_RECEIVING && sn->phase != SNAP_REQUESTED)
        return;
    if (!sn->have_id || c->snapshot_id != sn->id) {
        /* A new id starts at offset 0; a tail of an abandoned snapshot is ignored. */
        if (c->offset != 0)
            return;
        bpp = c->format == KPU__LINK__V1__SNAPSHOT_FORMAT__SNAPSHOT_RGB565 ? 2 : 3;
        want = (uint64_t)c->width * c->height * bpp;
        if ((int)c->format != sn->format || want == 0 || want != c->total ||
            c->total > SNAP_MAX_BYTES) {
            log_warn("device %s: snapshot %ux%u format %d of %u bytes does not add up", s->info.id,
                     c->width, c->height, (int)c->format, c->total);
            snap_fail(s, -EPROTO, 0, "the agent's snapshot header does not add up");
            return;
        }
        free(sn->buf);
        sn->buf = malloc(c->total);
        if (!sn->buf) {
            snap_fail(s, -ENOMEM, 0, "out of memory");
            return;
        }
        sn->have_id = 1;
        sn->id = c->snapshot_id;
        sn->total = c->total;
        sn->width = c->width;
        sn->height = c->height;
        sn->frame_seq = c->frame_seq;
        sn->have_frame = 0;
        {
            /* The frame may have passed already (it precedes its image on the wire). */
            const struct recent_frame *rf = find_recent(s, c->frame_seq);
            if (rf && (sn->frame || (sn->frame = malloc(sizeof(*rf))))) {
                *sn->frame = *rf;
                sn->have_frame = 1;
            }
        }
        sn->received = 0;
        sn->since_credit = 0;
        sn->phase = SNAP_RECEIVING;
    }
    sn->last_chunk_ms = uv_now(s->loop);
    if (c->offset != sn->received || c->total != sn->total || c->data.len > sn->total - c->offset ||
        c->data.len == 0) {
        /* A chunk lost on the link (CRC, dropped bytes): the stream cannot be mended. */
        snap_restart(s, "chunk missing");
        return;
    }
    memcpy(sn->buf + c->offset, c->data.data, c->data.len);
    sn->received += (uint32_t)c->data.len;
    if (sn->received == sn->total) {
        snap_complete(s);
        return;
    }
    if (++sn->since_credit >= SNAP_REFILL) {
        sn->since_credit = 0;
        snap_credit(s, SNAP_REFILL);
    }
}

/* Deadlines of the snapshot in progress, from the tick timer. */
static void snap_tick(struct kpud_session *s, uint64_t now)
{
    struct snap *sn = &s->snap;

    if (sn->phase == SNAP_IDLE)
        return;
    if (sn->phase == SNAP_WAIT_FRAME) {
        if (now >= sn->deadline_ms)
            snap_finish(s, 0, 0, "");
        return;
    }
    if (now >= sn->deadline_ms) {
        snap_fail(s, -ETIMEDOUT, 0, "the snapshot did not complete in time");
        return;
    }
    if (sn->phase == SNAP_RECEIVING && now - sn->last_chunk_ms >= SNAP_STALL_MS)
        snap_restart(s, "stalled");
}

void kpud_session_note_model(struct kpud_session *s, const char *name)
{
    if (s->cfg.model[0] && name && strlen(name) < sizeof(s->cfg.model))
        snprintf(s->cfg.model, sizeof(s->cfg.model), "%s", name);
}

/* ---- receive -------------------------------------------------------------------- */

static void handle_detection(struct kpud_session *s, const Kpu__Link__V1__DetectionFrame *f)
{
    int64_t now = wall_ns();

    /* Before a handshake on this link the board's identity is unknown (the agent may still
     * be streaming to a host that went away, or be another board on the same port): such
     * frames are not stored under a placeholder id. A replayed capture that starts
     * mid-stream has no handshake at all; its frames keep the capture's name as id. */
    if (s->info.state != KPUD_DEV_CONFIGURING && s->info.state != KPUD_DEV_STREAMING &&
        s->info.state != KPUD_DEV_IDLE && strcmp(s->t->ops->kind, "replay") != 0) {
        s->info.unclaimed_frames++;
        return;
    }
    if (s->have_frame_seq) {
        int32_t step = (int32_t)(f->frame_seq - s->last_frame_seq);
        /* A repeated or older sequence number is a duplicated frame (the agent restarts
         * its count only with a new HELLO, which resets ours): never store it twice. */
        if (step <= 0) {
            s->info.duplicates++;
            return;
        }
        s->info.frames_lost += (uint32_t)step - 1;
    }
    s->have_frame_seq = 1;
    s->last_frame_seq = f->frame_seq;
    s->info.frames++;
    s->info.image_width = f->image_width;
    s->info.image_height = f->image_height;
    remember_frame(s, f);
    if (s->cbs.detection)
        s->cbs.detection(s, f, now, s->user);
}

static struct pending *match_pending(struct kpud_session *s, uint16_t ref)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (s->pending[i].used && s->pending[i].seq == ref)
            return &s->pending[i];
    return NULL;
}

static void dispatch(struct kpud_session *s, const struct klink_frame *f)
{
    const ProtobufCMessageDescriptor *d = klink_type_descriptor(f->type);
    ProtobufCMessage *m;

    if (!d) {
        s->info.decode_errors++;
        log_debug("device %s: frame of unknown type %u", s->info.id, f->type);
        return;
    }
    m = protobuf_c_message_unpack(d, NULL, f->payload_len, f->payload);
    if (!m) {
        s->info.decode_errors++;
        log_debug("device %s: %s payload does not decode", s->info.id, klink_type_name(f->type));
        return;
    }
    if (f->flags & KLINK_FLAG_RESPONSE) {
        struct pending *p = match_pending(s, f->ref);
        if (p) {
            kpud_session_reply_fn cb = p->cb;
            void *user = p->user;
            p->used = 0;
            if (cb)
                cb(s, 0, f->type, m, user);
            protobuf_c_message_free_unpacked(m, NULL);
            return;
        }
        /* A late reply to a request that timed out (or a duplicate): fall through so an
         * AgentHello still updates the identity. */
    }
    switch (f->type) {
    case KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO:
        handle_agent_hello(s, (Kpu__Link__V1__AgentHello *)m, f->flags & KLINK_FLAG_RESPONSE);
        break;
    case KPU__LINK__V1__MSG_TYPE__MSG_DETECTION_FRAME:
        handle_detection(s, (Kpu__Link__V1__DetectionFrame *)m);
        break;
    case KPU__LINK__V1__MSG_TYPE__MSG_SNAPSHOT_CHUNK:
        handle_snapshot_chunk(s, (const Kpu__Link__V1__SnapshotChunk *)m);
        break;
    case KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT: {
        const Kpu__Link__V1__Heartbeat *hb = (const Kpu__Link__V1__Heartbeat *)m;
        s->info.fps = (float)hb->fps_milli / 1000.0f;
        s->info.kpu_us = hb->kpu_us;
        break;
    }
    case KPU__LINK__V1__MSG_TYPE__MSG_LOG_LINE: {
        const Kpu__Link__V1__LogLine *l = (const Kpu__Link__V1__LogLine *)m;
        log_info("device %s: agent: %s", s->info.id, l->text);
        if (s->cbs.log_line)
            s->cbs.log_line(s, l, s->user);
        break;
    }
    default:
        log_debug("device %s: ignoring %s", s->info.id, klink_type_name(f->type));
        break;
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

static void on_data(struct kpud_transport *t, const uint8_t *buf, size_t len)
{
    struct kpud_session *s = t->user;
    struct klink_frame f;
    const uint8_t *p = buf;
    uint64_t before = s->dec.stats.crc_errors + s->dec.stats.malformed + s->dec.stats.oversize;

    record(s, KCAP_AGENT_TO_HOST, buf, len);
    while (len && !s->closing) {
        if (klink_decode(&s->dec, &p, &len, &f)) {
            s->last_rx_ms = uv_now(s->loop);
            dispatch(s, &f);
        }
    }
    s->info.link_errors +=
        s->dec.stats.crc_errors + s->dec.stats.malformed + s->dec.stats.oversize - before;
}

static void on_link_up(struct kpud_transport *t)
{
    struct kpud_session *s = t->user;
    record(s, KCAP_MARKER, (const uint8_t *)"link up", 7);
    klink_decoder_reset(&s->dec);
    start_hello(s);
}

static void on_ended(struct kpud_transport *t)
{
    struct kpud_session *s = t->user;
    if (s->cbs.ended)
        s->cbs.ended(s, s->user);
}

static void on_link_down(struct kpud_transport *t, const char *reason)
{
    struct kpud_session *s = t->user;
    record(s, KCAP_MARKER, (const uint8_t *)"link down", 9);
    fail_pending(s, -ENOTCONN);
    snprintf(s->info.last_error, sizeof(s->info.last_error), "link down: %s", reason);
    set_state(s, KPUD_DEV_LOST, reason);
}

/* ---- timers --------------------------------------------------------------------- */

static void tick_cb(uv_timer_t *tm)
{
    struct kpud_session *s = tm->data;
    uint64_t now = uv_now(s->loop);

    if (s->closing || !s->t->up)
        return;
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &s->pending[i];
        if (!p->used || now < p->deadline_ms)
            continue;
        if (p->tries <= s->timing.request_retries) {
            /* Same seq and payload, flagged as a retransmission (docs/protocol.md §2). */
            p->tries++;
            p->deadline_ms = now + s->timing.request_timeout_ms;
            send_frame(s, p->type, KLINK_FLAG_RETRY, p->seq, p->payload, p->payload_len);
            continue;
        }
        p->used = 0;
        if (p->cb)
            p->cb(s, -ETIMEDOUT, 0, NULL, p->user);
    }
    snap_tick(s, now);
    if (s->info.state == KPUD_DEV_BACKOFF) {
        if (now >= s->backoff_until_ms)
            start_hello(s);
        return;
    }
    if (s->info.state == KPUD_DEV_HELLO || s->info.state == KPUD_DEV_LOST)
        return;
    if (now - s->last_hb_tx_ms >= s->timing.heartbeat_ms) {
        Kpu__Link__V1__Heartbeat hb = KPU__LINK__V1__HEARTBEAT__INIT;
        hb.uptime_ms = now;
        s->last_hb_tx_ms = now;
        send_msg(s, KPU__LINK__V1__MSG_TYPE__MSG_HEARTBEAT, &hb.base);
    }
    if (now - s->last_rx_ms > s->timing.silence_timeout_ms) {
        snprintf(s->info.last_error, sizeof(s->info.last_error),
                 "agent silent for %llu ms; resetting the board",
                 (unsigned long long)(now - s->last_rx_ms));
        log_warn("device %s: %s", s->info.id, s->info.last_error);
        fail_pending(s, -ETIMEDOUT);
        s->last_rx_ms = now;
        s->t->ops->reset(s->t, 0);
        enter_backoff(s, "agent silent");
    }
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void maybe_done(struct kpud_session *s)
{
    if (s->handles_open)
        return;
    if (s->done)
        s->done(s->done_arg);
    free(s);
}

static void tick_closed(uv_handle_t *h)
{
    struct kpud_session *s = h->data;
    s->handles_open--;
    maybe_done(s);
}

static void transport_closed(struct kpud_transport *t)
{
    struct kpud_session *s = t->user;
    s->handles_open--;
    maybe_done(s);
}

int kpud_session_open(uv_loop_t *loop, struct kpud_transport *t,
                      const struct kpud_session_config *cfg,
                      const struct kpud_session_timing *timing,
                      const struct kpud_session_callbacks *cbs, void *user,
                      struct kpud_session **ret)
{
    struct kpud_session *s = calloc(1, sizeof(*s));
    int r;

    if (!s) {
        t->ops->close(t);
        return -ENOMEM;
    }
    s->loop = loop;
    s->t = t;
    s->cfg = *cfg;
    if (timing)
        s->timing = *timing;
    if (!s->timing.heartbeat_ms)
        s->timing.heartbeat_ms = 1000;
    if (!s->timing.silence_timeout_ms)
        s->timing.silence_timeout_ms = 3500;
    if (!s->timing.request_timeout_ms)
        s->timing.request_timeout_ms = 1000;
    if (!s->timing.request_retries)
        s->timing.request_retries = 3;
    if (cbs)
        s->cbs = *cbs;
    s->user = user;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->info.state = KPUD_DEV_PROBING;
    snprintf(s->info.id, sizeof(s->info.id), "port:%.34s", t->path);
    klink_decoder_init(&s->dec, s->decbuf, sizeof(s->decbuf));
    t->user = s;
    t->data = on_data;
    t->link_up = on_link_up;
    t->link_down = on_link_down;
    t->closed = transport_closed;
    t->ended = on_ended;
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    s->handles_open = 2; /* tick timer + transport */
    uv_timer_start(&s->tick, tick_cb, TICK_MS, TICK_MS);
    r = t->ops->start(t);
    if (r < 0) {
        log_err("%s %s: %s", t->ops->kind, t->path, strerror(-r));
        s->closing = 1;
        uv_close((uv_handle_t *)&s->tick, tick_closed);
        t->ops->close(t);
        return r;
    }
    *ret = s;
    return 0;
}

void kpud_session_close(struct kpud_session *s, void (*done)(void *arg), void *arg)
{
    s->closing = 1;
    s->done = done;
    s->done_arg = arg;
    kpud_session_record_stop(s);
    fail_pending(s, -ECANCELED);
    notify_hello_waiter(s, -ECANCELED);
    uv_timer_stop(&s->tick);
    uv_close((uv_handle_t *)&s->tick, tick_closed);
    s->t->ops->close(s->t);
}

int kpud_session_wait_hello(struct kpud_session *s, kpud_session_hello_fn fn, void *user)
{
    if (!fn) {
        s->hello_waiter = NULL;
        return 0;
    }
    if (s->closing)
        return -ECANCELED;
    if (s->hello_waiter)
        return -EBUSY;
    s->hello_waiter = fn;
    s->hello_waiter_user = user;
    return 0;
}

void kpud_session_get_info(const struct kpud_session *s, struct kpud_session_info *out)
{
    *out = s->info;
}

const struct kpud_transport *kpud_session_transport(const struct kpud_session *s)
{
    return s->t;
}

static int config_valid(const struct kpud_session_config *c)
{
    return c->threshold >= 0 && c->threshold <= 1 && c->nms >= 0 && c->nms <= 1 &&
           c->max_boxes >= 1 && c->max_boxes <= 32 && c->n_anchors <= 20 && c->n_anchors % 2 == 0 &&
           memchr(c->model, 0, sizeof(c->model));
}

static void reconfigure_done(struct kpud_session *s, int status, uint8_t type,
                             const ProtobufCMessage *msg, void *user)
{
    const Kpu__Link__V1__Status *st = (const Kpu__Link__V1__Status *)msg;
    (void)user;
    if (status < 0 || type != KPU__LINK__V1__MSG_TYPE__MSG_STATUS ||
        st->code != KPU__LINK__V1__STATUS_CODE__STATUS_OK)
        log_warn("device %s: agent did not take the new configuration%s%s", s->info.id,
                 status < 0 ? ": " : (st && st->text && *st->text ? ": " : ""),
                 status < 0 ? strerror(-status) : (st && st->text ? st->text : ""));
}

int kpud_session_set_config(struct kpud_session *s, const struct kpud_session_config *cfg)
{
    if (!config_valid(cfg))
        return -EINVAL;
    s->cfg = *cfg;
    /* Streaming: apply now. Otherwise the next handshake sends it. */
    if (s->info.state == KPUD_DEV_STREAMING || s->info.state == KPUD_DEV_IDLE)
        if (send_configure(s, reconfigure_done) < 0)
            log_warn("device %s: new configuration kept for the next handshake", s->info.id);
    return 0;
}

void kpud_session_get_config(const struct kpud_session *s, struct kpud_session_config *out)
{
    *out = s->cfg;
}

int kpud_session_reset(struct kpud_session *s)
{
    int r = s->t->ops->reset(s->t, 0);
    if (r == 0)
        enter_backoff(s, "reset requested");
    return r;
}

/* The capture header (kcap.h) for the session's current identity, notes folded to one
 * line, padded with newlines to at least pad bytes (readers skip empty lines). */
static void rec_header(const struct kpud_session *s, const char *date, const char *notes,
                       size_t pad, char *out, size_t cap)
{
    size_t n;

    snprintf(out, cap,
             "board=%s\nagent_version=%s\ndate=%s\ntransport=%s\npath=%s\ndevice=%s\nnotes=%s\n",
             s->info.board, s->info.agent_version, date, s->t->ops->kind, s->t->path, s->info.id,
             notes ? notes : "");
    /* Notes are one line by format: fold any newline the user typed. */
    for (char *p = strstr(out, "notes="); p && *p; p++)
        if (*p == '\n' && p[1] != 0)
            *p = ' ';
    for (n = strlen(out); n < pad && n + 1 < cap; n++)
        out[n] = '\n';
    out[n] = 0;
}

#define REC_HEADER_RESERVE 512u /* room for the identity learned after the capture began */

/* The handshake told who the board is: complete a capture header written before it. */
static void rec_header_fixup(struct kpud_session *s)
{
    char header[1024];

    if (!s->rec || !s->rec_hdr_pending)
        return;
    s->rec_hdr_pending = 0;
    rec_header(s, s->rec_date, s->rec_notes, s->rec_hdr_len, header, sizeof(header));
    if (strlen(header) != s->rec_hdr_len || fflush(s->rec) != 0 ||
        fseek(s->rec, 12, SEEK_SET) != 0 ||
        fwrite(header, 1, s->rec_hdr_len, s->rec) != s->rec_hdr_len ||
        fseek(s->rec, 0, SEEK_END) != 0)
        log_warn("device %s: the capture's header keeps the identity it began with", s->info.id);
}

int kpud_session_record_start(struct kpud_session *s, const char *path, const char *notes)
{
    char header[1024];
    time_t now = time(NULL);
    struct tm tmv;
    FILE *f;
    int pending = s->info.agent_version[0] == 0;

    if (s->rec)
        return -EBUSY;
    f = fopen(path, "wbx");
    if (!f)
        return -errno;
    gmtime_r(&now, &tmv);
    strftime(s->rec_date, sizeof(s->rec_date), "%Y-%m-%dT%H:%M:%SZ", &tmv);
    rec_header(s, s->rec_date, notes, pending ? REC_HEADER_RESERVE : 0, header, sizeof(header));
    if (kcap_write_header(f, header) < 0) {
        fclose(f);
        unlink(path);
        return -EIO;
    }
    s->rec_path = strdup(path);
    s->rec = f;
    s->rec_bytes = 12 + strlen(header);
    s->rec_t0_ms = uv_now(s->loop);
    s->rec_hdr_pending = pending;
    s->rec_hdr_len = strlen(header);
    free(s->rec_notes);
    s->rec_notes = pending && notes ? strdup(notes) : NULL;
    return 0;
}

uint64_t kpud_session_record_stop(struct kpud_session *s)
{
    uint64_t n = s->rec_bytes;
    if (!s->rec)
        return 0;
    fclose(s->rec);
    s->rec = NULL;
    free(s->rec_path);
    s->rec_path = NULL;
    free(s->rec_notes);
    s->rec_notes = NULL;
    s->rec_hdr_pending = 0;
    s->rec_bytes = 0;
    return n;
}

int kpud_session_recording(const struct kpud_session *s, const char **path, uint64_t *bytes)
{
    if (!s->rec)
        return 0;
    if (path)
        *path = s->rec_path;
    if (bytes)
        *bytes = s->rec_bytes;
    return 1;
}
