/* SPDX-License-Identifier: MIT */
/*
 * A small kmodel v3 writer for tests: builds files layer by layer in the layout of
 * ../shared/research/kmodel-facts.md §2 (header, outputs, layer headers, bodies padded to
 * 8 bytes) and encodes K210 layer arguments (§3.1) independently of the runtime's decoder.
 * Test-only: it uses malloc and aborts on allocation failure.
 */
#ifndef KMODEL_WRITER_H
#define KMODEL_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct kmw;

/* A K210 layer argument in plain fields (counts, not minus one). */
struct kmw_conv {
    uint32_t in_c, in_h, in_w, out_c;
    uint32_t ksize; /* 1 or 3 */
    uint32_t depthwise;
    uint32_t pool_type; /* 0..9 */
    uint32_t pad_value;
    uint32_t src_line, dst_line;
    int32_t arg_x, arg_w;
    uint32_t shr_x, shr_w;
    int64_t arg_add;
    int eight_bit;       /* weights u8 (1) or u16 (0) */
    const void *weights; /* oc*ic*k^2 or c*k^2 entries */
    const uint64_t *bn;  /* out_c words */
    const uint8_t *act;  /* 144 bytes */
    uint32_t main_out;   /* main buffer address if has_main_out */
    int has_main_out;
};

/* kmw_new - start a model; flags bit 0 = 8-bit weights. */
struct kmw *kmw_new(uint32_t flags, uint32_t main_mem_usage);

/* kmw_output - declare output (address, size) in the main buffer. */
void kmw_output(struct kmw *w, uint32_t address, uint32_t size);

/* kmw_layer - append a layer with a raw body (copied). */
void kmw_layer(struct kmw *w, uint32_t type, const void *body, size_t len);

/* kmw_layer_words - append a layer whose body is n little-endian u32 words. */
void kmw_layer_words(struct kmw *w, uint32_t type, const uint32_t *words, size_t n);

/* kmw_conv_layer - append a K210_CONV layer; parameters are laid out in its body. */
void kmw_conv_layer(struct kmw *w, const struct kmw_conv *c);

/* kmw_finish - the file bytes (malloc'd, caller frees) and its size; frees w. */
uint8_t *kmw_finish(struct kmw *w, size_t *size);

/* kmw_encode_arg - the 96-byte kpu_layer_argument_t for c (§3.1, §4 layouts). */
void kmw_encode_arg(const struct kmw_conv *c, uint8_t arg[96]);

/* kmw_bn - one batch-norm word: mul (24-bit), shift (4-bit), add (32-bit). */
uint64_t kmw_bn(int32_t mul, uint32_t shift, int32_t add);

/* kmw_act_segment - write segment i of a 144-byte activation table. */
void kmw_act_segment(uint8_t act[144], unsigned i, int64_t x_start, int32_t y_mul, uint32_t shift,
                     uint8_t bias);

#endif /* KMODEL_WRITER_H */
