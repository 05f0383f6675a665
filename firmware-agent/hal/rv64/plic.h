/* SPDX-License-Identifier: MIT */
/*
 * The platform-level interrupt controller (PLIC) of the K210 and QEMU sifive_u, both at
 * 0x0C000000 with the SiFive layout: priority[irq] at +4*irq, enable bits of context c at
 * +0x2000 + 0x80*c, threshold of context c at +0x200000 + 0x1000*c, claim/complete at
 * threshold + 4. Sources: kendryte/kendryte-standalone-sdk lib/drivers/include/plic.h
 * (plic_t: source_priorities, pending_bits, target_enables, targets), RISC-V PLIC spec
 * v1.0.0 §3, QEMU hw/intc/sifive_plic.c. The context of a hart's M mode is per board
 * (K210: 2*hart; QEMU sifive_u: hart 0 -> 0, hart h >= 1 -> 2h-1, from its "M,MS" config).
 */
#ifndef KFA_PLIC_H
#define KFA_PLIC_H

#include <stdint.h>

#define KFA_PLIC_BASE 0x0C000000u

/*
 * kfa_plic_init - for context ctx: threshold 0, every source of irq_count disabled.
 */
void kfa_plic_init(uint32_t ctx, uint32_t irq_count);

/* kfa_plic_enable - priority 1 for irq and enable it for ctx. */
void kfa_plic_enable(uint32_t ctx, uint32_t irq);

/* kfa_plic_claim - the highest pending irq of ctx (0: none); complete it when handled. */
uint32_t kfa_plic_claim(uint32_t ctx);

/* kfa_plic_complete - tell the PLIC that irq of ctx has been handled. */
void kfa_plic_complete(uint32_t ctx, uint32_t irq);

#endif /* KFA_PLIC_H */
