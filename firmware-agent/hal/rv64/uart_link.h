/* SPDX-License-Identifier: MIT */
/*
 * The host link over a SiFive UART, shared by the K210 (UARTHS) and QEMU boards: received
 * bytes are drained from the 8-byte hardware FIFO into a 16 KiB ring by the rx watermark
 * interrupt (through the PLIC), so nothing is lost while the agent runs a model for a
 * second; transmit is polled. The board's kfa_hal_uart_* functions call these.
 */
#ifndef KFA_UART_LINK_H
#define KFA_UART_LINK_H

#include <stddef.h>
#include <stdint.h>

struct kfa_uart_link_cfg {
    uintptr_t base;       /* UART registers */
    uint32_t clk_hz;      /* the UART's input clock (K210: the CPU clock; QEMU: ignored) */
    uint32_t baud;        /* initial rate */
    uint32_t irq;         /* PLIC source of the UART, 0 for polling only */
    uint32_t plic_ctx;    /* PLIC context of the boot hart's M mode */
    uint32_t plic_irqs;   /* PLIC sources on this chip (for kfa_plic_init) */
    uint32_t timebase_hz; /* CLINT mtime rate */
};

/* kfa_uart_link_init - set the UART up and, with an irq, the PLIC; returns 0 or -1. */
int kfa_uart_link_init(const struct kfa_uart_link_cfg *cfg);

/* kfa_uart_link_irq - drain the FIFO into the ring (from the board's PLIC handler). */
void kfa_uart_link_irq(uint32_t claimed);

/* kfa_uart_link_poll - the same drain, called from the main loop as a safety net. */
void kfa_uart_link_poll(void);

/* kfa_uart_link_pending - bytes waiting in the ring. */
uint32_t kfa_uart_link_pending(void);

/* kfa_uart_link_read - as kfa_hal_uart_read. */
int kfa_uart_link_read(uint8_t *buf, size_t cap);

/* kfa_uart_link_write - as kfa_hal_uart_write: blocks while the FIFO is full. */
int kfa_uart_link_write(const uint8_t *buf, size_t len);

/*
 * kfa_uart_link_set_baud - wait until the transmitter has sent what it holds, then switch
 * to baud. Returns 0, or -3 (KFA_HAL_E_RANGE) when the clock cannot make the rate.
 */
int kfa_uart_link_set_baud(uint32_t baud);

/* kfa_uart_link_baud - the current rate. */
uint32_t kfa_uart_link_baud(void);

/* kfa_uart_link_dropped - bytes lost because the ring was full. */
uint32_t kfa_uart_link_dropped(void);

/*
 * kfa_rv64_wait - sleep in wfi until the ring holds data or mtime reaches deadline (a
 * CLINT mtime value), for the boot hart hart. Interrupts stay masked during the check so a
 * byte arriving between check and wfi still wakes it.
 */
void kfa_rv64_wait(uint32_t hart, uint64_t deadline);

#endif /* KFA_UART_LINK_H */
