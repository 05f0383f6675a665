/* SPDX-License-Identifier: MIT */
/*
 * Driver for the SiFive UART IP: the K210's UARTHS (base 0x38000000) and QEMU sifive_u's
 * UART0 (base 0x10010000). Register facts, as 32-bit words from the base:
 *   0x00 txdata  bits 7:0 byte to send, bit 31 FIFO full (reads)
 *   0x04 rxdata  bits 7:0 received byte, bit 31 FIFO empty
 *   0x08 txctrl  bit 0 txen, bit 1 nstop (0: one stop bit), bits 18:16 txcnt watermark
 *   0x0C rxctrl  bit 0 rxen, bits 18:16 rxcnt watermark
 *   0x10 ie      bit 0 txwm, bit 1 rxwm interrupt enables
 *   0x14 ip      bit 0 txwm (tx FIFO entries < txcnt), bit 1 rxwm (rx entries > rxcnt)
 *   0x18 div     baud = f_in / (div + 1)
 * Sources: kendryte/kendryte-standalone-sdk lib/drivers/include/uarths.h (uarths_t,
 * uarths_txdata_t ... uarths_div_t), SiFive FE310-G000 manual v1.0.3 ch. 18, QEMU
 * hw/char/sifive_uart.c; shared/research/usb-bridges.md §1.7. Both FIFOs hold 8 bytes.
 *
 * The divisor arithmetic is pure and unit-tested on the host (tests/unit/check_k210_uart.c).
 */
#ifndef KFA_SIFIVE_UART_H
#define KFA_SIFIVE_UART_H

#include <stdint.h>

#define KFA_SIFIVE_UART_TXDATA 0x00u
#define KFA_SIFIVE_UART_RXDATA 0x04u
#define KFA_SIFIVE_UART_TXCTRL 0x08u
#define KFA_SIFIVE_UART_RXCTRL 0x0Cu
#define KFA_SIFIVE_UART_IE 0x10u
#define KFA_SIFIVE_UART_IP 0x14u
#define KFA_SIFIVE_UART_DIV 0x18u

#define KFA_SIFIVE_UART_FULL (1u << 31)  /* txdata: FIFO full */
#define KFA_SIFIVE_UART_EMPTY (1u << 31) /* rxdata: FIFO empty */
#define KFA_SIFIVE_UART_TXEN 1u
#define KFA_SIFIVE_UART_RXEN 1u
#define KFA_SIFIVE_UART_CNT_SHIFT 16u
#define KFA_SIFIVE_UART_IP_TXWM 1u
#define KFA_SIFIVE_UART_IP_RXWM 2u
#define KFA_SIFIVE_UART_FIFO 8u
#define KFA_SIFIVE_UART_DIV_MAX 0xFFFFu /* div is 16 bits wide (uarths_div_t) */

/*
 * kfa_sifive_uart_div - the div register value for baud from an input clock of clk_hz:
 * round(clk_hz / baud) - 1. Returns 0 and sets *div, or -1 when the rate cannot be made
 * within 2.5 % (the tolerance of 8N1 framing at both ends together) or is out of range.
 * Pure; for host tests.
 */
int kfa_sifive_uart_div(uint32_t clk_hz, uint32_t baud, uint32_t *div);

/* kfa_sifive_uart_rate - the baud rate div gives from clk_hz (clk_hz / (div + 1)). Pure. */
uint32_t kfa_sifive_uart_rate(uint32_t clk_hz, uint32_t div);

/*
 * kfa_sifive_uart_init - enable transmit (one stop bit) and receive at divisor div, with
 * interrupts off and the rx watermark at 0 (rxwm pending while any byte waits).
 */
void kfa_sifive_uart_init(uintptr_t base, uint32_t div);

/* kfa_sifive_uart_set_div - change the divisor (call when the transmitter is idle). */
void kfa_sifive_uart_set_div(uintptr_t base, uint32_t div);

/* kfa_sifive_uart_putc - queue one byte; 0, or -1 when the FIFO is full. */
int kfa_sifive_uart_putc(uintptr_t base, uint8_t c);

/* kfa_sifive_uart_getc - one received byte (0..255), or -1 when none waits. */
int kfa_sifive_uart_getc(uintptr_t base);

/* kfa_sifive_uart_tx_empty - 1 when the transmit FIFO is empty (the shifter may still run). */
int kfa_sifive_uart_tx_empty(uintptr_t base);

/* kfa_sifive_uart_rx_irq - enable (1) or disable (0) the rx watermark interrupt. */
void kfa_sifive_uart_rx_irq(uintptr_t base, int on);

#endif /* KFA_SIFIVE_UART_H */
