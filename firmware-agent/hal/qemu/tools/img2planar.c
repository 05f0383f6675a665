/* SPDX-License-Identifier: MIT */
/*
 * img2planar: host build tool that turns a test image (PNG, JPEG, BMP: whatever
 * stb_image reads) into the raw planar RGB888 frame built into kpu-agent-qemu.elf:
 * the R plane, then G, then B, each width*height bytes, scaled (nearest) to the size
 * asked for. Image data is never committed; the firmware build runs this on
 * $KPU_TEST_DATA/images/... when the file exists.
 *
 * usage: img2planar IN OUT WIDTH HEIGHT      exit 0 on success, 1 on any error
 */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#include <stb/stb_image.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_SIDE 4096

int main(int argc, char **argv)
{
    int w, h, n, ow, oh;
    unsigned char *img, *out;
    FILE *f;
    size_t plane;

    if (argc != 5) {
        fprintf(stderr, "usage: img2planar IN OUT WIDTH HEIGHT\n");
        return 1;
    }
    ow = atoi(argv[3]);
    oh = atoi(argv[4]);
    if (ow <= 0 || oh <= 0 || ow > MAX_SIDE || oh > MAX_SIDE) {
        fprintf(stderr, "img2planar: bad size %sx%s\n", argv[3], argv[4]);
        return 1;
    }
    img = stbi_load(argv[1], &w, &h, &n, 3);
    if (!img) {
        fprintf(stderr, "img2planar: %s: %s\n", argv[1], stbi_failure_reason());
        return 1;
    }
    plane = (size_t)ow * (size_t)oh;
    out = malloc(3 * plane);
    if (!out) {
        stbi_image_free(img);
        return 1;
    }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            const unsigned char *p =
                img + ((size_t)(y * h / oh) * (size_t)w + (size_t)(x * w / ow)) * 3;
            size_t i = (size_t)y * (size_t)ow + (size_t)x;

            out[i] = p[0];
            out[plane + i] = p[1];
            out[2 * plane + i] = p[2];
        }
    stbi_image_free(img);
    f = fopen(argv[2], "wb");
    if (!f || fwrite(out, 1, 3 * plane, f) != 3 * plane || fclose(f) != 0) {
        fprintf(stderr, "img2planar: cannot write %s\n", argv[2]);
        free(out);
        return 1;
    }
    free(out);
    return 0;
}
