/* SPDX-License-Identifier: MIT */
/*
 * The C half of the trap entry in crt0.S: machine external interrupts go to the board's
 * handler; anything else (an exception, or an interrupt nobody enabled) is fatal: the
 * cause, pc and trap value are written to the trap record in the no-init region, and the
 * board resets (K210: watchdog; QEMU: restart GPIO). The agent reports the record as its
 * reset cause after the restart. Facts: RISC-V Privileged Architecture v1.10 §3.1.20
 * (mcause codes), §3.1.21 (mtval).
 */
#include "rv64.h"

extern uint8_t __kfa_noinit_start[], __kfa_noinit_end[];

static struct kfa_rv64_trap_record *record(void)
{
    return (struct kfa_rv64_trap_record *)(void *)__kfa_noinit_start;
}

uint8_t *kfa_rv64_noinit(size_t *size)
{
    size_t n = (size_t)(__kfa_noinit_end - __kfa_noinit_start);

    if (size)
        *size = n > KFA_RV64_NOINIT_BOARD ? n - KFA_RV64_NOINIT_BOARD : 0;
    return __kfa_noinit_start + KFA_RV64_NOINIT_BOARD;
}

const struct kfa_rv64_trap_record *kfa_rv64_trap_last(void)
{
    const struct kfa_rv64_trap_record *r = record();

    return r->magic == KFA_RV64_TRAP_MAGIC ? r : NULL;
}

void kfa_rv64_trap_forget(void)
{
    record()->magic = 0;
}

/* Called by kfa_rv64_trap_entry with the trap CSRs; returns only for handled interrupts. */
void kfa_rv64_trap(uint64_t mcause, uint64_t mepc, uint64_t mtval);

void kfa_rv64_trap(uint64_t mcause, uint64_t mepc, uint64_t mtval)
{
    struct kfa_rv64_trap_record *r = record();

    if (mcause == (KFA_MCAUSE_INTERRUPT | KFA_MCAUSE_MEI)) {
        kfa_rv64_board_irq();
        return;
    }
    if (mcause == (KFA_MCAUSE_INTERRUPT | KFA_MCAUSE_MTI)) {
        /* Only a wait's wake-up: the waiter re-arms the timer when it needs it again. */
        kfa_csr_clear(mie, KFA_MIE_MTIE);
        return;
    }
    if (r->magic != KFA_RV64_TRAP_MAGIC)
        r->count = 0;
    r->magic = KFA_RV64_TRAP_MAGIC;
    r->count++;
    r->mcause = mcause;
    r->mepc = mepc;
    r->mtval = mtval;
    kfa_rv64_board_fatal();
}
