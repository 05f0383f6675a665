/* SPDX-License-Identifier: MIT */
/*
 * The camera: sensor bring-up over SCCB (k210_sccb.c) with the tables of
 * k210_sensor_tables.c, and DVP capture of 320x240 frames into planar R, G, B buffers (the
 * DVP's "AI output", which the model input is made from) and, when built with
 * KFA_K210_CAM_RGB565=1, an RGB565 frame per buffer too (its "display output").
 *
 * Bring-up (SDK dvp.c dvp_init, dvp_reset, dvp_set_xclk_rate; register facts in
 * k210_regs.h): DVP clock on and block reset (sysctl peri_reset bit 3), DVP data pins
 * routed (sysctl misc spi_dvp_data_enable), XCLK = APB1 / (2 * (div + 1)) near 24 MHz,
 * SCCB at <= 100 kHz, sensor power-down pulse then reset pulse (cmos_cfg: POWER_DOWN set
 * means the PWDN pin asserted, RESET clear means the reset pin asserted). The sensor is
 * found by its id: OV2640 first (bank 1 register 0x0A = 0x26), then GC0328 (0xF0 = 0x9D).
 *
 * Capture: the DVP is not in auto mode; each frame is started by the frame-start interrupt
 * (PLIC 24) writing the destination addresses and sts.DVP_EN, and ends with the
 * frame-finish interrupt (the face-detect demos' on_irq_dvp sequence). Which buffer a frame
 * goes to is decided by the buffer ring of k210_camera_pure.c: a frame is captured only
 * into a buffer nobody reads, the newest complete frame is what kfa_hal_camera_get hands
 * out, and kfa_hal_camera_release gives its buffer back. KFA_K210_CAM_BUFS (default 1)
 * sets how many buffers there are: each planar buffer is 225 KiB, and the RAM plan with
 * the 4 MiB model slot leaves 33 KiB (docs/firmware-size.md), so a second buffer (the DVP
 * filling one while the KPU works on the other) does not fit today. With one buffer the
 * DVP captures only between release and the next get, which costs up to one frame period
 * of latency per inference.
 *
 * Memory: the DVP writes SRAM over its own AXI port, around the CPU's data cache, so the
 * buffers are given to it, and to the agent, through the uncached alias (platform.h
 * IO_BASE_ADDR 0x40000000 = SRAM at 0x80000000 without the cache): no stale cache lines
 * can hide a new frame. The agent reads each frame once (preprocessing), so the slower
 * uncached reads cost less than cache maintenance would (the SDK has no cache flush or
 * invalidate; MaixPy allocates DVP buffers with iomem_malloc, i.e. uncached, for the same
 * reason).
 */
#include <string.h>

#include "hal/hal.h"
#include "hal_k210.h"
#include "k210_camera_pure.h"
#include "k210_regs.h"
#include "k210_sccb.h"
#include "rv64/plic.h"
#include "rv64/rv64.h"

#ifndef KFA_K210_CAM_BUFS
#define KFA_K210_CAM_BUFS 1u
#endif
#ifndef KFA_K210_CAM_RGB565
#define KFA_K210_CAM_RGB565 0
#endif
#define CAM_W 320u
#define CAM_H 240u
#define XCLK_HZ 24000000u /* both sensors' usual input clock (SDK demos, MaixPy default) */
#define SCCB_HZ 100000u   /* SCCB standard rate */
#define PWDN_PULSE_US 10000u
#define RESET_PULSE_US 10000u
#define RESET_SETTLE_US 30000u
#define PERI_RESET_US 10u /* sysctl.c sysctl_reset: 10 us between set and clear */
#define PLIC_CTX_HART0_M 0u
#define BUF_ALIGN 64u
#define FRAME_INTS (DVP_CFG_START_INT_ENABLE | DVP_CFG_FINISH_INT_ENABLE)

_Static_assert(KFA_K210_SENSOR_OV2640 == (unsigned)KFA_SENSOR_OV2640 &&
                   KFA_K210_SENSOR_GC0328 == (unsigned)KFA_SENSOR_GC0328,
               "sensor kinds are hal.h enum kfa_sensor values");
_Static_assert(KFA_K210_CAM_BUFS >= 1 && KFA_K210_CAM_BUFS <= KFA_K210_CAM_MAX_BUFS,
               "KFA_K210_CAM_BUFS must be 1..KFA_K210_CAM_MAX_BUFS");

static uint8_t cam_planar[KFA_K210_CAM_BUFS][3u * CAM_W * CAM_H]
    __attribute__((aligned(BUF_ALIGN)));
#if KFA_K210_CAM_RGB565
static uint16_t cam_rgb565[KFA_K210_CAM_BUFS][CAM_W * CAM_H] __attribute__((aligned(BUF_ALIGN)));
#endif

static struct {
    const struct kfa_k210_sensor *sensor;
    struct kfa_k210_dvp_plan plan[KFA_K210_CAM_BUFS];
    struct kfa_k210_cam_ring ring;       /* shared with the DVP interrupt: see ring_lock */
    uint64_t done_us[KFA_K210_CAM_BUFS]; /* frame-finish time of each buffer */
    int started;
} cam;

/* The ring is changed by the interrupt handler; the agent side masks interrupts around
 * its changes (single hart; the compiler barrier keeps the accesses inside). */
static uint64_t ring_lock(void)
{
    uint64_t st = kfa_csr_read(mstatus);

    kfa_csr_clear(mstatus, KFA_MSTATUS_MIE);
    __asm__ volatile("" ::: "memory");
    return st;
}

static void ring_unlock(uint64_t st)
{
    __asm__ volatile("" ::: "memory");
    kfa_csr_set(mstatus, st & KFA_MSTATUS_MIE);
}

static uint32_t apb1_hz(void)
{
    uint32_t sel =
        k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_SEL0) >> CLK_SEL0_APB1_SHIFT & CLK_SEL0_APB1_MASK;

    return k210_cpu_hz() / (sel + 1u);
}

static int sccb_write_cb(void *ctx, uint8_t addr, uint8_t reg, uint8_t val)
{
    (void)ctx;
    return k210_sccb_write(addr, reg, val);
}

static void delay_cb(void *ctx, uint32_t ms)
{
    (void)ctx;
    k210_delay_us(ms * 1000u);
}

/* Does the sensor s answer with its id? */
static int sensor_probe(const struct kfa_k210_sensor *s)
{
    uint8_t id = 0;

    if (k210_sccb_write(s->sccb_addr, s->bank_reg, s->id_bank) != 0)
        return 0;
    return k210_sccb_read(s->sccb_addr, s->id_reg, &id) == 0 && id == s->id_val;
}

int k210_camera_init(void)
{
    uint32_t apb = apb1_hz(), div = kfa_k210_xclk_div(apb, XCLK_HZ);

    cam.sensor = NULL;
    cam.started = 0;
    /* Block reset, data pins, clocks (the DVP's clock itself is enabled by hal_k210.c). */
    k210_wr(K210_SYSCTL_BASE, SYSCTL_PERI_RESET,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_PERI_RESET) | PERI_RESET_DVP);
    k210_delay_us(PERI_RESET_US);
    k210_wr(K210_SYSCTL_BASE, SYSCTL_PERI_RESET,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_PERI_RESET) & ~PERI_RESET_DVP);
    k210_wr(K210_SYSCTL_BASE, SYSCTL_MISC,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_MISC) | MISC_SPI_DVP_DATA_ENABLE);
    k210_wr(K210_DVP_BASE, DVP_CFG, 0);
    /* XCLK on, PWDN pulse, reset pulse (dvp.c dvp_reset order), then let it wake up. */
    k210_wr(K210_DVP_BASE, DVP_CMOS_CFG,
            DVP_CMOS_CLK_DIV(div) | DVP_CMOS_CLK_ENABLE | DVP_CMOS_RESET | DVP_CMOS_POWER_DOWN);
    k210_delay_us(PWDN_PULSE_US);
    k210_wr(K210_DVP_BASE, DVP_CMOS_CFG, DVP_CMOS_CLK_DIV(div) | DVP_CMOS_CLK_ENABLE);
    k210_delay_us(RESET_PULSE_US);
    k210_wr(K210_DVP_BASE, DVP_CMOS_CFG,
            DVP_CMOS_CLK_DIV(div) | DVP_CMOS_CLK_ENABLE | DVP_CMOS_RESET);
    k210_delay_us(RESET_SETTLE_US);
    (void)k210_sccb_init(apb, SCCB_HZ);
    for (size_t i = 0; i < kfa_k210_sensor_count(); i++)
        if (sensor_probe(kfa_k210_sensor_at(i))) {
            cam.sensor = kfa_k210_sensor_at(i);
            break;
        }
    if (!cam.sensor)
        return KFA_HAL_E_NODEV;
    (void)kfa_k210_cam_ring_init(&cam.ring, KFA_K210_CAM_BUFS);
    for (uint32_t i = 0; i < KFA_K210_CAM_BUFS; i++) {
#if KFA_K210_CAM_RGB565
        uintptr_t rgb = (uintptr_t)cam_rgb565[i];
        size_t rgb_cap = sizeof(cam_rgb565[i]);
#else
        uintptr_t rgb = 0;
        size_t rgb_cap = 0;
#endif
        if (kfa_k210_dvp_plan(CAM_W, CAM_H, (uintptr_t)cam_planar[i], sizeof(cam_planar[i]), rgb,
                              rgb_cap, &cam.plan[i]) != 0)
            return KFA_HAL_E_RANGE; /* a build-time size or address mistake */
    }
    k210_wr(K210_DVP_BASE, DVP_AXI, DVP_AXI_GM_MLEN_4BYTE);
    k210_wr(K210_DVP_BASE, DVP_CFG, cam.plan[0].cfg); /* interrupts stay off until start */
    kfa_plic_enable(PLIC_CTX_HART0_M, K210_IRQ_DVP);
    return 0;
}

void k210_dvp_irq(void)
{
    uint32_t st = k210_rd(K210_DVP_BASE, DVP_STS);

    /* Finish before start: when both are pending the finish belongs to the earlier frame. */
    if (st & DVP_STS_FRAME_FINISH) {
        int i;

        k210_wr(K210_DVP_BASE, DVP_STS, DVP_STS_FRAME_FINISH | DVP_STS_FRAME_FINISH_WE);
        i = kfa_k210_cam_ring_finish(&cam.ring);
        if (i >= 0)
            cam.done_us[i] = kfa_hal_time_us();
    }
    if (st & DVP_STS_FRAME_START) {
        int i;

        k210_wr(K210_DVP_BASE, DVP_STS, DVP_STS_FRAME_START | DVP_STS_FRAME_START_WE);
        i = cam.started ? kfa_k210_cam_ring_start(&cam.ring) : -1;
        if (i >= 0) {
            const struct kfa_k210_dvp_plan *p = &cam.plan[i];

            k210_wr(K210_DVP_BASE, DVP_R_ADDR, p->r);
            k210_wr(K210_DVP_BASE, DVP_G_ADDR, p->g);
            k210_wr(K210_DVP_BASE, DVP_B_ADDR, p->b);
            if (p->rgb)
                k210_wr(K210_DVP_BASE, DVP_RGB_ADDR, p->rgb);
            k210_wr(K210_DVP_BASE, DVP_STS, DVP_STS_DVP_EN | DVP_STS_DVP_EN_WE);
        }
    }
}

int k210_camera_ready(void)
{
    uint64_t st = ring_lock();
    int r = kfa_k210_cam_ring_ready(&cam.ring);

    ring_unlock(st);
    return r;
}

enum kfa_sensor kfa_hal_camera_sensor(void)
{
    return cam.sensor ? (enum kfa_sensor)cam.sensor->kind : KFA_SENSOR_NONE;
}

int kfa_hal_camera_start(uint16_t width, uint16_t height)
{
    uint64_t st;
    int r;

    if (!cam.sensor)
        return KFA_HAL_E_NODEV;
    if (width != cam.sensor->width || height != cam.sensor->height)
        return KFA_HAL_E_RANGE;
    if (cam.started)
        return 0;
    r = kfa_k210_sensor_play(cam.sensor, sccb_write_cb, delay_cb, NULL);
    if (r != 0)
        return KFA_HAL_E_IO;
    st = ring_lock();
    (void)kfa_k210_cam_ring_init(&cam.ring, KFA_K210_CAM_BUFS);
    cam.started = 1;
    k210_wr(K210_DVP_BASE, DVP_STS,
            DVP_STS_FRAME_START | DVP_STS_FRAME_START_WE | DVP_STS_FRAME_FINISH |
                DVP_STS_FRAME_FINISH_WE);
    k210_wr(K210_DVP_BASE, DVP_CFG, cam.plan[0].cfg | FRAME_INTS);
    ring_unlock(st);
    return 0;
}

#if KFA_K210_CAM_RGB565
/* The display output packs two pixels per 32-bit word with the first in the upper half
 * (MaixPy's k210 cambus swaps each pixel pair after a capture), so in little-endian memory
 * each pair is swapped; put them in order. Not checked on a board. */
static void rgb565_order(uint16_t *px, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint16_t t = px[i];

        px[i] = px[i + 1];
        px[i + 1] = t;
    }
}
#endif

int kfa_hal_camera_get(struct kfa_frame *frame)
{
    uint64_t st = ring_lock();
    int i = kfa_k210_cam_ring_take(&cam.ring);

    ring_unlock(st);
    if (i < 0)
        return KFA_HAL_E_AGAIN;
    frame->width = (uint16_t)CAM_W;
    frame->height = (uint16_t)CAM_H;
    frame->rgb888 = (const uint8_t *)(uintptr_t)cam.plan[i].r;
#if KFA_K210_CAM_RGB565
    rgb565_order((uint16_t *)(uintptr_t)cam.plan[i].rgb, CAM_W * CAM_H);
    frame->rgb565 = (const uint16_t *)(uintptr_t)cam.plan[i].rgb;
#else
    frame->rgb565 = NULL; /* the core makes RGB565 snapshots from the planes */
#endif
    frame->time_us = cam.done_us[i];
    return 0;
}

void kfa_hal_camera_release(void)
{
    uint64_t st = ring_lock();

    kfa_k210_cam_ring_release(&cam.ring);
    ring_unlock(st);
}
