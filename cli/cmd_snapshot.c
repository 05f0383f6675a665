/* SPDX-License-Identifier: MIT */
/*
 * kpuctl snapshot DEVICE -o FILE: save the board's current frame as PNG (libpng) or binary
 * PPM (P6, netpbm), converting RGB565 (little-endian, 5-6-5 bits) and planar RGB888 to
 * packed RGB; --boxes draws the detections of the same frame as 1-pixel rectangles.
 */
#include "kpuctl.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PIXELS (4096u * 4096u)

/* Packed RGB from the snapshot. Returns NULL when the data does not fit the format. */
static uint8_t *to_rgb(const struct kpu_client_snapshot *s)
{
    size_t n = (size_t)s->width * s->height;
    uint8_t *rgb;

    if (!n || n > MAX_PIXELS)
        return NULL;
    if (s->format == KPU_CLIENT_IMAGE_RGB888_PLANAR && s->size != 3 * n)
        return NULL;
    if (s->format == KPU_CLIENT_IMAGE_RGB565 && s->size != 2 * n)
        return NULL;
    if (s->format != KPU_CLIENT_IMAGE_RGB888_PLANAR && s->format != KPU_CLIENT_IMAGE_RGB565)
        return NULL;
    rgb = malloc(3 * n);
    if (!rgb)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s->format == KPU_CLIENT_IMAGE_RGB888_PLANAR) {
            rgb[3 * i] = s->data[i];
            rgb[3 * i + 1] = s->data[n + i];
            rgb[3 * i + 2] = s->data[2 * n + i];
        } else {
            unsigned v = s->data[2 * i] | (unsigned)s->data[2 * i + 1] << 8;
            rgb[3 * i] = (uint8_t)(((v >> 11) & 31) * 255 / 31);
            rgb[3 * i + 1] = (uint8_t)(((v >> 5) & 63) * 255 / 63);
            rgb[3 * i + 2] = (uint8_t)((v & 31) * 255 / 31);
        }
    }
    return rgb;
}

static void put(uint8_t *rgb, uint32_t w, uint32_t h, int64_t x, int64_t y)
{
    if (x < 0 || y < 0 || x >= w || y >= h)
        return;
    rgb[3 * ((size_t)y * w + (size_t)x)] = 255;
    rgb[3 * ((size_t)y * w + (size_t)x) + 1] = 0;
    rgb[3 * ((size_t)y * w + (size_t)x) + 2] = 0;
}

static void draw_boxes(uint8_t *rgb, const struct kpu_client_snapshot *s)
{
    for (size_t b = 0; b < s->n_boxes; b++) {
        const struct kpu_client_box *bx = &s->boxes[b];
        int64_t x0 = bx->x, y0 = bx->y, x1 = x0 + bx->w - 1, y1 = y0 + bx->h - 1;
        if (!bx->w || !bx->h)
            continue;
        for (int64_t x = x0; x <= x1 && x < (int64_t)s->width; x++) {
            put(rgb, s->width, s->height, x, y0);
            put(rgb, s->width, s->height, x, y1);
        }
        for (int64_t y = y0; y <= y1 && y < (int64_t)s->height; y++) {
            put(rgb, s->width, s->height, x0, y);
            put(rgb, s->width, s->height, x1, y);
        }
    }
}

static int write_ppm(FILE *f, const uint8_t *rgb, uint32_t w, uint32_t h)
{
    fprintf(f, "P6\n%u %u\n255\n", w, h);
    return fwrite(rgb, 3, (size_t)w * h, f) == (size_t)w * h ? 0 : -1;
}

static int write_png(FILE *f, const uint8_t *rgb, uint32_t w, uint32_t h)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;

    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

int cmd_snapshot(struct kpuctl *k, int argc, char **argv)
{
    const char *device = NULL, *out = NULL;
    struct kpu_client_snapshot *s;
    int boxes = 0, ppm, r;
    uint8_t *rgb;
    FILE *f;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--boxes") == 0)
            boxes = 1;
        else if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc)
            out = argv[++i];
        else if (argv[i][0] != '-' && !device)
            device = argv[i];
        else
            return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
    }
    if (!device || !out)
        return kpuctl_usage_error(k, "needs a device and -o FILE");
    ppm = ends_with(out, ".ppm");
    if (!ppm && !ends_with(out, ".png"))
        return kpuctl_usage_error(k, "-o must end in .png or .ppm");
    r = kpuctl_connect(k);
    if (r)
        return r;
    r = kpu_client_snapshot(k->client, device, KPU_CLIENT_IMAGE_RGB888_PLANAR, &s);
    if (r < 0)
        return kpuctl_fail(k, "taking the snapshot", r);
    rgb = to_rgb(s);
    if (!rgb) {
        fprintf(stderr,
                "kpuctl snapshot: the daemon sent %ux%u in format %d with %zu bytes, "
                "which this kpuctl cannot convert\n",
                s->width, s->height, s->format, s->size);
        kpu_client_free(s);
        return KPUCTL_EXIT_PROTOCOL;
    }
    if (boxes)
        draw_boxes(rgb, s);
    f = fopen(out, "wb");
    r = f ? (ppm ? write_ppm(f, rgb, s->width, s->height) : write_png(f, rgb, s->width, s->height))
          : -1;
    if (f && fclose(f) != 0)
        r = -1;
    free(rgb);
    if (r < 0) {
        perror(out);
        kpu_client_free(s);
        return KPUCTL_EXIT_DEVICE;
    }
    if (k->json) {
        printf("{\"device\":");
        kpuctl_json_str(stdout, s->device);
        printf(",\"file\":");
        kpuctl_json_str(stdout, out);
        printf(",\"width\":%u,\"height\":%u,\"frame_seq\":%u,\"boxes\":[", s->width, s->height,
               s->frame_seq);
        for (size_t i = 0; i < s->n_boxes; i++) {
            printf("%s{\"class_id\":%u,\"label\":", i ? "," : "", s->boxes[i].class_id);
            kpuctl_json_str(stdout, s->boxes[i].label);
            printf(",\"score\":%.7g,\"x\":%d,\"y\":%d,\"w\":%u,\"h\":%u}", s->boxes[i].score,
                   s->boxes[i].x, s->boxes[i].y, s->boxes[i].w, s->boxes[i].h);
        }
        printf("]}\n");
    } else {
        printf("%s: %ux%u frame %u from %s, %zu detection(s)%s\n", out, s->width, s->height,
               s->frame_seq, s->device, s->n_boxes, boxes ? " drawn" : "");
    }
    kpu_client_free(s);
    return 0;
}
