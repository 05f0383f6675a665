/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (FIPS 180-4), streaming. The K210 boot ROM checks a SHA-256 over the image it
 * loads from flash (usb-bridges.md §1.6 item 7): the agent verifies an image before it
 * writes its own flash, and kpud builds that digest when it wraps a firmware .bin. No
 * heap, no tables beyond the 64 round constants; portable to the firmware.
 */
#ifndef KFA_SHA256_H
#define KFA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KFA_SHA256_LEN 32u

struct kfa_sha256 {
    uint32_t h[8];
    uint64_t bytes;    /* message length so far */
    uint8_t block[64]; /* pending partial block */
    size_t fill;       /* bytes in block */
};

/* kfa_sha256_init - start a new digest in ctx. */
void kfa_sha256_init(struct kfa_sha256 *ctx);

/* kfa_sha256_update - hash len more bytes of data (data may be NULL when len is 0). */
void kfa_sha256_update(struct kfa_sha256 *ctx, const void *data, size_t len);

/* kfa_sha256_final - finish and write the 32-byte digest to out; ctx must be re-initialised
 * before it is used again. */
void kfa_sha256_final(struct kfa_sha256 *ctx, uint8_t out[KFA_SHA256_LEN]);

/* kfa_sha256 - one-shot digest of len bytes at data into out. */
void kfa_sha256(const void *data, size_t len, uint8_t out[KFA_SHA256_LEN]);

#ifdef __cplusplus
}
#endif

#endif /* KFA_SHA256_H */
