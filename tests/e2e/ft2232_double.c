/* SPDX-License-Identifier: MIT */
/*
 * ft2232_double: an FTDI FT2232H (0403:6010, bcdDevice 0x0700) test double for the e2e
 * guest, built on FunctionFS and dummy_hcd like ch340_double. It has the chip's two
 * interfaces, each with a bulk IN and a bulk OUT endpoint (full speed: 64-byte packets):
 *   port A (interface 0, wIndex 1): silent. It accepts vendor requests and OUT data and
 *     never sends data, only the 2-byte status packets an idle FTDI sends every latency
 *     period while the host polls;
 *   port B (interface 1, wIndex 2): bridged to a backend tty (the guest's ttyS1, which
 *     QEMU wires to kpu-agent-sim on the host), as on Sipeed's FT2232-style boards.
 * Every IN packet starts with the 2-byte modem/line status header, and the agent's bytes
 * are cut into packets of varying payload (62 bytes in a full packet, and short ones of
 * other sizes), so a host that strips the header per transfer instead of per packet, or
 * assumes packet and message boundaries agree, gets garbage.
 *
 * Every vendor request is logged with the port its wIndex addresses; SET_BAUDRATE is
 * decoded and compared with the encoding the Linux driver's rule gives for the nearest
 * standard rate (written out below, not taken from kpud); DTR/RTS changes are logged as
 * in ch340_double. SIGUSR1 prints the IN packet counters; SIGTERM prints them and exits.
 *
 * Facts (shared/research/usb-bridges.md §1.2): Linux drivers/usb/serial/ftdi_sio.c
 * (ftdi_determine_type: bcdDevice 0x0700 = FT2232H; change_speed: wIndex = divisor bit 16
 * and up << 8 | channel on FT2232C/H; ftdi_2232h_baud_base_to_divisor: eighths =
 * DIV_ROUND_CLOSEST(8 * 120 MHz, 10 * baud), divfrac, 1.0 -> 0 and 1.5 -> 1, bit 17 for
 * the 12 MHz reference; ftdi_process_read_urb: a status header per wMaxPacketSize) and
 * ftdi_sio.h (request numbers, MODEM_CTRL masks, bulk-in status bits).
 *
 * usage: ft2232_double FFS_DIR BACKEND_TTY
 */
#include <endian.h>
#include <errno.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffs_double.h"

#define MPS 64 /* full-speed bulk wMaxPacketSize (ftdi_set_max_packet_size) */
#define HDR 2  /* modem status, line status at the start of every IN packet */
#define PAYLOAD (MPS - HDR)
#define PORTS 2            /* A, B */
#define PORT_B 1           /* index of the bridged port (wIndex 2) */
#define LATENCY_DEFAULT 16 /* ms, ftdi_sio.h "default latency timer" */
#define IDLE_FLOOR_MS 10   /* idle status packets no more often than this: spares TCG */
/* Header bytes: modem status low nibble 1 (constant on FTDI chips, ftdi_sio.h
 * FTDI_RS0_*), CTS 0x10 | DSR 0x20 asserted; line status THRE 0x20 | TEMT 0x40. */
#define MODEM_STATUS 0x31
#define LINE_STATUS 0x60

/* SIO requests (ftdi_sio.h FTDI_SIO_*). */
enum {
    SIO_RESET = 0x00,
    SIO_MODEM_CTRL = 0x01,
    SIO_SET_FLOW_CTRL = 0x02,
    SIO_SET_BAUDRATE = 0x03,
    SIO_SET_DATA = 0x04,
    SIO_GET_MODEM_STATUS = 0x05,
    SIO_SET_EVENT_CHAR = 0x06,
    SIO_SET_ERROR_CHAR = 0x07,
    SIO_SET_LATENCY_TIMER = 0x09,
    SIO_GET_LATENCY_TIMER = 0x0a,
    SIO_SET_BITMODE = 0x0b,
};

struct port {
    char name;               /* 'A' or 'B' */
    int ep_in, ep_out;       /* FunctionFS endpoint file numbers */
    atomic_int latency;      /* ms, SET_LATENCY_TIMER */
    int dtr, rts;            /* as last set by MODEM_CTRL */
    atomic_ulong packets;    /* IN packets sent, each with the header */
    atomic_ulong full;       /* ... of them 64 bytes */
    atomic_ulong short_data; /* ... short with data */
    atomic_ulong status_only;
    atomic_ulong payload;   /* data bytes carried in IN packets */
    atomic_ulong multi;     /* runs of 2+ packets: 2+ headers inside one host transfer */
    atomic_ulong out_bytes; /* OUT data received */
};

static const char *ffs_dir;
static int backend = -1;
static struct port ports[PORTS] = {{.name = 'A', .ep_in = 1, .ep_out = 2},
                                   {.name = 'B', .ep_in = 3, .ep_out = 4}};

#define EP(addr, dir)                                                                              \
    {                                                                                              \
        .bLength = USB_DT_ENDPOINT_SIZE, .bDescriptorType = USB_DT_ENDPOINT,                       \
        .bEndpointAddress = (addr) | (dir), .bmAttributes = USB_ENDPOINT_XFER_BULK,                \
        .wMaxPacketSize = MPS,                                                                     \
    }
#define INTF(num)                                                                                  \
    {                                                                                              \
        .bLength = USB_DT_INTERFACE_SIZE, .bDescriptorType = USB_DT_INTERFACE,                     \
        .bInterfaceNumber = (num), .bNumEndpoints = 2, .bInterfaceClass = 0xff,                    \
        .bInterfaceSubClass = 0xff, .bInterfaceProtocol = 0xff, .iInterface = 1,                   \
    }

/* The FT2232H's layout (usb-bridges.md §1.2): A = EP 0x81 IN / 0x02 OUT, B = 0x83 / 0x04.
 * FunctionFS numbers the endpoint files in this order: ep1 A IN, ep2 A OUT, ep3 B IN,
 * ep4 B OUT (the gadget may give them other addresses on the bus). */
static const struct {
    struct usb_functionfs_descs_head_v2 header;
    __le32 fs_count;
    struct {
        struct usb_interface_descriptor intf_a;
        struct usb_endpoint_descriptor_no_audio a_in, a_out;
        struct usb_interface_descriptor intf_b;
        struct usb_endpoint_descriptor_no_audio b_in, b_out;
    } __attribute__((packed)) fs;
} __attribute__((packed)) descriptors = {
    .header = {.magic = FUNCTIONFS_DESCRIPTORS_MAGIC_V2,
               .length = sizeof(descriptors),
               /* ALL_CTRL_RECIP: FTDI's requests are device-recipient, with the port in
                * wIndex; without it FunctionFS would not see them. */
               .flags = FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_ALL_CTRL_RECIP},
    .fs_count = 6,
    .fs = {.intf_a = INTF(0),
           .a_in = EP(1, USB_DIR_IN),
           .a_out = EP(2, USB_DIR_OUT),
           .intf_b = INTF(1),
           .b_in = EP(3, USB_DIR_IN),
           .b_out = EP(4, USB_DIR_OUT)},
};

FFS_STRINGS(strings, "Dual RS232-HS");

/* ---- the Linux driver's FT2232H baud rule, written out for checking ---- */

#define H_REF 120000000ull /* ftdi_2232h_baud_to_divisor base */
#define H_CLK_BIT 0x20000u /* "turn off the divide by 2.5" */

/* ftdi_sio.c divfrac: the fraction code of eighths 0..7. */
static const unsigned frac_code[8] = {0, 3, 2, 4, 1, 5, 6, 7};

/* The 18-bit value ftdi_2232h_baud_base_to_divisor gives for baud (>= 1200). */
static uint32_t kernel_h_encoding(uint32_t baud)
{
    uint64_t eighths = (8 * H_REF + 5ull * baud) / (10ull * baud); /* DIV_ROUND_CLOSEST */
    uint32_t d = (uint32_t)(eighths >> 3) | frac_code[eighths & 7] << 14;

    if (d == 1)
        d = 0;
    else if (d == 0x4001)
        d = 1;
    return d | H_CLK_BIT;
}

/* The rate an 18-bit encoding gives on an H-series chip, in Bd (0 if nonsense). */
static double decode_h(uint32_t enc)
{
    uint32_t d = enc & 0x1ffffu, eighths;
    double ref = (enc & H_CLK_BIT) ? 12e6 : 3e6; /* 120 MHz / 10, or 48 MHz / 16 */

    if (d == 0)
        eighths = 8; /* 1.0 */
    else if (d == 1)
        eighths = 12; /* 1.5 */
    else {
        eighths = (d & 0x3fffu) << 3;
        for (unsigned e = 0; e < 8; e++)
            if (frac_code[e] == (d >> 14))
                eighths += e;
    }
    return eighths ? ref * 8.0 / eighths : 0.0;
}

static void log_baud(struct port *p, uint16_t value, uint16_t index)
{
    static const uint32_t standard[] = {9600,   19200,  38400,   57600,   115200,  230400,
                                        460800, 921600, 1000000, 1500000, 2000000, 3000000};
    uint32_t enc = value | (uint32_t)(index >> 8) << 16, best = standard[0];
    double rate = decode_h(enc);

    for (size_t i = 1; i < sizeof(standard) / sizeof(standard[0]); i++)
        if (rate > 0 && (rate - standard[i]) * (rate - standard[i]) < (rate - best) * (rate - best))
            best = standard[i];
    LOG("SIO SET_BAUDRATE port=%c wValue=0x%04x wIndex=0x%04x -> %.0f Bd, %s the kernel's "
        "FT2232H encoding of %u Bd (0x%05x)",
        p->name, value, index, rate, kernel_h_encoding(best) == enc ? "equals" : "DIFFERS FROM",
        best, kernel_h_encoding(best));
}

/* ---- control requests ---- */

static struct port *port_of(uint16_t index)
{
    unsigned ch = index & 0xff; /* ftdi_sio.c channel: A = 1, B = 2 */
    return ch >= 1 && ch <= PORTS ? &ports[ch - 1] : NULL;
}

static void modem_ctrl(struct port *p, uint16_t v)
{
    /* ftdi_sio.h: bit 0 DTR, bit 1 RTS; bits 8 and 9 say which of them to update. */
    int nd = (v & 0x100) ? (v & 1) : p->dtr, nr = (v & 0x200) ? (v >> 1 & 1) : p->rts;
    int changed = nd != p->dtr || nr != p->rts;

    LOG("MODEM_CTRL port=%c DTR=%d RTS=%d%s", p->name, nd, nr, changed ? "  (changed)" : "");
    p->dtr = nd;
    p->rts = nr;
}

static void handle_setup(int ep0, const struct usb_ctrlrequest *c)
{
    uint16_t v = le16toh(c->wValue), idx = le16toh(c->wIndex), len = le16toh(c->wLength);
    struct port *p = port_of(idx);
    uint8_t buf[64] = {0};
    char pn = p ? p->name : '?';

    if ((c->bRequestType & USB_TYPE_MASK) != USB_TYPE_VENDOR || !p) {
        LOG("unexpected request type 0x%02x req 0x%02x wIndex 0x%04x: stall", c->bRequestType,
            c->bRequest, idx);
        ffs_ep0_stall(ep0, c);
        return;
    }
    if (c->bRequestType & USB_DIR_IN) {
        int n = 0;
        switch (c->bRequest) {
        case SIO_GET_MODEM_STATUS:
            buf[0] = MODEM_STATUS;
            buf[1] = LINE_STATUS;
            n = 2;
            LOG("SIO GET_MODEM_STATUS port=%c wValue=0x%04x wIndex=0x%04x", pn, v, idx);
            break;
        case SIO_GET_LATENCY_TIMER:
            buf[0] = (uint8_t)atomic_load(&p->latency);
            n = 1;
            LOG("SIO GET_LATENCY_TIMER port=%c wValue=0x%04x wIndex=0x%04x -> %u", pn, v, idx,
                buf[0]);
            break;
        default:
            LOG("SIO IN 0x%02x port=%c wValue=0x%04x wIndex=0x%04x: stall", c->bRequest, pn, v,
                idx);
            ffs_ep0_stall(ep0, c);
            return;
        }
        ffs_ep0_reply(ep0, buf, (size_t)n, len);
        return;
    }
    ffs_ep0_out_data(ep0, len);
    switch (c->bRequest) {
    case SIO_RESET:
        LOG("SIO RESET port=%c wValue=0x%04x wIndex=0x%04x (%s)", pn, v, idx,
            v == 0   ? "SIO"
            : v == 1 ? "purge RX"
            : v == 2 ? "purge TX"
                     : "?");
        break;
    case SIO_MODEM_CTRL:
        LOG("SIO MODEM_CTRL port=%c wValue=0x%04x wIndex=0x%04x", pn, v, idx);
        modem_ctrl(p, v);
        break;
    case SIO_SET_FLOW_CTRL:
        LOG("SIO SET_FLOW_CTRL port=%c wValue=0x%04x wIndex=0x%04x (%s)", pn, v, idx,
            (idx >> 8) == 0 ? "none" : "handshake");
        break;
    case SIO_SET_BAUDRATE:
        log_baud(p, v, idx);
        break;
    case SIO_SET_DATA: /* bits 0-7 data bits, 8-10 parity, 11-13 stop bits, 14 break */
        LOG("SIO SET_DATA port=%c wValue=0x%04x wIndex=0x%04x (%u data bits, parity %u, stop "
            "%u%s)",
            pn, v, idx, v & 0xff, v >> 8 & 7, v >> 11 & 7, (v & 0x4000) ? ", break" : "");
        break;
    case SIO_SET_LATENCY_TIMER:
        LOG("SIO SET_LATENCY_TIMER port=%c wValue=0x%04x wIndex=0x%04x (%u ms)", pn, v, idx,
            v & 0xff);
        if ((v & 0xff) >= 1)
            atomic_store(&p->latency, v & 0xff);
        break;
    case SIO_SET_EVENT_CHAR:
    case SIO_SET_ERROR_CHAR:
    case SIO_SET_BITMODE:
        LOG("SIO 0x%02x port=%c wValue=0x%04x wIndex=0x%04x", c->bRequest, pn, v, idx);
        break;
    default:
        LOG("SIO OUT 0x%02x port=%c wValue=0x%04x wIndex=0x%04x: unknown, accepted", c->bRequest,
            pn, v, idx);
    }
    ffs_ep0_out_ack(ep0, len);
}

/* ---- bulk endpoints ---- */

static int idle_ms(const struct port *p)
{
    int l = atomic_load(&p->latency);
    return l < IDLE_FLOOR_MS ? IDLE_FLOOR_MS : l;
}

/*
 * Write a run of packets (all full but the last) as one transfer. FunctionFS cuts it into
 * 64-byte packets and sends no zero-length packet, so a host read ends at the last one
 * only if it is short; a run ending on a full packet is ended by the next status packet.
 * Returns 0, or -1 when the gadget is unbound (the data is lost, as on a real unplug).
 */
static int send_run(struct port *p, int fd, const uint8_t *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ESHUTDOWN)
                perror("bulk IN write");
            usleep(10000);
            return -1;
        }
        off += (size_t)w;
    }
    if (n > MPS)
        atomic_fetch_add(&p->multi, 1);
    for (size_t off = 0; off < n; off += MPS) {
        size_t plen = n - off < MPS ? n - off : MPS;
        atomic_fetch_add(&p->packets, 1);
        atomic_fetch_add(&p->payload, plen - HDR);
        if (plen == MPS)
            atomic_fetch_add(&p->full, 1);
        else if (plen > HDR)
            atomic_fetch_add(&p->short_data, 1);
        else
            atomic_fetch_add(&p->status_only, 1);
    }
    return 0;
}

static size_t put_packet(uint8_t *dst, const uint8_t *data, size_t n)
{
    dst[0] = MODEM_STATUS;
    dst[1] = LINE_STATUS;
    memcpy(dst + HDR, data, n);
    return HDR + n;
}

/* Payload sizes the agent's bytes are cut into, in turn: full packets (62 data bytes)
 * with short packets of assorted sizes between them. A run of packets up to and including
 * a short one is one host transfer (a short packet ends the host's read). */
static const size_t cut[] = {PAYLOAD, PAYLOAD, 31, PAYLOAD, 7,       PAYLOAD, PAYLOAD,
                             1,       PAYLOAD, 50, 2,       PAYLOAD, PAYLOAD, 61};
#define NCUT (sizeof(cut) / sizeof(cut[0]))
/* How long the double holds the agent's bytes to fill the next run. The agent sends
 * frames of about 50 bytes ten times a second; without holding, nearly every transfer
 * would be a single short packet and a host stripping one header per transfer instead of
 * one per packet would pass. Holding makes most klink frames straddle a packet boundary
 * inside a transfer (and others a transfer boundary). A real FT2232 sends after its
 * latency timer instead; the handshake's 1 s timeouts leave room for this. */
#define HOLD_MS 200

/* The payload capacity of the run that starts at cut[ci]. */
static size_t run_capacity(size_t ci)
{
    size_t cap = 0;

    for (;; ci++) {
        cap += cut[ci % NCUT];
        if (cut[ci % NCUT] < PAYLOAD)
            return cap;
    }
}

/* Send the n held bytes as runs cut by cut[] from *ci. Returns 1 if the last run ended
 * on a full packet (the host's read is still open), else 0. */
static int emit(struct port *p, int fd, const uint8_t *data, size_t n, size_t *ci)
{
    static uint8_t out[(4096 / PAYLOAD + 2) * MPS];
    size_t o = 0;

    for (size_t off = 0; off < n;) {
        size_t k = cut[(*ci)++ % NCUT];
        if (k > n - off)
            k = n - off;
        o += put_packet(out + o, data + off, k);
        off += k;
        if (k < PAYLOAD) { /* a short packet ends the host's read: one write per run */
            send_run(p, fd, out, o);
            o = 0;
        }
    }
    if (o)
        send_run(p, fd, out, o);
    return o != 0;
}

static void *port_b_in(void *arg)
{
    struct port *p = arg;
    static uint8_t data[4096];
    uint8_t status[HDR];
    size_t ci = 0, have = 0;
    int fd = ffs_open_ep(ffs_dir, p->ep_in), open_run = 0;
    double first = 0;

    put_packet(status, NULL, 0);
    for (;;) {
        struct pollfd pf = {backend, POLLIN, 0};
        /* Holding bytes: wait out the hold. After a run that ended on a full packet the
         * host's read is still open: end it after the latency timer, as the chip flushes.
         * Otherwise send idle status packets. */
        int timeout = have       ? (int)(HOLD_MS - (ffs_now() - first) * 1000.0)
                      : open_run ? atomic_load(&p->latency)
                                 : idle_ms(p);
        int r = poll(&pf, 1, timeout < 0 ? 0 : timeout);
        if (r > 0) {
            ssize_t n = read(backend, data + have, sizeof(data) - have);
            if (n > 0) {
                if (!have)
                    first = ffs_now();
                have += (size_t)n;
            }
        }
        if (have && (have >= run_capacity(ci) || have == sizeof(data) ||
                     (ffs_now() - first) * 1000.0 >= HOLD_MS)) {
            open_run = emit(p, fd, data, have, &ci);
            have = 0;
        } else if (r == 0 && !have) {
            send_run(p, fd, status, HDR);
            open_run = 0;
        }
    }
    return NULL;
}

/* Port A: status packets only, every latency period while the host reads (a write blocks
 * until it does). */
static void *port_a_in(void *arg)
{
    struct port *p = arg;
    uint8_t status[HDR];
    int fd = ffs_open_ep(ffs_dir, p->ep_in);

    put_packet(status, NULL, 0);
    for (;;) {
        send_run(p, fd, status, HDR);
        usleep((useconds_t)idle_ms(p) * 1000u);
    }
    return NULL;
}

/* OUT data: port B's goes to the agent, port A's is swallowed (logged once). */
static void *port_out(void *arg)
{
    struct port *p = arg;
    uint8_t buf[MPS];
    int fd = ffs_open_ep(ffs_dir, p->ep_out);

    for (;;) {
        /* Exactly one packet per read: a larger read would wait for a short packet. */
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            usleep(10000);
            continue;
        }
        if (p == &ports[PORT_B])
            ffs_write_all(backend, buf, (size_t)n);
        else if (atomic_load(&p->out_bytes) == 0)
            LOG("port A: first OUT data (%zd bytes), swallowed", n);
        atomic_fetch_add(&p->out_bytes, (unsigned long)n);
    }
    return NULL;
}

static void log_stats(void)
{
    for (int i = 0; i < PORTS; i++) {
        struct port *p = &ports[i];
        LOG("IN port=%c packets=%lu (full=%lu short_data=%lu status_only=%lu), all with the "
            "%d-byte header; multi_packet_runs=%lu; payload=%lu bytes; OUT %lu bytes",
            p->name, atomic_load(&p->packets), atomic_load(&p->full), atomic_load(&p->short_data),
            atomic_load(&p->status_only), HDR, atomic_load(&p->multi), atomic_load(&p->payload),
            atomic_load(&p->out_bytes));
    }
}

static void *signals(void *arg)
{
    sigset_t *set = arg;

    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0)
            continue;
        log_stats();
        if (sig == SIGTERM)
            _exit(0);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static sigset_t set;
    pthread_t th;
    int ep0;

    ffs_log_init("ft2232_double");
    if (argc < 3) {
        fprintf(stderr, "usage: %s FFS_DIR BACKEND_TTY\n", argv[0]);
        return 1;
    }
    ffs_dir = argv[1];
    backend = ffs_open_backend(argv[2]);
    if (backend < 0)
        return 1;
    for (int i = 0; i < PORTS; i++)
        atomic_store(&ports[i].latency, LATENCY_DEFAULT);
    ep0 = ffs_open_ep0(ffs_dir, &descriptors, sizeof(descriptors), &strings, sizeof(strings));
    if (ep0 < 0)
        return 1;
    LOG("descriptors written: FT2232H double, port A silent, port B bridged to %s", argv[2]);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread: sigwait gets them */
    pthread_create(&th, NULL, signals, &set);
    pthread_create(&th, NULL, port_a_in, &ports[0]);
    pthread_create(&th, NULL, port_out, &ports[0]);
    pthread_create(&th, NULL, port_b_in, &ports[PORT_B]);
    pthread_create(&th, NULL, port_out, &ports[PORT_B]);
    return ffs_ep0_loop(ep0, handle_setup);
}
