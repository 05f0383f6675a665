/* SPDX-License-Identifier: MIT */
/*
 * The K210 KPU behind kfa_hal_kpu_conv(): each K210_CONV layer's twelve argument words go
 * into the argument FIFO with the weight, batch-norm and activation addresses relocated to
 * where the model sits in RAM (kfa_k210_kpu_relocate); completion comes by the AI
 * interrupt (PLIC source 25) with a poll of interrupt_raw as a fallback; the layer's
 * output is copied densely from AI SRAM to main_out by the CPU when asked (no DMA: the
 * next layer reads AI SRAM directly). Register facts: k210_regs.h (SDK kpu.h kpu_config_t;
 * kpu.c programs fifo_threshold full 10 / empty 1 and clears all three interrupts with 7).
 *
 * Cache: the KPU reads weights, batch-norm and activation tables over its own bus port,
 * around the CPU's write-back data cache, so bytes the CPU wrote (a model read from flash
 * into model RAM) may still sit in dirty cache lines. The SDK's kmodel v3 path handles it
 * so (lib/drivers/kpu.c, kpu_load_kmodel: the layer bodies are copied from their cached
 * address to the same bytes through IOMEM, the uncached alias 0x40000000 below, and
 * checked; kpu_conv: para_start_addr, bwsx_base_addr and active_addr are given as
 * address - IOMEM). This file does the same: the KPU gets the uncached alias, and each
 * layer's tables are written through it once after the model RAM changed (k210_spi3.c
 * calls k210_kpu_memory_changed() on every flash read, the only way model bytes arrive).
 *
 * Output by DMA (the SDK's KLF_MAIN_MEM_OUT path: DMAC channel fed by the KPU's
 * fifo_data_out) is not used: main-memory outputs are small (the face model's only one is
 * 30x15x20 = 9000 bytes, last layer) and the CPU copy of them is a few tens of
 * microseconds, while a DMAC driver and its channel would add code, RAM and an interrupt
 * for nothing measurable.
 */
#include <string.h>

#include "hal/hal.h"
#include "hal_k210.h"
#include "k210_pure.h"
#include "k210_regs.h"
#include "kmodel/kpu_layer.h"
#include "rv64/clint.h"
#include "rv64/plic.h"
#include "rv64/rv64.h"

#define FIFO_FULL_THRESHOLD 10u
#define FIFO_EMPTY_THRESHOLD 1u
#define MASK_ALL_BUT_DONE 6u /* interrupt_mask: 1 masks; calc_done stays enabled */
#define LAYER_TIMEOUT_US 2000000u
#define PLIC_CTX_HART0_M 0u
#define IOMEM_OFFSET 0x40000000u /* SDK iomem.h IOMEM: cached SRAM - uncached alias */
#define SRAM_CACHED 0x80000000u
#define SRAM_END 0x80800000u
#define ACT_TABLE_BYTES 144u /* hal.h struct kfa_kpu_conv .act */
#define BN_BYTES_PER_CHANNEL 8u
#define SYNC_MEMO 64u /* layers remembered as written back; more are written every run */

static volatile int layer_done;
/* Layers (by argument address) whose tables are in memory since the last model RAM change. */
static struct {
    const uint8_t *arg[SYNC_MEMO];
    uint32_t n;
} synced;

void k210_kpu_memory_changed(void)
{
    synced.n = 0;
}

/* The uncached alias of a cached SRAM address; other addresses as they are. */
static uintptr_t uncached(const void *p)
{
    uintptr_t a = (uintptr_t)p;

    return a >= SRAM_CACHED && a < SRAM_END ? a - IOMEM_OFFSET : a;
}

/* Write [p, p + len) back to memory through the uncached alias (kpu.c kpu_load_kmodel). */
static void write_back(const uint8_t *p, size_t len)
{
    uintptr_t u = uncached(p);

    if (u != (uintptr_t)p && (uintptr_t)p + len <= SRAM_END)
        memcpy((void *)u, p, len);
}

static void sync_layer(const struct kfa_kpu_conv *conv, size_t weights, uint32_t channels)
{
    for (uint32_t i = 0; i < synced.n; i++)
        if (synced.arg[i] == conv->arg)
            return;
    write_back(conv->weights, weights);
    write_back(conv->bn, (size_t)channels * BN_BYTES_PER_CHANNEL);
    write_back(conv->act, ACT_TABLE_BYTES);
    __asm__ volatile("fence" ::: "memory");
    if (synced.n < SYNC_MEMO)
        synced.arg[synced.n++] = conv->arg;
}

static void kpu_wr(uint32_t off, uint64_t v)
{
    kfa_mmio_write64(K210_AI_BASE + off, v);
}

static uint64_t kpu_rd(uint32_t off)
{
    return kfa_mmio_read64(K210_AI_BASE + off);
}

uint8_t *kfa_hal_kpu_ram(void)
{
    return (uint8_t *)(uintptr_t)K210_AI_IO_BASE;
}

void k210_kpu_init(void)
{
    kpu_wr(KPU_INT_CLEAR, KPU_INT_ALL);
    kpu_wr(KPU_FIFO_THRESHOLD, FIFO_FULL_THRESHOLD | FIFO_EMPTY_THRESHOLD << 4);
    kpu_wr(KPU_INT_MASK, MASK_ALL_BUT_DONE);
    kfa_plic_enable(PLIC_CTX_HART0_M, K210_IRQ_AI);
}

void k210_kpu_irq(void)
{
    kpu_wr(KPU_INT_CLEAR, KPU_INT_ALL);
    layer_done = 1;
}

static int wait_done(void)
{
    uint64_t hz = kfa_k210_mtime_hz(k210_cpu_hz());
    uint64_t end = kfa_clint_mtime() + (uint64_t)LAYER_TIMEOUT_US * hz / 1000000u;

    for (;;) {
        uint64_t st = kfa_csr_read(mstatus);

        kfa_csr_clear(mstatus, KFA_MSTATUS_MIE);
        if (layer_done || (kpu_rd(KPU_INT_RAW) & KPU_INT_CALC_DONE)) {
            kpu_wr(KPU_INT_CLEAR, KPU_INT_ALL);
            kfa_csr_set(mstatus, st & KFA_MSTATUS_MIE);
            return 0;
        }
        kfa_csr_set(mstatus, st & KFA_MSTATUS_MIE);
        if (kfa_clint_mtime() > end)
            return KFA_HAL_E_IO;
    }
}

int kfa_hal_kpu_conv(const struct kfa_kpu_conv *conv, uint8_t *kpu_ram, enum kfa_rounding rounding)
{
    struct kfa_kpu_layer l;
    struct kfa_kpu_check why;
    uint64_t words[12];
    int r;

    (void)rounding; /* the hardware rounds as it does */
    if (!conv || !conv->arg || !conv->weights || !conv->bn || !conv->act ||
        kpu_ram != kfa_hal_kpu_ram())
        return KFA_HAL_E_RANGE;
    kfa_kpu_layer_decode(conv->arg, &l);
    if (kfa_kpu_layer_check(&l, &why) < 0 ||
        kfa_kpu_weights_bytes(&l, conv->eight_bit) > conv->weights_len ||
        (conv->main_out && conv->main_out_len < l.dma_bytes))
        return KFA_HAL_E_RANGE;
    if (kfa_k210_kpu_relocate(conv->arg, uncached(conv->weights), uncached(conv->bn),
                              uncached(conv->act), words) != 0)
        return KFA_HAL_E_RANGE;
    sync_layer(conv, (size_t)kfa_kpu_weights_bytes(&l, conv->eight_bit), l.out.c);
    kpu_wr(KPU_EIGHT_BIT_MODE, conv->eight_bit ? 1u : 0u);
    layer_done = 0;
    kpu_wr(KPU_INT_CLEAR, KPU_INT_ALL);
    __asm__ volatile("fence" ::: "memory"); /* tables and input in memory before the KPU reads */
    for (int i = 0; i < 12; i++)
        kpu_wr(KPU_LAYER_ARG_FIFO, words[i]);
    r = wait_done();
    if (r != 0)
        return r;
    if (conv->main_out) {
        uint8_t *dst = conv->main_out;

        for (uint32_t c = 0; c < l.out.c; c++)
            for (uint32_t y = 0; y < l.out.h; y++) {
                memcpy(dst, kpu_ram + kfa_kpu_map_offset(&l.out, c, y, 0), l.out.w);
                dst += l.out.w;
            }
    }
    return 0;
}
