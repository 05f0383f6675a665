/* SPDX-License-Identifier: MIT */
/*
 * Writing the agent firmware to a board's flash (see agent_flash.h). One job per session;
 * each job has at most one operation outstanding (an ISP boot, a handshake wait or one
 * link request), and the job ends from that operation's completion or its timer.
 */
#include "agent_flash.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link/boot_image.h"
#include "link/transport_usb.h"
#include "log.h"

#define IMAGE_MAX (1u << 20) /* the agent's image slot (firmware-agent/core/store.h) */
#define PM_ISP_END 250u      /* progress split: isp 0-250, write 250-900, verify, reboot */
#define PM_WRITE_END 900u
#define PM_VERIFY_END 950u
#define KEEPALIVE_MS 1000u /* progress repeated this often while a phase waits */

enum phase { PH_ISP, PH_HELLO, PH_WRITE, PH_VERIFY, PH_REBOOT };
static const char *const phase_names[] = {"isp", "hello", "write", "verify", "reboot"};

struct job {
    struct job *next;
    struct kpud_session *s;
    uv_timer_t timer;     /* the current wait's deadline */
    uv_timer_t keepalive; /* repeats the last progress: clients restart their timeouts */
    int handles_open;
    enum phase phase;
    int isp; /* booted the image into SRAM first */
    int finished;
    uint8_t *img; /* the boot image */
    size_t len;
    uint32_t id, next_off;
    uint32_t last_pm;
    char sram_version[32];
    kpud_agent_progress_fn cb;
    void *user;
};

static struct job *jobs;

static void job_closed(uv_handle_t *h)
{
    struct job *j = h->data;

    if (--j->handles_open > 0)
        return;
    free(j->img);
    free(j);
}

static void finish(struct job *j, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct job *j, int status, const char *fmt, ...)
{
    char text[160] = "";
    struct job **pp;
    va_list ap;

    if (j->finished)
        return;
    j->finished = 1;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
    }
    for (pp = &jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    uv_timer_stop(&j->timer);
    uv_timer_stop(&j->keepalive);
    if (status < 0)
        log_err("agent flash: %s: %s", phase_names[j->phase], text);
    else
        log_info("agent flash: %s", text);
    j->cb(j->user, 1, status, status < 0 ? j->last_pm : 1000u, phase_names[j->phase], text);
    uv_close((uv_handle_t *)&j->timer, job_closed);
    uv_close((uv_handle_t *)&j->keepalive, job_closed);
}

static void progress(struct job *j, uint32_t pm)
{
    if (pm < j->last_pm + 10u && pm != PM_ISP_END && pm != PM_WRITE_END)
        return; /* one report per percent is plenty for a progress bar */
    j->last_pm = pm;
    j->cb(j->user, 0, 0, pm, phase_names[j->phase], "");
}

/* A reboot or an ISP boot can take longer than a client's call timeout without a step of
 * progress: say again where the job is. */
static void on_keepalive(uv_timer_t *t)
{
    struct job *j = t->data;

    j->cb(j->user, 0, 0, j->last_pm, phase_names[j->phase], "");
}

static void on_timeout(uv_timer_t *t)
{
    struct job *j = t->data;

    if (j->phase == PH_HELLO || j->phase == PH_REBOOT)
        kpud_session_wait_hello(j->s, NULL, NULL);
    finish(j, -ETIMEDOUT, "no agent handshake within %u s", KPUD_AGENT_HELLO_TIMEOUT_MS / 1000u);
}

static void start_write(struct job *j);
static void send_chunk(struct job *j);

/* The ModelUploadState that answers a Begin or a chunk: 0, or finish()ed. */
static int upload_state(struct job *j, int status, uint8_t type, const ProtobufCMessage *msg,
                        const Kpu__Link__V1__ModelUploadState **out)
{
    const Kpu__Link__V1__ModelUploadState *st = (const Kpu__Link__V1__ModelUploadState *)msg;

    if (status < 0) {
        finish(j, status, "the agent did not answer: %s", strerror(-status));
        return -1;
    }
    if (type != KPU__LINK__V1__MSG_TYPE__MSG_MODEL_UPLOAD_STATE) {
        const Kpu__Link__V1__Status *s = (const Kpu__Link__V1__Status *)msg;
        if (type == KPU__LINK__V1__MSG_TYPE__MSG_STATUS)
            finish(j, -EREMOTEIO, "the agent refused: %s", s->text);
        else
            finish(j, -EPROTO, "unexpected reply type %u", type);
        return -1;
    }
    if (st->code != KPU__LINK__V1__STATUS_CODE__STATUS_OK &&
        st->code != KPU__LINK__V1__STATUS_CODE__STATUS_BAD_OFFSET) {
        finish(j, -EREMOTEIO, "the agent refused the image: %s (code %d)", st->text, (int)st->code);
        return -1;
    }
    if (st->next_offset > j->len) {
        finish(j, -EPROTO, "the agent asks for offset %u of a %zu-byte image", st->next_offset,
               j->len);
        return -1;
    }
    *out = st;
    return 0;
}

static void reboot_settled(struct kpud_session *s, int status, void *user)
{
    struct job *j = user;
    struct kpud_session_info info;

    uv_timer_stop(&j->timer);
    if (status < 0) {
        finish(j, status, "the board went away while rebooting");
        return;
    }
    kpud_session_get_info(s, &info);
    if (j->isp && strcmp(info.agent_version, j->sram_version) != 0) {
        finish(j, -EIO, "the board booted agent %s from flash, the written one is %s",
               info.agent_version, j->sram_version);
        return;
    }
    finish(j, 0, "%zu bytes written to %s; it boots agent %s from flash", j->len, info.id,
           info.agent_version);
}

static void commit_done(struct kpud_session *s, int status, uint8_t type,
                        const ProtobufCMessage *msg, void *user)
{
    struct job *j = user;
    const Kpu__Link__V1__Status *st = (const Kpu__Link__V1__Status *)msg;
    int r;

    if (status < 0) {
        finish(j, status, "no answer to the commit: %s", strerror(-status));
        return;
    }
    if (type != KPU__LINK__V1__MSG_TYPE__MSG_STATUS) {
        finish(j, -EPROTO, "unexpected reply type %u to the commit", type);
        return;
    }
    if (st->code != KPU__LINK__V1__STATUS_CODE__STATUS_OK) {
        finish(j, -EREMOTEIO, "the agent did not write its flash: %s (code %d)", st->text,
               (int)st->code);
        return;
    }
    j->phase = PH_REBOOT;
    progress(j, PM_VERIFY_END);
    if (kpud_session_wait_hello(s, reboot_settled, j) < 0) {
        finish(j, -EBUSY, "another operation waits for this board's handshake");
        return;
    }
    r = kpud_session_reset(s);
    if (r < 0) {
        kpud_session_wait_hello(s, NULL, NULL);
        finish(j, r, "written and verified, but the board cannot be reset: %s; power-cycle it",
               strerror(-r));
        return;
    }
    uv_timer_start(&j->timer, on_timeout, KPUD_AGENT_HELLO_TIMEOUT_MS, 0);
}

static void chunk_done(struct kpud_session *s, int status, uint8_t type,
                       const ProtobufCMessage *msg, void *user)
{
    struct job *j = user;
    const Kpu__Link__V1__ModelUploadState *st;
    Kpu__Link__V1__ImageWriteCommit c = KPU__LINK__V1__IMAGE_WRITE_COMMIT__INIT;
    int r;

    if (upload_state(j, status, type, msg, &st) < 0)
        return;
    if (st->next_offset < j->len) {
        j->next_off = st->next_offset; /* the agent says where it is: a resend or a resume */
        progress(j, PM_ISP_END +
                        (uint32_t)((uint64_t)j->next_off * (PM_WRITE_END - PM_ISP_END) / j->len));
        send_chunk(j);
        return;
    }
    j->phase = PH_VERIFY;
    progress(j, PM_WRITE_END);
    c.upload_id = j->id;
    r = kpud_session_request(s, KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_COMMIT, &c.base,
                             commit_done, j);
    if (r < 0)
        finish(j, r, "cannot send the commit: %s", strerror(-r));
}

static void send_chunk(struct job *j)
{
    Kpu__Link__V1__ModelUploadChunk c = KPU__LINK__V1__MODEL_UPLOAD_CHUNK__INIT;
    size_t n = j->len - j->next_off > KPUD_LINK_CHUNK ? KPUD_LINK_CHUNK : j->len - j->next_off;
    int r;

    c.upload_id = j->id;
    c.offset = j->next_off;
    c.data.data = j->img + j->next_off;
    c.data.len = n;
    r = kpud_session_request(j->s, KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_CHUNK, &c.base,
                             chunk_done, j);
    if (r < 0)
        finish(j, r, "cannot send a chunk: %s", strerror(-r));
}

static void begin_done(struct kpud_session *s, int status, uint8_t type,
                       const ProtobufCMessage *msg, void *user)
{
    struct job *j = user;
    const Kpu__Link__V1__ModelUploadState *st;

    (void)s;
    if (upload_state(j, status, type, msg, &st) < 0)
        return;
    if (st->code != KPU__LINK__V1__STATUS_CODE__STATUS_OK || st->upload_id == 0) {
        finish(j, -EPROTO, "the agent did not open the image write");
        return;
    }
    j->id = st->upload_id;
    j->next_off = st->next_offset;
    send_chunk(j);
}

static void start_write(struct job *j)
{
    Kpu__Link__V1__ImageWriteBegin b = KPU__LINK__V1__IMAGE_WRITE_BEGIN__INIT;
    struct kpud_session_info info;
    int r;

    kpud_session_get_info(j->s, &info);
    if (!(info.features & KPU__LINK__V1__FEATURE__FEATURE_IMAGE_WRITE)) {
        finish(j, -ENOTSUP,
               "agent %s on %s cannot write its flash (no ImageWrite); boot a current agent "
               "first (kpuctl agent boot)",
               info.agent_version, info.id);
        return;
    }
    if (j->isp)
        snprintf(j->sram_version, sizeof(j->sram_version), "%s", info.agent_version);
    j->phase = PH_WRITE;
    progress(j, PM_ISP_END);
    b.size = (uint32_t)j->len;
    b.crc32c = klink_crc32c(0, j->img, j->len);
    r = kpud_session_request(j->s, KPU__LINK__V1__MSG_TYPE__MSG_IMAGE_WRITE_BEGIN, &b.base,
                             begin_done, j);
    if (r < 0)
        finish(j, r, "cannot start the image write: %s", strerror(-r));
}

static void hello_settled(struct kpud_session *s, int status, void *user)
{
    struct job *j = user;

    (void)s;
    uv_timer_stop(&j->timer);
    if (status < 0) {
        finish(j, status, "the board went away");
        return;
    }
    start_write(j);
}

static void wait_settled(struct job *j)
{
    j->phase = PH_HELLO;
    if (kpud_session_wait_hello(j->s, hello_settled, j) < 0) {
        finish(j, -EBUSY, "another operation waits for this board's handshake");
        return;
    }
    uv_timer_start(&j->timer, on_timeout, KPUD_AGENT_HELLO_TIMEOUT_MS, 0);
}

static void isp_progress(void *user, int done, int status, uint32_t permille)
{
    struct job *j = user;

    if (j->finished)
        return;
    if (!done) {
        progress(j, permille * PM_ISP_END / 1000u);
        return;
    }
    if (status < 0) {
        finish(j, status, "loading the agent into SRAM failed: %s", strerror(-status));
        return;
    }
    wait_settled(j);
}

static int settled(const struct kpud_session_info *info)
{
    return (info->state == KPUD_DEV_STREAMING || info->state == KPUD_DEV_IDLE) &&
           info->agent_version[0];
}

int kpud_agent_flash_start(uv_loop_t *loop, struct kpud_session *s, const uint8_t *fw, size_t len,
                           int isp_first, kpud_agent_progress_fn cb, void *user)
{
    struct kpud_session_info info;
    struct job *j;
    int r;

    if (!fw || len == 0 || len > IMAGE_MAX - KPUD_BOOT_IMAGE_OVERHEAD || !cb)
        return -EINVAL;
    for (j = jobs; j; j = j->next)
        if (j->s == s)
            return -EBUSY;
    j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    if (kpud_boot_image_wrap(fw, len, &j->img, &j->len) < 0) {
        free(j);
        return -ENOMEM;
    }
    j->s = s;
    j->cb = cb;
    j->user = user;
    j->isp = isp_first;
    uv_timer_init(loop, &j->timer);
    uv_timer_init(loop, &j->keepalive);
    j->timer.data = j;
    j->keepalive.data = j;
    j->handles_open = 2;
    uv_timer_start(&j->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    j->next = jobs;
    jobs = j;
    kpud_session_get_info(s, &info);
    log_info("agent flash: %s: %zu-byte boot image%s", info.id, j->len,
             isp_first ? ", agent booted into SRAM first" : "");
    if (isp_first) {
        j->phase = PH_ISP;
        r = kpud_transport_usb_boot_agent((struct kpud_transport *)kpud_session_transport(s), fw,
                                          len, isp_progress, j);
        if (r < 0)
            finish(j, r, "cannot boot the agent through the ROM ISP: %s", strerror(-r));
    } else if (settled(&info)) {
        start_write(j);
    } else {
        wait_settled(j);
    }
    return 0;
}
