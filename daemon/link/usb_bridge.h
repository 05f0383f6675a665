/* SPDX-License-Identifier: MIT */
/*
 * USB-UART bridge drivers for the usb transport: what each bridge chip (WCH CH34x, FTDI
 * FT232 / FT2232 and the CH552/GD32/STM32 firmwares that emulate an FT2232, optionally
 * Silicon Labs CP210x) needs on the wire. A driver is a small vtable that never touches
 * libusb: it turns "open at this baud", "set DTR/RTS", "change baud" into lists of USB
 * control requests, and filters received bulk data (the FTDI status headers). The
 * transport runs the lists with asynchronous libusb transfers; the unit tests compare
 * them with vectors derived from the Linux kernel's drivers.
 *
 * Sources (facts only, see shared/research/usb-bridges.md):
 *   Linux drivers/usb/serial/ch341.c (request codes, registers, ch341_get_divisor,
 *     ch341_set_baudrate_lcr, ch341_set_handshake), Kingxukai/linux@0291023e:ch341.c;
 *   Linux drivers/usb/serial/ftdi_sio.c and ftdi_sio.h (SIO requests, update_mctrl,
 *     ftdi_232bm_baud_base_to_divisor, ftdi_2232h_baud_base_to_divisor, change_speed,
 *     ftdi_process_read_urb);
 *   Linux drivers/usb/serial/cp210x.c (interface-recipient requests).
 */
#ifndef KPUD_USB_BRIDGE_H
#define KPUD_USB_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

/* bmRequestType values (USB 2.0 §9.3.1): vendor request to the device or interface. */
#define KPUD_USB_VENDOR_OUT 0x40u    /* host-to-device | vendor | device */
#define KPUD_USB_VENDOR_IN 0xC0u     /* device-to-host | vendor | device */
#define KPUD_USB_VENDOR_IF_OUT 0x41u /* host-to-device | vendor | interface */
#define KPUD_USB_VENDOR_IF_IN 0xC1u  /* device-to-host | vendor | interface */
#define KPUD_USB_REQ_DATA_MAX 16u    /* largest data stage a driver sends or reads */
#define KPUD_USB_SEQ_MAX 12u         /* longest request list a driver produces */

/* One control request. For IN requests length is the number of bytes to read. */
struct kpud_usb_req {
    uint8_t request_type;                /* bmRequestType */
    uint8_t request;                     /* bRequest */
    uint16_t value;                      /* wValue */
    uint16_t index;                      /* wIndex */
    uint16_t length;                     /* wLength */
    uint8_t data[KPUD_USB_REQ_DATA_MAX]; /* OUT data stage */
    uint8_t tag;                         /* driver's own mark, echoed to on_reply */
};

/* A list of requests, run in order; the first failure aborts the list. */
struct kpud_usb_seq {
    struct kpud_usb_req req[KPUD_USB_SEQ_MAX];
    unsigned n;
};

/* Which chip a VID/PID (and bcdDevice) stands for. */
enum kpud_bridge_chip {
    KPUD_BRIDGE_NONE = 0,
    KPUD_BRIDGE_CH34X,   /* 1a86:7523 and relatives */
    KPUD_BRIDGE_FT232,   /* 0403:6001, FT232BM/R: 48 MHz base, one port */
    KPUD_BRIDGE_FT2232C, /* 0403:6010 with bcdDevice 0x0500: two ports, 48 MHz base */
    KPUD_BRIDGE_FT2232H, /* 0403:6010 with bcdDevice 0x0700: two ports, 120 MHz base */
    KPUD_BRIDGE_CP210X,  /* 10c4:ea60 */
};

/* A bridge instance: the chip, the port on it and what the driver learned. */
struct kpud_bridge {
    const struct kpud_bridge_ops *ops;
    enum kpud_bridge_chip chip;
    uint8_t interface;     /* USB interface number of the UART */
    uint8_t channel;       /* FTDI wIndex port: 0 single-port, 1 = A, 2 = B */
    uint16_t max_packet;   /* bulk IN wMaxPacketSize (FTDI header stride) */
    uint8_t version;       /* CH34x chip version from READ_VERSION, 0 = unknown */
    int limited_prescaler; /* CH34x quirk: break register stalls (ch341_detect_quirks) */
    uint8_t modem_status;  /* last modem-status byte seen (FTDI header byte 0) */
    uint8_t line_status;   /* last line-status byte (FTDI header byte 1) */
    uint64_t line_errors;  /* FTDI packets flagged with overrun/parity/framing/break */
};

struct kpud_bridge_ops {
    const char *name; /* "ch340", "ft232", "ft2232", "cp210x" */

    /*
     * probe - requests that read what the open sequence depends on (chip version,
     * quirks). Replies are handed to on_reply in order; a failed request with
     * tag bit 0x80 set is expected on some chips and is passed to on_reply with
     * len -1 instead of aborting. Returns 0.
     */
    int (*probe)(struct kpud_bridge *b, struct kpud_usb_seq *out);

    /* on_reply - the answer to a probe request (len < 0: the request failed). */
    void (*on_reply)(struct kpud_bridge *b, const struct kpud_usb_req *req, const uint8_t *data,
                     int len);

    /*
     * open - requests that configure the port: 8N1 at baud, no flow control, both DTR and
     * RTS released (a K210 board's reset and boot pins stay idle). Returns 0 or -EINVAL
     * for a baud the chip cannot make.
     */
    int (*open)(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out);

    /* set_baud - requests that change the rate only. Returns 0 or -EINVAL. */
    int (*set_baud)(struct kpud_bridge *b, uint32_t baud, struct kpud_usb_seq *out);

    /* set_lines - requests that set DTR and RTS (1 = asserted, as pyserial's setDTR(True),
     * i.e. the pin driven low). Returns 0. */
    int (*set_lines)(struct kpud_bridge *b, int dtr, int rts, struct kpud_usb_seq *out);

    /*
     * rx - turn one completed bulk IN transfer (len bytes) into payload bytes in out
     * (at least len bytes of room; may alias in). Returns the payload length.
     */
    size_t (*rx)(struct kpud_bridge *b, const uint8_t *in, size_t len, uint8_t *out);
};

extern const struct kpud_bridge_ops kpud_bridge_ch34x_ops;
extern const struct kpud_bridge_ops kpud_bridge_ftdi_ops;
extern const struct kpud_bridge_ops kpud_bridge_cp210x_ops;

/* One known bridge: the VID/PID table discovery uses. */
struct kpud_bridge_id {
    uint16_t vid, pid;
    enum kpud_bridge_chip chip;
    uint8_t ports; /* UART interfaces on the device */
    const char *name;
};

/*
 * kpud_bridge_lookup - the table entry for vid:pid, or NULL. For 0403:6010 the chip is
 * refined by kpud_bridge_init from bcdDevice.
 */
const struct kpud_bridge_id *kpud_bridge_lookup(uint16_t vid, uint16_t pid);

/*
 * kpud_bridge_init - set up b for a device of table entry id, release bcd_device, UART on
 * USB interface iface with bulk IN packets of max_packet bytes. Returns 0 or -EINVAL.
 */
int kpud_bridge_init(struct kpud_bridge *b, const struct kpud_bridge_id *id, uint16_t bcd_device,
                     uint8_t iface, uint16_t max_packet);

/*
 * kpud_usb_seq_add - append a request (no data stage) to s and return it for the caller
 * to add length/data/tag. s must have room (the drivers' lists are fixed and short).
 */
struct kpud_usb_req *kpud_usb_seq_add(struct kpud_usb_seq *s, uint8_t type, uint8_t req,
                                      uint16_t value, uint16_t index);

/* kpud_bridge_chip_name - "ch340", "ft232", "ft2232c", "ft2232h", "cp210x", "". */
const char *kpud_bridge_chip_name(enum kpud_bridge_chip chip);

/* ---- pure encodings (exposed for the unit tests) ---- */

#define KPUD_CH34X_REQ_READ_VERSION 0x5Fu /* ch341.c CH341_REQ_READ_VERSION */
#define KPUD_CH34X_REQ_WRITE_REG 0x9Au    /* CH341_REQ_WRITE_REG */
#define KPUD_CH34X_REQ_READ_REG 0x95u     /* CH341_REQ_READ_REG */
#define KPUD_CH34X_REQ_SERIAL_INIT 0xA1u  /* CH341_REQ_SERIAL_INIT */
#define KPUD_CH34X_REQ_MODEM_CTRL 0xA4u   /* CH341_REQ_MODEM_CTRL */
#define KPUD_CH34X_REG_BREAK 0x05u
#define KPUD_CH34X_REG_PRESCALER 0x12u
#define KPUD_CH34X_REG_DIVISOR 0x13u
#define KPUD_CH34X_REG_LCR 0x18u
#define KPUD_CH34X_REG_LCR2 0x25u
#define KPUD_CH34X_REG_FLOW 0x27u
#define KPUD_CH34X_LCR_8N1 0xC3u /* ENABLE_RX 0x80 | ENABLE_TX 0x40 | CS8 0x03 */
#define KPUD_CH34X_BIT_DTR 0x20u /* CH341_BIT_DTR */
#define KPUD_CH34X_BIT_RTS 0x40u /* CH341_BIT_RTS */
#define KPUD_CH34X_MIN_BPS 46u
#define KPUD_CH34X_MAX_BPS 3000000u

/*
 * kpud_ch34x_divisor - the prescaler/divisor register word for baud (clamped to
 * 46..3,000,000), as ch341_get_divisor computes it: (0x100 - div) << 8 | fact << 2 | ps.
 * limited selects the kernel's limited-prescaler quirk. Bit 7 (no 32-byte RX batching)
 * is not included. Returns the word (>= 0) or -EINVAL.
 */
int kpud_ch34x_divisor(uint32_t baud, int limited);

/* kpud_ch34x_actual_baud - the rate a register word gives (bit 7 ignored), 0 if invalid. */
uint32_t kpud_ch34x_actual_baud(uint16_t word);

/* kpud_ch34x_modem_value - MODEM_CTRL wValue: the complement of the DTR/RTS bits. */
uint16_t kpud_ch34x_modem_value(int dtr, int rts);

#define KPUD_FTDI_SIO_RESET 0x00u
#define KPUD_FTDI_SIO_MODEM_CTRL 0x01u
#define KPUD_FTDI_SIO_SET_FLOW_CTRL 0x02u
#define KPUD_FTDI_SIO_SET_BAUDRATE 0x03u
#define KPUD_FTDI_SIO_SET_DATA 0x04u
#define KPUD_FTDI_SIO_GET_MODEM_STATUS 0x05u
#define KPUD_FTDI_SIO_SET_LATENCY 0x09u
#define KPUD_FTDI_SIO_RESET_SIO 0u
#define KPUD_FTDI_SIO_PURGE_RX 1u
#define KPUD_FTDI_SIO_PURGE_TX 2u
#define KPUD_FTDI_DATA_8N1 0x0008u /* 8 data bits, no parity (bits 8-10 = 0), 1 stop */
#define KPUD_FTDI_LATENCY_MS 2u    /* default 16 ms is too lazy for request/response */
#define KPUD_FTDI_HEADER 2u        /* modem + line status at the start of every packet */

/*
 * kpud_ftdi_divisor - the encoded divisor for baud: FT232BM/R/2232C from a 48 MHz clock
 * (ftdi_232bm_baud_base_to_divisor), H-series from 120 MHz with bit 17 set for
 * 1200..12,000,000 baud (ftdi_2232h_baud_base_to_divisor), the BM rule below 1200. Returns
 * 0 and sets *enc, or -EINVAL for a rate the chip cannot make.
 */
int kpud_ftdi_divisor(uint32_t baud, int hseries, uint32_t *enc);

/* kpud_ftdi_actual_baud - the rate an encoded divisor gives. */
uint32_t kpud_ftdi_actual_baud(uint32_t enc, int hseries);

/*
 * kpud_ftdi_baud_request - SET_BAUDRATE wValue/wIndex for enc on channel (0 for a
 * single-port chip: wIndex = enc >> 16; else wIndex = (enc >> 16) << 8 | channel), as
 * ftdi_sio.c change_speed does.
 */
void kpud_ftdi_baud_request(uint32_t enc, uint8_t channel, uint16_t *value, uint16_t *index);

/* kpud_ftdi_modem_value - MODEM_CTRL wValue setting both lines: 0x0300 | rts<<1 | dtr. */
uint16_t kpud_ftdi_modem_value(int dtr, int rts);

/*
 * kpud_ftdi_strip - remove the 2-byte status header from each max_packet-byte packet of
 * a bulk IN transfer of len bytes, writing the payload to out (may alias in). The last
 * header seen goes to *modem and *line (may be NULL). A packet shorter than the header
 * carries nothing. Returns the payload length.
 */
size_t kpud_ftdi_strip(const uint8_t *in, size_t len, size_t max_packet, uint8_t *out,
                       uint8_t *modem, uint8_t *line);

#endif
