/* SPDX-License-Identifier: MIT */
/*
 * Image files for the host simulator: JPEG (libjpeg-turbo), PNG and BMP (stb_image) decoded
 * to 8-bit interleaved RGB. Host only.
 */
#ifndef KFA_IMAGE_LOAD_H
#define KFA_IMAGE_LOAD_H

#include <stddef.h>
#include <stdint.h>

#define KFA_IMAGE_MAX_SIDE 8192u /* refuse larger images: 8192^2 * 3 = 192 MiB */

struct kfa_loaded_image {
    uint8_t *rgb; /* width * height * 3 bytes, interleaved RGB; free with image_free */
    uint32_t width;
    uint32_t height;
    int from_stb; /* which allocator owns rgb (internal) */
};

/*
 * kfa_image_load - decode the image file at path into *img (3 channels, grey and alpha
 * images converted by stb_image). Returns 0, or -1 with a one-line reason in
 * errbuf[0..errlen) (file missing, unknown format, corrupt, larger than
 * KFA_IMAGE_MAX_SIDE). On success the caller owns img->rgb.
 */
int kfa_image_load(const char *path, struct kfa_loaded_image *img, char *errbuf, size_t errlen);

/* kfa_image_free - release img->rgb and zero *img; NULL or an empty image is fine. */
void kfa_image_free(struct kfa_loaded_image *img);

#endif /* KFA_IMAGE_LOAD_H */
