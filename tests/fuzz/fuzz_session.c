/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: bytes from a board through kpud's session code (daemon/session.h), the
 * state machine that decodes link frames, matches replies, counts losses and hands
 * detections on. The session runs on a real libuv loop over an in-memory transport that
 * implements daemon/link/transport.h; nothing touches a store or a file.
 *
 * Input: a script of operations, each one byte followed by its argument bytes:
 *   0x00..0xEF  deliver the next (op + 1) bytes as received data (fewer at the end)
 *   0xF0        the link goes down, then up again (an unplug and replug)
 *   0xF1        kpud_session_set_config with 4 argument bytes (threshold, nms, boxes, fps)
 *   0xF2        kpud_session_request of the link type in the next byte (empty payload)
 *   0xF3        kpud_session_reset (the transport reports down/up on the loop)
 *   0xF4        the transport says the capture ended
 *   0xF5..0xFF  run the loop once more
 * The loop runs (without blocking) after every operation. The seeds are the agent-to-host
 * bytes of the replay captures (tests/replay), so the fuzzer starts from a full handshake
 * and a stream. Properties: no crash, hang or leak; counters never go backwards; a
 * detection is never handed on twice with the same frame sequence number within one
 * handshake; the board is not reset more often than asked (no reset loop).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link/transport.h"
#include "link_types.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_WRITE_BOUND (256u * 1024u) /* bytes a transport may hold before -ENOBUFS */
#define FUZZ_CLOSE_TURNS 1000           /* loop turns a closing session may take */

/* The in-memory transport. */
struct mem_transport {
    struct kpud_transport t;
    uv_timer_t reset_timer; /* delivers a reset's down/up on the loop, like a real one */
    size_t written;         /* bytes the session wrote since the last reset */
    unsigned resets;        /* reset() calls */
    unsigned asked;         /* kpud_session_reset() calls the script made */
    int closed;
};

static int mem_start(struct kpud_transport *t)
{
    t->up = 1;
    if (t->link_up)
        t->link_up(t);
    return 0;
}

static int mem_write(struct kpud_transport *t, const uint8_t *buf, size_t len)
{
    struct mem_transport *m = (struct mem_transport *)t;

    (void)buf;
    if (!t->up)
        return -ENOTCONN;
    if (m->written + len > FUZZ_WRITE_BOUND)
        return -ENOBUFS;
    m->written += len;
    return 0;
}

static void reset_cb(uv_timer_t *tm)
{
    struct mem_transport *m = tm->data;

    if (m->t.up) {
        m->t.up = 0;
        m->t.link_down(&m->t, "reset");
    }
    m->written = 0;
    m->t.up = 1;
    m->t.link_up(&m->t);
}

static int mem_reset(struct kpud_transport *t, int to_isp)
{
    struct mem_transport *m = (struct mem_transport *)t;

    (void)to_isp;
    /* The session resets the board on request, or when the agent stays silent for
     * seconds (no time passes here). More is a reset loop (regression: a link that went
     * down under a HELLO made the session reset the board, which took the link down
     * again, forever, inside one turn of the loop). */
    if (++m->resets > m->asked + 1)
        abort();
    uv_timer_start(&m->reset_timer, reset_cb, 0, 0);
    return 0;
}

static int mem_set_baud(struct kpud_transport *t, uint32_t baud)
{
    (void)t;
    (void)baud;
    return 0;
}

static void mem_closed(uv_handle_t *h)
{
    struct mem_transport *m = h->data;

    if (m->t.closed)
        m->t.closed(&m->t);
    free(m);
}

static void mem_close(struct kpud_transport *t)
{
    struct mem_transport *m = (struct mem_transport *)t;

    m->closed = 1;
    t->up = 0;
    uv_close((uv_handle_t *)&m->reset_timer, mem_closed);
}

static const struct kpud_transport_ops mem_ops = {
    .kind = "sim",
    .start = mem_start,
    .write = mem_write,
    .reset = mem_reset,
    .set_baud = mem_set_baud,
    .close = mem_close,
};

/* What the callbacks saw. */
struct seen {
    int handshakes;
    int have_seq;
    uint32_t last_seq;
    uint64_t detections;
    int ended;
};

static void on_hello(struct kpud_session *s, const Kpu__Link__V1__AgentHello *h, void *user)
{
    struct seen *sn = user;

    (void)s;
    (void)h;
    sn->handshakes++;
    sn->have_seq = 0;
}

static void on_detection(struct kpud_session *s, const Kpu__Link__V1__DetectionFrame *f,
                         int64_t host_ns, void *user)
{
    struct seen *sn = user;

    (void)s;
    (void)host_ns;
    /* Within one handshake the session hands on strictly increasing sequence numbers. */
    if (sn->have_seq && (int32_t)(f->frame_seq - sn->last_seq) <= 0)
        abort();
    sn->have_seq = 1;
    sn->last_seq = f->frame_seq;
    sn->detections++;
    for (size_t i = 0; i < f->n_boxes; i++)
        if (!f->boxes[i])
            abort();
}

static void on_ended(struct kpud_session *s, void *user)
{
    (void)s;
    ((struct seen *)user)->ended = 1;
}

static void on_reply(struct kpud_session *s, int status, uint8_t type, const ProtobufCMessage *msg,
                     void *user)
{
    (void)s;
    (void)type;
    (void)user;
    /* A success carries a message; a failure never does. */
    if ((status == 0) != (msg != NULL))
        abort();
}

static void session_done(void *arg)
{
    *(int *)arg = 1;
}

static uv_loop_t *fuzz_loop(void)
{
    static uv_loop_t loop;
    static int ready;

    if (!ready) {
        if (uv_loop_init(&loop) != 0)
            abort();
        ready = 1;
    }
    return &loop;
}

static void check_monotonic(const struct kpud_session_info *a, const struct kpud_session_info *b)
{
    if (b->frames < a->frames || b->frames_lost < a->frames_lost ||
        b->link_errors < a->link_errors || b->decode_errors < a->decode_errors ||
        b->duplicates < a->duplicates || b->reconnects < a->reconnects)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t *loop = fuzz_loop();
    struct mem_transport *m = calloc(1, sizeof(*m));
    struct kpud_session_config cfg;
    struct kpud_session_callbacks cbs;
    struct kpud_session_info before, after = {0};
    struct kpud_session *s = NULL;
    struct seen sn;
    int done = 0;

    if (!m)
        return 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.threshold = 0.5f;
    cfg.nms = 0.3f;
    cfg.max_boxes = 10;
    memset(&cbs, 0, sizeof(cbs));
    cbs.hello = on_hello;
    cbs.detection = on_detection;
    cbs.ended = on_ended;
    memset(&sn, 0, sizeof(sn));
    m->t.ops = &mem_ops;
    m->t.loop = loop;
    snprintf(m->t.path, sizeof(m->t.path), "fuzz");
    uv_timer_init(loop, &m->reset_timer);
    m->reset_timer.data = m;
    if (kpud_session_open(loop, &m->t, &cfg, NULL, &cbs, &sn, &s) < 0)
        abort(); /* the in-memory transport cannot fail to start */
    kpud_session_get_info(s, &before);

    while (size) {
        uint8_t op = *data++;
        size--;
        if (op <= 0xEF) {
            size_t n = (size_t)op + 1 < size ? (size_t)op + 1 : size;
            if (m->t.up && n)
                m->t.data(&m->t, data, n);
            data += n;
            size -= n;
        } else if (op == 0xF0) {
            if (m->t.up) {
                m->t.up = 0;
                m->t.link_down(&m->t, "fuzz unplug");
            }
            m->t.up = 1;
            m->t.link_up(&m->t);
        } else if (op == 0xF1 && size >= 4) {
            struct kpud_session_config c;
            kpud_session_get_config(s, &c);
            c.threshold = data[0] / 200.0f; /* up to 1.275: out of range is refused */
            c.nms = data[1] / 200.0f;
            c.max_boxes = data[2] % 40;
            c.fps_cap = data[3];
            kpud_session_set_config(s, &c);
            data += 4;
            size -= 4;
        } else if (op == 0xF2 && size >= 1) {
            const ProtobufCMessageDescriptor *d = klink_type_descriptor(data[0]);
            if (d) {
                ProtobufCMessage *msg = calloc(1, d->sizeof_message);
                if (msg) {
                    protobuf_c_message_init(d, msg);
                    kpud_session_request(s, data[0], msg, on_reply, NULL);
                    free(msg);
                }
            }
            data++;
            size--;
        } else if (op == 0xF3) {
            m->asked++;
            kpud_session_reset(s);
        } else if (op == 0xF4) {
            if (m->t.ended)
                m->t.ended(&m->t);
        }
        uv_run(loop, UV_RUN_NOWAIT);
        kpud_session_get_info(s, &after);
        check_monotonic(&before, &after);
        if (after.frames != sn.detections)
            abort(); /* every counted frame was handed on, and nothing else */
        before = after;
    }

    if (getenv("FUZZ_SESSION_SUMMARY")) /* to check what a seed reaches */
        fprintf(stderr, "handshakes %d, frames %llu, link errors %llu, state %s\n", sn.handshakes,
                (unsigned long long)after.frames, (unsigned long long)after.link_errors,
                kpud_dev_state_name(after.state));
    kpud_session_close(s, session_done, &done);
    for (int turns = 0; !done && turns <= FUZZ_CLOSE_TURNS; turns++)
        uv_run(loop, UV_RUN_ONCE); /* the close callbacks set done */
    if (!done)
        abort(); /* something keeps the loop busy after close */
    return 0;
}
