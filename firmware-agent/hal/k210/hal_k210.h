/* SPDX-License-Identifier: MIT */
/* Internal links between the hal/k210 files. */
#ifndef KFA_HAL_K210_H
#define KFA_HAL_K210_H

#include <stdint.h>

#include "rv64/rv64.h"

static inline uint32_t k210_rd(uintptr_t base, uint32_t off)
{
    return kfa_mmio_read32(base + off);
}

static inline void k210_wr(uintptr_t base, uint32_t off, uint32_t v)
{
    kfa_mmio_write32(base + off, v);
}

/* clock: the CPU rate after k210_clock_init, and a busy wait on mtime. */
uint32_t k210_cpu_hz(void);
void k210_delay_us(uint32_t us);

/* spi3 flash: probe the chip; 0 or KFA_HAL_E_NODEV. */
int k210_flash_init(void);
/* spi3 flash: the chip's 64-bit unique id (Winbond-style 0x4B), 0 if it has none. */
int k210_flash_uid(uint8_t out[8]);

/* camera: power, clocks, SCCB probe; KFA_HAL_E_NODEV when no sensor answers. */
int k210_camera_init(void);
/* camera / KPU interrupt handlers, called from the PLIC dispatcher. */
void k210_dvp_irq(void);
void k210_kpu_irq(void);
/* camera: 1 when a frame is ready for kfa_hal_camera_get. */
int k210_camera_ready(void);
/* KPU: clocks, FIFO thresholds, interrupt. */
void k210_kpu_init(void);
/* KPU: model RAM may have changed (a flash read): write layer tables back again. */
void k210_kpu_memory_changed(void);

#endif /* KFA_HAL_K210_H */
