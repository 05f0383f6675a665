/* SPDX-License-Identifier: MIT */
/*
 * The HAL's KPU entry points for backends without a KPU (POSIX simulator, QEMU): a static
 * 2 MiB KPU RAM image and kfa_hal_kpu_conv() dispatching to the fast or naive emulation.
 */
#include "hal/soft_kpu/soft_kpu.h"

#include <string.h>

#include "hal/soft_kpu/soft_kpu_int.h"

static uint8_t kpu_ram_image[KFA_KPU_RAM_SIZE];
static enum kfa_soft_kpu_impl current_impl = KFA_SOFT_KPU_FAST;
uint8_t soft_kpu_stage[KFA_KPU_RAM_SIZE];
static uint8_t check_ram[KFA_KPU_RAM_SIZE];
static uint8_t check_main[KFA_KPU_RAM_SIZE];
static uint32_t check_layers, check_mismatches;

uint8_t *kfa_hal_kpu_ram(void)
{
    return kpu_ram_image;
}

void kfa_soft_kpu_set_impl(enum kfa_soft_kpu_impl impl)
{
    current_impl = impl;
}

int kfa_hal_kpu_conv(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram, enum kfa_rounding rounding)
{
    if (current_impl == KFA_SOFT_KPU_NAIVE)
        return kfa_soft_kpu_conv_naive(conv, kpu_ram, rounding);
    if (current_impl == KFA_SOFT_KPU_CHECK) {
        struct kfa_kpu_conv c2 = *conv;
        int r1, r2;
        memcpy(check_ram, kpu_ram, KFA_KPU_RAM_SIZE);
        if (c2.main_out) {
            if (c2.main_out_len > sizeof check_main)
                return KFA_HAL_E_RANGE;
            c2.main_out = check_main;
        }
        r2 = kfa_soft_kpu_conv_fast(&c2, check_ram, rounding);
        r1 = kfa_soft_kpu_conv_naive(conv, kpu_ram, rounding);
        check_layers++;
        if (r1 != r2 || memcmp(check_ram, kpu_ram, KFA_KPU_RAM_SIZE) != 0 ||
            (conv->main_out && r1 == 0 && memcmp(check_main, conv->main_out, conv->main_out_len)))
            check_mismatches++;
        return r1;
    }
    return kfa_soft_kpu_conv_fast(conv, kpu_ram, rounding);
}

void kfa_soft_kpu_check_counts(uint32_t *layers, uint32_t *mismatches)
{
    if (layers)
        *layers = check_layers;
    if (mismatches)
        *mismatches = check_mismatches;
}

int soft_kpu_prepare(const struct kfa_kpu_conv *conv, struct kfa_kpu_layer *l)
{
    struct kfa_kpu_check why;
    if (!conv || !conv->arg || !conv->weights || !conv->bn || !conv->act)
        return KFA_HAL_E_RANGE;
    kfa_kpu_layer_decode(conv->arg, l);
    if (kfa_kpu_layer_check(l, &why) < 0)
        return KFA_HAL_E_RANGE;
    if (kfa_kpu_weights_bytes(l, conv->eight_bit) > conv->weights_len)
        return KFA_HAL_E_RANGE;
    if (conv->main_out && conv->main_out_len < l->dma_bytes)
        return KFA_HAL_E_RANGE;
    return 0;
}

void soft_kpu_write_out(const struct kfa_kpu_conv *conv, const struct kfa_kpu_layer *l,
                        const uint8_t *dense, uint8_t *kpu_ram)
{
    const struct kfa_kpu_map *o = &l->out;
    const uint8_t *src = dense;
    for (uint32_t c = 0; c < o->c; c++)
        for (uint32_t y = 0; y < o->h; y++) {
            memcpy(kpu_ram + kfa_kpu_map_offset(o, c, y, 0), src, o->w);
            src += o->w;
        }
    if (conv->main_out)
        memcpy(conv->main_out, dense, l->dma_bytes);
}
