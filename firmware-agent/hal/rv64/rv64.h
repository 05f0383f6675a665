/* SPDX-License-Identifier: MIT */
/*
 * The bare-metal runtime shared by the K210 and QEMU sifive_u images: machine-mode CSR
 * access, the boot and trap entry points of crt0.S/trap.c, the memory-mapped register
 * helpers, and the hooks a board provides. Facts: RISC-V Privileged Architecture v1.10
 * (the K210's version) §3.1 (mstatus, mie, mip, mcause, mtvec).
 */
#ifndef KFA_RV64_H
#define KFA_RV64_H

#include <stddef.h>
#include <stdint.h>

/* mstatus fields (Privileged spec v1.10 §3.1.7, §3.1.11). */
#define KFA_MSTATUS_MIE (1ull << 3)
#define KFA_MSTATUS_FS_INITIAL (1ull << 13)
/* mie / mip bits (§3.1.14): machine timer and machine external interrupts. */
#define KFA_MIE_MTIE (1ull << 7)
#define KFA_MIE_MEIE (1ull << 11)
/* mcause: the top bit marks an interrupt (§3.1.20). */
#define KFA_MCAUSE_INTERRUPT (1ull << 63)
#define KFA_MCAUSE_MEI 11u /* machine external interrupt */
#define KFA_MCAUSE_MTI 7u  /* machine timer interrupt */

#define kfa_csr_read(csr)                                                                          \
    ({                                                                                             \
        uint64_t v_;                                                                               \
        __asm__ volatile("csrr %0, " #csr : "=r"(v_));                                             \
        v_;                                                                                        \
    })
#define kfa_csr_write(csr, v) __asm__ volatile("csrw " #csr ", %0" ::"r"((uint64_t)(v)))
#define kfa_csr_set(csr, v) __asm__ volatile("csrs " #csr ", %0" ::"r"((uint64_t)(v)))
#define kfa_csr_clear(csr, v) __asm__ volatile("csrc " #csr ", %0" ::"r"((uint64_t)(v)))

static inline uint32_t kfa_mmio_read32(uintptr_t addr)
{
    return *(volatile uint32_t *)addr;
}

static inline void kfa_mmio_write32(uintptr_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;
}

static inline uint64_t kfa_mmio_read64(uintptr_t addr)
{
    return *(volatile uint64_t *)addr;
}

static inline void kfa_mmio_write64(uintptr_t addr, uint64_t v)
{
    *(volatile uint64_t *)addr = v;
}

/* What the last trap was, kept in RAM the loader and crt0 leave alone (see trap.c). */
struct kfa_rv64_trap_record {
    uint32_t magic; /* KFA_RV64_TRAP_MAGIC when the fields are valid */
    uint32_t count; /* traps since power-on */
    uint64_t mcause, mepc, mtval;
};
#define KFA_RV64_TRAP_MAGIC 0x50415254u /* "TRAP" */

/*
 * kfa_rv64_trap_record - the record of the last fatal trap, or NULL if there was none
 * since power-on. Valid after a trap reset; the board decides when to clear it.
 */
const struct kfa_rv64_trap_record *kfa_rv64_trap_last(void);

/* kfa_rv64_trap_forget - clear the record (after it has been reported). */
void kfa_rv64_trap_forget(void);

/*
 * kfa_rv64_noinit - the board's region that survives a reset (linker symbols
 * __kfa_noinit_start/__kfa_noinit_end: outside every loaded segment, never zeroed by
 * crt0). The trap record lives in its first 64 bytes; boards use the rest from offset
 * KFA_RV64_NOINIT_BOARD.
 */
uint8_t *kfa_rv64_noinit(size_t *size);
#define KFA_RV64_NOINIT_BOARD 64u

/*
 * kfa_rv64_heap_seal - from now on every malloc/calloc/realloc fails and is counted (the
 * image links with -Wl,--wrap=malloc,...; see heap_guard.c). Call at the end of init.
 */
void kfa_rv64_heap_seal(void);

/* kfa_rv64_heap_refused - how many allocations were refused after the seal. */
uint32_t kfa_rv64_heap_refused(void);

/* ---- provided by the board ------------------------------------------------------ */

/*
 * kfa_rv64_board_irq - called from the trap entry for a machine external interrupt (the
 * board claims and completes it at its PLIC). Runs on the trap stack with interrupts off.
 */
void kfa_rv64_board_irq(void);

/*
 * kfa_rv64_board_fatal - reset after a fatal trap (the record is already written). K210:
 * through the watchdog; QEMU: the sifive_u restart GPIO. Does not return.
 */
void kfa_rv64_board_fatal(void) __attribute__((noreturn));

#endif /* KFA_RV64_H */
