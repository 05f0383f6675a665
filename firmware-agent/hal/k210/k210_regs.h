/* SPDX-License-Identifier: MIT */
/*
 * K210 register facts used by hal/k210, from kendryte/kendryte-standalone-sdk (Apache-2.0;
 * facts only, no code): lib/bsp/include/platform.h (*_BASE_ADDR), lib/drivers/include/
 * sysctl.h (sysctl_t and its bit fields), fpioa.h (fpioa_io_config_t, fpioa_function_t),
 * kpu.h (kpu_config_t), dvp.h (dvp_t, DVP_* bits), spi.h (spi_t), wdt.h (wdt_t), plic.h
 * (plic_irq_t) and lib/drivers/sysctl.c (SYSCTRL_CLOCK_FREQ_IN0, PLL limits), spi.c
 * (SPI3's ctrlr0 field offsets).
 */
#ifndef KFA_K210_REGS_H
#define KFA_K210_REGS_H

/* platform.h */
#define K210_UARTHS_BASE 0x38000000u
#define K210_FPIOA_BASE 0x502B0000u
#define K210_WDT0_BASE 0x50400000u
#define K210_DVP_BASE 0x50430000u
#define K210_SYSCTL_BASE 0x50440000u
#define K210_SPI3_BASE 0x54000000u
#define K210_AI_BASE 0x40800000u    /* AI_BASE_ADDR: kpu_config_t */
#define K210_AI_IO_BASE 0x40600000u /* AI_IO_BASE_ADDR: AI SRAM, uncached */
#define K210_AI_RAM_BASE 0x80600000u

/* sysctl.c SYSCTRL_CLOCK_FREQ_IN0: the 26 MHz crystal. */
#define K210_IN0_HZ 26000000u

/* sysctl_t register offsets (sysctl.h "No. n (0x..)" comments). */
#define SYSCTL_PLL0 0x08u
#define SYSCTL_PLL1 0x0Cu
#define SYSCTL_PLL2 0x10u
#define SYSCTL_PLL_LOCK 0x18u
#define SYSCTL_CLK_SEL0 0x20u
#define SYSCTL_CLK_EN_CENT 0x28u
#define SYSCTL_CLK_EN_PERI 0x2Cu
#define SYSCTL_SOFT_RESET 0x30u
#define SYSCTL_PERI_RESET 0x34u
#define SYSCTL_CLK_TH0 0x38u
#define SYSCTL_CLK_TH1 0x3Cu
#define SYSCTL_MISC 0x54u
#define SYSCTL_RESET_STATUS 0x60u

/* sysctl_pll0_t (PLL1/2 alike): clkr 3:0, clkf 9:4, clkod 13:10, bwadj 19:14, reset 20,
 * pwrd 21, intfb 22, bypass 23, test 24, out_en 25. */
#define PLL_CLKR_SHIFT 0u
#define PLL_CLKF_SHIFT 4u
#define PLL_CLKOD_SHIFT 10u
#define PLL_BWADJ_SHIFT 14u
#define PLL_RESET (1u << 20)
#define PLL_PWRD (1u << 21)
#define PLL_BYPASS (1u << 23)
#define PLL_OUT_EN (1u << 25)
#define PLL_FIELDS_MASK 0xFFFFFu
/* sysctl_pll_lock_t: pll_lockN bits 1:0 (both set = locked), pll_slip_clearN bit 2, at
 * 8 bits per PLL. */
#define PLL_LOCK_BITS 3u
#define PLL_SLIP_CLEAR 4u
#define PLL_LOCK_STRIDE 8u
/* sysctl_clk_sel0_t: aclk_sel bit 0 (0 IN0, 1 PLL0), aclk_divider_sel 2:1 (aclk =
 * PLL0 / (2 << n)), spi3_clk_sel bit 12 (0 IN0, 1 PLL0). */
#define CLK_SEL0_ACLK_PLL0 1u
#define CLK_SEL0_ACLK_DIV_SHIFT 1u
#define CLK_SEL0_ACLK_DIV_MASK (3u << 1)
#define CLK_SEL0_SPI3_PLL0 (1u << 12)
/* sysctl_clk_en_cent_t: cpu 0, sram0 1, sram1 2, apb0 3, apb1 4, apb2 5. */
#define CLK_EN_CENT_APB0 (1u << 3)
#define CLK_EN_CENT_APB1 (1u << 4)
#define CLK_EN_CENT_APB2 (1u << 5)
/* sysctl_clk_en_peri_t. */
#define CLK_EN_AI (1u << 2)
#define CLK_EN_DVP (1u << 3)
#define CLK_EN_SPI3 (1u << 9)
#define CLK_EN_FPIOA (1u << 20)
#define CLK_EN_WDT0 (1u << 24)
#define CLK_EN_OTP (1u << 27)
/* sysctl_clk_th0_t: ai_gclk_threshold 11:8 (AI clock = PLL1 / (n + 1)). */
#define CLK_TH0_AI_SHIFT 8u
#define CLK_TH0_AI_MASK (0xFu << 8)
/* sysctl_clk_th1_t: spi3_clk_threshold 31:24 (SPI3 clock = source / ((n + 1) * 2)). */
#define CLK_TH1_SPI3_SHIFT 24u
/* sysctl_peri_reset_t (0x34): dvp_reset bit 3. sysctl_misc_t (0x54): spi_dvp_data_enable
 * bit 10 routes the dedicated DVP_D0-D7 pins to the DVP (sysctl.c sysctl_spi0_dvp_data_set). */
#define PERI_RESET_DVP (1u << 3)
#define MISC_SPI_DVP_DATA_ENABLE (1u << 10)
/* sysctl_clk_sel0_t apb1_clk_sel 8:6: APB1 = aclk / (n + 1). */
#define CLK_SEL0_APB1_SHIFT 6u
#define CLK_SEL0_APB1_MASK 7u
/* sysctl_reset_status_t: reset_sts_clr 0, pin 1, wdt0 2, wdt1 3, soft 4. */
#define RST_STS_CLR 1u
#define RST_STS_PIN (1u << 1)
#define RST_STS_WDT0 (1u << 2)
#define RST_STS_WDT1 (1u << 3)
#define RST_STS_SOFT (1u << 4)

/* fpioa_io_config_t, one 32-bit word per pin at FPIOA_BASE + 4 * pin: ch_sel 7:0, ds 11:8,
 * oe_en 12, oe_inv 13, do_sel 14, do_inv 15, pu 16, pd 17, sl 19, ie_en 20, ie_inv 21,
 * di_inv 22, st 23. */
#define FPIOA_PINS 48u
#define FPIOA_DS_SHIFT 8u
#define FPIOA_OE_EN (1u << 12)
#define FPIOA_PU (1u << 16)
#define FPIOA_PD (1u << 17)
#define FPIOA_IE_EN (1u << 20)
#define FPIOA_ST (1u << 23)
/* fpioa_function_t numbers used here. */
#define FUNC_UARTHS_RX 18u
#define FUNC_UARTHS_TX 19u
#define FUNC_CMOS_XCLK 132u
#define FUNC_CMOS_RST 133u
#define FUNC_CMOS_PWDN 134u
#define FUNC_CMOS_VSYNC 135u
#define FUNC_CMOS_HREF 136u
#define FUNC_CMOS_PCLK 137u
#define FUNC_SCCB_SCLK 146u
#define FUNC_SCCB_SDA 147u

/* plic.h plic_irq_t. */
#define K210_IRQ_SPI3 4u
#define K210_IRQ_DVP 24u
#define K210_IRQ_AI 25u
#define K210_IRQ_UARTHS 33u
#define K210_PLIC_SOURCES 65u /* IRQN_MAX */

/* kpu_config_t: 64-bit registers at AI_BASE_ADDR. */
#define KPU_LAYER_ARG_FIFO 0x00u
#define KPU_INT_STATUS 0x08u
#define KPU_INT_RAW 0x10u
#define KPU_INT_MASK 0x18u
#define KPU_INT_CLEAR 0x20u
#define KPU_FIFO_THRESHOLD 0x28u
#define KPU_FIFO_DATA_OUT 0x30u
#define KPU_FIFO_CTRL 0x38u
#define KPU_EIGHT_BIT_MODE 0x40u
/* kpu_config_interrupt_t: calc_done 0, layer_cfg_almost_empty 1, almost_full 2. */
#define KPU_INT_CALC_DONE 1u
#define KPU_INT_ALL 7u

/* dvp_t: 32-bit registers. */
#define DVP_CFG 0x00u
#define DVP_R_ADDR 0x04u
#define DVP_G_ADDR 0x08u
#define DVP_B_ADDR 0x0Cu
#define DVP_CMOS_CFG 0x10u
#define DVP_SCCB_CFG 0x14u
#define DVP_SCCB_CTL 0x18u
#define DVP_AXI 0x1Cu
#define DVP_STS 0x20u
#define DVP_RGB_ADDR 0x28u
/* dvp.h DVP_* bits. */
#define DVP_CFG_START_INT_ENABLE 0x1u
#define DVP_CFG_FINISH_INT_ENABLE 0x2u
#define DVP_CFG_AI_OUTPUT_ENABLE 0x4u
#define DVP_CFG_DISPLAY_OUTPUT_ENABLE 0x8u
#define DVP_CFG_AUTO_ENABLE 0x10u
#define DVP_CFG_BURST_SIZE_4BEATS 0x100u
#define DVP_CFG_FORMAT_MASK 0x600u
#define DVP_CFG_RGB_FORMAT 0x0u
#define DVP_CFG_YUV_FORMAT 0x200u
#define DVP_CFG_HREF_BURST_NUM(x) ((uint32_t)(x) << 12)
#define DVP_CFG_LINE_NUM(x) ((uint32_t)(x) << 20)
#define DVP_CMOS_CLK_DIV(x) ((uint32_t)(x) << 0)
#define DVP_CMOS_CLK_ENABLE 0x100u
#define DVP_CMOS_RESET 0x10000u
#define DVP_CMOS_POWER_DOWN 0x1000000u
#define DVP_SCCB_BYTE_NUM_2 0x1u
#define DVP_SCCB_BYTE_NUM_3 0x2u
#define DVP_SCCB_BYTE_NUM_MASK 0x3u
#define DVP_SCCB_SCL_LCNT(x) ((uint32_t)(x) << 8)
#define DVP_SCCB_SCL_HCNT(x) ((uint32_t)(x) << 16)
#define DVP_SCCB_RDATA_BYTE(x) ((x) >> 24)
#define DVP_SCCB_WRITE_DATA_ENABLE 0x1u
#define DVP_SCCB_DEVICE_ADDRESS(x) ((uint32_t)(x) << 0)
#define DVP_SCCB_REG_ADDRESS(x) ((uint32_t)(x) << 8)
#define DVP_SCCB_WDATA_BYTE0(x) ((uint32_t)(x) << 16)
#define DVP_AXI_GM_MLEN_4BYTE 0x3u
#define DVP_STS_FRAME_START 0x1u
#define DVP_STS_FRAME_START_WE 0x2u
#define DVP_STS_FRAME_FINISH 0x100u
#define DVP_STS_FRAME_FINISH_WE 0x200u
#define DVP_STS_DVP_EN 0x10000u
#define DVP_STS_DVP_EN_WE 0x20000u
#define DVP_STS_SCCB_EN 0x1000000u
#define DVP_STS_SCCB_EN_WE 0x2000000u

/* spi_t (DesignWare SSI): 32-bit registers. */
#define SPI_CTRLR0 0x00u
#define SPI_CTRLR1 0x04u
#define SPI_SSIENR 0x08u
#define SPI_SER 0x10u
#define SPI_BAUDR 0x14u
#define SPI_TXFLR 0x20u
#define SPI_RXFLR 0x24u
#define SPI_SR 0x28u
#define SPI_IMR 0x2Cu
#define SPI_DR 0x60u
#define SPI_SPI_CTRLR0 0xF4u
/* SPI3's ctrlr0 offsets (spi.c spi_init / spi_set_tmod for spi_num 3): data frame size
 * 4:0 (bits - 1), work mode 9:8, tmod 11:10, frame format 23:22. */
#define SPI3_DFS_SHIFT 0u
#define SPI3_TMOD_SHIFT 10u
#define SPI_TMOD_TRANS 1u
#define SPI_TMOD_EEPROM 3u
#define SPI_SR_BUSY 1u
#define SPI_SR_TFE (1u << 2) /* transmit FIFO empty */
#define SPI_FIFO_DEPTH 32u

/* wdt_t (DesignWare WDT): cr 0x00 (enable bit 0, rmod bit 1, rpl 4:2), torr 0x04 (top
 * 3:0), ccvr 0x08, crr 0x0C (write 0x76 to restart), stat 0x10, eoi 0x14 (wdt.h). */
#define WDT_CR 0x00u
#define WDT_TORR 0x04u
#define WDT_CRR 0x0Cu
#define WDT_CR_ENABLE 1u
#define WDT_CRR_RESTART 0x76u

#endif /* KFA_K210_REGS_H */
