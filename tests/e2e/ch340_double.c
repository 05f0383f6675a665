/* SPDX-License-Identifier: MIT */
/*
 * ch340_double: a CH340 (1a86:7523) test double for the e2e guest, built on FunctionFS
 * and dummy_hcd. It answers the vendor requests that the Linux ch341 driver and kpud's
 * usb transport send (READ_VERSION, READ_REG, WRITE_REG, SERIAL_INIT, MODEM_CTRL; facts
 * from Linux drivers/usb/serial/ch341.c), logs the baud word and every DTR/RTS change,
 * and bridges bulk data to a backend tty (the guest's ttyS1, which QEMU wires to
 * kpu-agent-sim on the host).
 *
 * It also plays the K210 boot ROM: when the lines go through kflash's "dan" ISP entry
 * (RTS asserted = RST held, then DTR asserted with RTS released = IO16 low while RST is
 * released) it answers the ISP greeting and memory writes itself (SLIP, CRC-checked) until
 * MEMORY_BOOT, logs what it received, and goes back to bridging.
 *
 * usage: ch340_double FFS_DIR BACKEND_TTY
 * Adapted from the research recipe's ch340_emu (shared/research/emu-e2e-recipe.sh).
 */
#include <endian.h>
#include <errno.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffs_double.h"
#include "isp.h"

#define MPS 32             /* full-speed bulk wMaxPacketSize of a CH340 */
#define CH_VERSION 0x31    /* what READ_VERSION answers */
#define CLKRATE 48000000.0 /* ch341.c CH341_CLKRATE */

static const char *ffs_dir;
static int backend = -1;
static int reply_pipe[2];
static uint8_t regs[256];
static int dtr, rts, prev_rts;
static atomic_int isp_mode;
static double rom_rate = 115200; /* what the "ROM" listens at; CHANGE_BAUD moves it */
static struct kpud_slip_dec dec;
static uint8_t image[8 * 1024 * 1024];
static size_t image_len;

static const struct {
    struct usb_functionfs_descs_head_v2 header;
    __le32 fs_count;
    struct {
        struct usb_interface_descriptor intf;
        struct usb_endpoint_descriptor_no_audio bulk_in, bulk_out, int_in;
    } __attribute__((packed)) fs;
} __attribute__((packed)) descriptors = {
    .header = {.magic = FUNCTIONFS_DESCRIPTORS_MAGIC_V2,
               .length = sizeof(descriptors),
               /* ALL_CTRL_RECIP: device-recipient vendor requests reach us too. */
               .flags = FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_ALL_CTRL_RECIP},
    .fs_count = 4,
    .fs =
        {
            .intf = {.bLength = sizeof(descriptors.fs.intf),
                     .bDescriptorType = USB_DT_INTERFACE,
                     .bNumEndpoints = 3,
                     .bInterfaceClass = 0xff,
                     .bInterfaceSubClass = 0x01,
                     .bInterfaceProtocol = 0x02,
                     .iInterface = 1},
            .bulk_in = {.bLength = USB_DT_ENDPOINT_SIZE,
                        .bDescriptorType = USB_DT_ENDPOINT,
                        .bEndpointAddress = 2 | USB_DIR_IN,
                        .bmAttributes = USB_ENDPOINT_XFER_BULK,
                        .wMaxPacketSize = MPS},
            .bulk_out = {.bLength = USB_DT_ENDPOINT_SIZE,
                         .bDescriptorType = USB_DT_ENDPOINT,
                         .bEndpointAddress = 2 | USB_DIR_OUT,
                         .bmAttributes = USB_ENDPOINT_XFER_BULK,
                         .wMaxPacketSize = MPS},
            .int_in = {.bLength = USB_DT_ENDPOINT_SIZE,
                       .bDescriptorType = USB_DT_ENDPOINT,
                       .bEndpointAddress = 1 | USB_DIR_IN,
                       .bmAttributes = USB_ENDPOINT_XFER_INT,
                       .wMaxPacketSize = 8,
                       .bInterval = 1},
        },
};

FFS_STRINGS(strings, "CH340 test double");

/* The rate the host set through the baud registers (ch341.c's prescaler/divisor), or 0. */
static double bridge_rate(void)
{
    int ps = regs[0x12] & 3, fact = (regs[0x12] >> 2) & 1, div = 256 - regs[0x13];

    return div <= 0 ? 0 : CLKRATE / ((double)(1 << (12 - 3 * ps - fact)) * div);
}

static void log_baud(void)
{
    if (bridge_rate() > 0)
        LOG("baud word 0x%02x%02x -> %.0f Bd, LCR 0x%02x", regs[0x13], regs[0x12], bridge_rate(),
            regs[0x18]);
}

static void lines_changed(int nd, int nr)
{
    int changed = nd != dtr || nr != rts;

    LOG("MODEM_CTRL DTR=%d RTS=%d%s", nd, nr, changed ? "  (changed)" : "");
    if (!changed)
        return;
    prev_rts = rts;
    dtr = nd;
    rts = nr;
    /* kflash "dan": RTS drives RST, DTR drives IO16. RST released (RTS 1 -> 0) while IO16
     * is low (DTR asserted): the ROM starts its ISP loader. */
    if (prev_rts && !rts && dtr) {
        kpud_slip_dec_reset(&dec);
        image_len = 0;
        atomic_store(&isp_mode, 1);
        rom_rate = 115200;
        LOG("ISP: boot ROM entered (dan sequence)");
    } else if (prev_rts && !rts && !dtr) {
        atomic_store(&isp_mode, 0);
        LOG("reset into the application");
    }
}

static void handle_setup(int ep0, const struct usb_ctrlrequest *c)
{
    uint16_t v = le16toh(c->wValue), idx = le16toh(c->wIndex), len = le16toh(c->wLength);
    uint8_t buf[64] = {0};

    if (c->bRequestType & USB_DIR_IN) {
        int n = 0;
        switch (c->bRequest) {
        case 0x5f: /* READ_VERSION */
            buf[0] = CH_VERSION;
            n = 2;
            break;
        case 0x95: /* READ_REG */
            buf[0] = regs[v & 0xff];
            buf[1] = regs[v >> 8];
            if (v == 0x0706) {
                buf[0] = 0xff; /* modem status, inverted: nothing asserted */
                buf[1] = 0xee;
            }
            n = 2;
            break;
        default:
            LOG("unknown IN request 0x%02x: stall", c->bRequest);
            ffs_ep0_stall(ep0, c);
            return;
        }
        ffs_ep0_reply(ep0, buf, (size_t)n, len);
        return;
    }
    ffs_ep0_out_data(ep0, len);
    switch (c->bRequest) {
    case 0xa1:
        LOG("SERIAL_INIT");
        break;
    case 0x9a: /* WRITE_REG: two registers at once */
        regs[v & 0xff] = idx & 0xff;
        regs[v >> 8] = idx >> 8;
        LOG("WRITE_REG 0x%04x = 0x%04x", v, idx);
        if ((v & 0xff) == 0x12)
            log_baud();
        break;
    case 0xa4: /* MODEM_CTRL: wValue = ~control, DTR bit 5, RTS bit 6 */
        lines_changed(!(v & 0x20), !(v & 0x40));
        break;
    default:
        LOG("unknown OUT request 0x%02x", c->bRequest);
    }
    ffs_ep0_out_ack(ep0, len);
}

static void isp_reply(uint8_t op, uint8_t status)
{
    uint8_t raw[2] = {op, status}, slip[8];
    size_t n = kpud_slip_encode(raw, 2, slip, sizeof(slip));
    if (write(reply_pipe[1], slip, n) < 0)
        perror("reply pipe");
}

static void isp_frame(const uint8_t *f, size_t len)
{
    uint16_t op;
    const uint8_t *p;
    size_t plen;
    int r;

    /* A UART more than 1 % off the sender's rate sees framing errors, not frames. */
    if (bridge_rate() < rom_rate * 0.99 || bridge_rate() > rom_rate * 1.01) {
        LOG("ISP: frame ignored: host at %.0f Bd, ROM at %.0f Bd", bridge_rate(), rom_rate);
        return;
    }
    if (len >= 1 && f[0] == KPUD_ISP_OP_NOP) {
        LOG("ISP: greeting answered");
        isp_reply(KPUD_ISP_OP_NOP, KPUD_ISP_STATUS_OK);
        return;
    }
    r = kpud_isp_parse_request(f, len, &op, &p, &plen);
    if (op == KPUD_ISP_OP_MEMORY_WRITE) {
        uint32_t addr, n;
        if (r < 0 || plen < 8) {
            isp_reply(KPUD_ISP_OP_MEMORY_WRITE, KPUD_ISP_STATUS_BAD_DATA_CHECKSUM);
            return;
        }
        addr = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
        n = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;
        if (n != plen - 8 || addr < KPUD_ISP_SRAM_BASE ||
            addr - KPUD_ISP_SRAM_BASE + n > sizeof(image)) {
            isp_reply(KPUD_ISP_OP_MEMORY_WRITE, KPUD_ISP_STATUS_BAD_DATA_LEN);
            return;
        }
        memcpy(image + (addr - KPUD_ISP_SRAM_BASE), p + 8, n);
        if (addr - KPUD_ISP_SRAM_BASE + n > image_len)
            image_len = addr - KPUD_ISP_SRAM_BASE + n;
        isp_reply(KPUD_ISP_OP_MEMORY_WRITE, KPUD_ISP_STATUS_OK);
    } else if (op == KPUD_ISP_OP_CHANGE_BAUD && r == 0 && plen == 12) {
        /* kflash change_baudrate_stage0: u32 0, u32 4, u32 rate * 38.6 / 38; no answer. */
        uint32_t v = p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24;
        rom_rate = v * 38.0 / 38.6;
        LOG("ISP: CHANGE_BAUD value %u, ROM now at %.0f Bd", v, rom_rate);
    } else if (op == KPUD_ISP_OP_MEMORY_BOOT && r == 0 && plen >= 4) {
        uint32_t addr = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
        LOG("ISP: boot at 0x%08x after %zu bytes, crc32 %08x", addr, image_len,
            kpud_isp_crc32(image, image_len));
        atomic_store(&isp_mode, 0);
    } else {
        LOG("ISP: op 0x%02x (%d)", op, r);
        isp_reply((uint8_t)op, KPUD_ISP_STATUS_INVALID_COMMAND);
    }
}

static void *out_thread(void *a)
{
    uint8_t buf[MPS];
    int fd = ffs_open_ep(ffs_dir, 2);

    for (;;) {
        /* Exactly one packet per read: a larger read would wait for a short packet. */
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            usleep(10000);
            continue;
        }
        if (atomic_load(&isp_mode)) {
            for (ssize_t i = 0; i < n; i++)
                if (kpud_slip_dec_push(&dec, buf[i]))
                    isp_frame(dec.buf, dec.len);
            continue;
        }
        ffs_write_all(backend, buf, (size_t)n);
    }
    return a;
}

static void send_in(int fd, const uint8_t *buf, ssize_t n)
{
    for (ssize_t off = 0; off < n;) {
        /* FunctionFS sends no zero-length packet: end every write on a short packet so the
         * host's larger read completes. */
        ssize_t len = n - off;
        if (len % MPS == 0)
            len = len > MPS ? len - MPS + (MPS - 1) : MPS - 1;
        ssize_t w = write(fd, buf + off, (size_t)len);
        if (w < 0) {
            if (errno == ESHUTDOWN || errno == EINTR) {
                usleep(10000);
                return; /* unbound: the data is lost, as on a real unplug */
            }
            perror("ep1 write");
            return;
        }
        off += w;
    }
}

static void *in_thread(void *a)
{
    uint8_t buf[4096];
    int fd = ffs_open_ep(ffs_dir, 1);

    for (;;) {
        struct pollfd p[2] = {{backend, POLLIN, 0}, {reply_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents & POLLIN) {
            ssize_t n = read(reply_pipe[0], buf, sizeof(buf));
            if (n > 0)
                send_in(fd, buf, n);
        }
        if (p[0].revents & POLLIN) {
            ssize_t n = read(backend, buf, sizeof(buf));
            /* While the "ROM" runs, the agent is held off the wire. */
            if (n > 0 && !atomic_load(&isp_mode))
                send_in(fd, buf, n);
        }
    }
    return a;
}

int main(int argc, char **argv)
{
    pthread_t a, b;
    int ep0;

    ffs_log_init("ch340_double");
    if (argc < 3) {
        fprintf(stderr, "usage: %s FFS_DIR BACKEND_TTY\n", argv[0]);
        return 1;
    }
    ffs_dir = argv[1];
    backend = ffs_open_backend(argv[2]);
    if (backend < 0 || pipe(reply_pipe) < 0)
        return 1;
    regs[0x05] = 0x01;
    regs[0x18] = 0xc3;
    ep0 = ffs_open_ep0(ffs_dir, &descriptors, sizeof(descriptors), &strings, sizeof(strings));
    if (ep0 < 0)
        return 1;
    LOG("descriptors written");
    pthread_create(&a, NULL, out_thread, NULL);
    pthread_create(&b, NULL, in_thread, NULL);
    return ffs_ep0_loop(ep0, handle_setup);
}
