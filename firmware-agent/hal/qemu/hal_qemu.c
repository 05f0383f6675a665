/* SPDX-License-Identifier: MIT */
/*
 * The HAL for kpu-agent-qemu.elf on qemu-system-riscv64 -machine sifive_u (QEMU 7.2):
 *
 *   uart    UART0 at 0x10010000, the same SiFive IP as the K210's UARTHS (hal/rv64 driver),
 *           rx by PLIC interrupt (source 4, context 1 = hart 1 M mode) into a ring
 *   clock   CLINT mtime, 1 MHz (device tree timebase-frequency)
 *   camera  one frame built into the image (planar RGB888 converted at build time from a
 *           test image by tools/img2planar.c), or a synthetic gradient without one
 *   KPU     the software KPU (hal/soft_kpu, portable path)
 *   flash   16 MiB in the no-init RAM region, kept across resets, 0xFF at power-on
 *   id      the OTP serial number (QEMU hw/misc/sifive_u_otp.c)
 *   reset   GPIO 10, wired by QEMU to a system reset ("gpio-restart" in the device tree)
 *
 * Addresses: QEMU hw/riscv/sifive_u.c (sifive_u_memmap, SIFIVE_U_UART0_IRQ = 4,
 * SIFIVE_U_GPIO reset line 10) and its device tree (-machine sifive_u,dumpdtb=...).
 */
#include <string.h>

#include "hal/hal.h"
#include "hal_qemu.h"
#include "rv64/clint.h"
#include "rv64/plic.h"
#include "rv64/rv64.h"
#include "rv64/uart_link.h"

#define UART0_BASE 0x10010000u
#define UART0_IRQ 4u
#define PLIC_SOURCES 54u       /* sifive_u: SIFIVE_U_PLIC_NUM_SOURCES */
#define PLIC_CTX_HART1_M 1u    /* hart 0 has one context (M), hart 1 has M then S */
#define UART_CLK_HZ 500000000u /* nominal tlclk; QEMU's UART model ignores div */
#define TIMEBASE_HZ 1000000u
#define BOOT_BAUD 115200u
#define GPIO_BASE 0x10060000u
#define GPIO_OUTPUT_EN 0x08u /* SiFive GPIO: input_val 0x00, input_en 0x04, output_en, output_val */
#define GPIO_OUTPUT_VAL 0x0Cu
#define GPIO_RESET_PIN 10u
#define OTP_BASE 0x10070000u
#define OTP_PA 0x00u
#define OTP_PCE 0x0Cu
#define OTP_PDOUT 0x18u
#define OTP_PDSTB 0x1Cu
#define OTP_PTRIM 0x34u
#define OTP_SERIAL_FUSE 0xFCu /* SIFIVE_U_OTP_SERIAL_ADDR; fuse 0xFD holds its complement */
#define BOARD_QEMU 2u         /* kpu.link.v1.Board BOARD_QEMU */

#define FLASH_SIZE (16u * 1024u * 1024u)
#define STATE_MAGIC 0x554d4551u /* "QEMU" */

/* Board state in the no-init region: survives kfa_hal_reset() and trap resets. */
struct qemu_state {
    uint32_t magic;
    uint32_t next_cause; /* enum kfa_reset_cause the next boot reports */
};
#define FLASH_OFFSET 4096u /* in the board part of the no-init region */

static struct {
    struct qemu_state *st;
    uint8_t *flash;
    enum kfa_reset_cause cause;
} q;

int kfa_hal_init(void)
{
    size_t size;
    uint8_t *ni = kfa_rv64_noinit(&size);
    struct kfa_uart_link_cfg cfg = {
        .base = UART0_BASE,
        .clk_hz = UART_CLK_HZ,
        .baud = BOOT_BAUD,
        .irq = UART0_IRQ,
        .plic_ctx = PLIC_CTX_HART1_M,
        .plic_irqs = PLIC_SOURCES,
        .timebase_hz = TIMEBASE_HZ,
    };

    q.st = (struct qemu_state *)(void *)ni;
    q.flash = size >= FLASH_OFFSET + FLASH_SIZE ? ni + FLASH_OFFSET : NULL;
    if (q.st->magic != STATE_MAGIC) {
        q.cause = KFA_RESET_POWER_ON;
        q.st->magic = STATE_MAGIC;
        if (q.flash)
            memset(q.flash, 0xFF, FLASH_SIZE); /* erased NOR reads 0xFF */
    } else {
        q.cause = (enum kfa_reset_cause)q.st->next_cause;
    }
    q.st->next_cause = KFA_RESET_EXTERNAL; /* unless we reset ourselves */
    kfa_qemu_camera_init();
    return kfa_uart_link_init(&cfg) == 0 ? 0 : KFA_HAL_E_IO;
}

void kfa_qemu_init_done(void)
{
    kfa_rv64_heap_seal();
}

uint64_t kfa_hal_time_us(void)
{
    return kfa_clint_mtime(); /* 1 MHz: ticks are microseconds */
}

void kfa_hal_wait_event(uint32_t timeout_us)
{
    if (kfa_qemu_camera_take_polled())
        return; /* a consumer polls the built-in camera, which always has a frame */
    kfa_rv64_wait(KFA_BOOT_HART, kfa_clint_mtime() + timeout_us);
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

void kfa_rv64_board_irq(void)
{
    uint32_t irq = kfa_plic_claim(PLIC_CTX_HART1_M);

    if (irq == UART0_IRQ)
        kfa_uart_link_irq(irq);
    if (irq)
        kfa_plic_complete(PLIC_CTX_HART1_M, irq);
}

/* ---- flash ------------------------------------------------------------------- */

uint32_t kfa_hal_flash_size(void)
{
    return q.flash ? FLASH_SIZE : 0;
}

static int flash_range(uint32_t off, size_t len)
{
    return q.flash && off <= FLASH_SIZE && len <= FLASH_SIZE - off;
}

int kfa_hal_flash_read(uint32_t offset, void *buf, size_t len)
{
    if (!flash_range(offset, len))
        return KFA_HAL_E_RANGE;
    memcpy(buf, q.flash + offset, len);
    return 0;
}

int kfa_hal_flash_erase(uint32_t offset, uint32_t len)
{
    if (!flash_range(offset, len) || offset % KFA_HAL_FLASH_SECTOR || len % KFA_HAL_FLASH_SECTOR)
        return KFA_HAL_E_RANGE;
    memset(q.flash + offset, 0xFF, len);
    return 0;
}

int kfa_hal_flash_write(uint32_t offset, const void *buf, size_t len)
{
    const uint8_t *src = buf;

    if (!flash_range(offset, len))
        return KFA_HAL_E_RANGE;
    for (size_t i = 0; i < len; i++)
        q.flash[offset + i] &= src[i]; /* NOR programming only clears bits */
    return 0;
}

/* ---- identity, reset, watchdog ------------------------------------------------- */

static uint32_t otp_read(uint32_t fuse)
{
    /* QEMU answers PDOUT with fuse[PA] while PCE, PDSTB and PTRIM are enabled. */
    kfa_mmio_write32(OTP_BASE + OTP_PA, fuse);
    kfa_mmio_write32(OTP_BASE + OTP_PCE, 1u);
    kfa_mmio_write32(OTP_BASE + OTP_PDSTB, 1u);
    kfa_mmio_write32(OTP_BASE + OTP_PTRIM, 1u);
    return kfa_mmio_read32(OTP_BASE + OTP_PDOUT);
}

size_t kfa_hal_unique_id(uint8_t *buf, size_t cap)
{
    static const char prefix[8] = {'s', 'i', 'f', 'i', 'v', 'e', '_', 'u'};
    uint8_t id[16];
    uint32_t serial = otp_read(OTP_SERIAL_FUSE), check = otp_read(OTP_SERIAL_FUSE + 1u);

    memcpy(id, prefix, sizeof(prefix));
    for (int i = 0; i < 4; i++) {
        id[8 + i] = (uint8_t)(serial >> (8 * i));
        id[12 + i] = (uint8_t)(check >> (8 * i));
    }
    if (cap > sizeof(id))
        cap = sizeof(id);
    memcpy(buf, id, cap);
    return cap;
}

enum kfa_reset_cause kfa_hal_reset_cause(void)
{
    return q.cause;
}

static void gpio_reset(void) __attribute__((noreturn));
static void gpio_reset(void)
{
    kfa_mmio_write32(GPIO_BASE + GPIO_OUTPUT_VAL, 0);
    kfa_mmio_write32(GPIO_BASE + GPIO_OUTPUT_EN, 1u << GPIO_RESET_PIN);
    kfa_mmio_write32(GPIO_BASE + GPIO_OUTPUT_VAL, 1u << GPIO_RESET_PIN);
    for (;;)
        __asm__ volatile("wfi");
}

void kfa_hal_reset(int to_isp)
{
    /* No boot ROM loader to enter under QEMU: an ISP reset is a plain reset. */
    (void)to_isp;
    if (q.st)
        q.st->next_cause = KFA_RESET_SOFTWARE;
    gpio_reset();
}

void kfa_rv64_board_fatal(void)
{
    if (q.st)
        q.st->next_cause = KFA_RESET_WATCHDOG; /* the K210 resets through its watchdog */
    gpio_reset();
}

void kfa_hal_watchdog_kick(void)
{
}

uint32_t kfa_hal_free_ram(void)
{
    extern uint8_t __ram_plan_end[], __kfa_noinit_start[];

    return (uint32_t)(__kfa_noinit_start - __ram_plan_end);
}

uint32_t kfa_hal_board(void)
{
    return BOARD_QEMU;
}
