/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of the K210 camera path: the OV2640 and GC0328 QVGA RGB565 register
 * tables and the player that sends them over SCCB, the SCCB and XCLK divisor arithmetic,
 * the DVP capture plan (frame geometry, dvp_cfg word, plane addresses) and the capture
 * buffer ring that the frame interrupt and kfa_hal_camera_get/release share. No register
 * access: tests/unit/check_k210_camera.c runs all of it on the host; k210_dvp.c and
 * k210_sccb.c put it on the hardware.
 */
#ifndef KFA_K210_CAMERA_PURE_H
#define KFA_K210_CAMERA_PURE_H

#include <stddef.h>
#include <stdint.h>

/* ---- sensor register tables ------------------------------------------------------ */

/*
 * One step of a sensor table. KFA_SCCB_W is a plain register write: within one register
 * bank a table writes each such register at most once, so the table reads as the state
 * it leaves. KFA_SCCB_SEQ is a write that is meant to repeat (an indirect address/data
 * port, a reset strobe, a block switched off while it is programmed and on again after);
 * the sensor descriptor lists which registers may be written that way. KFA_SCCB_DELAY
 * waits val milliseconds (reg unused).
 */
enum kfa_sccb_op { KFA_SCCB_W = 0, KFA_SCCB_SEQ = 1, KFA_SCCB_DELAY = 2 };

struct kfa_sccb_reg {
    uint8_t op;  /* enum kfa_sccb_op */
    uint8_t reg; /* register address (8-bit on both sensors) */
    uint8_t val; /* value, or milliseconds for KFA_SCCB_DELAY */
};

#define KFA_SCCB_DELAY_MAX_MS 100u /* longest single wait a table may ask for */
#define KFA_SENSOR_SEQ_REGS_MAX 12u

/* Which sensor a descriptor is for (values of hal.h enum kfa_sensor). */
#define KFA_K210_SENSOR_OV2640 2u
#define KFA_K210_SENSOR_GC0328 3u

struct kfa_k210_sensor {
    uint8_t kind;      /* KFA_K210_SENSOR_* (hal.h enum kfa_sensor) */
    const char *name;  /* "ov2640" */
    uint8_t sccb_addr; /* 8-bit SCCB write address (what dvp.h's device address field takes) */
    uint8_t bank_reg;  /* register that selects the bank the others refer to */
    uint8_t bank_mask; /* bits of bank_reg that are the bank number */
    uint8_t nbanks;    /* valid bank numbers are 0 .. nbanks - 1 */
    uint8_t id_bank;   /* bank holding the chip id */
    uint8_t id_reg;    /* chip id register and its expected value */
    uint8_t id_val;
    uint16_t width, height; /* what the table makes the sensor output */
    /* Registers (in any bank, bank_reg excluded) that KFA_SCCB_SEQ may write. */
    uint8_t seq_regs[KFA_SENSOR_SEQ_REGS_MAX];
    uint8_t nseq_regs;
    const struct kfa_sccb_reg *init; /* the whole start-up sequence, reset to streaming */
    size_t ninit;
};

/* kfa_k210_sensor_count / kfa_k210_sensor_at - iterate over the supported sensors. */
size_t kfa_k210_sensor_count(void);
const struct kfa_k210_sensor *kfa_k210_sensor_at(size_t i);

/* kfa_k210_sensor_find - the descriptor of a KFA_K210_SENSOR_* kind, or NULL. */
const struct kfa_k210_sensor *kfa_k210_sensor_find(uint32_t kind);

/*
 * kfa_k210_sensor_play - send s->init in order: write(ctx, addr, reg, val) for each write,
 * delay_ms(ctx, ms) for each delay. Stops at the first write that returns nonzero and
 * returns that value; returns 0 when all were sent. Nothing is kept.
 */
int kfa_k210_sensor_play(const struct kfa_k210_sensor *s,
                         int (*write)(void *ctx, uint8_t addr, uint8_t reg, uint8_t val),
                         void (*delay_ms)(void *ctx, uint32_t ms), void *ctx);

/* ---- SCCB and XCLK clocks -------------------------------------------------------- */

/*
 * kfa_k210_sccb_half_period - the scl_lcnt / scl_hcnt value (APB1 cycles per SCL half
 * period, dvp.h DVP_SCCB_SCL_LCNT/HCNT, 8 bits each) for SCL at most scl_hz: the ceiling of
 * apb1_hz / (2 * scl_hz), clamped to 1..255 (at 255 a fast APB1 still gives a faster SCL;
 * kfa_k210_sccb_hz tells). Returns 255 when scl_hz is 0.
 */
uint32_t kfa_k210_sccb_half_period(uint32_t apb1_hz, uint32_t scl_hz);

/* kfa_k210_sccb_hz - the SCL rate a half period gives: apb1_hz / (2 * half). */
uint32_t kfa_k210_sccb_hz(uint32_t apb1_hz, uint32_t half);

/*
 * kfa_k210_xclk_div - cmos_cfg clk_div for a sensor clock near xclk_hz from APB1: the
 * DVP divides APB1 by 2 * (div + 1) (SDK dvp.c dvp_set_xclk_rate); div is rounded to the
 * nearest and clamped to 0..255.
 */
uint32_t kfa_k210_xclk_div(uint32_t apb1_hz, uint32_t xclk_hz);

/* ---- DVP capture plan ------------------------------------------------------------ */

/*
 * dvp.h facts: href_burst_num 19:12 (8 bits) counts 4-beat bursts of 8 bytes per line, so
 * a line is a multiple of 32 pixels (dvp.c dvp_set_image_size: width / 8 / 4); line_num
 * 29:20 (10 bits) is the height. The plane addresses are 32-bit; the DVP writes them over
 * AXI in 8-byte beats, and the HAL gives it the uncached alias of SRAM (platform.h
 * IO_BASE_ADDR: 0x40000000..0x407FFFFF is 0x80000000..0x807FFFFF without the cache).
 */
#define KFA_K210_DVP_WIDTH_STEP 32u
#define KFA_K210_DVP_BURSTS_MAX 255u
#define KFA_K210_DVP_LINES_MAX 1023u
#define KFA_K210_DVP_ALIGN 8u
#define KFA_K210_SRAM_CACHED 0x80000000u
#define KFA_K210_SRAM_UNCACHED 0x40000000u
#define KFA_K210_SRAM_SIZE 0x800000u /* 6 MiB general + 2 MiB AI SRAM */

struct kfa_k210_dvp_plan {
    uint32_t cfg;       /* dvp_cfg word: size, burst, format, outputs; interrupts off */
    uint32_t plane;     /* bytes of one colour plane (width * height) */
    uint32_t ai_bytes;  /* the three planes */
    uint32_t rgb_bytes; /* the RGB565 display frame, 0 when not asked for */
    uint32_t r, g, b;   /* bus addresses for r_addr, g_addr, b_addr */
    uint32_t rgb;       /* bus address for rgb_addr, 0 when not asked for */
};

/*
 * kfa_k210_dvp_plan - check a capture of width x height into the planar buffer ai (ai_cap
 * bytes, CPU address) and, when rgb is not 0, an RGB565 frame at rgb (rgb_cap bytes), and
 * fill *plan with the register values. Addresses are CPU addresses in SRAM (cached or
 * uncached alias); the plan holds their uncached alias. Returns 0, or -1 for a size the DVP
 * cannot capture, a buffer that is too small, misaligned or outside SRAM.
 */
int kfa_k210_dvp_plan(uint32_t width, uint32_t height, uintptr_t ai, size_t ai_cap, uintptr_t rgb,
                      size_t rgb_cap, struct kfa_k210_dvp_plan *plan);

/* ---- capture buffer ring --------------------------------------------------------- */

/*
 * The frame buffers between the DVP (the frame interrupt) and the agent (get/release).
 * Each buffer is FREE, FILLING (the DVP writes it), READY (a complete frame nobody took)
 * or HELD (the agent reads it). At most one is FILLING, READY or HELD at a time. On a
 * frame start the DVP gets a FREE buffer, or the frame is skipped; on a frame finish the
 * FILLING buffer becomes READY and an older READY one is dropped (FREE). With one buffer
 * the DVP captures only while the agent holds nothing; with two it captures while the
 * agent works on the previous frame.
 */
#define KFA_K210_CAM_MAX_BUFS 3u
enum kfa_k210_cam_state { KFA_CAM_FREE, KFA_CAM_FILLING, KFA_CAM_READY, KFA_CAM_HELD };

struct kfa_k210_cam_ring {
    uint8_t nbufs;
    uint8_t state[KFA_K210_CAM_MAX_BUFS];
    uint32_t captured; /* frames completed */
    uint32_t skipped;  /* frame starts with no free buffer */
    uint32_t dropped;  /* READY frames replaced by a newer one before anybody took them */
    uint32_t lost;     /* FILLING buffers whose finish never came (restarted) */
};

/* kfa_k210_cam_ring_init - nbufs buffers (1..KFA_K210_CAM_MAX_BUFS), all FREE. -1 if not. */
int kfa_k210_cam_ring_init(struct kfa_k210_cam_ring *ring, uint32_t nbufs);

/*
 * kfa_k210_cam_ring_start - a frame starts: the buffer the DVP should write (now FILLING),
 * or -1 to skip this frame. A buffer still FILLING (its finish was missed) is reused.
 */
int kfa_k210_cam_ring_start(struct kfa_k210_cam_ring *ring);

/* kfa_k210_cam_ring_finish - a frame finished: the buffer now READY, or -1 if none filled. */
int kfa_k210_cam_ring_finish(struct kfa_k210_cam_ring *ring);

/* kfa_k210_cam_ring_take - the READY buffer, now HELD; -1 if none or one is already HELD. */
int kfa_k210_cam_ring_take(struct kfa_k210_cam_ring *ring);

/* kfa_k210_cam_ring_release - the HELD buffer becomes FREE (no-op when none is held). */
void kfa_k210_cam_ring_release(struct kfa_k210_cam_ring *ring);

/* kfa_k210_cam_ring_ready - 1 when a take would succeed. */
int kfa_k210_cam_ring_ready(const struct kfa_k210_cam_ring *ring);

#endif /* KFA_K210_CAMERA_PURE_H */
