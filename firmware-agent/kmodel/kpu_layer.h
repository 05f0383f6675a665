/* SPDX-License-Identifier: MIT */
/*
 * The K210 KPU layer argument (twelve little-endian u64 words, kpu_layer_argument_t),
 * decoded into plain fields, plus the feature-map layout in KPU RAM and the checks that
 * make a layer safe to run. Shared by the kmodel loader (which validates every K210_CONV
 * at load time) and the software KPU in hal/soft_kpu (which checks again, since the HAL
 * entry point may be called directly). Header-only, portable C11, no allocation.
 *
 * Facts: ../shared/research/kmodel-facts.md §3.1 (bit fields, SDK kpu.h:31-190),
 * §3.2 (BN and activation tables), §3.4 (pool types) and §4 (KPU RAM layout).
 */
#ifndef KFA_KPU_LAYER_H
#define KFA_KPU_LAYER_H

#include <stddef.h>
#include <stdint.h>

#define KFA_KPU_LINE_BYTES 64u /* KPU RAM is addressed in 64-byte lines (§4) */
#define KFA_KPU_LINES 32768u   /* 2 MiB / 64 */
#define KFA_KPU_ARG_BYTES 96u  /* 12 x u64 (§3.1) */
#define KFA_KPU_BN_BYTES 8u    /* one u64 per output channel (§3.2) */
#define KFA_KPU_ACT_BYTES 144u /* 16 x u64 segments + 16 x u8 bias (§3.2) */
#define KFA_KPU_ACT_SEGMENTS 16u
#define KFA_KPU_POOL_TYPES 10u /* pool_type 0..9 (§3.4) */

/* Pool types, kmodel-facts.md §3.4 (NN02 k210_sim_types.h:231-243). */
enum kfa_kpu_pool {
    KFA_KPU_POOL_BYPASS = 0,
    KFA_KPU_POOL_MAX_2_S2 = 1,
    KFA_KPU_POOL_MEAN_2_S2 = 2,
    KFA_KPU_POOL_MAX_4_S4 = 3,
    KFA_KPU_POOL_MEAN_4_S4 = 4,
    KFA_KPU_POOL_LEFT_TOP_2_S2 = 5,
    KFA_KPU_POOL_RIGHT_TOP_2_S2 = 6,
    KFA_KPU_POOL_LEFT_TOP_4_S4 = 7,
    KFA_KPU_POOL_MEAN_2_S1 = 8,
    KFA_KPU_POOL_MAX_2_S1 = 9,
};

/* A C x H x W uint8 feature map in KPU RAM, as the argument describes it (§4). */
struct kfa_kpu_map {
    uint32_t c, h, w;   /* channels, rows, columns */
    uint32_t base;      /* first 64-byte line */
    uint32_t ch_lines;  /* channel_switch_addr: lines per channel group */
    uint32_t row_lines; /* row_switch_addr: lines per row */
    uint32_t group;     /* coef_group: channels side by side in one line (1, 2 or 4) */
};

/* One decoded kpu_layer_argument_t (§3.1); counts are already +1. */
struct kfa_kpu_layer {
    struct kfa_kpu_map in;  /* conv input (image_src_addr, i_*, channel/row switch) */
    struct kfa_kpu_map out; /* pooled output (image_dst_addr, o_*, wb_* fields) */
    uint32_t depthwise;     /* word 0 bit 3 */
    uint32_t kernel_type;   /* 0 = 1x1, 1 = 3x3 */
    uint32_t ksize;         /* 1 or 3 (3 for kernel_type 1, else 1) */
    uint32_t pool_type;     /* enum kfa_kpu_pool */
    uint32_t pad_value;     /* uint8 code of the 3x3 border */
    uint32_t oc_per_load;   /* o_ch_num_coef + 1 */
    uint32_t load_time;     /* weight loads - 1 */
    uint32_t para_size;     /* bytes per weight load */
    uint32_t shr_w, shr_x;  /* 4-bit shifts */
    int32_t arg_w, arg_x;   /* signed 24-bit */
    int64_t arg_add;        /* signed 40-bit */
    uint32_t dma_bytes;     /* dma_total_byte + 1 */
};

/* Little-endian loads that do not care about alignment. */
static inline uint32_t kfa_ld_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t kfa_ld_u64le(const uint8_t *p)
{
    return (uint64_t)kfa_ld_u32le(p) | (uint64_t)kfa_ld_u32le(p + 4) << 32;
}

/* Bits [lo, lo+n) of w. */
static inline uint64_t kfa_kpu_bits(uint64_t w, unsigned lo, unsigned n)
{
    return (w >> lo) & ((n >= 64) ? ~0ull : ((1ull << n) - 1u));
}

/* Sign-extend the low n bits of v (to_signed<N>, NN02 k210_ops.cpp:161-190). */
static inline int64_t kfa_kpu_sext(uint64_t v, unsigned n)
{
    uint64_t m = 1ull << (n - 1u);
    v &= (n >= 64) ? ~0ull : ((1ull << n) - 1u);
    return (int64_t)((v ^ m) - m);
}

/* kfa_kpu_layer_decode - decode the 96-byte argument at arg into *l. Cannot fail. */
static inline void kfa_kpu_layer_decode(const uint8_t *arg, struct kfa_kpu_layer *l)
{
    uint64_t w[12];
    for (unsigned i = 0; i < 12; i++)
        w[i] = kfa_ld_u64le(arg + 8u * i);
    l->depthwise = (uint32_t)kfa_kpu_bits(w[0], 3, 1);
    l->in.base = (uint32_t)kfa_kpu_bits(w[1], 0, 15);
    l->out.base = (uint32_t)kfa_kpu_bits(w[1], 32, 15);
    l->in.c = (uint32_t)kfa_kpu_bits(w[2], 0, 10) + 1u;
    l->out.c = (uint32_t)kfa_kpu_bits(w[2], 32, 10) + 1u;
    l->oc_per_load = (uint32_t)kfa_kpu_bits(w[2], 48, 10) + 1u;
    l->in.w = (uint32_t)kfa_kpu_bits(w[3], 0, 10) + 1u;
    l->in.h = (uint32_t)kfa_kpu_bits(w[3], 10, 9) + 1u;
    l->out.w = (uint32_t)kfa_kpu_bits(w[3], 32, 10) + 1u;
    l->out.h = (uint32_t)kfa_kpu_bits(w[3], 42, 9) + 1u;
    l->kernel_type = (uint32_t)kfa_kpu_bits(w[4], 0, 3);
    l->ksize = l->kernel_type == 1u ? 3u : 1u;
    l->pool_type = (uint32_t)kfa_kpu_bits(w[4], 4, 4);
    l->pad_value = (uint32_t)kfa_kpu_bits(w[4], 24, 8);
    l->load_time = (uint32_t)kfa_kpu_bits(w[5], 1, 6);
    l->para_size = (uint32_t)kfa_kpu_bits(w[5], 15, 17);
    l->in.ch_lines = (uint32_t)kfa_kpu_bits(w[7], 0, 15);
    l->in.row_lines = (uint32_t)kfa_kpu_bits(w[7], 16, 4);
    l->in.group = (uint32_t)kfa_kpu_bits(w[7], 28, 3);
    l->out.ch_lines = (uint32_t)kfa_kpu_bits(w[8], 0, 15);
    l->out.row_lines = (uint32_t)kfa_kpu_bits(w[8], 16, 4);
    l->out.group = (uint32_t)kfa_kpu_bits(w[8], 20, 3);
    l->shr_w = (uint32_t)kfa_kpu_bits(w[9], 0, 4);
    l->shr_x = (uint32_t)kfa_kpu_bits(w[9], 4, 4);
    l->arg_w = (int32_t)kfa_kpu_sext(kfa_kpu_bits(w[9], 8, 24), 24);
    l->arg_x = (int32_t)kfa_kpu_sext(kfa_kpu_bits(w[9], 32, 24), 24);
    l->arg_add = kfa_kpu_sext(kfa_kpu_bits(w[10], 0, 40), 40);
    l->dma_bytes = (uint32_t)kfa_kpu_bits(w[11], 32, 32) + 1u;
}

/* Byte offset in KPU RAM of element (c, y, x) of map m (§4). */
static inline size_t kfa_kpu_map_offset(const struct kfa_kpu_map *m, uint32_t c, uint32_t y,
                                        uint32_t x)
{
    return (size_t)m->base * KFA_KPU_LINE_BYTES +
           (size_t)(c / m->group) * m->ch_lines * KFA_KPU_LINE_BYTES +
           (size_t)(c % m->group) * (KFA_KPU_LINE_BYTES / m->group) +
           (size_t)y * m->row_lines * KFA_KPU_LINE_BYTES + x;
}

/* Lines the map occupies from its base. */
static inline uint32_t kfa_kpu_map_lines(const struct kfa_kpu_map *m)
{
    return ((m->c + m->group - 1u) / m->group) * m->ch_lines;
}

/* Output size after pool type p of an h x w (or w) conv result (§3.4). */
static inline uint32_t kfa_kpu_pool_out(uint32_t pool_type, uint32_t n)
{
    switch (pool_type) {
    case KFA_KPU_POOL_MAX_2_S2:
    case KFA_KPU_POOL_MEAN_2_S2:
    case KFA_KPU_POOL_LEFT_TOP_2_S2:
    case KFA_KPU_POOL_RIGHT_TOP_2_S2:
        return n / 2u;
    case KFA_KPU_POOL_MAX_4_S4:
    case KFA_KPU_POOL_MEAN_4_S4:
    case KFA_KPU_POOL_LEFT_TOP_4_S4:
        return n / 4u;
    default:
        return n;
    }
}

/* Why a layer argument was refused: "<what> <value> <rel> <limit>". */
struct kfa_kpu_check {
    const char *what;
    uint64_t value;
    const char *rel; /* ">" or "!=" */
    uint64_t limit;
    int bounds; /* 1: an address/size outside its region, 0: unsupported parameter */
};

static inline int kfa_kpu_check_fail(struct kfa_kpu_check *why, const char *what, uint64_t v,
                                     const char *rel, uint64_t limit, int bounds)
{
    why->what = what;
    why->value = v;
    why->rel = rel;
    why->limit = limit;
    why->bounds = bounds;
    return -1;
}

/* Check one map's layout fields; io is "in" or "out" for the message. */
static inline int kfa_kpu_map_check(const struct kfa_kpu_map *m, int is_out,
                                    struct kfa_kpu_check *why)
{
    if (m->group != 1u && m->group != 2u && m->group != 4u)
        return kfa_kpu_check_fail(why, is_out ? "wb_group" : "coef_group", m->group, "!=", 1, 0);
    if (m->row_lines == 0u)
        return kfa_kpu_check_fail(why, is_out ? "wb_row_switch_addr" : "row_switch_addr", 0,
                                  "!=", 1, 0);
    if (m->group > 1u && m->row_lines != 1u)
        return kfa_kpu_check_fail(why, is_out ? "wb_row_switch_addr" : "row_switch_addr",
                                  m->row_lines, "!=", 1, 0);
    if ((uint64_t)m->w > (uint64_t)m->row_lines * KFA_KPU_LINE_BYTES / m->group)
        return kfa_kpu_check_fail(why, is_out ? "output width" : "input width", m->w, ">",
                                  (uint64_t)m->row_lines * KFA_KPU_LINE_BYTES / m->group, 0);
    if ((uint64_t)m->ch_lines < (uint64_t)m->row_lines * m->h)
        return kfa_kpu_check_fail(why, is_out ? "wb_channel_switch_addr" : "channel_switch_addr",
                                  m->ch_lines, "!=", (uint64_t)m->row_lines * m->h, 0);
    if ((uint64_t)m->base + kfa_kpu_map_lines(m) > KFA_KPU_LINES)
        return kfa_kpu_check_fail(why, is_out ? "output end line" : "input end line",
                                  (uint64_t)m->base + kfa_kpu_map_lines(m), ">", KFA_KPU_LINES, 1);
    return 0;
}

/* Weight bytes the layer reads: oc*ic*k^2 (normal) or c*k^2 (depthwise), x2 for 16-bit. */
static inline uint64_t kfa_kpu_weights_bytes(const struct kfa_kpu_layer *l, int eight_bit)
{
    uint64_t n = (uint64_t)l->ksize * l->ksize * l->out.c;
    if (!l->depthwise)
        n *= l->in.c;
    return eight_bit ? n : 2u * n;
}

/*
 * kfa_kpu_layer_check - 0 if the software KPU can run l exactly and every KPU RAM access
 * stays inside the 2 MiB; otherwise -1 with *why filled.
 */
static inline int kfa_kpu_layer_check(const struct kfa_kpu_layer *l, struct kfa_kpu_check *why)
{
    if (l->kernel_type > 1u)
        return kfa_kpu_check_fail(why, "kernel_type", l->kernel_type, ">", 1, 0);
    if (l->pool_type >= KFA_KPU_POOL_TYPES)
        return kfa_kpu_check_fail(why, "pool_type", l->pool_type, ">", KFA_KPU_POOL_TYPES - 1u, 0);
    if (l->depthwise && l->in.c != l->out.c)
        return kfa_kpu_check_fail(why, "depthwise output channels", l->out.c, "!=", l->in.c, 0);
    if (l->out.w != kfa_kpu_pool_out(l->pool_type, l->in.w))
        return kfa_kpu_check_fail(why, "output width", l->out.w,
                                  "!=", kfa_kpu_pool_out(l->pool_type, l->in.w), 0);
    if (l->out.h != kfa_kpu_pool_out(l->pool_type, l->in.h))
        return kfa_kpu_check_fail(why, "output height", l->out.h,
                                  "!=", kfa_kpu_pool_out(l->pool_type, l->in.h), 0);
    if (kfa_kpu_map_check(&l->in, 0, why) < 0 || kfa_kpu_map_check(&l->out, 1, why) < 0)
        return -1;
    if ((uint64_t)l->dma_bytes != (uint64_t)l->out.c * l->out.h * l->out.w)
        return kfa_kpu_check_fail(why, "dma_total_byte+1", l->dma_bytes,
                                  "!=", (uint64_t)l->out.c * l->out.h * l->out.w, 0);
    return 0;
}

#endif /* KFA_KPU_LAYER_H */
