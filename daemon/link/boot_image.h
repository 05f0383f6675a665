/* SPDX-License-Identifier: MIT */
/*
 * The K210 boot ROM's flash image format (shared/research/usb-bridges.md §1.6 item 7,
 * after kendryte/kflash.py): one AES flag byte (0: plain), the firmware length as u32
 * little-endian, the firmware, and the SHA-256 of everything before it. kpud wraps the
 * agent's raw .bin (what the ROM ISP loads into SRAM) in it for `kpuctl agent flash`.
 */
#ifndef KPUD_BOOT_IMAGE_H
#define KPUD_BOOT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define KPUD_BOOT_IMAGE_OVERHEAD 37u /* 5-byte header + 32-byte SHA-256 */

/*
 * kpud_boot_image_wrap - the boot image of firmware fw (len bytes, 1..2^32-38) in a new
 * buffer *out of *out_len bytes (caller frees). Returns 0, -EINVAL or -ENOMEM.
 */
int kpud_boot_image_wrap(const uint8_t *fw, size_t len, uint8_t **out, size_t *out_len);

#endif
