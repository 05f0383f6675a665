/* SPDX-License-Identifier: MIT */
/*
 * Internal to hal/soft_kpu: argument validation shared by the naive and fast convs, and
 * the static staging buffer both use when writing a layer's output.
 */
#ifndef KFA_SOFT_KPU_INT_H
#define KFA_SOFT_KPU_INT_H

#include <stddef.h>
#include <stdint.h>

#include "hal/hal.h"
#include "kmodel/kpu_layer.h"

/* Biggest shift the emulation applies; wider fields are clamped (shift >= 64 is UB in C). */
#define SOFT_KPU_MAX_SHIFT 63u

/*
 * soft_kpu_prepare - decode conv->arg into *l and check that the layer is runnable and
 * that weights, bn, act and main_out are long enough. Returns 0 or KFA_HAL_E_RANGE.
 */
int soft_kpu_prepare(const struct kfa_kpu_conv *conv, struct kfa_kpu_layer *l);

/* Dense C x H x W staging for a layer's output (at most the 2 MiB of KPU RAM, §4). */
extern uint8_t soft_kpu_stage[KFA_KPU_RAM_SIZE];

/* soft_kpu_write_out - copy the dense staged output into KPU RAM and main_out. */
void soft_kpu_write_out(const struct kfa_kpu_conv *conv, const struct kfa_kpu_layer *l,
                        const uint8_t *dense, uint8_t *kpu_ram);

#endif /* KFA_SOFT_KPU_INT_H */
