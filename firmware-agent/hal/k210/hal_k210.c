/* SPDX-License-Identifier: MIT */
/*
 * The HAL of kpu-agent-k210.elf, bare metal on the Kendryte K210: clocks (PLL0 -> CPU at
 * ~400 MHz, PLL1 -> KPU at ~400 MHz; PLL2 is left as the boot ROM set it: nothing here uses
 * audio), the FPIOA pin mux of the board profile, UARTHS through the shared SiFive UART
 * driver with its PLIC rx interrupt, CLINT time and waits, watchdog 0, reset cause and
 * software reset. The camera (k210_dvp.c), KPU (k210_kpu.c) and flash (k210_spi3.c) have
 * their own files. Register facts: k210_regs.h (kendryte-standalone-sdk headers).
 */
#include "hal/hal.h"
#include "hal_k210.h"
#include "k210_pure.h"
#include "k210_regs.h"
#include "rv64/clint.h"
#include "rv64/plic.h"
#include "rv64/rv64.h"
#include "rv64/uart_link.h"

#ifndef KFA_K210_BOARD
#define KFA_K210_BOARD 3u /* kpu.link.v1.Board BOARD_MAIX_DOCK */
#endif
#define PLL0_HZ 800000000u /* CPU = PLL0 / 2 (aclk_divider_sel 0): the usual 400 MHz */
#define PLL1_HZ 400000000u /* KPU clock (ai_gclk_threshold 0) */
#define BOOT_BAUD 115200u  /* the ROM's rate; the host asks for more after HELLO */
#define PLIC_CTX_HART0_M 0u
#define PLL_LOCK_SPIN 1000000u
#define PLL_RESET_SPIN 100u
#define WDT_TOP 10u /* 2^(16+10) / 13 MHz = 5.2 s (wdt.h torr; WDT clock IN0 / 2) */
#define POWER_SEL 0x6Cu
#define POWER_BANK6_1V8 (1u << 6)
#define POWER_BANK7_1V8 (1u << 7)

static struct {
    uint32_t cpu_hz;
    enum kfa_reset_cause cause;
    int wdt_on;
} k;

uint32_t k210_cpu_hz(void)
{
    return k.cpu_hz;
}

void k210_delay_us(uint32_t us)
{
    uint64_t end = kfa_clint_mtime() + (uint64_t)us * kfa_k210_mtime_hz(k.cpu_hz) / 1000000u;

    while (kfa_clint_mtime() < end)
        ;
}

static void spin(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; i++)
        ;
}

/* Set PLL n (0 or 1) to hz: power up, reset pulse, wait for lock, enable the output
 * (the sequence of sysctl.c sysctl_pll_enable / sysctl_pll_is_lock). */
static int pll_set(uint32_t n, uint32_t hz, uint32_t *got)
{
    uint32_t reg = n == 0 ? SYSCTL_PLL0 : SYSCTL_PLL1;
    struct kfa_k210_pll p;
    uint32_t v;

    if (kfa_k210_pll_solve(K210_IN0_HZ, hz, &p) != 0)
        return -1;
    v = k210_rd(K210_SYSCTL_BASE, reg);
    v &= ~(PLL_FIELDS_MASK | PLL_OUT_EN | PLL_BYPASS);
    v |= kfa_k210_pll_fields(&p) | PLL_PWRD;
    k210_wr(K210_SYSCTL_BASE, reg, v);
    k210_wr(K210_SYSCTL_BASE, reg, v & ~PLL_RESET);
    k210_wr(K210_SYSCTL_BASE, reg, v | PLL_RESET);
    spin(PLL_RESET_SPIN);
    k210_wr(K210_SYSCTL_BASE, reg, v & ~PLL_RESET);
    for (uint32_t i = 0; i < PLL_LOCK_SPIN; i++) {
        uint32_t lock = k210_rd(K210_SYSCTL_BASE, SYSCTL_PLL_LOCK) >> (PLL_LOCK_STRIDE * n);

        if ((lock & PLL_LOCK_BITS) == PLL_LOCK_BITS) {
            k210_wr(K210_SYSCTL_BASE, reg, (v & ~PLL_RESET) | PLL_OUT_EN);
            *got = p.fout;
            return 0;
        }
        k210_wr(K210_SYSCTL_BASE, SYSCTL_PLL_LOCK,
                k210_rd(K210_SYSCTL_BASE, SYSCTL_PLL_LOCK) | PLL_SLIP_CLEAR
                                                                 << (PLL_LOCK_STRIDE * n));
    }
    return -1;
}

static void clock_init(void)
{
    uint32_t sel = k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_SEL0), pll0 = 0, pll1 = 0;

    /* Run from the crystal while PLL0 changes, then switch back. */
    k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_SEL0, sel & ~CLK_SEL0_ACLK_PLL0);
    if (pll_set(0, PLL0_HZ, &pll0) == 0) {
        sel = (sel & ~CLK_SEL0_ACLK_DIV_MASK) | CLK_SEL0_ACLK_PLL0;
        k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_SEL0, sel);
        k.cpu_hz = kfa_k210_cpu_hz(pll0, 0);
    } else {
        k.cpu_hz = K210_IN0_HZ;
    }
    if (pll_set(1, PLL1_HZ, &pll1) == 0)
        k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_TH0,
                k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_TH0) & ~CLK_TH0_AI_MASK);
    k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_EN_CENT,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_EN_CENT) | CLK_EN_CENT_APB0 | CLK_EN_CENT_APB1 |
                CLK_EN_CENT_APB2);
    k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_EN_PERI,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_EN_PERI) | CLK_EN_FPIOA | CLK_EN_WDT0 | CLK_EN_AI |
                CLK_EN_DVP | CLK_EN_SPI3);
}

static void pins_init(const struct kfa_k210_board *b)
{
    for (uint32_t i = 0; b && i < b->npins; i++)
        k210_wr(K210_FPIOA_BASE, 4u * b->pins[i].io, kfa_k210_fpioa_word(b->pins[i].func));
    if (b && b->dvp_1v8)
        k210_wr(K210_SYSCTL_BASE, POWER_SEL,
                k210_rd(K210_SYSCTL_BASE, POWER_SEL) | POWER_BANK6_1V8 | POWER_BANK7_1V8);
}

static void reset_cause_read(void)
{
    uint32_t st = k210_rd(K210_SYSCTL_BASE, SYSCTL_RESET_STATUS);

    if (st & (RST_STS_WDT0 | RST_STS_WDT1))
        k.cause = KFA_RESET_WATCHDOG;
    else if (st & RST_STS_SOFT)
        k.cause = KFA_RESET_SOFTWARE;
    else if (st & RST_STS_PIN)
        k.cause = KFA_RESET_EXTERNAL;
    else
        k.cause = KFA_RESET_POWER_ON;
    k210_wr(K210_SYSCTL_BASE, SYSCTL_RESET_STATUS, st | RST_STS_CLR);
    k210_wr(K210_SYSCTL_BASE, SYSCTL_RESET_STATUS, st & ~RST_STS_CLR);
}

static void wdt_start(uint32_t top)
{
    k210_wr(K210_WDT0_BASE, WDT_TORR, top | top << 4);
    k210_wr(K210_WDT0_BASE, WDT_CR, WDT_CR_ENABLE); /* rmod 0: reset on timeout */
    k210_wr(K210_WDT0_BASE, WDT_CRR, WDT_CRR_RESTART);
    k.wdt_on = 1;
}

int kfa_hal_init(void)
{
    struct kfa_uart_link_cfg cfg;
    int r = 0;

    reset_cause_read();
    clock_init();
    pins_init(kfa_k210_board_find(KFA_K210_BOARD));
    cfg.base = K210_UARTHS_BASE;
    cfg.clk_hz = k.cpu_hz; /* UARTHS runs from the CPU clock (uarths.c uarths_init) */
    cfg.baud = BOOT_BAUD;
    cfg.irq = K210_IRQ_UARTHS;
    cfg.plic_ctx = PLIC_CTX_HART0_M;
    cfg.plic_irqs = K210_PLIC_SOURCES;
    cfg.timebase_hz = kfa_k210_mtime_hz(k.cpu_hz);
    if (kfa_uart_link_init(&cfg) != 0)
        r = KFA_HAL_E_IO;
    k210_kpu_init();
    if (k210_flash_init() != 0)
        r = KFA_HAL_E_NODEV;
    if (k210_camera_init() != 0 && r == 0)
        r = KFA_HAL_E_NODEV;
    wdt_start(WDT_TOP);
    return r;
}

void kfa_rv64_board_irq(void)
{
    uint32_t irq = kfa_plic_claim(PLIC_CTX_HART0_M);

    if (irq == K210_IRQ_UARTHS)
        kfa_uart_link_irq(irq);
    else if (irq == K210_IRQ_DVP)
        k210_dvp_irq();
    else if (irq == K210_IRQ_AI)
        k210_kpu_irq();
    if (irq)
        kfa_plic_complete(PLIC_CTX_HART0_M, irq);
}

uint64_t kfa_hal_time_us(void)
{
    uint32_t hz = kfa_k210_mtime_hz(k.cpu_hz ? k.cpu_hz : K210_IN0_HZ);

    return kfa_clint_mtime() * 1000000u / hz;
}

void kfa_hal_wait_event(uint32_t timeout_us)
{
    uint32_t hz = kfa_k210_mtime_hz(k.cpu_hz);

    if (k210_camera_ready())
        return;
    kfa_rv64_wait(0, kfa_clint_mtime() + (uint64_t)timeout_us * hz / 1000000u);
}

int kfa_hal_uart_read(uint8_t *buf, size_t cap)
{
    return kfa_uart_link_read(buf, cap);
}

int kfa_hal_uart_write(const uint8_t *buf, size_t len)
{
    return kfa_uart_link_write(buf, len);
}

int kfa_hal_uart_set_baud(uint32_t baud)
{
    return kfa_uart_link_set_baud(baud);
}

uint32_t kfa_hal_uart_baud(void)
{
    return kfa_uart_link_baud();
}

size_t kfa_hal_unique_id(uint8_t *buf, size_t cap)
{
    /* The chip's OTP has no documented unique-id field in the SDK; the flash chip's
     * factory unique id identifies the board instead (k210_spi3.c). */
    static const char prefix[8] = {'k', '2', '1', '0', '-', 'u', 'i', 'd'};
    uint8_t id[16], uid[8] = {0};

    (void)k210_flash_uid(uid);
    for (int i = 0; i < 8; i++) {
        id[i] = (uint8_t)prefix[i];
        id[8 + i] = uid[i];
    }
    if (cap > sizeof(id))
        cap = sizeof(id);
    for (size_t i = 0; i < cap; i++)
        buf[i] = id[i];
    return cap;
}

enum kfa_reset_cause kfa_hal_reset_cause(void)
{
    return k.cause;
}

void kfa_hal_reset(int to_isp)
{
    /* The ROM enters ISP only when IO16 (BOOT) is low at reset, which the host drives
     * through DTR/RTS (usb-bridges.md §1.4); software cannot, so both are a plain reset. */
    (void)to_isp;
    k210_wr(K210_SYSCTL_BASE, SYSCTL_SOFT_RESET, 1u);
    for (;;)
        __asm__ volatile("wfi");
}

void kfa_rv64_board_fatal(void)
{
    /* Reset through the watchdog: shortest timeout, then stop feeding it. */
    kfa_csr_clear(mstatus, KFA_MSTATUS_MIE);
    k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_EN_PERI,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_EN_PERI) | CLK_EN_WDT0);
    wdt_start(0);
    for (;;)
        __asm__ volatile("wfi");
}

void kfa_hal_watchdog_kick(void)
{
    if (k.wdt_on)
        k210_wr(K210_WDT0_BASE, WDT_CRR, WDT_CRR_RESTART);
}

uint32_t kfa_hal_free_ram(void)
{
    extern uint8_t __ram_plan_end[], __kfa_noinit_start[];

    return (uint32_t)(__kfa_noinit_start - __ram_plan_end);
}

uint32_t kfa_hal_board(void)
{
    return KFA_K210_BOARD;
}
