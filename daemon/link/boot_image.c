/* SPDX-License-Identifier: MIT */
/* The K210 boot ROM's flash image format (see boot_image.h). */
#include "boot_image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

int kpud_boot_image_wrap(const uint8_t *fw, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *img;

    if (!fw || len == 0 || len > UINT32_MAX - KPUD_BOOT_IMAGE_OVERHEAD)
        return -EINVAL;
    img = malloc(len + KPUD_BOOT_IMAGE_OVERHEAD);
    if (!img)
        return -ENOMEM;
    img[0] = 0; /* no AES */
    img[1] = (uint8_t)len;
    img[2] = (uint8_t)(len >> 8);
    img[3] = (uint8_t)(len >> 16);
    img[4] = (uint8_t)(len >> 24);
    memcpy(img + 5, fw, len);
    kfa_sha256(img, len + 5, img + 5 + len);
    *out = img;
    *out_len = len + KPUD_BOOT_IMAGE_OVERHEAD;
    return 0;
}
