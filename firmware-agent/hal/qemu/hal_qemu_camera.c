/* SPDX-License-Identifier: MIT */
/*
 * The camera of kpu-agent-qemu.elf: the frame built into the image (planar RGB888,
 * 320x240, made at build time from a test image by tools/img2planar.c), or, when the
 * build had no test image, a synthetic gradient. The frame is always ready (unpaced): the
 * software KPU under TCG is the pace. Other capture sizes are scaled (nearest) from it.
 */
#include <string.h>

#include "hal/hal.h"
#include "hal_qemu.h"

#define W KFA_QEMU_FRAME_W
#define H KFA_QEMU_FRAME_H
#define PLANE (W * H)

static struct {
    const uint8_t *src; /* planar 320x240 */
    uint8_t synth[3u * PLANE];
    uint8_t scaled[3u * PLANE];
    uint16_t rgb565[PLANE];
    uint16_t w, h;
    int started, polled;
} c;

void kfa_qemu_camera_init(void)
{
    if (kfa_blob_frame_size == 3u * PLANE) {
        c.src = kfa_blob_frame;
        return;
    }
    for (uint32_t y = 0; y < H; y++)
        for (uint32_t x = 0; x < W; x++) {
            uint32_t i = y * W + x;

            c.synth[i] = (uint8_t)x;
            c.synth[PLANE + i] = (uint8_t)y;
            c.synth[2u * PLANE + i] = (uint8_t)(x + y);
        }
    c.src = c.synth;
}

int kfa_qemu_camera_take_polled(void)
{
    int p = c.polled && c.started;

    c.polled = 0;
    return p;
}

enum kfa_sensor kfa_hal_camera_sensor(void)
{
    return KFA_SENSOR_SYNTHETIC;
}

int kfa_hal_camera_start(uint16_t width, uint16_t height)
{
    const uint8_t *src = c.src;
    uint32_t plane;

    if (width == 0 || height == 0 || width > W || height > H)
        return KFA_HAL_E_RANGE;
    plane = (uint32_t)width * height;
    if (width != W || height != H) {
        for (uint32_t ch = 0; ch < 3u; ch++)
            for (uint32_t y = 0; y < height; y++)
                for (uint32_t x = 0; x < width; x++)
                    c.scaled[ch * plane + y * width + x] =
                        src[ch * PLANE + (y * H / height) * W + x * W / width];
        src = c.scaled;
    }
    for (uint32_t i = 0; i < plane; i++)
        c.rgb565[i] = (uint16_t)((src[i] >> 3) << 11 | (src[plane + i] >> 2) << 5 |
                                 (src[2u * plane + i] >> 3));
    c.w = width;
    c.h = height;
    c.started = 1;
    return 0;
}

int kfa_hal_camera_get(struct kfa_frame *frame)
{
    if (!c.started)
        return KFA_HAL_E_AGAIN;
    c.polled = 1;
    frame->width = c.w;
    frame->height = c.h;
    frame->rgb888 = c.w == W && c.h == H ? c.src : c.scaled;
    frame->rgb565 = c.rgb565;
    frame->time_us = kfa_hal_time_us();
    return 0;
}

void kfa_hal_camera_release(void)
{
}
