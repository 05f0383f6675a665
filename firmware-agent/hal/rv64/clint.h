/* SPDX-License-Identifier: MIT */
/*
 * The core-local interruptor (CLINT) of the K210 and of QEMU sifive_u, both at 0x02000000
 * with the SiFive layout: msip[hart] at +0x0 + 4*hart, mtimecmp[hart] at +0x4000 + 8*hart,
 * mtime at +0xBFF8. Sources: kendryte/kendryte-standalone-sdk lib/drivers/include/clint.h
 * (clint_t: msip, mtimecmp, mtime; CLINT_BASE_ADDR in platform.h), SiFive FU540-C000 manual
 * v1p0 ch. 9, QEMU hw/intc/riscv_aclint.c. mtime ticks at the board's timebase: 1 MHz on
 * QEMU sifive_u (device tree timebase-frequency 0xf4240), CPU clock / 50 on the K210
 * (SDK clint.h CLINT_CLOCK_DIV).
 */
#ifndef KFA_CLINT_H
#define KFA_CLINT_H

#include <stdint.h>

#include "rv64.h"

#define KFA_CLINT_BASE 0x02000000u
#define KFA_CLINT_MTIMECMP 0x4000u
#define KFA_CLINT_MTIME 0xBFF8u

static inline uint64_t kfa_clint_mtime(void)
{
    return kfa_mmio_read64(KFA_CLINT_BASE + KFA_CLINT_MTIME);
}

static inline void kfa_clint_set_cmp(uint32_t hart, uint64_t when)
{
    kfa_mmio_write64(KFA_CLINT_BASE + KFA_CLINT_MTIMECMP + 8u * hart, when);
}

#endif /* KFA_CLINT_H */
