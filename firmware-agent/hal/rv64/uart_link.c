/* SPDX-License-Identifier: MIT */
/* The UART host link with its receive ring, and the event wait (see uart_link.h). */
#include "uart_link.h"

#include "clint.h"
#include "hal/hal.h"
#include "plic.h"
#include "ring.h"
#include "rv64.h"
#include "sifive_uart.h"

#define RX_RING 16384u /* 16 KiB: more than a second of 115200 Bd; a power of two */
#define CHAR_BITS 10u  /* 8N1: start, 8 data, stop */
#define TX_IDLE_SPIN 100000u

static struct {
    struct kfa_uart_link_cfg cfg;
    struct kfa_ring rx;
    uint8_t rx_buf[RX_RING];
    uint32_t div;
} u;

int kfa_uart_link_init(const struct kfa_uart_link_cfg *cfg)
{
    u.cfg = *cfg;
    if (kfa_ring_init(&u.rx, u.rx_buf, RX_RING) != 0)
        return -1;
    if (kfa_sifive_uart_div(cfg->clk_hz, cfg->baud, &u.div) != 0)
        u.div = 0;
    kfa_sifive_uart_init(cfg->base, u.div);
    if (cfg->irq) {
        kfa_plic_init(cfg->plic_ctx, cfg->plic_irqs);
        kfa_plic_enable(cfg->plic_ctx, cfg->irq);
        kfa_sifive_uart_rx_irq(cfg->base, 1);
        kfa_csr_set(mie, KFA_MIE_MEIE);
        kfa_csr_set(mstatus, KFA_MSTATUS_MIE);
    }
    return 0;
}

static void drain(void)
{
    int c;

    while (kfa_ring_space(&u.rx) > 0 && (c = kfa_sifive_uart_getc(u.cfg.base)) >= 0)
        (void)kfa_ring_put(&u.rx, (uint8_t)c);
}

void kfa_uart_link_irq(uint32_t claimed)
{
    (void)claimed;
    drain();
    /* With the ring full the FIFO keeps its bytes; stop the interrupt until the reader
     * makes room, or the handler would run forever. */
    if (kfa_ring_space(&u.rx) == 0)
        kfa_sifive_uart_rx_irq(u.cfg.base, 0);
}

void kfa_uart_link_poll(void)
{
    uint64_t st = kfa_csr_read(mstatus);

    kfa_csr_clear(mstatus, KFA_MSTATUS_MIE);
    drain();
    if (u.cfg.irq && kfa_ring_space(&u.rx) > 0)
        kfa_sifive_uart_rx_irq(u.cfg.base, 1);
    kfa_csr_set(mstatus, st & KFA_MSTATUS_MIE);
}

uint32_t kfa_uart_link_pending(void)
{
    return kfa_ring_count(&u.rx);
}

uint32_t kfa_uart_link_dropped(void)
{
    return u.rx.dropped;
}

int kfa_uart_link_read(uint8_t *buf, size_t cap)
{
    size_t n;

    kfa_uart_link_poll();
    n = kfa_ring_get(&u.rx, buf, cap);
    if (n > 0)
        kfa_uart_link_poll(); /* room again: take what the FIFO held back */
    return (int)n;
}

int kfa_uart_link_write(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        while (kfa_sifive_uart_putc(u.cfg.base, buf[i]) != 0)
            ;
    return (int)len;
}

int kfa_uart_link_set_baud(uint32_t baud)
{
    uint32_t div, old = kfa_uart_link_baud();
    uint64_t until;

    if (kfa_sifive_uart_div(u.cfg.clk_hz, baud, &div) != 0)
        return KFA_HAL_E_RANGE;
    for (uint32_t i = 0; i < TX_IDLE_SPIN && !kfa_sifive_uart_tx_empty(u.cfg.base); i++)
        ;
    /* The FIFO is empty; the shifter may still hold one character: wait its time. */
    until = kfa_clint_mtime() + (uint64_t)CHAR_BITS * u.cfg.timebase_hz / (old ? old : 1u) + 1u;
    while (kfa_clint_mtime() < until)
        ;
    u.div = div;
    u.cfg.baud = baud;
    kfa_sifive_uart_set_div(u.cfg.base, div);
    return 0;
}

uint32_t kfa_uart_link_baud(void)
{
    return u.cfg.baud;
}

void kfa_rv64_wait(uint32_t hart, uint64_t deadline)
{
    uint64_t st = kfa_csr_read(mstatus);

    kfa_csr_clear(mstatus, KFA_MSTATUS_MIE);
    drain();
    if (kfa_ring_count(&u.rx) == 0 && kfa_clint_mtime() < deadline) {
        kfa_clint_set_cmp(hart, deadline);
        kfa_csr_set(mie, KFA_MIE_MTIE);
        __asm__ volatile("wfi");
        kfa_csr_clear(mie, KFA_MIE_MTIE);
        kfa_clint_set_cmp(hart, UINT64_MAX);
    }
    kfa_csr_set(mstatus, st & KFA_MSTATUS_MIE);
}
