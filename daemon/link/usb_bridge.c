/* SPDX-License-Identifier: MIT */
/*
 * The bridge table (which VID/PID is which chip) and the CP210x driver, the smallest of
 * the three (see usb_bridge.h). CH34x lives in usb_ch34x.c, FTDI in usb_ftdi.c.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "usb_bridge.h"

/*
 * VID/PIDs: ch341.c id_table (WCH), ftdi_sio.c (FTDI_8U232AM_PID 0x6001, FTDI_8U2232C_PID
 * 0x6010), cp210x.c (10c4:ea60). Sipeed boards: CH340 on Maix Dock / old Maix Bit, an
 * FT2232 emulation on Maix Go, Maixduino, new Bit, Amigo, Cube (usb-bridges.md §1.4).
 */
static const struct kpud_bridge_id bridge_ids[] = {
    {0x1a86, 0x7523, KPUD_BRIDGE_CH34X, 1, "ch340"},
    {0x1a86, 0x5523, KPUD_BRIDGE_CH34X, 1, "ch341"},
    {0x1a86, 0x7522, KPUD_BRIDGE_CH34X, 1, "ch340k"},
    {0x0403, 0x6001, KPUD_BRIDGE_FT232, 1, "ft232"},
    {0x0403, 0x6010, KPUD_BRIDGE_FT2232C, 2, "ft2232"},
    {0x10c4, 0xea60, KPUD_BRIDGE_CP210X, 1, "cp210x"},
};

const struct kpud_bridge_id *kpud_bridge_lookup(uint16_t vid, uint16_t pid)
{
    for (size_t i = 0; i < sizeof(bridge_ids) / sizeof(bridge_ids[0]); i++)
        if (bridge_ids[i].vid == vid && bridge_ids[i].pid == pid)
            return &bridge_ids[i];
    return NULL;
}

const char *kpud_bridge_chip_name(enum kpud_bridge_chip chip)
{
    switch (chip) {
    case KPUD_BRIDGE_CH34X:
        return "ch340";
    case KPUD_BRIDGE_FT232:
        return "ft232";
    case KPUD_BRIDGE_FT2232C:
        return "ft2232c";
    case KPUD_BRIDGE_FT2232H:
        return "ft2232h";
    case KPUD_BRIDGE_CP210X:
        return "cp210x";
    default:
        return "";
    }
}

/* ftdi_sio.c ftdi_determine_type: bcdDevice 0x0700 FT2232H (0x0800 FT4232H, 0x0900
 * FT232H); 0x0500 FT2232C. */
#define FTDI_BCD_2232H 0x0700u

int kpud_bridge_init(struct kpud_bridge *b, const struct kpud_bridge_id *id, uint16_t bcd_device,
                     uint8_t iface, uint16_t max_packet)
{
    if (!b || !id || iface >= id->ports)
        return -EINVAL;
    memset(b, 0, sizeof(*b));
    b->chip = id->chip;
    b->interface = iface;
    b->max_packet = max_packet ? max_packet : 64;
    switch (id->chip) {
    case KPUD_BRIDGE_CH34X:
        b->ops = &kpud_bridge_ch34x_ops;
        break;
    case KPUD_BRIDGE_FT232:
        b->ops = &kpud_bridge_ftdi_ops;
        b->channel = 0; /* single port: ftdi_sio.c leaves priv->channel 0 */
        break;
    case KPUD_BRIDGE_FT2232C:
    case KPUD_BRIDGE_FT2232H:
        b->ops = &kpud_bridge_ftdi_ops;
        if (bcd_device >= FTDI_BCD_2232H)
            b->chip = KPUD_BRIDGE_FT2232H;
        b->channel = (uint8_t)(iface + 1); /* CHANNEL_A = 1, CHANNEL_B = 2 */
        break;
    case KPUD_BRIDGE_CP210X:
        b->ops = &kpud_bridge_cp210x_ops;
        break;
    default:
        return -EINVAL;
    }
    return 0;
}

/* ---- CP210x (cp210x.c): interface-recipient requests, wIndex = interface ---- */

#define CP210X_IFC_ENABLE 0x00u
#define CP210X_SET_LINE_CTL 0x03u
#define CP210X_SET_MHS 0x07u
#define CP210X_SET_BAUDRATE 0x1Eu
#define CP210X_LINE_8N1 0x0800u  /* bits 8-15 data bits = 8, parity 0, stop 0 */
#define CP210X_MHS_MASKS 0x0300u /* DTR_MASK 0x0100 | RTS_MASK 0x0200 */

struct kpud_usb_req *kpud_usb_seq_add(struct kpud_usb_seq *s, uint8_t type, uint8_t req,
                                      uint16_t value, uint16_t index)
{
    struct kpud_usb_req *r;

    assert(s->n < KPUD_USB_SEQ_MAX); /* the drivers' lists are short and fixed */
    r = &s->req[s->n++];
    memset(r, 0, sizeof(*r));
    r->request_type = type;
    r->request = req;
    r->value = value;
    r->index = index;
    return r;
}

static int cp_probe(struct kpud_bridge *b, struct kpud_usb_seq *out)
{
    out->n = 0;
    return 0;
}

static void cp_on_reply(struct kpud_bridge *b, const struct kpud_usb_req *req, const uint8_t *data,
                        int len)
{
}

static int cp_add_baud(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    struct kpud_usb_req *r;

    if (baud < 300 || baud > 3000000)
        return -EINVAL;
    r = kpud_usb_seq_add(out, KPUD_USB_VENDOR_IF_OUT, CP210X_SET_BAUDRATE, 0, b->interface);
    r->length = 4;
    r->data[0] = (uint8_t)baud;
    r->data[1] = (uint8_t)(baud >> 8);
    r->data[2] = (uint8_t)(baud >> 16);
    r->data[3] = (uint8_t)(baud >> 24);
    return 0;
}

static int cp_set_baud(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    out->n = 0;
    return cp_add_baud(b, baud, out);
}

static void cp_add_lines(struct kpud_bridge *b, int dtr, int rts, struct kpud_usb_seq *out)
{
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_IF_OUT, CP210X_SET_MHS,
                     (uint16_t)(CP210X_MHS_MASKS | (dtr ? 1u : 0u) | (rts ? 2u : 0u)),
                     b->interface);
}

static int cp_set_lines(struct kpud_bridge *b, int dtr, int rts, struct kpud_usb_seq *out)
{
    out->n = 0;
    cp_add_lines(b, dtr, rts, out);
    return 0;
}

static int cp_open(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out)
{
    out->n = 0;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_IF_OUT, CP210X_IFC_ENABLE, 1, b->interface);
    if (cp_add_baud(b, baud, out) < 0)
        return -EINVAL;
    kpud_usb_seq_add(out, KPUD_USB_VENDOR_IF_OUT, CP210X_SET_LINE_CTL, CP210X_LINE_8N1,
                     b->interface);
    cp_add_lines(b, 0, 0, out);
    return 0;
}

static size_t cp_rx(struct kpud_bridge *b, const uint8_t *in, size_t len, uint8_t *out)
{
    if (out != in)
        memmove(out, in, len);
    return len;
}

const struct kpud_bridge_ops kpud_bridge_cp210x_ops = {
    .name = "cp210x",
    .probe = cp_probe,
    .on_reply = cp_on_reply,
    .open = cp_open,
    .set_baud = cp_set_baud,
    .set_lines = cp_set_lines,
    .rx = cp_rx,
};
