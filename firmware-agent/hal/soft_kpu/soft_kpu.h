/* SPDX-License-Identifier: MIT */
/*
 * Software emulation of the K210 KPU for the POSIX and QEMU HAL backends: it implements
 * kfa_hal_kpu_conv() and kfa_hal_kpu_ram() of hal/hal.h, and exposes the two conv
 * implementations it contains so tests and benchmarks can compare them:
 *
 *   fast   gathered planes, int32 multiply-accumulate over rows (AVX-512 VNNI or AVX2 on
 *          x86-64 when the CPU has them, chosen at run time), running sums, batch-norm and
 *          activation in int32 vectors where the ranges provably fit; used by
 *          kfa_hal_kpu_conv() by default
 *   naive  the straightforward per-pixel int64 loop of kmodel-facts.md §3.3-§3.4, the
 *          reference the fast path must match bit for bit
 *
 * All state is static (no allocation); not thread-safe.
 */
#ifndef KFA_SOFT_KPU_H
#define KFA_SOFT_KPU_H

#include <stdint.h>

#include "hal/hal.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kfa_soft_kpu_impl {
    KFA_SOFT_KPU_FAST = 0,  /* default */
    KFA_SOFT_KPU_NAIVE = 1, /* reference loop */
    KFA_SOFT_KPU_CHECK = 2, /* run both on copies, keep the naive result, count mismatches */
};

/* kfa_soft_kpu_set_impl - choose what kfa_hal_kpu_conv() runs (test and bench door). */
void kfa_soft_kpu_set_impl(enum kfa_soft_kpu_impl impl);

/*
 * kfa_soft_kpu_conv_naive / kfa_soft_kpu_conv_fast - run one K210_CONV layer exactly as
 * kfa_hal_kpu_conv() documents. Both validate the argument first (KFA_HAL_E_RANGE when it
 * describes something the KPU cannot do, or weights/main_out are too short). The fast one
 * falls back to the naive one for layers it does not cover (16-bit weights, layers larger
 * than its scratch) and counts that in kfa_soft_kpu_fallbacks().
 */
int kfa_soft_kpu_conv_naive(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram,
                            enum kfa_rounding rounding);
int kfa_soft_kpu_conv_fast(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram,
                           enum kfa_rounding rounding);

/*
 * kfa_soft_kpu_check_counts - in KFA_SOFT_KPU_CHECK mode: layers compared so far and how
 * many of them differed (KPU RAM image or main_out) between fast and naive. Either
 * pointer may be NULL.
 */
void kfa_soft_kpu_check_counts(uint32_t *layers, uint32_t *mismatches);

/* kfa_soft_kpu_fallbacks - how many layers the fast path handed to the naive one so far. */
uint32_t kfa_soft_kpu_fallbacks(void);

/*
 * How the fast path post-processed (batch-norm + activation) each output channel so far:
 * vector  the int32 AVX2 loop (every value provably within int32, see kpu_fast.c)
 * constant  the whole plane maps to one value (checked on its acc range)
 * scalar  the int64 formula per pixel (ranges too wide, or no AVX2)
 */
struct kfa_soft_kpu_fast_stats {
    uint32_t vector, constant, scalar;
};

/* kfa_soft_kpu_fast_stats - copy the counters into *out (test and bench door). */
void kfa_soft_kpu_fast_stats(struct kfa_soft_kpu_fast_stats *out);

/* Instruction sets the fast path can use, each including the ones before. */
enum kfa_soft_kpu_isa {
    KFA_SOFT_KPU_ISA_PORTABLE = 0,   /* plain C (SSE2 on x86-64) */
    KFA_SOFT_KPU_ISA_AVX2 = 1,       /* AVX2 GEMM, depthwise, post */
    KFA_SOFT_KPU_ISA_AVX512VNNI = 2, /* + AVX-512 VNNI GEMM for normal convs */
    KFA_SOFT_KPU_ISA_BEST = 3,       /* whatever the CPU has (default) */
};

/*
 * kfa_soft_kpu_limit_isa - let the fast path use at most cap (test and bench door: every
 * level must give the same bytes). Returns the level now in effect, i.e. the lower of cap
 * and what the CPU supports.
 */
int kfa_soft_kpu_limit_isa(enum kfa_soft_kpu_isa cap);

#ifdef __cplusplus
}
#endif

#endif /* KFA_SOFT_KPU_H */
