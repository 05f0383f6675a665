/* SPDX-License-Identifier: MIT */
/* The pure parts of hal/k210 (contracts and sources in k210_pure.h). */
#include "k210_pure.h"

#include <string.h>

#include "k210_regs.h"

#define BOARD_MAIX_DOCK 3u /* kpu.link.v1.Board */
#define BOARD_MAIX_BIT 4u
#define BOARD_MAIX_GO 5u
#define BOARD_MAIXDUINO 6u
#define BOARD_MAIX_AMIGO 7u
#define TOLERANCE_DIV 100u /* 1 % */
#define FPIOA_DS_MAX 0xFu
#define CLINT_CLOCK_DIV 50u

int kfa_k210_pll_solve(uint32_t fin, uint32_t want, struct kfa_k210_pll *p)
{
    uint64_t best_err = UINT64_MAX, best_vco = 0;
    struct kfa_k210_pll best = {0, 0, 0, 0};

    if (fin == 0 || want == 0)
        return -1;
    for (uint32_t nr = 1; nr <= KFA_K210_PLL_NR_MAX; nr++) {
        if ((uint64_t)fin / nr < KFA_K210_PLL_REF_MIN)
            break;
        for (uint32_t nf = 1; nf <= KFA_K210_PLL_NF_MAX; nf++) {
            uint64_t vco = (uint64_t)fin * nf / nr;

            if (vco < KFA_K210_PLL_VCO_MIN || vco > KFA_K210_PLL_VCO_MAX)
                continue;
            for (uint32_t no = 1; no <= KFA_K210_PLL_NO_MAX; no++) {
                uint64_t f = vco / no, err = f > want ? f - want : want - f;

                if (err < best_err || (err == best_err && vco > best_vco)) {
                    best_err = err;
                    best_vco = vco;
                    best.nr = nr;
                    best.nf = nf;
                    best.no = no;
                    best.fout = (uint32_t)f;
                }
            }
        }
    }
    if (best.nr == 0 || best_err * TOLERANCE_DIV > want)
        return -1;
    *p = best;
    return 0;
}

uint32_t kfa_k210_pll_fields(const struct kfa_k210_pll *p)
{
    return (p->nr - 1u) << PLL_CLKR_SHIFT | (p->nf - 1u) << PLL_CLKF_SHIFT |
           (p->no - 1u) << PLL_CLKOD_SHIFT | (p->nf - 1u) << PLL_BWADJ_SHIFT;
}

uint32_t kfa_k210_cpu_hz(uint32_t pll0_hz, uint32_t aclk_div_sel)
{
    return pll0_hz / (2u << (aclk_div_sel & 3u));
}

uint32_t kfa_k210_mtime_hz(uint32_t cpu_hz)
{
    return cpu_hz / CLINT_CLOCK_DIV;
}

/*
 * Board pins. UARTHS RX/TX on IO4/IO5 on every board: the boot ROM's ISP port
 * (usb-bridges.md §1.6 item 1), wired to the USB bridge. The camera FPC on IO40-47
 * (SCCB SDA 40, SCCB SCLK 41, CMOS RST 42, VSYNC 43, PWDN 44, HREF 45, XCLK 46, PCLK 47)
 * as in the Sipeed Maix examples (kendryte-standalone-demo BOARD_LICHEEDAN io_mux_init,
 * sipeed Maixduino core Sipeed_OV2640::dvpInit); bank 6/7 at 1.8 V there too. The Amigo
 * is taken to match (not checked on a board).
 */
#define UART_PINS                                                                                  \
    {4, FUNC_UARTHS_RX},                                                                           \
    {                                                                                              \
        5, FUNC_UARTHS_TX                                                                          \
    }
#define DVP_PINS                                                                                   \
    {40, FUNC_SCCB_SDA}, {41, FUNC_SCCB_SCLK}, {42, FUNC_CMOS_RST}, {43, FUNC_CMOS_VSYNC},         \
        {44, FUNC_CMOS_PWDN}, {45, FUNC_CMOS_HREF}, {46, FUNC_CMOS_XCLK},                          \
    {                                                                                              \
        47, FUNC_CMOS_PCLK                                                                         \
    }

static const struct kfa_k210_board boards[] = {
    {BOARD_MAIX_DOCK, "dan", {UART_PINS, DVP_PINS}, 10, 1},
    {BOARD_MAIX_BIT, "bit", {UART_PINS, DVP_PINS}, 10, 1},
    {BOARD_MAIX_GO, "goE", {UART_PINS, DVP_PINS}, 10, 1},
    {BOARD_MAIXDUINO, "maixduino", {UART_PINS, DVP_PINS}, 10, 1},
    {BOARD_MAIX_AMIGO, "amigo", {UART_PINS, DVP_PINS}, 10, 1},
};

const struct kfa_k210_board *kfa_k210_board_find(uint32_t board)
{
    for (size_t i = 0; i < sizeof(boards) / sizeof(boards[0]); i++)
        if (boards[i].board == board)
            return &boards[i];
    return NULL;
}

size_t kfa_k210_board_count(void)
{
    return sizeof(boards) / sizeof(boards[0]);
}

const struct kfa_k210_board *kfa_k210_board_at(size_t i)
{
    return i < kfa_k210_board_count() ? &boards[i] : NULL;
}

enum kfa_k210_pin_dir kfa_k210_func_dir(uint32_t func)
{
    switch (func) {
    case FUNC_UARTHS_TX:
    case FUNC_CMOS_XCLK:
    case FUNC_CMOS_RST:
    case FUNC_CMOS_PWDN:
    case FUNC_SCCB_SCLK:
        return KFA_PIN_OUT;
    case FUNC_SCCB_SDA:
        return KFA_PIN_BIDI;
    default:
        return KFA_PIN_IN;
    }
}

uint32_t kfa_k210_fpioa_word(uint32_t func)
{
    uint32_t w;

    if (func > 0xFFu)
        return 0;
    w = func;
    switch (kfa_k210_func_dir(func)) {
    case KFA_PIN_OUT:
        w |= FPIOA_DS_MAX << FPIOA_DS_SHIFT | FPIOA_OE_EN;
        break;
    case KFA_PIN_BIDI:
        w |= FPIOA_DS_MAX << FPIOA_DS_SHIFT | FPIOA_OE_EN | FPIOA_IE_EN | FPIOA_ST | FPIOA_PU;
        break;
    case KFA_PIN_IN:
        w |= FPIOA_IE_EN | FPIOA_ST;
        break;
    }
    return w;
}

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define ADDR_FIELD_SHIFT 32u
#define ADDR_LOW_MASK 0xFFFFFFFFull
#define WORD_INT_ENABLE 0u
#define WORD_POOL_TYPE 4u
#define WORD_LOAD 5u
#define WORD_CALC_TYPE 7u
#define WORD_DMA 11u
#define INT_EN_BITS 3u /* int_en | ram_flag */
#define SEND_DATA_OUT 1u
#define TABLE_ALIGN 8u

static int addr_ok(uint64_t a)
{
    return a != 0 && a <= ADDR_LOW_MASK && a % TABLE_ALIGN == 0;
}

int kfa_k210_kpu_relocate(const uint8_t arg[96], uint64_t weights, uint64_t bn, uint64_t act,
                          uint64_t out[12])
{
    if (!arg || !out || !addr_ok(weights) || !addr_ok(bn) || !addr_ok(act))
        return -1;
    for (int i = 0; i < 12; i++)
        out[i] = ld64(arg + 8 * i);
    out[WORD_INT_ENABLE] |= INT_EN_BITS;
    out[WORD_POOL_TYPE] = (out[WORD_POOL_TYPE] & ADDR_LOW_MASK) | bn << ADDR_FIELD_SHIFT;
    out[WORD_LOAD] = (out[WORD_LOAD] & ADDR_LOW_MASK) | weights << ADDR_FIELD_SHIFT;
    out[WORD_CALC_TYPE] = (out[WORD_CALC_TYPE] & ADDR_LOW_MASK) | act << ADDR_FIELD_SHIFT;
    out[WORD_DMA] &= ~(uint64_t)SEND_DATA_OUT;
    return 0;
}

int kfa_k210_flash_plan(uint32_t flash_size, uint32_t image_reserve, uint32_t image_size,
                        struct kfa_k210_flash_plan *plan)
{
    uint64_t need = (uint64_t)image_size + KFA_K210_BOOT_HEADER + KFA_K210_BOOT_DIGEST;

    if (!plan || image_reserve == 0 || image_reserve % 4096u || flash_size <= image_reserve)
        return -1;
    if (need > image_reserve)
        return -1;
    memset(plan, 0, sizeof(*plan));
    plan->image_off = 0;
    plan->image_max = image_reserve;
    plan->store_off = image_reserve;
    plan->store_len = flash_size - image_reserve;
    return 0;
}
