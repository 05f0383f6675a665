/* SPDX-License-Identifier: MIT */
/*
 * WCH CH340/CH341 bridge driver (see usb_bridge.h). Request codes, registers and the
 * divisor search are facts from Linux drivers/usb/serial/ch341.c (ch341_get_divisor,
 * ch341_set_baudrate_lcr, ch341_configure, ch341_detect_quirks, ch341_set_handshake);
 * the code is our own. Bulk data is raw, 32-byte packets, no header.
 */
#include <errno.h>
#include <string.h>

#include "usb_bridge.h"

#define CH34X_CLKRATE 48000000u /* CH341_CLKRATE */
/* CH341_CLK_DIV(ps, fact) = 2^(12 - 3*ps - fact) */
#define CH34X_CLK_DIV(ps, fact) (1u << (12u - 3u * (unsigned)(ps) - (unsigned)(fact)))
#define CH34X_BIT_NO_BATCH 0x80u     /* prescaler bit 7: deliver RX before 32 bytes collect */
#define CH34X_VERSION_NO_BATCH 0x27u /* versions above this take bit 7 (ch341.c) */
#define CH34X_VERSION_LCR 0x30u      /* from this version the LCR register exists */
#define CH34X_TAG_VERSION 1u
#define CH34X_TAG_BREAK (2u | 0x80u) /* a stall is expected on cut-down chips */

int kpud_ch34x_divisor(uint32_t baud, int limited)
{
    unsigned fact = 1, div, clk_div;
    int ps;

    if (baud < KPUD_CH34X_MIN_BPS)
        baud = KPUD_CH34X_MIN_BPS;
    if (baud > KPUD_CH34X_MAX_BPS)
        baud = KPUD_CH34X_MAX_BPS;
    /* The fastest base clock (fact 1) whose divisor stays under 512. */
    for (ps = 3; ps >= 0; ps--)
        if (baud > CH34X_CLKRATE / (CH34X_CLK_DIV(ps, 1) * 512u))
            break;
    if (ps < 0)
        return -EINVAL;
    clk_div = CH34X_CLK_DIV(ps, fact);
    div = CH34X_CLKRATE / (clk_div * baud);
    if (div < 9 || div > 255 || (limited && ps < 3)) {
        div /= 2;
        clk_div *= 2;
        fact = 0;
    }
    if (div < 2)
        return -EINVAL;
    /* Round to the nearer of div and div + 1, in 1/16 units to keep low rates exact. */
    if (16u * CH34X_CLKRATE / (clk_div * div) - 16u * baud >=
        16u * baud - 16u * CH34X_CLKRATE / (clk_div * (div + 1)))
        div++;
    /* An even divisor on the fast clock is the same rate on the slow one, which the
     * receiver tolerates better. */
    if (fact == 1 && div % 2 == 0) {
        div /= 2;
        fact = 0;
    }
    return (int)((0x100u - div) << 8 | fact << 2 | (unsigned)ps);
}

uint32_t kpud_ch34x_actual_baud(uint16_t word)
{
    unsigned ps = word & 3u, fact = (word >> 2) & 1u, div = 0x100u - (word >> 8);

    if (div < 2 || div > 256)
        return 0;
    return (CH34X_CLKRATE + CH34X_CLK_DIV(ps, fact) * div / 2) / (CH34X_CLK_DIV(ps, fact) * div);
}

uint16_t kpud_ch34x_modem_value(int dtr, int rts)
{
    unsigned ctl = (dtr ? KPUD_CH34X_BIT_DTR : 0u) | (rts ? KPUD_CH34X_BIT_RTS : 0u);
    return (uint16_t)~ctl;
}

static int ch_probe(struct kpud_bridge *b, struct kpud_usb_seq *out)
{
    struct kpud_usb_req *r;

    out->n = 0;
    r = kpud_usb_seq_add(out, KPUD_USB_VENDOR_IN, KPUD_CH34X_REQ_READ_VERSION, 0, 0);
    r->length = 2;
    r->tag = CH34X_TAG_VERSION;
    r = kpud_usb_seq_add(out, KPUD_USB_VENDOR_IN, KPUD_CH34X_REQ_READ_REG, KPUD_CH34X_REG_BREAK, 0);
    r->length = 2;
    r->tag = CH34X_TAG_BREAK;
    return 0;
}

static void ch_on_reply(struct kpud_bridge *b, const struct kpud_usb_req *req, const uint8_t *data,
                        int len)
{
    if (req->tag == CH34X_TAG_VERSION && len >= 1)
        b->version = data[0];
    else if (req->tag == CH34X_TAG_BREAK && len < 0)
        b->limited_prescaler = 1; /* ch341_detect_quirks: -EPIPE on the break register */
}

static int ch_add_baud(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    int word = kpud_ch34x_divisor(baud, b->limited_prescaler);

    if (word < 0)
        return word;
    if (b->version > CH34X_VERSION_NO_BATCH)
        word |= CH34X_BIT_NO_BATCH;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_CH34X_REQ_WRITE_REG,
                     KPUD_CH34X_REG_DIVISOR << 8 | KPUD_CH34X_REG_PRESCALER, (uint16_t)word);
    if (b->version >= CH34X_VERSION_LCR)
        kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_CH34X_REQ_WRITE_REG,
                         KPUD_CH34X_REG_LCR2 << 8 | KPUD_CH34X_REG_LCR, KPUD_CH34X_LCR_8N1);
    return 0;
}

static int ch_open(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    out->n = 0;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_CH34X_REQ_SERIAL_INIT, 0, 0);
    if (ch_add_baud(b, baud, out) < 0)
        return -EINVAL;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_CH34X_REQ_WRITE_REG,
                     KPUD_CH34X_REG_FLOW << 8 | KPUD_CH34X_REG_FLOW, 0); /* no flow control */
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_CH34X_REQ_MODEM_CTRL,
                     kpud_ch34x_modem_value(0, 0), 0);
    return 0;
}

static int ch_set_baud(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    out->n = 0;
    return ch_add_baud(b, baud, out);
}

static int ch_set_lines(struct kpud_bridge *b, int dtr, int rts, struct kpud_usb_seq *out)
{
    out->n = 0;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_CH34X_REQ_MODEM_CTRL,
                     kpud_ch34x_modem_value(dtr, rts), 0);
    return 0;
}

static size_t ch_rx(struct kpud_bridge *b, const uint8_t *in, size_t len, uint8_t *out)
{
    if (out != in)
        memmove(out, in, len);
    return len;
}

const struct kpud_bridge_ops kpud_bridge_ch34x_ops = {
    .name = "ch340",
    .probe = ch_probe,
    .on_reply = ch_on_reply,
    .open = ch_open,
    .set_baud = ch_set_baud,
    .set_lines = ch_set_lines,
    .rx = ch_rx,
};
