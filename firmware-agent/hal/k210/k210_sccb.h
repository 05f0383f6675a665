/* SPDX-License-Identifier: MIT */
/*
 * The SCCB (I2C-like camera control bus) master inside the K210's DVP block: register
 * reads and writes with 8-bit register addresses. Used by k210_dvp.c only.
 */
#ifndef KFA_K210_SCCB_H
#define KFA_K210_SCCB_H

#include <stdint.h>

/*
 * k210_sccb_init - set SCL to at most scl_hz from the DVP's APB1 clock (apb1_hz). Call
 * once after the DVP clock is on. Returns the SCL rate it got.
 */
uint32_t k210_sccb_init(uint32_t apb1_hz, uint32_t scl_hz);

/*
 * k210_sccb_write - write val to register reg of the device at 8-bit SCCB address dev.
 * Blocks for the transfer (about 30 SCL periods). Returns 0, or KFA_HAL_E_IO when the
 * controller does not finish within its timeout. SCCB has no acknowledge the controller
 * reports, so a missing device is found by reading an id, not by a failed write.
 */
int k210_sccb_write(uint8_t dev, uint8_t reg, uint8_t val);

/* k210_sccb_read - read register reg of device dev into *val. 0 or KFA_HAL_E_IO. */
int k210_sccb_read(uint8_t dev, uint8_t reg, uint8_t *val);

#endif /* KFA_K210_SCCB_H */
