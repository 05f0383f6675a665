/* SPDX-License-Identifier: MIT */
/*
 * kmodel v3 runtime: loader and interpreter for K210 model files (nncase 0.1 format).
 * Portable C11, compiled for the host and for the firmware. It allocates nothing: the
 * model file stays in the caller's buffer, and a run works in a caller-supplied main
 * buffer (kfa_kmodel_main_size() bytes) and the KPU RAM image (kfa_hal_kpu_ram()).
 * K210_CONV layers go to kfa_hal_kpu_conv(); every other layer runs here on the CPU.
 *
 * Format facts: ../shared/research/kmodel-facts.md (SDK kpu.h / kpu.c, nncase 0.1).
 * A kmodel file is untrusted input: kfa_kmodel_load() checks every offset and size, so
 * that kfa_kmodel_run() on a loaded model never reads or writes out of bounds.
 */
#ifndef KFA_KMODEL_H
#define KFA_KMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "hal/hal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Errors (negative). */
#define KFA_KMODEL_E_FORMAT (-1)      /* not kmodel v3 (v4, v5, byte-swapped, unknown) */
#define KFA_KMODEL_E_TRUNCATED (-2)   /* file shorter than its header or tables say */
#define KFA_KMODEL_E_BOUNDS (-3)      /* an offset or size points outside its region */
#define KFA_KMODEL_E_UNSUPPORTED (-4) /* layer type or parameter this runtime cannot run */
#define KFA_KMODEL_E_INPUT (-5)       /* input size does not match the model */
#define KFA_KMODEL_E_BUFFER (-6)      /* caller's main buffer too small */

#define KFA_KMODEL_MAX_LAYERS 1024u
#define KFA_KMODEL_MAX_OUTPUTS 16u

/* Filled by load and run on failure: what went wrong, where. */
struct kfa_kmodel_error {
    int code;            /* KFA_KMODEL_E_* */
    int32_t layer;       /* layer index, -1 for the header */
    uint32_t layer_type; /* that layer's type id, 0 for the header */
    char text[160]; /* one line, e.g. "layer 3 (K210_CONV): weights end 9000 > body end 8800" */
};

enum kfa_input_kind {
    KFA_INPUT_U8_CHW = 0, /* first layer K210_CONV: uint8 planar, C x H x W */
    KFA_INPUT_F32 = 1,    /* first layer FULLY_CONNECTED: in_channels float32 */
};

/* A loaded model: a validated view into the caller's file buffer. */
struct kfa_kmodel {
    const uint8_t *data; /* the file; must outlive the model */
    size_t size;
    uint32_t flags; /* header flags; bit 0 = 8-bit weights */
    uint32_t layer_count;
    uint32_t main_mem_usage;
    uint32_t output_count;
    enum kfa_input_kind input_kind;
    uint32_t input_c, input_h, input_w; /* for U8_CHW; input_c = in_channels for F32 */
    size_t input_bytes;                 /* bytes kfa_kmodel_run() expects */
    uint32_t kpu_ram_peak;              /* highest KPU RAM byte touched + 1 */
    size_t main_size;                   /* main buffer bytes a run needs (>= main_mem_usage) */
    /* Added by the runtime for inspection; filled by kfa_kmodel_load(). */
    size_t layers_offset; /* file offset of the layer header table */
    size_t bodies_offset; /* file offset of layer 0's body */
    uint64_t total_macs;  /* multiply-accumulates of all K210_CONV layers */
};

/* One layer as kfa_kmodel_layer_info() describes it (for `kpu-agent-sim inspect`). */
struct kfa_kmodel_layer_info {
    uint32_t index;
    uint32_t type;      /* layer type id (kmodel-facts.md §2.1) */
    const char *name;   /* kfa_kmodel_layer_name(type) */
    size_t body_offset; /* file offset of the body */
    uint32_t body_size; /* declared body size (may end up to 4 bytes past EOF) */
    uint32_t flags;     /* body word 0; bit 0 = KLF_MAIN_MEM_OUT */
    /* K210_CONV only; zero for other layers. */
    uint32_t in_c, in_h, in_w;           /* conv input */
    uint32_t out_c, out_h, out_w;        /* after pooling */
    uint32_t kernel;                     /* 1 or 3 */
    uint32_t depthwise;                  /* 1 for depthwise */
    uint32_t pool_type;                  /* 0..9, kmodel-facts.md §3.4 */
    uint32_t kpu_src_line, kpu_dst_line; /* KPU RAM 64-byte line addresses */
    uint32_t main_out;                   /* main buffer offset of the dense copy, if flags bit 0 */
    uint64_t macs;                       /* multiply-accumulates */
};

/*
 * kfa_kmodel_load - parse and validate a kmodel v3 file held in data[0..size).
 * Returns 0 and fills *m, or a negative KFA_KMODEL_E_* with *err describing the first
 * problem (err may be NULL). v4/v5 and byte-swapped v3 files get KFA_KMODEL_E_FORMAT with
 * a text that names the format.
 */
int kfa_kmodel_load(struct kfa_kmodel *m, const uint8_t *data, size_t size,
                    struct kfa_kmodel_error *err);

/* kfa_kmodel_main_size - bytes the main buffer passed to kfa_kmodel_run() must have. */
size_t kfa_kmodel_main_size(const struct kfa_kmodel *m);

/*
 * kfa_kmodel_run - run the model once on input (input_len must equal m->input_bytes),
 * using main_buf (main_len >= kfa_kmodel_main_size(m)) and kpu_ram (KFA_KPU_RAM_SIZE).
 * Returns 0, or a negative KFA_KMODEL_E_* with *err filled (err may be NULL).
 */
int kfa_kmodel_run(const struct kfa_kmodel *m, const void *input, size_t input_len,
                   uint8_t *main_buf, size_t main_len, uint8_t *kpu_ram, enum kfa_rounding rounding,
                   struct kfa_kmodel_error *err);

/*
 * kfa_kmodel_output - output i of the last run: *out points into main_buf, *out_len is its
 * size in bytes (float32 values for the shared models). Returns 0 or KFA_KMODEL_E_BOUNDS
 * for a bad index.
 */
int kfa_kmodel_output(const struct kfa_kmodel *m, const uint8_t *main_buf, uint32_t i,
                      const void **out, size_t *out_len);

/* kfa_kmodel_layer_name - "K210_CONV", "DEQUANTIZE", ...; "UNKNOWN" for other ids. */
const char *kfa_kmodel_layer_name(uint32_t type);

/*
 * kfa_kmodel_layer_info - describe layer i of a loaded model into *info (added for
 * inspection). Returns 0, or KFA_KMODEL_E_BOUNDS if i >= m->layer_count.
 */
int kfa_kmodel_layer_info(const struct kfa_kmodel *m, uint32_t i,
                          struct kfa_kmodel_layer_info *info);

/* kfa_kmodel_strerror - a short constant name for a KFA_KMODEL_E_* code ("truncated"). */
const char *kfa_kmodel_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* KFA_KMODEL_H */
