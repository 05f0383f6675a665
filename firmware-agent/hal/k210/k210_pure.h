/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of hal/k210: PLL divisor search, clock arithmetic, board pin profiles
 * and FPIOA configuration words, KPU layer-argument relocation, and the flash layout of
 * the agent. No register access: tests/unit/check_k210_*.c run them on the host.
 */
#ifndef KFA_K210_PURE_H
#define KFA_K210_PURE_H

#include <stddef.h>
#include <stdint.h>

/* ---- PLL ---------------------------------------------------------------------- */

/*
 * One PLL setting: fout = fin / nr * nf / no (kendryte-standalone-sdk sysctl.c
 * sysctl_clock_source_get_freq). Limits from sysctl.c sysctl_pll_source_set_freq: nr 1..16,
 * nf 1..64, no 1..16, VCO = fin / nr * nf within 350 MHz..1.75 GHz, reference fin / nr
 * at least 13.6719 MHz; bwadj = nf - 1.
 */
struct kfa_k210_pll {
    uint32_t nr, nf, no;
    uint32_t fout; /* Hz actually produced */
};
#define KFA_K210_PLL_VCO_MIN 350000000ull
#define KFA_K210_PLL_VCO_MAX 1750000000ull
#define KFA_K210_PLL_REF_MIN 13671900ull
#define KFA_K210_PLL_NR_MAX 16u
#define KFA_K210_PLL_NF_MAX 64u
#define KFA_K210_PLL_NO_MAX 16u

/*
 * kfa_k210_pll_solve - the setting closest to want Hz from fin Hz (ties: higher VCO, for
 * less jitter). Returns 0 and fills *p, or -1 when nothing is within 1 % of want.
 */
int kfa_k210_pll_solve(uint32_t fin, uint32_t want, struct kfa_k210_pll *p);

/* kfa_k210_pll_fields - clkr/clkf/clkod/bwadj bits 19:0 of a sysctl PLLn register. */
uint32_t kfa_k210_pll_fields(const struct kfa_k210_pll *p);

/* kfa_k210_cpu_hz - CPU (aclk) rate from PLL0 and clk_sel0.aclk_divider_sel: pll0 / (2 << n). */
uint32_t kfa_k210_cpu_hz(uint32_t pll0_hz, uint32_t aclk_div_sel);

/* kfa_k210_mtime_hz - the CLINT mtime rate: CPU clock / 50 (SDK clint.h CLINT_CLOCK_DIV). */
uint32_t kfa_k210_mtime_hz(uint32_t cpu_hz);

/* ---- boards and FPIOA --------------------------------------------------------- */

enum kfa_k210_pin_dir { KFA_PIN_IN, KFA_PIN_OUT, KFA_PIN_BIDI };

struct kfa_k210_pin {
    uint8_t io;   /* IO0..IO47 */
    uint8_t func; /* fpioa_function_t */
};

#define KFA_K210_BOARD_PINS 10u
struct kfa_k210_board {
    uint32_t board;   /* kpu.link.v1.Board */
    const char *name; /* kflash -B name and our KFA_K210_BOARD spelling */
    struct kfa_k210_pin pins[KFA_K210_BOARD_PINS];
    uint8_t npins;
    uint8_t dvp_1v8; /* power banks 6 and 7 (IO36-47) at 1.8 V for the camera FPC */
};

/* kfa_k210_board_find - the profile of a kpu.link.v1.Board value, or NULL. */
const struct kfa_k210_board *kfa_k210_board_find(uint32_t board);

/* kfa_k210_board_count / kfa_k210_board_at - iterate over every profile. */
size_t kfa_k210_board_count(void);
const struct kfa_k210_board *kfa_k210_board_at(size_t i);

/* kfa_k210_func_dir - the direction of an FPIOA function used by the profiles. */
enum kfa_k210_pin_dir kfa_k210_func_dir(uint32_t func);

/*
 * kfa_k210_fpioa_word - the fpioa_io_config_t word for func: ch_sel = func, drive
 * strength 0xF for outputs, oe_en for outputs, ie_en + Schmitt trigger for inputs, both
 * plus pull-up for bidirectional (SCCB SDA). Returns 0 for a function number >= 256.
 */
uint32_t kfa_k210_fpioa_word(uint32_t func);

/* ---- KPU ---------------------------------------------------------------------- */

/*
 * kfa_k210_kpu_relocate - the twelve words to push into the KPU's argument FIFO for a
 * layer argument arg (96 bytes as stored in the kmodel): para_start_addr (word 5 bits
 * 63:32) = weights, bwsx_base_addr (word 4 bits 63:32) = bn, active_addr (word 7 bits
 * 63:32) = act (kmodel-facts.md §3.1: the kmodel stores offsets there, the hardware wants
 * bus addresses); interrupt_enabe (word 0) int_en bit 0 set, ram_flag bit 1 set
 * (completion interrupt when the layer is done); dma_parameter (word 11) send_data_out
 * bit 0 cleared (the HAL copies the output from AI SRAM with the CPU). Every address must
 * fit 32 bits and be 8-byte aligned (the fields are 32 bits; tables are u64 arrays).
 * Returns 0, or -1 for an address that does not qualify.
 */
int kfa_k210_kpu_relocate(const uint8_t arg[96], uint64_t weights, uint64_t bn, uint64_t act,
                          uint64_t out[12]);

/* ---- flash layout ------------------------------------------------------------- */

/*
 * Where things are in the board's SPI NOR: the agent image at 0 (what kflash writes and
 * the boot ROM loads: 1 byte AES flag + u32 length + image + 32-byte SHA-256,
 * usb-bridges.md §1.6 item 7), then the model store of core/store.h from
 * KFA_STORE_IMAGE_RESERVE to the end.
 */
struct kfa_k210_flash_plan {
    uint32_t image_off, image_max; /* the boot image slot (header and digest included) */
    uint32_t store_off, store_len; /* core/store.h's part */
};
#define KFA_K210_BOOT_HEADER 5u  /* aes flag + u32 length */
#define KFA_K210_BOOT_DIGEST 32u /* SHA-256 */

/*
 * kfa_k210_flash_plan - the layout for a flash of flash_size bytes with the image slot of
 * image_reserve bytes, checking that an image of image_size bytes fits its slot. Returns 0,
 * or -1 when the flash is too small or the image too large.
 */
int kfa_k210_flash_plan(uint32_t flash_size, uint32_t image_reserve, uint32_t image_size,
                        struct kfa_k210_flash_plan *plan);

#endif /* KFA_K210_PURE_H */
