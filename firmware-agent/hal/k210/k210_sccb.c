/* SPDX-License-Identifier: MIT */
/*
 * The DVP block's SCCB master (register facts: k210_regs.h from SDK dvp.h). A transfer is
 * set up in sccb_cfg (byte count 1:0: 1 = two bytes, 2 = three; SCL low/high counts) and
 * sccb_ctl (device address 7:0, register address 15:8, data byte 23:16, write-data enable
 * bit 0), started by writing sts.SCCB_EN with its write-enable bit, and done when SCCB_EN
 * reads back clear; read data is in sccb_cfg 31:24. A read is a two-byte write of the
 * register address followed by a read phase with the same device and register fields
 * (SDK dvp.c dvp_sccb_send_data / dvp_sccb_receive_data with 8-bit register addresses).
 */
#include "k210_sccb.h"

#include "hal/hal.h"
#include "hal_k210.h"
#include "k210_camera_pure.h"
#include "k210_pure.h"
#include "k210_regs.h"
#include "rv64/clint.h"

#define SCCB_TIMEOUT_US 10000u /* a 3-byte transfer is ~0.3 ms at 100 kHz */

/* Wait for the controller to go idle; 0 or KFA_HAL_E_IO after the timeout. */
static int sccb_idle(void)
{
    uint64_t end =
        kfa_clint_mtime() + (uint64_t)SCCB_TIMEOUT_US * kfa_k210_mtime_hz(k210_cpu_hz()) / 1000000u;

    while (k210_rd(K210_DVP_BASE, DVP_STS) & DVP_STS_SCCB_EN)
        if (kfa_clint_mtime() > end)
            return KFA_HAL_E_IO;
    return 0;
}

static int sccb_go(uint32_t bytes, uint32_t ctl)
{
    if (sccb_idle() != 0)
        return KFA_HAL_E_IO;
    k210_wr(K210_DVP_BASE, DVP_SCCB_CFG,
            (k210_rd(K210_DVP_BASE, DVP_SCCB_CFG) & ~DVP_SCCB_BYTE_NUM_MASK) | bytes);
    k210_wr(K210_DVP_BASE, DVP_SCCB_CTL, ctl);
    k210_wr(K210_DVP_BASE, DVP_STS, DVP_STS_SCCB_EN | DVP_STS_SCCB_EN_WE);
    return sccb_idle();
}

uint32_t k210_sccb_init(uint32_t apb1_hz, uint32_t scl_hz)
{
    uint32_t half = kfa_k210_sccb_half_period(apb1_hz, scl_hz);
    uint32_t v = k210_rd(K210_DVP_BASE, DVP_SCCB_CFG) & DVP_SCCB_BYTE_NUM_MASK;

    k210_wr(K210_DVP_BASE, DVP_SCCB_CFG, v | DVP_SCCB_SCL_LCNT(half) | DVP_SCCB_SCL_HCNT(half));
    return kfa_k210_sccb_hz(apb1_hz, half);
}

int k210_sccb_write(uint8_t dev, uint8_t reg, uint8_t val)
{
    return sccb_go(DVP_SCCB_BYTE_NUM_3, DVP_SCCB_WRITE_DATA_ENABLE | DVP_SCCB_DEVICE_ADDRESS(dev) |
                                            DVP_SCCB_REG_ADDRESS(reg) | DVP_SCCB_WDATA_BYTE0(val));
}

int k210_sccb_read(uint8_t dev, uint8_t reg, uint8_t *val)
{
    if (sccb_go(DVP_SCCB_BYTE_NUM_2, DVP_SCCB_WRITE_DATA_ENABLE | DVP_SCCB_DEVICE_ADDRESS(dev) |
                                         DVP_SCCB_REG_ADDRESS(reg)) != 0)
        return KFA_HAL_E_IO;
    if (sccb_go(DVP_SCCB_BYTE_NUM_2, DVP_SCCB_DEVICE_ADDRESS(dev) | DVP_SCCB_REG_ADDRESS(reg)) != 0)
        return KFA_HAL_E_IO;
    *val = (uint8_t)DVP_SCCB_RDATA_BYTE(k210_rd(K210_DVP_BASE, DVP_SCCB_CFG));
    return 0;
}
