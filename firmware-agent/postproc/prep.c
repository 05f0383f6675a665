/* SPDX-License-Identifier: MIT */
/*
 * Preprocessing: an 8-bit image of any size and layout becomes the model's uint8 input
 * (planar RGB or one grey plane), by direct copy, stretch or letterbox, with bilinear or
 * nearest interpolation in integer arithmetic, plus the inverse mapping for boxes.
 */
#include "postproc.h"

#include <string.h>

/* Bilinear weights are 16.16 fixed point. */
#define FRAC_BITS 16
#define FRAC_ONE (1 << FRAC_BITS)

/* Largest side we accept: keeps every fixed-point product below 2^63. */
#define PREP_MAX_SIDE 65535u

void kfa_rgb565_round_trip(uint8_t *r, uint8_t *g, uint8_t *b)
{
    /* RGB888 -> RGB565 keeps the top bits; back with round(v * 255 / max). The remainder
     * of v * 255 by 31 or 63 is never exactly half (odd divisor), so +max/2 then divide
     * is exact rounding (kmodel-facts §7 item 8). */
    unsigned r5 = *r >> 3, g6 = *g >> 2, b5 = *b >> 3;

    *r = (uint8_t)((r5 * 255u + 15u) / 31u);
    *g = (uint8_t)((g6 * 255u + 31u) / 63u);
    *b = (uint8_t)((b5 * 255u + 15u) / 31u);
}

static int config_ok(const struct kfa_prep_config *cfg)
{
    if (!cfg || cfg->width == 0 || cfg->height == 0 || cfg->width > PREP_MAX_SIDE ||
        cfg->height > PREP_MAX_SIDE)
        return 0;
    if (cfg->channels != 1 && cfg->channels != 3)
        return 0;
    if (cfg->fit != KFA_FIT_STRETCH && cfg->fit != KFA_FIT_LETTERBOX)
        return 0;
    return cfg->filter == KFA_FILTER_BILINEAR || cfg->filter == KFA_FILTER_NEAREST;
}

/* Place a length-`len` span inside `total` at `offset` (or centred). */
static int place(uint32_t len, uint32_t total, int32_t offset, uint32_t *pos)
{
    if (offset == KFA_PREP_CENTRE) {
        *pos = (total - len) / 2;
        return 0;
    }
    if (offset < 0 || (uint32_t)offset > total - len)
        return KFA_PP_E_ARG;
    *pos = (uint32_t)offset;
    return 0;
}

int kfa_prep_plan(const struct kfa_prep_config *cfg, uint32_t src_w, uint32_t src_h,
                  struct kfa_prep_map *map)
{
    uint32_t w = 0, h = 0;
    int r;

    if (!config_ok(cfg) || !map || src_w == 0 || src_h == 0 || src_w > PREP_MAX_SIDE ||
        src_h > PREP_MAX_SIDE)
        return KFA_PP_E_ARG;
    memset(map, 0, sizeof(*map));
    map->src_w = src_w;
    map->src_h = src_h;
    map->net_w = cfg->width;
    map->net_h = cfg->height;
    if ((src_w == cfg->width && src_h == cfg->height) || cfg->fit == KFA_FIT_STRETCH) {
        map->dst_w = cfg->width;
        map->dst_h = cfg->height;
        return 0;
    }
    /* Letterbox: the limiting axis is the one with the smaller ratio dst/src. */
    uint64_t wx = (uint64_t)cfg->width * src_h, hy = (uint64_t)cfg->height * src_w;
    if (wx <= hy) {
        w = cfg->width;
        h = (uint32_t)(((uint64_t)src_h * cfg->width * 2u + src_w) / (2u * (uint64_t)src_w));
    } else {
        h = cfg->height;
        w = (uint32_t)(((uint64_t)src_w * cfg->height * 2u + src_h) / (2u * (uint64_t)src_h));
    }
    if (w == 0)
        w = 1;
    if (h == 0)
        h = 1;
    if (w > cfg->width)
        w = cfg->width;
    if (h > cfg->height)
        h = cfg->height;
    map->dst_w = w;
    map->dst_h = h;
    r = place(w, cfg->width, cfg->offset_x, &map->dst_x);
    if (r < 0)
        return r;
    return place(h, cfg->height, cfg->offset_y, &map->dst_y);
}

/* Reads source pixels with the RGB565 and channel conversions applied. */
struct src_reader {
    const struct kfa_image *img;
    size_t plane; /* width * height */
    uint32_t out_channels;
    int rgb565;
};

/* Channel c (0..out_channels-1) of source pixel (x, y), converted. */
static unsigned src_px(const struct src_reader *s, uint32_t x, uint32_t y, uint32_t c)
{
    const struct kfa_image *img = s->img;
    size_t i = (size_t)y * img->width + x;
    uint8_t rgb[3];

    if (img->channels == 1) {
        /* Grey source: replicate to RGB; the RGB565 round trip still applies per channel. */
        rgb[0] = rgb[1] = rgb[2] = img->pixels[i];
    } else if (img->layout == KFA_PIXELS_PLANAR) {
        rgb[0] = img->pixels[i];
        rgb[1] = img->pixels[s->plane + i];
        rgb[2] = img->pixels[2 * s->plane + i];
    } else {
        rgb[0] = img->pixels[3 * i];
        rgb[1] = img->pixels[3 * i + 1];
        rgb[2] = img->pixels[3 * i + 2];
    }
    if (s->rgb565)
        kfa_rgb565_round_trip(&rgb[0], &rgb[1], &rgb[2]);
    if (s->out_channels == 1) {
        if (img->channels == 1 && !s->rgb565)
            return rgb[0];
        /* ITU-R BT.601 luma weights 0.299/0.587/0.114 scaled by 256 (sum 256). */
        return (77u * rgb[0] + 150u * rgb[1] + 29u * rgb[2] + 128u) >> 8;
    }
    return rgb[c];
}

/*
 * Source coordinate for destination index d of n, as 16.16 fixed point clamped to
 * [0, (src-1) << 16]: s = (d + 0.5) * src / n - 0.5.
 */
static int64_t src_coord(uint32_t d, uint32_t n, uint32_t src)
{
    int64_t v = ((int64_t)(2 * (int64_t)d + 1) * src * FRAC_ONE) / (2 * (int64_t)n) - FRAC_ONE / 2;

    if (v < 0)
        v = 0;
    if (v > (int64_t)(src - 1) * FRAC_ONE)
        v = (int64_t)(src - 1) * FRAC_ONE;
    return v;
}

static uint32_t nearest_index(uint32_t d, uint32_t n, uint32_t src)
{
    uint64_t v = ((2 * (uint64_t)d + 1) * src) / (2 * (uint64_t)n);

    return v >= src ? src - 1 : (uint32_t)v;
}

int kfa_prep_run(const struct kfa_prep_config *cfg, const struct kfa_image *img, uint8_t *out,
                 size_t out_len, struct kfa_prep_map *map)
{
    struct kfa_prep_map m;
    struct src_reader s;
    size_t plane;
    int r;

    if (!config_ok(cfg) || !img || !img->pixels || !out)
        return KFA_PP_E_ARG;
    if (img->channels != 1 && img->channels != 3)
        return KFA_PP_E_ARG;
    r = kfa_prep_plan(cfg, img->width, img->height, &m);
    if (r < 0)
        return r;
    plane = (size_t)cfg->width * cfg->height;
    if (out_len != plane * cfg->channels)
        return KFA_PP_E_SIZE;

    s.img = img;
    s.plane = (size_t)img->width * img->height;
    s.out_channels = cfg->channels;
    s.rgb565 = cfg->rgb565;

    if (m.dst_w != cfg->width || m.dst_h != cfg->height)
        memset(out, cfg->fill, out_len);

    int same = m.dst_w == img->width && m.dst_h == img->height;
    for (uint32_t c = 0; c < cfg->channels; c++) {
        uint8_t *p = out + c * plane;
        for (uint32_t y = 0; y < m.dst_h; y++) {
            uint8_t *row = p + (size_t)(m.dst_y + y) * cfg->width + m.dst_x;
            for (uint32_t x = 0; x < m.dst_w; x++) {
                unsigned v;
                if (same) {
                    v = src_px(&s, x, y, c);
                } else if (cfg->filter == KFA_FILTER_NEAREST) {
                    v = src_px(&s, nearest_index(x, m.dst_w, img->width),
                               nearest_index(y, m.dst_h, img->height), c);
                } else {
                    int64_t fx = src_coord(x, m.dst_w, img->width);
                    int64_t fy = src_coord(y, m.dst_h, img->height);
                    uint32_t x0 = (uint32_t)(fx >> FRAC_BITS), y0 = (uint32_t)(fy >> FRAC_BITS);
                    uint32_t x1 = x0 + 1 < img->width ? x0 + 1 : x0;
                    uint32_t y1 = y0 + 1 < img->height ? y0 + 1 : y0;
                    int64_t ax = fx & (FRAC_ONE - 1), ay = fy & (FRAC_ONE - 1);
                    int64_t top = (int64_t)src_px(&s, x0, y0, c) * (FRAC_ONE - ax) +
                                  (int64_t)src_px(&s, x1, y0, c) * ax;
                    int64_t bot = (int64_t)src_px(&s, x0, y1, c) * (FRAC_ONE - ax) +
                                  (int64_t)src_px(&s, x1, y1, c) * ax;
                    int64_t acc = top * (FRAC_ONE - ay) + bot * ay;
                    v = (unsigned)((acc + ((int64_t)1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS));
                }
                row[x] = (uint8_t)(cfg->invert ? 255u - v : v);
            }
        }
    }
    if (map)
        *map = m;
    return 0;
}

static float clampf(float v, float hi)
{
    if (!(v > 0.0f)) /* also catches NaN */
        return 0.0f;
    return v > hi ? hi : v;
}

void kfa_prep_map_box(const struct kfa_prep_map *map, struct kfa_box *box)
{
    if (!map || !box || map->dst_w == 0 || map->dst_h == 0)
        return;
    float sx = (float)map->src_w / (float)map->dst_w;
    float sy = (float)map->src_h / (float)map->dst_h;
    float ox = (float)map->dst_x, oy = (float)map->dst_y;

    box->x1 = clampf((box->x1 - ox) * sx, (float)map->src_w);
    box->x2 = clampf((box->x2 - ox) * sx, (float)map->src_w);
    box->y1 = clampf((box->y1 - oy) * sy, (float)map->src_h);
    box->y2 = clampf((box->y2 - oy) * sy, (float)map->src_h);
}
