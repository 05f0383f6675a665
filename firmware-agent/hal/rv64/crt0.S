/* SPDX-License-Identifier: MIT */
/*
 * Reset entry of the K210 and QEMU images, written for this project. Every hart starts
 * here (the K210 boot ROM jumps to 0x80000000 on both harts; QEMU sifive_u's reset vector
 * does the same with -bios none). The hart numbered KFA_BOOT_HART runs the agent, every
 * other hart parks in wfi with all interrupts masked:
 *   K210: boot hart 0, hart 1 parked (documented in docs/hardware.md);
 *   QEMU sifive_u: hart 0 is an E51 without FPU (rv64imac in its device tree), so the
 *   agent runs on hart 1, a U54 (rv64imafdc).
 * The boot hart: global pointer, stack, trap vector and trap stack (mscratch), FPU on
 * (mstatus.FS = Initial, Privileged spec v1.10 §3.1.11), .bss zeroed, tp set to the TLS
 * block (picolibc keeps errno there; RISC-V TLS variant I: tp points at .tdata, which is
 * used in place since there is a single thread), then main(); if main returns, the board
 * resets.
 */
#ifndef KFA_BOOT_HART
#error "KFA_BOOT_HART must be defined by the board's build"
#endif

    .section .text.init.enter, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    csrw mie, zero
    csrr t0, mhartid
    li t1, KFA_BOOT_HART
    bne t0, t1, .Lpark

    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la t0, __trap_stack_top
    csrw mscratch, t0
    la t0, kfa_rv64_trap_entry
    csrw mtvec, t0

    li t0, (1 << 13)            /* mstatus.FS = Initial */
    csrs mstatus, t0
    csrw fcsr, zero

    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:
    la tp, __tls_base
    call main
    call kfa_rv64_board_fatal

.Lpark:
    csrw mie, zero
3:  wfi
    j 3b
    .size _start, . - _start

/*
 * Trap entry (mtvec direct mode, 4-byte aligned): switch to the trap stack kept in
 * mscratch, save the caller-saved integer and FP registers, call kfa_rv64_trap(mcause,
 * mepc, mtval) which handles interrupts and returns, or records an exception and resets.
 */
    .section .text.kfa_trap, "ax", @progbits
    .balign 4
    .globl kfa_rv64_trap_entry
    .type kfa_rv64_trap_entry, @function
kfa_rv64_trap_entry:
    csrrw sp, mscratch, sp
    addi sp, sp, -304
    sd ra, 0(sp)
    sd t0, 8(sp)
    sd t1, 16(sp)
    sd t2, 24(sp)
    sd t3, 32(sp)
    sd t4, 40(sp)
    sd t5, 48(sp)
    sd t6, 56(sp)
    sd a0, 64(sp)
    sd a1, 72(sp)
    sd a2, 80(sp)
    sd a3, 88(sp)
    sd a4, 96(sp)
    sd a5, 104(sp)
    sd a6, 112(sp)
    sd a7, 120(sp)
    fsd ft0, 128(sp)
    fsd ft1, 136(sp)
    fsd ft2, 144(sp)
    fsd ft3, 152(sp)
    fsd ft4, 160(sp)
    fsd ft5, 168(sp)
    fsd ft6, 176(sp)
    fsd ft7, 184(sp)
    fsd ft8, 192(sp)
    fsd ft9, 200(sp)
    fsd ft10, 208(sp)
    fsd ft11, 216(sp)
    fsd fa0, 224(sp)
    fsd fa1, 232(sp)
    fsd fa2, 240(sp)
    fsd fa3, 248(sp)
    fsd fa4, 256(sp)
    fsd fa5, 264(sp)
    fsd fa6, 272(sp)
    fsd fa7, 280(sp)
    frcsr t0
    sd t0, 288(sp)

    csrr a0, mcause
    csrr a1, mepc
    csrr a2, mtval
    call kfa_rv64_trap

    ld t0, 288(sp)
    fscsr t0
    fld ft0, 128(sp)
    fld ft1, 136(sp)
    fld ft2, 144(sp)
    fld ft3, 152(sp)
    fld ft4, 160(sp)
    fld ft5, 168(sp)
    fld ft6, 176(sp)
    fld ft7, 184(sp)
    fld ft8, 192(sp)
    fld ft9, 200(sp)
    fld ft10, 208(sp)
    fld ft11, 216(sp)
    fld fa0, 224(sp)
    fld fa1, 232(sp)
    fld fa2, 240(sp)
    fld fa3, 248(sp)
    fld fa4, 256(sp)
    fld fa5, 264(sp)
    fld fa6, 272(sp)
    fld fa7, 280(sp)
    ld ra, 0(sp)
    ld t0, 8(sp)
    ld t1, 16(sp)
    ld t2, 24(sp)
    ld t3, 32(sp)
    ld t4, 40(sp)
    ld t5, 48(sp)
    ld t6, 56(sp)
    ld a0, 64(sp)
    ld a1, 72(sp)
    ld a2, 80(sp)
    ld a3, 88(sp)
    ld a4, 96(sp)
    ld a5, 104(sp)
    ld a6, 112(sp)
    ld a7, 120(sp)
    addi sp, sp, 304
    csrrw sp, mscratch, sp
    mret
    .size kfa_rv64_trap_entry, . - kfa_rv64_trap_entry
