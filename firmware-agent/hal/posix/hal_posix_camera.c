/* SPDX-License-Identifier: MIT */
/*
 * POSIX HAL: the camera of kpu-agent-sim. Images given before init (one, a folder, a list)
 * are cycled, each scaled (nearest) to the size the agent starts the camera with; with no
 * image a synthetic gradient is shown. Frames are paced on the HAL clock at a set rate, or
 * delivered on every call ("as fast as possible", for benchmarks and tests).
 */
#include <stdlib.h>
#include <string.h>

#include "hal/hal.h"
#include "hal_posix.h"
#include "hal_posix_int.h"

#define MAX_IMAGES 1024u
#define MAX_W 640u /* largest capture the sim offers (VGA, the OV2640's usual mode) */
#define MAX_H 480u

struct image {
    uint8_t *rgb; /* interleaved */
    uint32_t w, h;
};

static struct {
    struct image img[MAX_IMAGES];
    unsigned count;
    unsigned cur;   /* image shown */
    uint32_t shown; /* frames of the current image so far */
    uint32_t hold;
    double fps;
    int absent;
    uint16_t w, h;
    int started;
    uint64_t next_due;
    uint32_t synth_phase;
    int polled; /* kfa_hal_camera_get called since the last wait (a consumer is active) */
    uint8_t planar[3u * MAX_W * MAX_H];
    uint16_t rgb565[MAX_W * MAX_H];
} c = {.hold = 1};

int kfa_posix_camera_add(const uint8_t *rgb, uint32_t w, uint32_t h)
{
    uint8_t *copy;

    if (c.count >= MAX_IMAGES || w == 0 || h == 0 || w > 8192u || h > 8192u)
        return -1;
    copy = malloc((size_t)w * h * 3u);
    if (!copy)
        return -1;
    memcpy(copy, rgb, (size_t)w * h * 3u);
    c.img[c.count].rgb = copy;
    c.img[c.count].w = w;
    c.img[c.count].h = h;
    c.count++;
    return 0;
}

void kfa_posix_camera_clear(void)
{
    for (unsigned i = 0; i < c.count; i++)
        free(c.img[i].rgb);
    c.count = 0;
    c.cur = 0;
    c.shown = 0;
}

void kfa_posix_camera_pace(double fps, uint32_t hold)
{
    c.fps = fps > 0 ? fps : 0;
    c.hold = hold ? hold : 1;
}

void kfa_posix_camera_absent(int absent)
{
    c.absent = absent;
}

uint64_t kfa_posix_camera_next_due_us(void)
{
    return c.started && c.fps > 0 ? c.next_due : 0;
}

int kfa_posix_camera_take_polled(void)
{
    int p = c.polled && c.started && c.fps <= 0;

    c.polled = 0;
    return p;
}

enum kfa_sensor kfa_hal_camera_sensor(void)
{
    return c.absent ? KFA_SENSOR_NONE : KFA_SENSOR_SYNTHETIC;
}

int kfa_hal_camera_start(uint16_t width, uint16_t height)
{
    if (c.absent)
        return KFA_HAL_E_NODEV;
    if (width == 0 || height == 0 || width > MAX_W || height > MAX_H)
        return KFA_HAL_E_RANGE;
    c.w = width;
    c.h = height;
    c.started = 1;
    c.next_due = kfa_hal_time_us();
    return 0;
}

static void render(void)
{
    size_t plane = (size_t)c.w * c.h;

    if (c.count == 0) {
        for (uint32_t y = 0; y < c.h; y++)
            for (uint32_t x = 0; x < c.w; x++) {
                size_t i = (size_t)y * c.w + x;

                c.planar[i] = (uint8_t)(x + c.synth_phase);
                c.planar[plane + i] = (uint8_t)(y + c.synth_phase);
                c.planar[2 * plane + i] = (uint8_t)(x + y);
            }
        c.synth_phase++;
    } else {
        const struct image *im = &c.img[c.cur];

        for (uint32_t y = 0; y < c.h; y++) {
            uint32_t sy = (uint32_t)(((uint64_t)y * im->h) / c.h);

            for (uint32_t x = 0; x < c.w; x++) {
                uint32_t sx = (uint32_t)(((uint64_t)x * im->w) / c.w);
                const uint8_t *p = im->rgb + ((size_t)sy * im->w + sx) * 3u;
                size_t i = (size_t)y * c.w + x;

                c.planar[i] = p[0];
                c.planar[plane + i] = p[1];
                c.planar[2 * plane + i] = p[2];
            }
        }
        if (++c.shown >= c.hold) {
            c.shown = 0;
            c.cur = (c.cur + 1) % c.count;
        }
    }
    for (size_t i = 0; i < plane; i++)
        c.rgb565[i] = (uint16_t)((c.planar[i] >> 3) << 11 | (c.planar[plane + i] >> 2) << 5 |
                                 (c.planar[2 * plane + i] >> 3));
}

int kfa_hal_camera_get(struct kfa_frame *frame)
{
    uint64_t now = kfa_hal_time_us();

    if (!c.started || c.absent)
        return KFA_HAL_E_AGAIN;
    c.polled = 1;
    if (c.fps > 0) {
        uint64_t period = (uint64_t)(1e6 / c.fps);

        if (now < c.next_due)
            return KFA_HAL_E_AGAIN;
        /* A slow consumer skips frames, as a real sensor overwrites its buffer. */
        c.next_due = now - c.next_due > period ? now + period : c.next_due + period;
    }
    render();
    frame->width = c.w;
    frame->height = c.h;
    frame->rgb888 = c.planar;
    frame->rgb565 = c.rgb565;
    frame->time_us = now;
    return 0;
}

void kfa_hal_camera_release(void)
{
}
