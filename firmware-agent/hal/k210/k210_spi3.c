/* SPDX-License-Identifier: MIT */
/*
 * The board's SPI NOR flash on SPI3 (the K210's dedicated flash port; DesignWare SSI,
 * register facts in k210_regs.h). Standard single-line SPI, 8-bit frames: reads in EEPROM
 * mode (command and address out, then CTRLR1 + 1 bytes in), writes and commands in
 * transmit-only mode with every byte queued before slave select is raised (the SSI drops
 * chip select when its FIFO runs empty, so a transaction never exceeds the 32-entry FIFO:
 * page programs go in 28-byte pieces). Interrupts are masked during a transaction so the
 * receive FIFO cannot overflow. NOR commands (JEDEC JESD216 / Winbond W25Q128JV datasheet
 * §8): 0x9F JEDEC id, 0x03 read, 0x06 write enable, 0x02 page program (256-byte pages),
 * 0x20 4 KiB sector erase, 0x05 status (bit 0 busy), 0x4B unique id (4 dummy bytes).
 */
#include "hal/hal.h"
#include "hal_k210.h"
#include "k210_regs.h"
#include "rv64/rv64.h"

#define CMD_JEDEC 0x9Fu
#define CMD_READ 0x03u
#define CMD_WREN 0x06u
#define CMD_PP 0x02u
#define CMD_SE 0x20u
#define CMD_RDSR 0x05u
#define CMD_UID 0x4Bu
#define SR_WIP 1u
#define PAGE 256u
#define PIECE 28u       /* 32-entry FIFO minus command and 3 address bytes */
#define READ_MAX 65536u /* CTRLR1 is 16 bits */
#define BAUDR_DIV 2u    /* SCK = 13 MHz (IN0 / 2, threshold 0) / 2 */
#define BUSY_SPIN 50000000u
#define CAP_MIN 16u /* JEDEC capacity byte: log2(bytes); 64 KiB .. 2 GiB */
#define CAP_MAX 31u

static uint32_t flash_size;

static void ssi(uint32_t tmod, uint32_t rx_frames)
{
    k210_wr(K210_SPI3_BASE, SPI_SSIENR, 0);
    k210_wr(K210_SPI3_BASE, SPI_SER, 0);
    k210_wr(K210_SPI3_BASE, SPI_CTRLR0, (8u - 1u) << SPI3_DFS_SHIFT | tmod << SPI3_TMOD_SHIFT);
    k210_wr(K210_SPI3_BASE, SPI_CTRLR1, rx_frames ? rx_frames - 1u : 0u);
    k210_wr(K210_SPI3_BASE, SPI_BAUDR, BAUDR_DIV);
    k210_wr(K210_SPI3_BASE, SPI_IMR, 0);
    k210_wr(K210_SPI3_BASE, SPI_SPI_CTRLR0, 0);
    k210_wr(K210_SPI3_BASE, SPI_SSIENR, 1);
}

static int idle(void)
{
    for (uint32_t i = 0; i < BUSY_SPIN; i++) {
        uint32_t sr = k210_rd(K210_SPI3_BASE, SPI_SR);

        if ((sr & SPI_SR_TFE) && !(sr & SPI_SR_BUSY))
            return 0;
    }
    return KFA_HAL_E_IO;
}

/* Send hdr (and data) in one transaction of at most the FIFO depth. */
static int tx(const uint8_t *hdr, uint32_t hn, const uint8_t *data, uint32_t dn)
{
    uint64_t st = kfa_csr_read(mstatus);
    int r;

    if (hn + dn > SPI_FIFO_DEPTH)
        return KFA_HAL_E_RANGE;
    kfa_csr_clear(mstatus, KFA_MSTATUS_MIE);
    ssi(SPI_TMOD_TRANS, 0);
    for (uint32_t i = 0; i < hn; i++)
        k210_wr(K210_SPI3_BASE, SPI_DR, hdr[i]);
    for (uint32_t i = 0; i < dn; i++)
        k210_wr(K210_SPI3_BASE, SPI_DR, data[i]);
    k210_wr(K210_SPI3_BASE, SPI_SER, 1u);
    r = idle();
    k210_wr(K210_SPI3_BASE, SPI_SER, 0);
    kfa_csr_set(mstatus, st & KFA_MSTATUS_MIE);
    return r;
}

/* Send hdr, then receive n bytes (EEPROM read mode). */
static int rx(const uint8_t *hdr, uint32_t hn, uint8_t *out, uint32_t n)
{
    uint64_t st = kfa_csr_read(mstatus);
    uint32_t got = 0, spins = 0;
    int r = 0;

    if (n == 0 || n > READ_MAX || hn > SPI_FIFO_DEPTH)
        return KFA_HAL_E_RANGE;
    kfa_csr_clear(mstatus, KFA_MSTATUS_MIE);
    ssi(SPI_TMOD_EEPROM, n);
    for (uint32_t i = 0; i < hn; i++)
        k210_wr(K210_SPI3_BASE, SPI_DR, hdr[i]);
    k210_wr(K210_SPI3_BASE, SPI_SER, 1u);
    while (got < n) {
        uint32_t lvl = k210_rd(K210_SPI3_BASE, SPI_RXFLR);

        if (lvl == 0) {
            if (++spins > BUSY_SPIN) {
                r = KFA_HAL_E_IO;
                break;
            }
            continue;
        }
        spins = 0;
        while (lvl-- > 0 && got < n)
            out[got++] = (uint8_t)k210_rd(K210_SPI3_BASE, SPI_DR);
    }
    k210_wr(K210_SPI3_BASE, SPI_SER, 0);
    kfa_csr_set(mstatus, st & KFA_MSTATUS_MIE);
    return r;
}

static int wait_ready(void)
{
    static const uint8_t cmd = CMD_RDSR;
    uint8_t sr = SR_WIP;

    for (uint32_t i = 0; i < BUSY_SPIN && (sr & SR_WIP); i++)
        if (rx(&cmd, 1, &sr, 1) != 0)
            return KFA_HAL_E_IO;
    return (sr & SR_WIP) ? KFA_HAL_E_IO : 0;
}

static void addr_cmd(uint8_t cmd, uint32_t a, uint8_t out[4])
{
    out[0] = cmd;
    out[1] = (uint8_t)(a >> 16);
    out[2] = (uint8_t)(a >> 8);
    out[3] = (uint8_t)a;
}

int k210_flash_init(void)
{
    static const uint8_t cmd = CMD_JEDEC;
    uint8_t id[3];

    /* SPI3 from IN0 (clk_sel0.spi3_clk_sel 0) with threshold 0 (spi.c spi_clk_init). */
    k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_SEL0,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_SEL0) & ~CLK_SEL0_SPI3_PLL0);
    k210_wr(K210_SYSCTL_BASE, SYSCTL_CLK_TH1,
            k210_rd(K210_SYSCTL_BASE, SYSCTL_CLK_TH1) & ~(0xFFu << CLK_TH1_SPI3_SHIFT));
    flash_size = 0;
    if (rx(&cmd, 1, id, 3) != 0 || id[2] < CAP_MIN || id[2] > CAP_MAX)
        return KFA_HAL_E_NODEV;
    flash_size = 1u << id[2];
    return 0;
}

int k210_flash_uid(uint8_t out[8])
{
    static const uint8_t cmd[5] = {CMD_UID, 0, 0, 0, 0};

    return flash_size ? rx(cmd, 5, out, 8) : KFA_HAL_E_NODEV;
}

uint32_t kfa_hal_flash_size(void)
{
    return flash_size;
}

static int in_range(uint32_t off, size_t len)
{
    return off <= flash_size && len <= flash_size - off;
}

int kfa_hal_flash_read(uint32_t offset, void *buf, size_t len)
{
    uint8_t *p = buf, hdr[4];

    if (!in_range(offset, len))
        return KFA_HAL_E_RANGE;
    k210_kpu_memory_changed(); /* model bytes arrive this way: the KPU must re-sync them */
    while (len > 0) {
        uint32_t n = len > READ_MAX ? READ_MAX : (uint32_t)len;

        addr_cmd(CMD_READ, offset, hdr);
        if (rx(hdr, 4, p, n) != 0)
            return KFA_HAL_E_IO;
        p += n;
        offset += n;
        len -= n;
    }
    return 0;
}

int kfa_hal_flash_erase(uint32_t offset, uint32_t len)
{
    static const uint8_t wren = CMD_WREN;
    uint8_t hdr[4];

    if (!in_range(offset, len) || offset % KFA_HAL_FLASH_SECTOR || len % KFA_HAL_FLASH_SECTOR)
        return KFA_HAL_E_RANGE;
    for (uint32_t a = offset; a < offset + len; a += KFA_HAL_FLASH_SECTOR) {
        addr_cmd(CMD_SE, a, hdr);
        if (tx(&wren, 1, NULL, 0) != 0 || tx(hdr, 4, NULL, 0) != 0 || wait_ready() != 0)
            return KFA_HAL_E_IO;
        kfa_hal_watchdog_kick();
    }
    return 0;
}

int kfa_hal_flash_write(uint32_t offset, const void *buf, size_t len)
{
    static const uint8_t wren = CMD_WREN;
    const uint8_t *p = buf;
    uint8_t hdr[4];

    if (!in_range(offset, len))
        return KFA_HAL_E_RANGE;
    while (len > 0) {
        uint32_t room = PAGE - offset % PAGE, n = len < PIECE ? (uint32_t)len : PIECE;

        if (n > room)
            n = room;
        addr_cmd(CMD_PP, offset, hdr);
        if (tx(&wren, 1, NULL, 0) != 0 || tx(hdr, 4, p, n) != 0 || wait_ready() != 0)
            return KFA_HAL_E_IO;
        p += n;
        offset += n;
        len -= n;
    }
    return 0;
}
