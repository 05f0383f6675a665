/* SPDX-License-Identifier: MIT */
/*
 * FTDI FT232BM/R and FT2232C/H bridge driver, also what the CH552/GD32/STM32 firmwares on
 * Sipeed's FT2232-style boards emulate (see usb_bridge.h). Facts from Linux
 * drivers/usb/serial/ftdi_sio.[ch]: the SIO requests, update_mctrl's DTR/RTS words,
 * ftdi_232bm_baud_base_to_divisor / ftdi_2232h_baud_base_to_divisor, get_ftdi_divisor's
 * chip rules, change_speed's wIndex layout and ftdi_process_read_urb's per-packet
 * status header. The code is our own.
 */
#include <errno.h>
#include <string.h>

#include "usb_bridge.h"

#define FTDI_BM_BASE 48000000u  /* ftdi_232bm_baud_to_divisor base */
#define FTDI_H_BASE 120000000u  /* ftdi_2232h_baud_to_divisor base */
#define FTDI_H_CLK_BIT 0x20000u /* "turn off the divide by 2.5": 12 MHz reference */
#define FTDI_DIV3_MAX 0x1FFFFu  /* divisor in eighths is 17 bits (GENMASK(16, 0)) */
#define FTDI_BM_MAX_BAUD 3000000u
#define FTDI_H_MIN_BAUD 1200u
#define FTDI_H_MAX_BAUD 12000000u
#define FTDI_LINE_ERRORS 0x1Eu /* line status OE 0x02 | PE 0x04 | FE 0x08 | BI 0x10 */

/* Fraction codes of the eighths 0..7 (ftdi_sio.c divfrac). */
static const uint8_t divfrac[8] = {0, 3, 2, 4, 1, 5, 6, 7};
/* And back (ftdi_232bm_divisor_base_to_baud divfrac_inv). */
static const uint8_t divfrac_inv[8] = {0, 4, 2, 1, 3, 5, 6, 7};

static uint32_t encode_eighths(uint32_t d3)
{
    uint32_t enc;

    if (d3 > FTDI_DIV3_MAX)
        d3 = FTDI_DIV3_MAX;
    enc = d3 >> 3 | (uint32_t)divfrac[d3 & 7u] << 14;
    /* The two fastest divisors have their own codes: 1.0 -> 0, 1.5 -> 1. */
    if (enc == 1)
        enc = 0;
    else if (enc == 0x4001)
        enc = 1;
    return enc;
}

int kpud_ftdi_divisor(uint32_t baud, int hseries, uint32_t *enc)
{
    if (baud == 0)
        return -EINVAL;
    if (hseries && baud >= FTDI_H_MIN_BAUD) {
        if (baud > FTDI_H_MAX_BAUD)
            return -EINVAL;
        /* 10-bit sampling: eighths = round(8 * 120 MHz / (10 * baud)) */
        *enc = encode_eighths((uint32_t)((8ull * FTDI_H_BASE + 5ull * baud) / (10ull * baud))) |
               FTDI_H_CLK_BIT;
        return 0;
    }
    if (baud > FTDI_BM_MAX_BAUD)
        return -EINVAL;
    /* eighths = round(48 MHz / (2 * baud)) */
    *enc = encode_eighths((FTDI_BM_BASE + baud) / (2u * baud));
    return 0;
}

uint32_t kpud_ftdi_actual_baud(uint32_t enc, int hseries)
{
    int h = hseries && (enc & FTDI_H_CLK_BIT);
    uint32_t d = enc & FTDI_DIV3_MAX, d3;

    if (d == 0)
        d = 1;
    else if (d == 1)
        d = 0x4001;
    d3 = (d & 0x3FFFu) << 3 | divfrac_inv[(d >> 14) & 7u];
    if (h)
        return (uint32_t)((8ull * FTDI_H_BASE + 5ull * d3) / (10ull * d3));
    return (FTDI_BM_BASE + d3) / (2u * d3);
}

void kpud_ftdi_baud_request(uint32_t enc, uint8_t channel, uint16_t *value, uint16_t *index)
{
    *value = (uint16_t)enc;
    *index = (uint16_t)(enc >> 16);
    if (channel)
        *index = (uint16_t)(*index << 8 | channel);
}

uint16_t kpud_ftdi_modem_value(int dtr, int rts)
{
    /* FTDI_SIO_SET_DTR_HIGH = 1 | 1 << 8, RTS_HIGH = 2 | 2 << 8; the high byte says which
     * lines the low byte updates. */
    return (uint16_t)(0x0300u | (dtr ? 1u : 0u) | (rts ? 2u : 0u));
}

size_t kpud_ftdi_strip(const uint8_t *in, size_t len, size_t max_packet, uint8_t *out,
                       uint8_t *modem, uint8_t *line)
{
    size_t n = 0;

    if (max_packet <= KPUD_FTDI_HEADER)
        return 0;
    for (size_t off = 0; off < len; off += max_packet) {
        size_t plen = len - off < max_packet ? len - off : max_packet;
        if (plen < KPUD_FTDI_HEADER)
            break; /* malformed: ftdi_process_packet drops it */
        if (modem)
            *modem = in[off];
        if (line)
            *line = in[off + 1];
        /* out may alias in: the write position never passes the read position. */
        memmove(out + n, in + off + KPUD_FTDI_HEADER, plen - KPUD_FTDI_HEADER);
        n += plen - KPUD_FTDI_HEADER;
    }
    return n;
}

static int ft_probe(struct kpud_bridge *b, struct kpud_usb_seq *out)
{
    out->n = 0; /* the chip type comes from bcdDevice */
    return 0;
}

static void ft_on_reply(struct kpud_bridge *b, const struct kpud_usb_req *req, const uint8_t *data,
                        int len)
{
}

static int hseries(const struct kpud_bridge *b)
{
    return b->chip == KPUD_BRIDGE_FT2232H;
}

static int ft_add_baud(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    uint32_t enc;
    uint16_t value, index;

    if (kpud_ftdi_divisor(baud, hseries(b), &enc) < 0)
        return -EINVAL;
    kpud_ftdi_baud_request(enc, b->channel, &value, &index);
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_SET_BAUDRATE, value, index);
    return 0;
}

static int ft_open(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    out->n = 0;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_RESET, KPUD_FTDI_SIO_RESET_SIO,
                     b->channel);
    if (ft_add_baud(b, baud, out) < 0)
        return -EINVAL;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_SET_DATA, KPUD_FTDI_DATA_8N1,
                     b->channel);
    /* Flow control "none": wIndex high byte 0. */
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_SET_FLOW_CTRL, 0, b->channel);
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_MODEM_CTRL,
                     kpud_ftdi_modem_value(0, 0), b->channel);
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_SET_LATENCY, KPUD_FTDI_LATENCY_MS,
                     b->channel);
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_RESET, KPUD_FTDI_SIO_PURGE_RX,
                     b->channel);
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_RESET, KPUD_FTDI_SIO_PURGE_TX,
                     b->channel);
    return 0;
}

static int ft_set_baud(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    out->n = 0;
    return ft_add_baud(b, baud, out);
}

static int ft_set_lines(struct kpud_bridge *b, int dtr, int rts, struct kpud_usb_seq *out)
{
    out->n = 0;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_OUT, KPUD_FTDI_SIO_MODEM_CTRL,
                     kpud_ftdi_modem_value(dtr, rts), b->channel);
    return 0;
}

static size_t ft_rx(struct kpud_bridge *b, const uint8_t *in, size_t len, uint8_t *out)
{
    size_t n = 0;

    /* Per packet, to count line errors on each header. */
    for (size_t off = 0; off < len; off += b->max_packet) {
        size_t plen = len - off < b->max_packet ? len - off : b->max_packet;
        uint8_t line = 0;
        n += kpud_ftdi_strip(in + off, plen, b->max_packet, out + n, &b->modem_status, &line);
        if (plen >= KPUD_FTDI_HEADER) {
            b->line_status = line;
            if (line & FTDI_LINE_ERRORS)
                b->line_errors++;
        }
    }
    return n;
}

const struct kpud_bridge_ops kpud_bridge_ftdi_ops = {
    .name = "ftdi",
    .probe = ft_probe,
    .on_reply = ft_on_reply,
    .open = ft_open,
    .set_baud = ft_set_baud,
    .set_lines = ft_set_lines,
    .rx = ft_rx,
};
