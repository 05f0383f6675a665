/* SPDX-License-Identifier: MIT */
/* PLIC access shared by the K210 and QEMU images (register facts in plic.h). */
#include "plic.h"

#include "rv64.h"

#define PLIC_PRIORITY 0x0u
#define PLIC_ENABLE 0x2000u
#define PLIC_ENABLE_STRIDE 0x80u
#define PLIC_CONTEXT 0x200000u
#define PLIC_CONTEXT_STRIDE 0x1000u
#define PLIC_CLAIM 4u

static uintptr_t ctx_reg(uint32_t ctx)
{
    return KFA_PLIC_BASE + PLIC_CONTEXT + (uintptr_t)PLIC_CONTEXT_STRIDE * ctx;
}

void kfa_plic_init(uint32_t ctx, uint32_t irq_count)
{
    for (uint32_t w = 0; w < (irq_count + 31u) / 32u; w++)
        kfa_mmio_write32(KFA_PLIC_BASE + PLIC_ENABLE + PLIC_ENABLE_STRIDE * ctx + 4u * w, 0);
    kfa_mmio_write32(ctx_reg(ctx), 0); /* threshold: every priority >= 1 interrupts */
}

void kfa_plic_enable(uint32_t ctx, uint32_t irq)
{
    uintptr_t en = KFA_PLIC_BASE + PLIC_ENABLE + PLIC_ENABLE_STRIDE * ctx + 4u * (irq / 32u);

    kfa_mmio_write32(KFA_PLIC_BASE + PLIC_PRIORITY + 4u * irq, 1u);
    kfa_mmio_write32(en, kfa_mmio_read32(en) | (1u << (irq % 32u)));
}

uint32_t kfa_plic_claim(uint32_t ctx)
{
    return kfa_mmio_read32(ctx_reg(ctx) + PLIC_CLAIM);
}

void kfa_plic_complete(uint32_t ctx, uint32_t irq)
{
    kfa_mmio_write32(ctx_reg(ctx) + PLIC_CLAIM, irq);
}
