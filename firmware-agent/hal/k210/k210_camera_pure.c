/* SPDX-License-Identifier: MIT */
/* The pure parts of the K210 camera path (contracts and sources in k210_camera_pure.h). */
#include "k210_camera_pure.h"

#include "k210_regs.h"

#define SCCB_HALF_MAX 255u /* dvp.h DVP_SCCB_SCL_LCNT_MASK / HCNT_MASK: 8 bits */
#define XCLK_DIV_MAX 255u  /* dvp.h DVP_CMOS_CLK_DIV_MASK: 8 bits */
#define DVP_BEAT_BYTES 8u  /* dvp.c dvp_set_image_size: width / 8 / 4 with 4-beat bursts */
#define DVP_BURST_BEATS 4u
#define RGB565_BYTES 2u

int kfa_k210_sensor_play(const struct kfa_k210_sensor *s,
                         int (*write)(void *ctx, uint8_t addr, uint8_t reg, uint8_t val),
                         void (*delay_ms)(void *ctx, uint32_t ms), void *ctx)
{
    for (size_t i = 0; i < s->ninit; i++) {
        const struct kfa_sccb_reg *e = &s->init[i];
        int r;

        if (e->op == KFA_SCCB_DELAY) {
            if (delay_ms)
                delay_ms(ctx, e->val);
            continue;
        }
        r = write(ctx, s->sccb_addr, e->reg, e->val);
        if (r != 0)
            return r;
    }
    return 0;
}

uint32_t kfa_k210_sccb_half_period(uint32_t apb1_hz, uint32_t scl_hz)
{
    uint64_t half;

    if (scl_hz == 0)
        return SCCB_HALF_MAX;
    half = ((uint64_t)apb1_hz + 2u * (uint64_t)scl_hz - 1u) / (2u * (uint64_t)scl_hz);
    if (half < 1u)
        half = 1u;
    return half > SCCB_HALF_MAX ? SCCB_HALF_MAX : (uint32_t)half;
}

uint32_t kfa_k210_sccb_hz(uint32_t apb1_hz, uint32_t half)
{
    return half ? apb1_hz / (2u * half) : 0;
}

uint32_t kfa_k210_xclk_div(uint32_t apb1_hz, uint32_t xclk_hz)
{
    uint64_t twice, div;

    if (xclk_hz == 0 || apb1_hz <= 2ull * xclk_hz)
        return 0;
    twice = 2ull * xclk_hz;
    div = ((uint64_t)apb1_hz + twice / 2u) / twice; /* round(apb1 / (2 * xclk)) */
    div = div ? div - 1u : 0;
    return div > XCLK_DIV_MAX ? XCLK_DIV_MAX : (uint32_t)div;
}

/* The uncached bus address of [p, p + len) in SRAM, or 0 when it is not all in SRAM. */
static uint32_t sram_bus(uintptr_t p, size_t len)
{
    uint64_t a = p, end = (uint64_t)p + len;

    if (a >= KFA_K210_SRAM_CACHED && end <= (uint64_t)KFA_K210_SRAM_CACHED + KFA_K210_SRAM_SIZE)
        return (uint32_t)(a - (KFA_K210_SRAM_CACHED - KFA_K210_SRAM_UNCACHED));
    if (a >= KFA_K210_SRAM_UNCACHED && end <= (uint64_t)KFA_K210_SRAM_UNCACHED + KFA_K210_SRAM_SIZE)
        return (uint32_t)a;
    return 0;
}

int kfa_k210_dvp_plan(uint32_t width, uint32_t height, uintptr_t ai, size_t ai_cap, uintptr_t rgb,
                      size_t rgb_cap, struct kfa_k210_dvp_plan *plan)
{
    uint32_t bursts = width / (DVP_BEAT_BYTES * DVP_BURST_BEATS);
    uint64_t plane = (uint64_t)width * height;
    struct kfa_k210_dvp_plan p = {0};

    if (width == 0 || height == 0 || width % KFA_K210_DVP_WIDTH_STEP != 0 ||
        bursts > KFA_K210_DVP_BURSTS_MAX || height > KFA_K210_DVP_LINES_MAX)
        return -1;
    p.plane = (uint32_t)plane;
    p.ai_bytes = (uint32_t)(3u * plane);
    if (ai_cap < p.ai_bytes || ai % KFA_K210_DVP_ALIGN != 0)
        return -1;
    p.r = sram_bus(ai, p.ai_bytes);
    if (p.r == 0)
        return -1;
    p.g = p.r + p.plane;
    p.b = p.g + p.plane;
    p.cfg = DVP_CFG_BURST_SIZE_4BEATS | DVP_CFG_HREF_BURST_NUM(bursts) | DVP_CFG_LINE_NUM(height) |
            DVP_CFG_RGB_FORMAT | DVP_CFG_AI_OUTPUT_ENABLE;
    if (rgb) {
        p.rgb_bytes = (uint32_t)(RGB565_BYTES * plane);
        if (rgb_cap < p.rgb_bytes || rgb % KFA_K210_DVP_ALIGN != 0)
            return -1;
        p.rgb = sram_bus(rgb, p.rgb_bytes);
        if (p.rgb == 0)
            return -1;
        p.cfg |= DVP_CFG_DISPLAY_OUTPUT_ENABLE;
    }
    *plan = p;
    return 0;
}

int kfa_k210_cam_ring_init(struct kfa_k210_cam_ring *ring, uint32_t nbufs)
{
    if (nbufs == 0 || nbufs > KFA_K210_CAM_MAX_BUFS)
        return -1;
    *ring = (struct kfa_k210_cam_ring){0};
    ring->nbufs = (uint8_t)nbufs;
    for (uint32_t i = 0; i < KFA_K210_CAM_MAX_BUFS; i++)
        ring->state[i] = KFA_CAM_FREE;
    return 0;
}

static int find(const struct kfa_k210_cam_ring *ring, uint8_t state)
{
    for (int i = 0; i < ring->nbufs; i++)
        if (ring->state[i] == state)
            return i;
    return -1;
}

int kfa_k210_cam_ring_start(struct kfa_k210_cam_ring *ring)
{
    int i = find(ring, KFA_CAM_FILLING);

    if (i >= 0) {
        ring->lost++;
        return i;
    }
    i = find(ring, KFA_CAM_FREE);
    if (i < 0) {
        ring->skipped++;
        return -1;
    }
    ring->state[i] = KFA_CAM_FILLING;
    return i;
}

int kfa_k210_cam_ring_finish(struct kfa_k210_cam_ring *ring)
{
    int i = find(ring, KFA_CAM_FILLING), old = find(ring, KFA_CAM_READY);

    if (i < 0)
        return -1;
    if (old >= 0) {
        ring->state[old] = KFA_CAM_FREE;
        ring->dropped++;
    }
    ring->state[i] = KFA_CAM_READY;
    ring->captured++;
    return i;
}

int kfa_k210_cam_ring_take(struct kfa_k210_cam_ring *ring)
{
    int i = find(ring, KFA_CAM_READY);

    if (i < 0 || find(ring, KFA_CAM_HELD) >= 0)
        return -1;
    ring->state[i] = KFA_CAM_HELD;
    return i;
}

void kfa_k210_cam_ring_release(struct kfa_k210_cam_ring *ring)
{
    int i = find(ring, KFA_CAM_HELD);

    if (i >= 0)
        ring->state[i] = KFA_CAM_FREE;
}

int kfa_k210_cam_ring_ready(const struct kfa_k210_cam_ring *ring)
{
    return find(ring, KFA_CAM_READY) >= 0 && find(ring, KFA_CAM_HELD) < 0;
}
