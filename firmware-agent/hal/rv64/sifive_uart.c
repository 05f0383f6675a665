/* SPDX-License-Identifier: MIT */
/*
 * SiFive UART driver shared by the K210 (UARTHS) and QEMU sifive_u images; register facts
 * and sources in sifive_uart.h. Polled by default; the boards may enable the rx watermark
 * interrupt and drain the FIFO into a ring buffer from their PLIC handler.
 */
#include "sifive_uart.h"

#ifdef KFA_HOST_TEST
#define REG_RD(a) 0u
#define REG_WR(a, v) ((void)(a), (void)(v))
#else
#define REG_RD(a) (*(volatile uint32_t *)(a))
#define REG_WR(a, v) (*(volatile uint32_t *)(a) = (v))
#endif

#define TOLERANCE_PERMILLE 25u /* 2.5 %: see kfa_sifive_uart_div */

int kfa_sifive_uart_div(uint32_t clk_hz, uint32_t baud, uint32_t *div)
{
    uint64_t q, real, err;

    if (baud == 0 || clk_hz == 0 || baud > clk_hz)
        return -1;
    q = ((uint64_t)clk_hz + baud / 2u) / baud; /* round(clk / baud) = div + 1 */
    if (q < 1u || q - 1u > KFA_SIFIVE_UART_DIV_MAX)
        return -1;
    real = clk_hz / q;
    err = real > baud ? real - baud : baud - real;
    if (err * 1000u > (uint64_t)baud * TOLERANCE_PERMILLE)
        return -1;
    *div = (uint32_t)(q - 1u);
    return 0;
}

uint32_t kfa_sifive_uart_rate(uint32_t clk_hz, uint32_t div)
{
    return (uint32_t)(clk_hz / ((uint64_t)div + 1u));
}

#ifndef KFA_HOST_TEST
void kfa_sifive_uart_init(uintptr_t base, uint32_t div)
{
    REG_WR(base + KFA_SIFIVE_UART_IE, 0u);
    REG_WR(base + KFA_SIFIVE_UART_DIV, div);
    /* txcnt 1: txwm pending exactly when the FIFO is empty (tx_empty below). */
    REG_WR(base + KFA_SIFIVE_UART_TXCTRL, KFA_SIFIVE_UART_TXEN | (1u << KFA_SIFIVE_UART_CNT_SHIFT));
    REG_WR(base + KFA_SIFIVE_UART_RXCTRL, KFA_SIFIVE_UART_RXEN);
}

void kfa_sifive_uart_set_div(uintptr_t base, uint32_t div)
{
    REG_WR(base + KFA_SIFIVE_UART_DIV, div);
}

int kfa_sifive_uart_putc(uintptr_t base, uint8_t c)
{
    if (REG_RD(base + KFA_SIFIVE_UART_TXDATA) & KFA_SIFIVE_UART_FULL)
        return -1;
    REG_WR(base + KFA_SIFIVE_UART_TXDATA, c);
    return 0;
}

int kfa_sifive_uart_getc(uintptr_t base)
{
    uint32_t v = REG_RD(base + KFA_SIFIVE_UART_RXDATA); /* reading pops the byte */

    return (v & KFA_SIFIVE_UART_EMPTY) ? -1 : (int)(v & 0xFFu);
}

int kfa_sifive_uart_tx_empty(uintptr_t base)
{
    return (REG_RD(base + KFA_SIFIVE_UART_IP) & KFA_SIFIVE_UART_IP_TXWM) != 0;
}

void kfa_sifive_uart_rx_irq(uintptr_t base, int on)
{
    REG_WR(base + KFA_SIFIVE_UART_IE, on ? KFA_SIFIVE_UART_IP_RXWM : 0u);
}
#endif
