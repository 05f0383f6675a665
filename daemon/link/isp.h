/* SPDX-License-Identifier: MIT */
/*
 * K210 ROM ISP client: reset a board into its boot ROM with the board's DTR/RTS sequence,
 * greet the ROM, write an image to SRAM in 1 KiB frames and jump to it. Also the board
 * reset profiles (kflash's dan, kd233, goE, goD) the transports use for plain resets.
 *
 * Wire format (facts from kendryte/kflash.py@5783d8d8:kflash.py, MIT; shared/research/
 * usb-bridges.md §1.6): SLIP frames (0xC0 ... 0xC0; 0xC0 -> DB DC, 0xDB -> DB DD) holding
 * u16 op, u16 reason (0), u32 CRC-32 of the payload, payload, little-endian. The ROM
 * answers with a SLIP frame whose byte 0 is the op and byte 1 the status (0xE0 OK).
 *
 * The client is a pure state machine: bytes in (kpud_isp_feed), time in (kpud_isp_tick),
 * bytes and DTR/RTS changes out through struct kpud_isp_io. It does no I/O and has no
 * timers of its own, so the transport drives it from its loop and the unit tests drive
 * it against a simulated ROM.
 */
#ifndef KPUD_ISP_H
#define KPUD_ISP_H

#include <stddef.h>
#include <stdint.h>

#define KPUD_ISP_OP_ECHO 0xC1u
#define KPUD_ISP_OP_NOP 0xC2u
#define KPUD_ISP_OP_MEMORY_WRITE 0xC3u
#define KPUD_ISP_OP_MEMORY_READ 0xC4u
#define KPUD_ISP_OP_MEMORY_BOOT 0xC5u
#define KPUD_ISP_OP_DEBUG_INFO 0xD1u
#define KPUD_ISP_OP_CHANGE_BAUD 0xC6u
#define KPUD_ISP_STATUS_OK 0xE0u
#define KPUD_ISP_STATUS_BAD_DATA_LEN 0xE1u
#define KPUD_ISP_STATUS_BAD_DATA_CHECKSUM 0xE2u
#define KPUD_ISP_STATUS_INVALID_COMMAND 0xE3u
#define KPUD_ISP_SRAM_BASE 0x80000000u /* K210 SRAM, where the ROM boots images */
#define KPUD_ISP_CHUNK 1024u           /* kflash flash_dataframe DATAFRAME_SIZE */
#define KPUD_ISP_HEADER 8u             /* op, reason, crc32 */
#define KPUD_ISP_FRAME_MAX (KPUD_ISP_HEADER + 8u + KPUD_ISP_CHUNK)
#define KPUD_SLIP_END 0xC0u
#define KPUD_SLIP_ESC 0xDBu
#define KPUD_SLIP_ESC_END 0xDCu
#define KPUD_SLIP_ESC_ESC 0xDDu

/* ---- board reset profiles ---- */

/* One DTR/RTS step: 1 = asserted (pyserial setDTR(True): the pin driven low). */
struct kpud_isp_step {
    uint8_t dtr, rts;
};

struct kpud_isp_profile {
    const char *name;               /* kflash -B name */
    const char *boards;             /* which boards use it */
    struct kpud_isp_step to_isp[3]; /* into the boot ROM (IO16 low while RST released) */
    struct kpud_isp_step to_app[3]; /* plain reset into the flashed application */
};

/* kpud_isp_profile_find - the profile called name ("dan", "kd233", "goE", "goD"), NULL. */
const struct kpud_isp_profile *kpud_isp_profile_find(const char *name);

/* kpud_isp_profile_at - profile i (0..), NULL past the end: the auto-try order (dan,
 * kd233, goD, goE). */
const struct kpud_isp_profile *kpud_isp_profile_at(unsigned i);

/* ---- framing ---- */

/* kpud_isp_crc32 - the CRC-32 zlib's crc32() computes (reflected 0xEDB88320). */
uint32_t kpud_isp_crc32(const uint8_t *buf, size_t len);

/*
 * kpud_slip_encode - frame len bytes: END, escaped bytes, END. Returns the framed length,
 * or 0 if it does not fit cap (2 * len + 2 always fits).
 */
size_t kpud_slip_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* An incremental SLIP decoder. */
struct kpud_slip_dec {
    uint8_t buf[KPUD_ISP_FRAME_MAX];
    size_t len;
    int in_frame;    /* an END has been seen */
    int esc;         /* the last byte was ESC */
    int overflow;    /* the current frame is too long: dropped at its END */
    int delivered;   /* buf holds a frame returned by the last push */
    uint64_t errors; /* bad escapes, overlong frames */
};

/* kpud_slip_dec_reset - start empty, outside any frame. */
void kpud_slip_dec_reset(struct kpud_slip_dec *d);

/*
 * kpud_slip_dec_push - one byte. Returns 1 when it completed a non-empty frame (in
 * d->buf, d->len bytes; valid until the next push), else 0. Noise outside frames and
 * broken frames are skipped (counted in errors).
 */
int kpud_slip_dec_push(struct kpud_slip_dec *d, uint8_t byte);

/*
 * kpud_isp_request - an unframed request: op, reason 0, CRC-32 of payload, payload.
 * Returns its length or 0 if cap is too small.
 */
size_t kpud_isp_request(uint16_t op, const uint8_t *payload, size_t len, uint8_t *out, size_t cap);

/*
 * kpud_isp_parse_request - split an unframed request (for test doubles): op, payload and
 * its length. Returns 0, -EBADMSG if shorter than the header, -EILSEQ on a CRC mismatch.
 */
int kpud_isp_parse_request(const uint8_t *f, size_t len, uint16_t *op, const uint8_t **payload,
                           size_t *plen);

/* ---- the client ---- */

struct kpud_isp_io {
    /* Send bytes to the board (the transport queues them). */
    void (*write)(void *user, const uint8_t *buf, size_t len);
    /* Set DTR/RTS. */
    void (*set_lines)(void *user, int dtr, int rts);
    /* Switch the host side of the link to baud (after CHANGE_BAUD). NULL: no baud change. */
    void (*set_baud)(void *user, uint32_t baud);
    /* Progress of the image upload, 0..1000. May be NULL. */
    void (*progress)(void *user, uint32_t permille);
    /* Finished: 0 when the image was written and the boot command sent, or a negative
     * errno (-ETIMEDOUT: the ROM never answered; -EIO: it kept rejecting a frame; -EPROTO:
     * no answer at the rate CHANGE_BAUD asked for). */
    void (*done)(void *user, int status);
    void *user;
};

struct kpud_isp_opts {
    const struct kpud_isp_profile *profile; /* reset sequence; NULL = board already in ISP */
    const uint8_t *image;                   /* not copied: must outlive the run */
    size_t image_len;
    uint32_t address;     /* 0 = KPUD_ISP_SRAM_BASE */
    uint32_t step_ms;     /* 0 = 100: hold of each DTR/RTS step (kflash sleeps 0.1 s) */
    uint32_t timeout_ms;  /* 0 = 500: wait for one answer */
    uint32_t greet_tries; /* 0 = 10 */
    uint32_t retries;     /* 0 = 5: per memory frame */
    uint32_t baud;        /* 0: stay at 115200; else ask the ROM for this rate after the first
                           * greeting (CHANGE_BAUD) and greet again at it */
};

/* The ROM's stage-0 rate is off by its clock: kflash sends rate * 38.6 / 38 in CHANGE_BAUD
 * (kflash.py change_baudrate_stage0, payload u32 0, u32 4, u32 value; usb-bridges.md §1.6). */
#define KPUD_ISP_ROM_BAUD_VALUE(baud) ((uint32_t)((uint64_t)(baud)*386u / 380u))
#define KPUD_ISP_BAUD_SETTLE_MS 50u /* kflash sleeps 0.05 s before switching its port */

enum kpud_isp_state {
    KPUD_ISP_IDLE = 0,
    KPUD_ISP_RESET,
    KPUD_ISP_GREET,
    KPUD_ISP_BAUD, /* CHANGE_BAUD sent: switch the host side after the settle time */
    KPUD_ISP_WRITE,
    KPUD_ISP_DONE,
};

struct kpud_isp {
    struct kpud_isp_opts o;
    struct kpud_isp_io io;
    enum kpud_isp_state state;
    unsigned step;     /* reset step */
    uint64_t deadline; /* ms: when tick must act */
    unsigned tries;    /* attempts of the current request */
    size_t offset;     /* image bytes acknowledged */
    struct kpud_slip_dec dec;
    uint64_t frames_sent, frames_retried;
    int baud_changed; /* the link runs at o.baud now */
};

/*
 * kpud_isp_start - begin a run at time now_ms (any monotonic ms clock). o and io are
 * copied; o->image must stay valid until done. Returns 0 or -EINVAL (no image, image
 * larger than 6 MiB of general SRAM).
 */
int kpud_isp_start(struct kpud_isp *isp, const struct kpud_isp_opts *o,
                   const struct kpud_isp_io *io, uint64_t now_ms);

/* kpud_isp_feed - bytes received from the board. */
void kpud_isp_feed(struct kpud_isp *isp, const uint8_t *buf, size_t len, uint64_t now_ms);

/* kpud_isp_tick - let time pass; call at kpud_isp_deadline() or later. */
void kpud_isp_tick(struct kpud_isp *isp, uint64_t now_ms);

/* kpud_isp_deadline - when kpud_isp_tick must be called next (ms), 0 when finished. */
uint64_t kpud_isp_deadline(const struct kpud_isp *isp);

/* kpud_isp_cancel - stop without calling done. */
void kpud_isp_cancel(struct kpud_isp *isp);

#endif
