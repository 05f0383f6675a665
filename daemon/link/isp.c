/* SPDX-License-Identifier: MIT */
/*
 * K210 ROM ISP client and board reset profiles (see isp.h). Our own code; the protocol
 * facts (ops, statuses, frame layout, greeting, 1 KiB memory frames, reset sequences)
 * are from kendryte/kflash.py@5783d8d8:kflash.py and shared/research/usb-bridges.md.
 */
#include "isp.h"

#include <errno.h>
#include <string.h>

#define ISP_SRAM_MAX (6u * 1024u * 1024u) /* general-purpose SRAM (DESIGN.md §2) */

/*
 * kflash.py reset_to_isp_* / reset_to_boot_* (each step followed by a 0.1 s sleep).
 * dan: RTS drives RST, DTR drives IO16. kd233/goE: DTR drives RST, RTS drives IO16.
 */
static const struct kpud_isp_profile profiles[] = {
    {"dan",
     "Maix Dock, Maix Bit (CH340), generic",
     {{0, 0}, {0, 1}, {1, 0}},
     {{0, 0}, {0, 1}, {0, 0}}},
    {"kd233", "KD233", {{0, 0}, {1, 0}, {0, 1}}, {{0, 0}, {1, 0}, {0, 0}}},
    {"goD", "Maix Go (old CMSIS-DAP firmware)", {{1, 1}, {1, 0}, {1, 0}}, {{0, 0}, {1, 0}, {1, 1}}},
    {"goE",
     "Maix Go (OpenEC), Maixduino, Maix Bit with mic, Amigo, Cube",
     {{0, 0}, {1, 0}, {0, 1}},
     {{0, 0}, {1, 0}, {0, 0}}},
};

const struct kpud_isp_profile *kpud_isp_profile_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof(profiles) / sizeof(profiles[0]); i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

const struct kpud_isp_profile *kpud_isp_profile_at(unsigned i)
{
    return i < sizeof(profiles) / sizeof(profiles[0]) ? &profiles[i] : NULL;
}

uint32_t kpud_isp_crc32(const uint8_t *buf, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;

    for (size_t i = 0; i < len; i++) {
        c ^= buf[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

size_t kpud_slip_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;

    if (cap < 2)
        return 0;
    out[n++] = KPUD_SLIP_END;
    for (size_t i = 0; i < len; i++) {
        if (n + 3 > cap)
            return 0;
        if (in[i] == KPUD_SLIP_END) {
            out[n++] = KPUD_SLIP_ESC;
            out[n++] = KPUD_SLIP_ESC_END;
        } else if (in[i] == KPUD_SLIP_ESC) {
            out[n++] = KPUD_SLIP_ESC;
            out[n++] = KPUD_SLIP_ESC_ESC;
        } else {
            out[n++] = in[i];
        }
    }
    out[n++] = KPUD_SLIP_END;
    return n;
}

void kpud_slip_dec_reset(struct kpud_slip_dec *d)
{
    uint64_t errors = d->errors;
    memset(d, 0, sizeof(*d));
    d->errors = errors;
}

int kpud_slip_dec_push(struct kpud_slip_dec *d, uint8_t byte)
{
    if (d->delivered) {
        d->len = 0;
        d->delivered = 0;
    }
    if (byte == KPUD_SLIP_END) {
        int complete = d->in_frame && d->len > 0 && !d->overflow && !d->esc;
        if (d->in_frame && (d->overflow || d->esc))
            d->errors++;
        /* An END both closes a frame and may open the next one (back-to-back frames). */
        d->in_frame = 1;
        d->esc = 0;
        d->overflow = 0;
        if (complete) {
            d->delivered = 1; /* d->buf stays valid until the next push */
            return 1;
        }
        d->len = 0;
        return 0;
    }
    if (!d->in_frame)
        return 0; /* boot noise between frames */
    if (d->esc) {
        d->esc = 0;
        if (byte == KPUD_SLIP_ESC_END)
            byte = KPUD_SLIP_END;
        else if (byte == KPUD_SLIP_ESC_ESC)
            byte = KPUD_SLIP_ESC;
        else
            d->overflow = 1; /* a broken escape spoils the frame */
    } else if (byte == KPUD_SLIP_ESC) {
        d->esc = 1;
        return 0;
    }
    if (d->overflow)
        return 0;
    if (d->len == sizeof(d->buf)) {
        d->overflow = 1;
        return 0;
    }
    d->buf[d->len++] = byte;
    return 0;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t kpud_isp_request(uint16_t op, const uint8_t *payload, size_t len, uint8_t *out, size_t cap)
{
    if (cap < KPUD_ISP_HEADER || len > cap - KPUD_ISP_HEADER)
        return 0;
    put_le16(out, op);
    put_le16(out + 2, 0);
    put_le32(out + 4, kpud_isp_crc32(payload, len));
    if (len)
        memcpy(out + KPUD_ISP_HEADER, payload, len);
    return KPUD_ISP_HEADER + len;
}

int kpud_isp_parse_request(const uint8_t *f, size_t len, uint16_t *op, const uint8_t **payload,
                           size_t *plen)
{
    if (len < KPUD_ISP_HEADER)
        return -EBADMSG;
    *op = (uint16_t)(f[0] | f[1] << 8);
    *payload = f + KPUD_ISP_HEADER;
    *plen = len - KPUD_ISP_HEADER;
    if (kpud_isp_crc32(*payload, *plen) != get_le32(f + 4))
        return -EILSEQ;
    return 0;
}

/* ---- client ---- */

/* kflash's greeting: C0 C2 00 ... 00 C0, a NOP with twelve zero bytes after the op. */
static const uint8_t isp_greeting[] = {
    KPUD_SLIP_END, KPUD_ISP_OP_NOP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, KPUD_SLIP_END};

static void finish(struct kpud_isp *isp, int status)
{
    isp->state = KPUD_ISP_DONE;
    isp->deadline = 0;
    if (isp->io.done)
        isp->io.done(isp->io.user, status);
}

static void send_frame(struct kpud_isp *isp, uint16_t op, const uint8_t *payload, size_t len)
{
    uint8_t raw[KPUD_ISP_FRAME_MAX], slip[2 * KPUD_ISP_FRAME_MAX + 2];
    size_t n = kpud_isp_request(op, payload, len, raw, sizeof(raw));
    size_t m = kpud_slip_encode(raw, n, slip, sizeof(slip));

    isp->frames_sent++;
    isp->io.write(isp->io.user, slip, m);
}

static void send_chunk(struct kpud_isp *isp, uint64_t now)
{
    uint8_t payload[8 + KPUD_ISP_CHUNK];
    size_t k = isp->o.image_len - isp->offset;

    if (k > KPUD_ISP_CHUNK)
        k = KPUD_ISP_CHUNK;
    put_le32(payload, isp->o.address + (uint32_t)isp->offset);
    put_le32(payload + 4, (uint32_t)k);
    memcpy(payload + 8, isp->o.image + isp->offset, k);
    send_frame(isp, KPUD_ISP_OP_MEMORY_WRITE, payload, 8 + k);
    isp->deadline = now + isp->o.timeout_ms;
}

static void send_boot(struct kpud_isp *isp)
{
    uint8_t payload[8];

    /* kflash boot(): address, 0. The ROM jumps without answering. */
    put_le32(payload, isp->o.address);
    put_le32(payload + 4, 0);
    send_frame(isp, KPUD_ISP_OP_MEMORY_BOOT, payload, sizeof(payload));
}

static void greet(struct kpud_isp *isp, uint64_t now)
{
    isp->state = KPUD_ISP_GREET;
    isp->tries++;
    kpud_slip_dec_reset(&isp->dec);
    isp->io.write(isp->io.user, isp_greeting, sizeof(isp_greeting));
    isp->deadline = now + isp->o.timeout_ms;
}

int kpud_isp_start(struct kpud_isp *isp, const struct kpud_isp_opts *o,
                   const struct kpud_isp_io *io, uint64_t now_ms)
{
    if (!o || !io || !io->write || !o->image || o->image_len == 0 || o->image_len > ISP_SRAM_MAX)
        return -EINVAL;
    memset(isp, 0, sizeof(*isp));
    isp->o = *o;
    isp->io = *io;
    if (!isp->o.address)
        isp->o.address = KPUD_ISP_SRAM_BASE;
    if (!isp->o.step_ms)
        isp->o.step_ms = 100;
    if (!isp->o.timeout_ms)
        isp->o.timeout_ms = 500;
    if (!isp->o.greet_tries)
        isp->o.greet_tries = 10;
    if (!isp->o.retries)
        isp->o.retries = 5;
    kpud_slip_dec_reset(&isp->dec);
    if (isp->o.profile && io->set_lines) {
        isp->state = KPUD_ISP_RESET;
        isp->step = 0;
        isp->deadline = now_ms; /* the first step at the first tick */
    } else {
        greet(isp, now_ms);
    }
    return 0;
}

static void on_frame(struct kpud_isp *isp, const uint8_t *f, size_t len, uint64_t now)
{
    uint8_t op, status;

    if (len < 2)
        return;
    op = f[0];
    status = f[1];
    if (op == KPUD_ISP_OP_DEBUG_INFO)
        return; /* ROM debug text */
    if (isp->state == KPUD_ISP_GREET) {
        if (op == KPUD_ISP_OP_NOP && status == KPUD_ISP_STATUS_OK && isp->o.baud &&
            isp->io.set_baud && !isp->baud_changed) {
            uint8_t payload[12];

            /* The ROM answers nothing and listens at the new rate right away. */
            put_le32(payload, 0);
            put_le32(payload + 4, 4);
            put_le32(payload + 8, KPUD_ISP_ROM_BAUD_VALUE(isp->o.baud));
            send_frame(isp, KPUD_ISP_OP_CHANGE_BAUD, payload, sizeof(payload));
            isp->state = KPUD_ISP_BAUD;
            isp->deadline = now + KPUD_ISP_BAUD_SETTLE_MS;
            return;
        }
        if (op == KPUD_ISP_OP_NOP && status == KPUD_ISP_STATUS_OK) {
            isp->state = KPUD_ISP_WRITE;
            isp->tries = 1;
            isp->offset = 0;
            send_chunk(isp, now);
        }
        return;
    }
    if (isp->state != KPUD_ISP_WRITE || op != KPUD_ISP_OP_MEMORY_WRITE)
        return;
    if (status != KPUD_ISP_STATUS_OK) {
        /* Bad checksum or length: the frame was damaged on the way; send it again. */
        if (isp->tries++ >= isp->o.retries) {
            finish(isp, -EIO);
            return;
        }
        isp->frames_retried++;
        send_chunk(isp, now);
        return;
    }
    isp->offset += isp->o.image_len - isp->offset < KPUD_ISP_CHUNK ? isp->o.image_len - isp->offset
                                                                   : KPUD_ISP_CHUNK;
    if (isp->io.progress)
        isp->io.progress(isp->io.user, (uint32_t)(1000ull * isp->offset / isp->o.image_len));
    if (isp->offset < isp->o.image_len) {
        isp->tries = 1;
        send_chunk(isp, now);
        return;
    }
    send_boot(isp);
    finish(isp, 0);
}

void kpud_isp_feed(struct kpud_isp *isp, const uint8_t *buf, size_t len, uint64_t now_ms)
{
    for (size_t i = 0; i < len; i++) {
        if (isp->state != KPUD_ISP_GREET && isp->state != KPUD_ISP_WRITE)
            return;
        if (kpud_slip_dec_push(&isp->dec, buf[i]))
            on_frame(isp, isp->dec.buf, isp->dec.len, now_ms);
    }
}

void kpud_isp_tick(struct kpud_isp *isp, uint64_t now_ms)
{
    if (isp->state == KPUD_ISP_IDLE || isp->state == KPUD_ISP_DONE || now_ms < isp->deadline)
        return;
    switch (isp->state) {
    case KPUD_ISP_RESET:
        if (isp->step < 3) {
            const struct kpud_isp_step *s = &isp->o.profile->to_isp[isp->step++];
            isp->io.set_lines(isp->io.user, s->dtr, s->rts);
            isp->deadline = now_ms + isp->o.step_ms;
        } else {
            greet(isp, now_ms);
        }
        break;
    case KPUD_ISP_GREET:
        if (isp->tries >= isp->o.greet_tries)
            finish(isp, isp->baud_changed ? -EPROTO : -ETIMEDOUT);
        else
            greet(isp, now_ms);
        break;
    case KPUD_ISP_BAUD:
        /* First tick: the host side follows the ROM. Second: greet at the new rate, once
         * the host's own switch (a control request on a USB bridge) has had time too. */
        if (!isp->baud_changed) {
            isp->baud_changed = 1;
            isp->io.set_baud(isp->io.user, isp->o.baud);
            isp->deadline = now_ms + KPUD_ISP_BAUD_SETTLE_MS;
            break;
        }
        isp->tries = 0;
        greet(isp, now_ms);
        break;
    case KPUD_ISP_WRITE:
        if (isp->tries++ >= isp->o.retries) {
            finish(isp, -ETIMEDOUT);
            return;
        }
        isp->frames_retried++;
        send_chunk(isp, now_ms);
        break;
    default:
        break;
    }
}

uint64_t kpud_isp_deadline(const struct kpud_isp *isp)
{
    return isp->state == KPUD_ISP_DONE || isp->state == KPUD_ISP_IDLE ? 0 : isp->deadline;
}

void kpud_isp_cancel(struct kpud_isp *isp)
{
    isp->state = KPUD_ISP_DONE;
    isp->deadline = 0;
}
