/* SPDX-License-Identifier: MIT */
/*
 * The usb transport (daemon/link/transport_usb.c) against a fake libusb defined in this
 * file: one CH340 that can be unplugged and plugged back in, or one FT2232 whose two
 * interfaces each have a far end that is a kpud agent (answers HELLO, CONFIGURE, START)
 * or stays silent. The fake behaves as libusb
 * 1.0.26 on Linux where it matters here: transfer and hotplug callbacks run inside
 * libusb_handle_events_timeout_completed(), an unplug completes every transfer in flight
 * with LIBUSB_TRANSFER_NO_DEVICE, and reaping happens with the context's open_devs_lock
 * held (linux_usbfs.c op_handle_events), so libusb_open() or libusb_close() called from
 * a callback would deadlock. The fake counts such calls instead of hanging.
 *
 * Regression test for issue 7: kpud closed the handle from the NO_DEVICE callback and
 * hung on the first unplug (no replug, no exit on SIGTERM). The FT2232 tests run the real
 * device manager (daemon/devices.c) and sessions over it: the port without an agent is
 * given back to its kernel driver after [usb] give_back_after, the other streams, and a
 * port that answered HELLO once is kept when it goes quiet.
 */
#include <check.h>
#include <errno.h>
#include <libusb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "devices.h"
#include "klink.h"
#include "kpu/link/v1/link.pb-c.h"
#include "log.h"
#include "session.h"
#include "transport_usb.h"

/* ------------------------------------------------------------------ the fake libusb */

#define FAKE_MAX_XFERS 32
#define FAKE_IFACES 2
#define FT_MPS 64u /* FT2232C full speed bulk packets; 2 status bytes lead each one */

/* One interface of the fake device and what is at the far end of its UART. */
struct fake_iface {
    int claimed;    /* claimed and not released */
    int released;   /* libusb_release_interface() calls */
    int reattached; /* releases with auto-detach on: libusb re-attaches the kernel driver */
    int agent;      /* a kpud agent answers on this UART */
    int muted;      /* the agent stopped answering */
    int hellos;     /* HostHellos the agent answered */
    struct klink_decoder dec;
    uint8_t decbuf[KLINK_MAX_FRAME];
    uint8_t rx[16384]; /* agent -> host bytes not yet read by a bulk IN transfer */
    size_t rxlen;
    uint16_t seq;
};

struct libusb_context {
    int unused;
};
struct libusb_device {
    int refs;
};
struct libusb_device_handle {
    struct libusb_device *dev;
    int auto_detach;
};

static struct {
    struct libusb_context ctx;
    int efd;
    int in_events;             /* inside libusb_handle_events_timeout_completed() */
    int locked_calls;          /* open/close from inside event handling: a deadlock in libusb */
    int handles_open;          /* libusb_open() minus libusb_close() */
    int claimed;               /* interfaces claimed and not released */
    int plugged;               /* the device is present */
    struct libusb_device *dev; /* the present device (a new one after each replug) */
    struct libusb_device *devs[4];
    unsigned ndevs;
    libusb_hotplug_callback_fn hp_cb;
    void *hp_user;
    struct libusb_device *hp_left; /* a removal to report from the next event handling */
    struct libusb_transfer *xfers[FAKE_MAX_XFERS]; /* submitted, not completed */
    int cancelled[FAKE_MAX_XFERS];
    unsigned nxfers;
    libusb_pollfd_added_cb added;
    libusb_pollfd_removed_cb removed;
    int ft2232; /* the device is an FT2232C (two interfaces) instead of a CH340 */
    struct fake_iface ifs[FAKE_IFACES];
} fake;

static void fake_kick(void)
{
    uint64_t one = 1;
    ck_assert_int_eq(write(fake.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

int libusb_init(libusb_context **ctx)
{
    fake.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_ge(fake.efd, 0);
    *ctx = &fake.ctx;
    return 0;
}

void libusb_exit(libusb_context *ctx)
{
    (void)ctx;
    if (fake.removed)
        fake.removed(fake.efd, NULL);
    close(fake.efd);
    fake.efd = -1;
}

const char *libusb_error_name(int code)
{
    (void)code;
    return "LIBUSB_ERROR_FAKE";
}

int libusb_has_capability(uint32_t capability)
{
    return capability == LIBUSB_CAP_HAS_HOTPLUG;
}

void libusb_set_pollfd_notifiers(libusb_context *ctx, libusb_pollfd_added_cb added_cb,
                                 libusb_pollfd_removed_cb removed_cb, void *user_data)
{
    (void)ctx;
    (void)user_data;
    fake.added = added_cb;
    fake.removed = removed_cb;
}

const struct libusb_pollfd **libusb_get_pollfds(libusb_context *ctx)
{
    static struct libusb_pollfd pfd;
    const struct libusb_pollfd **list = calloc(2, sizeof(*list));

    (void)ctx;
    ck_assert_ptr_nonnull(list);
    pfd.fd = fake.efd;
    pfd.events = POLLIN;
    list[0] = &pfd;
    return list;
}

void libusb_free_pollfds(const struct libusb_pollfd **pollfds)
{
    free((void *)pollfds);
}

int libusb_pollfds_handle_timeouts(libusb_context *ctx)
{
    (void)ctx;
    return 1;
}

int libusb_get_next_timeout(libusb_context *ctx, struct timeval *tv)
{
    (void)ctx;
    (void)tv;
    return 0;
}

int libusb_hotplug_register_callback(libusb_context *ctx, int events, int flags, int vendor_id,
                                     int product_id, int dev_class,
                                     libusb_hotplug_callback_fn cb_fn, void *user_data,
                                     libusb_hotplug_callback_handle *callback_handle)
{
    (void)ctx;
    (void)events;
    (void)vendor_id;
    (void)product_id;
    (void)dev_class;
    fake.hp_cb = cb_fn;
    fake.hp_user = user_data;
    *callback_handle = 1;
    if ((flags & LIBUSB_HOTPLUG_ENUMERATE) && fake.plugged)
        cb_fn(&fake.ctx, fake.dev, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, user_data);
    return 0;
}

void libusb_hotplug_deregister_callback(libusb_context *ctx,
                                        libusb_hotplug_callback_handle callback_handle)
{
    (void)ctx;
    (void)callback_handle;
    fake.hp_cb = NULL;
}

libusb_device *libusb_ref_device(libusb_device *dev)
{
    dev->refs++;
    return dev;
}

void libusb_unref_device(libusb_device *dev)
{
    ck_assert_int_gt(dev->refs, 0);
    dev->refs--;
}

ssize_t libusb_get_device_list(libusb_context *ctx, libusb_device ***list)
{
    (void)ctx;
    *list = NULL;
    return 0;
}

void libusb_free_device_list(libusb_device **list, int unref_devices)
{
    (void)list;
    (void)unref_devices;
}

uint8_t libusb_get_bus_number(libusb_device *dev)
{
    (void)dev;
    return 3;
}

int libusb_get_port_numbers(libusb_device *dev, uint8_t *port_numbers, int port_numbers_len)
{
    (void)dev;
    ck_assert_int_ge(port_numbers_len, 1);
    port_numbers[0] = 1;
    return 1;
}

int libusb_get_device_descriptor(libusb_device *dev, struct libusb_device_descriptor *desc)
{
    (void)dev;
    memset(desc, 0, sizeof(*desc));
    if (fake.ft2232) {
        desc->idVendor = 0x0403; /* FT2232C/D (ftdi_sio_ids.h FTDI_8U2232C_PID 0x6010) */
        desc->idProduct = 0x6010;
        desc->bcdDevice = 0x0500; /* ftdi_sio.c ftdi_determine_type: FT2232C */
        return 0;
    }
    desc->idVendor = 0x1a86; /* CH340 (Linux drivers/usb/serial/ch341.c id_table) */
    desc->idProduct = 0x7523;
    desc->bcdDevice = 0x0264;
    return 0;
}

/* Which interface an endpoint belongs to (FT2232: A = 0x81/0x02, B = 0x83/0x04). */
static unsigned ep_iface(uint8_t ep)
{
    return fake.ft2232 && (ep & 0x0f) >= 3 ? 1 : 0;
}

int libusb_get_active_config_descriptor(libusb_device *dev,
                                        struct libusb_config_descriptor **config)
{
    /* The CH340's one interface: bulk IN 0x82, bulk OUT 0x02, interrupt IN 0x81. */
    static struct libusb_endpoint_descriptor ep[3] = {
        {.bEndpointAddress = 0x82, .bmAttributes = LIBUSB_TRANSFER_TYPE_BULK, .wMaxPacketSize = 32},
        {.bEndpointAddress = 0x02, .bmAttributes = LIBUSB_TRANSFER_TYPE_BULK, .wMaxPacketSize = 32},
        {.bEndpointAddress = 0x81,
         .bmAttributes = LIBUSB_TRANSFER_TYPE_INTERRUPT,
         .wMaxPacketSize = 8},
    };
    static struct libusb_interface_descriptor alt = {.bNumEndpoints = 3, .endpoint = ep};
    static struct libusb_interface itf = {.altsetting = &alt, .num_altsetting = 1};
    static struct libusb_config_descriptor cfg = {.bNumInterfaces = 1, .interface = &itf};

    /* The FT2232C: two interfaces, each with one bulk pair (FT2232C datasheet, "USB
     * descriptors": 0x81/0x02 for A, 0x83/0x04 for B, 64-byte packets). */
    static struct libusb_endpoint_descriptor ft_ep[2][2] = {
        {{.bEndpointAddress = 0x81,
          .bmAttributes = LIBUSB_TRANSFER_TYPE_BULK,
          .wMaxPacketSize = 64},
         {.bEndpointAddress = 0x02,
          .bmAttributes = LIBUSB_TRANSFER_TYPE_BULK,
          .wMaxPacketSize = 64}},
        {{.bEndpointAddress = 0x83,
          .bmAttributes = LIBUSB_TRANSFER_TYPE_BULK,
          .wMaxPacketSize = 64},
         {.bEndpointAddress = 0x04,
          .bmAttributes = LIBUSB_TRANSFER_TYPE_BULK,
          .wMaxPacketSize = 64}},
    };
    static struct libusb_interface_descriptor ft_alt[2] = {
        {.bInterfaceNumber = 0, .bNumEndpoints = 2, .endpoint = ft_ep[0]},
        {.bInterfaceNumber = 1, .bNumEndpoints = 2, .endpoint = ft_ep[1]},
    };
    static struct libusb_interface ft_itf[2] = {{.altsetting = &ft_alt[0], .num_altsetting = 1},
                                                {.altsetting = &ft_alt[1], .num_altsetting = 1}};
    static struct libusb_config_descriptor ft_cfg = {.bNumInterfaces = 2, .interface = ft_itf};

    (void)dev;
    *config = fake.ft2232 ? &ft_cfg : &cfg;
    return 0;
}

void libusb_free_config_descriptor(struct libusb_config_descriptor *config)
{
    (void)config;
}

int libusb_open(libusb_device *dev, libusb_device_handle **dev_handle)
{
    if (fake.in_events)
        fake.locked_calls++;
    if (!fake.plugged || dev != fake.dev)
        return LIBUSB_ERROR_NO_DEVICE;
    *dev_handle = calloc(1, sizeof(**dev_handle));
    ck_assert_ptr_nonnull(*dev_handle);
    (*dev_handle)->dev = libusb_ref_device(dev);
    fake.handles_open++;
    return 0;
}

void libusb_close(libusb_device_handle *dev_handle)
{
    if (fake.in_events)
        fake.locked_calls++;
    for (unsigned i = 0; i < fake.nxfers; i++)
        ck_assert_ptr_ne(fake.xfers[i]->dev_handle, dev_handle); /* nothing in flight */
    libusb_unref_device(dev_handle->dev);
    free(dev_handle);
    fake.handles_open--;
}

int libusb_set_auto_detach_kernel_driver(libusb_device_handle *dev_handle, int enable)
{
    dev_handle->auto_detach = enable;
    return 0;
}

int libusb_claim_interface(libusb_device_handle *dev_handle, int interface_number)
{
    (void)dev_handle;
    ck_assert_int_ge(interface_number, 0);
    ck_assert_int_lt(interface_number, FAKE_IFACES);
    ck_assert_int_eq(fake.ifs[interface_number].claimed, 0); /* one owner per interface */
    fake.ifs[interface_number].claimed++;
    fake.claimed++;
    return 0;
}

/* libusb_set_auto_detach_kernel_driver(3): with auto-detach on, "the kernel driver will be
 * re-attached when the interface is released". */
int libusb_release_interface(libusb_device_handle *dev_handle, int interface_number)
{
    struct fake_iface *f = &fake.ifs[interface_number];

    if (fake.in_events)
        fake.locked_calls++; /* never from a transfer callback either */
    ck_assert_int_eq(f->claimed, 1);
    f->claimed--;
    f->released++;
    if (dev_handle->auto_detach)
        f->reattached++;
    fake.claimed--;
    return 0;
}

struct libusb_transfer *libusb_alloc_transfer(int iso_packets)
{
    (void)iso_packets;
    return calloc(1, sizeof(struct libusb_transfer));
}

void libusb_free_transfer(struct libusb_transfer *transfer)
{
    free(transfer);
}

int libusb_submit_transfer(struct libusb_transfer *transfer)
{
    if (!fake.plugged)
        return LIBUSB_ERROR_NO_DEVICE;
    ck_assert_uint_lt(fake.nxfers, FAKE_MAX_XFERS);
    fake.cancelled[fake.nxfers] = 0;
    fake.xfers[fake.nxfers++] = transfer;
    fake_kick();
    return 0;
}

int libusb_cancel_transfer(struct libusb_transfer *transfer)
{
    for (unsigned i = 0; i < fake.nxfers; i++) {
        if (fake.xfers[i] == transfer) {
            fake.cancelled[i] = 1;
            fake_kick();
            return 0;
        }
    }
    return LIBUSB_ERROR_NOT_FOUND;
}

/* The agent at the far end of interface i sends one frame. */
static void agent_send(unsigned i, uint8_t type, uint16_t ref, const ProtobufCMessage *m)
{
    struct fake_iface *f = &fake.ifs[i];
    uint8_t payload[KLINK_MAX_PAYLOAD], wire[KLINK_MAX_ENCODED];
    size_t n = protobuf_c_message_pack(m, payload);
    size_t w =
        klink_encode(type, KLINK_FLAG_RESPONSE, f->seq++, ref, payload, n, wire, sizeof(wire));

    ck_assert_uint_gt(w, 0);
    ck_assert_uint_le(f->rxlen + w, sizeof(f->rx));
    memcpy(f->rx + f->rxlen, wire, w);
    f->rxlen += w;
    fake_kick();
}

/* A minimal kpud agent (docs/protocol.md): AgentHello for HostHello, Status OK for
 * Configure and StreamControl; everything else is ignored. */
static void agent_frame(unsigned i, const struct klink_frame *fr)
{
    static uint8_t uid[8] = {0xa5, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70};
    Kpu__Link__V1__AgentHello h = KPU__LINK__V1__AGENT_HELLO__INIT;
    Kpu__Link__V1__Status st = KPU__LINK__V1__STATUS__INIT;

    switch (fr->type) {
    case KPU__LINK__V1__MSG_TYPE__MSG_HOST_HELLO:
        h.protocol_major = 1;
        h.agent_version = (char *)"fake-agent";
        uid[0] = (uint8_t)(0xa0 + i);
        h.chip_uid.data = uid;
        h.chip_uid.len = sizeof(uid);
        fake.ifs[i].hellos++;
        agent_send(i, KPU__LINK__V1__MSG_TYPE__MSG_AGENT_HELLO, fr->seq, &h.base);
        break;
    case KPU__LINK__V1__MSG_TYPE__MSG_CONFIGURE:
    case KPU__LINK__V1__MSG_TYPE__MSG_STREAM_CONTROL:
        st.code = KPU__LINK__V1__STATUS_CODE__STATUS_OK;
        agent_send(i, KPU__LINK__V1__MSG_TYPE__MSG_STATUS, fr->seq, &st.base);
        break;
    default:
        break;
    }
}

/* Bytes the host wrote to interface i's UART. A silent far end drops them. */
static void fake_uart_tx(unsigned i, const uint8_t *buf, size_t len)
{
    struct fake_iface *f = &fake.ifs[i];
    struct klink_frame fr;

    if (!f->agent || f->muted)
        return;
    while (len)
        if (klink_decode(&f->dec, &buf, &len, &fr))
            agent_frame(i, &fr);
}

/* Fill bulk IN transfer x from its interface's queue: FTDI packets carry two status bytes
 * (modem, line) before up to 62 data bytes (ftdi_sio.c ftdi_process_packet); a CH340
 * delivers raw bytes. Returns the transfer's actual length. */
static int fake_uart_rx(uint8_t ep, struct libusb_transfer *x)
{
    struct fake_iface *f = &fake.ifs[ep_iface(ep)];
    size_t off = 0, take = 0, cap = (size_t)x->length;

    while (f->rxlen > take && off < cap) {
        size_t n = f->rxlen - take;
        if (fake.ft2232) {
            if (cap - off <= 2)
                break;
            x->buffer[off++] = 0x01; /* modem status: no line errors */
            x->buffer[off++] = 0x60; /* line status: THRE | TEMT */
            if (n > FT_MPS - 2)
                n = FT_MPS - 2;
        }
        if (n > cap - off)
            n = cap - off;
        memcpy(x->buffer + off, f->rx + take, n);
        off += n;
        take += n;
    }
    memmove(f->rx, f->rx + take, f->rxlen - take);
    f->rxlen -= take;
    return (int)off;
}

/* Completes control and OUT transfers at once (control IN data all zeros); bulk IN waits
 * for what the far end of its UART sends, which for a silent one never comes. After an
 * unplug every transfer ends with NO_DEVICE. */
int libusb_handle_events_timeout_completed(libusb_context *ctx, struct timeval *tv, int *completed)
{
    uint64_t v;
    struct libusb_transfer *batch[FAKE_MAX_XFERS];
    enum libusb_transfer_status st[FAKE_MAX_XFERS];
    unsigned n = 0;

    (void)ctx;
    (void)tv;
    (void)completed;
    if (read(fake.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        ck_abort_msg("eventfd read");
    fake.in_events = 1;
    for (unsigned i = 0; i < fake.nxfers;) {
        struct libusb_transfer *x = fake.xfers[i];
        enum libusb_transfer_status s;
        if (!fake.plugged)
            s = LIBUSB_TRANSFER_NO_DEVICE;
        else if (fake.cancelled[i])
            s = LIBUSB_TRANSFER_CANCELLED;
        else if (x->type == LIBUSB_TRANSFER_TYPE_CONTROL || !(x->endpoint & LIBUSB_ENDPOINT_IN)) {
            s = LIBUSB_TRANSFER_COMPLETED;
        } else if (fake.ifs[ep_iface(x->endpoint)].rxlen) {
            s = LIBUSB_TRANSFER_COMPLETED;
        } else {
            i++;
            continue;
        }
        batch[n] = x;
        st[n++] = s;
        fake.xfers[i] = fake.xfers[fake.nxfers - 1];
        fake.cancelled[i] = fake.cancelled[fake.nxfers - 1];
        fake.nxfers--;
    }
    for (unsigned i = 0; i < n; i++) {
        struct libusb_transfer *x = batch[i];
        x->status = st[i];
        if (x->type == LIBUSB_TRANSFER_TYPE_CONTROL) {
            struct libusb_control_setup *s = libusb_control_transfer_get_setup(x);
            uint16_t len = libusb_le16_to_cpu(s->wLength);
            if (s->bmRequestType & LIBUSB_ENDPOINT_IN)
                memset(libusb_control_transfer_get_data(x), 0, len);
            x->actual_length = st[i] == LIBUSB_TRANSFER_COMPLETED ? len : 0;
        } else if (!(x->endpoint & LIBUSB_ENDPOINT_IN)) {
            x->actual_length = st[i] == LIBUSB_TRANSFER_COMPLETED ? x->length : 0;
            if (st[i] == LIBUSB_TRANSFER_COMPLETED)
                fake_uart_tx(ep_iface(x->endpoint), x->buffer, (size_t)x->length);
        } else {
            x->actual_length =
                st[i] == LIBUSB_TRANSFER_COMPLETED ? fake_uart_rx(x->endpoint, x) : 0;
        }
        x->callback(x);
    }
    if (fake.hp_left && fake.hp_cb) {
        struct libusb_device *d = fake.hp_left;
        fake.hp_left = NULL;
        fake.hp_cb(&fake.ctx, d, LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, fake.hp_user);
        libusb_unref_device(d); /* libusb drops its reference after the callbacks */
    }
    fake.in_events = 0;
    return 0;
}

static void fake_plug(void)
{
    ck_assert_uint_lt(fake.ndevs, 4);
    fake.dev = fake.devs[fake.ndevs++] = calloc(1, sizeof(struct libusb_device));
    ck_assert_ptr_nonnull(fake.dev);
    fake.dev->refs = 1; /* libusb's own, while attached */
    fake.plugged = 1;
}

/* ------------------------------------------------------------------------ the test */

static struct {
    uv_loop_t loop;
    struct kpud_usb *hub;
    struct kpud_transport *t;
    uv_timer_t step;
    int phase;
    int ups, downs, closed, hub_done;
} T;

static void on_up(struct kpud_transport *t)
{
    (void)t;
    T.ups++;
}

static void on_down(struct kpud_transport *t, const char *why)
{
    (void)t;
    (void)why;
    T.downs++;
}

static void on_closed(struct kpud_transport *t)
{
    (void)t;
    T.closed++;
}

static int new_port(void *ctx, struct kpud_transport *t)
{
    (void)ctx;
    ck_assert_ptr_null(T.t); /* a replug must come back to the same transport */
    T.t = t;
    t->link_up = on_up;
    t->link_down = on_down;
    t->closed = on_closed;
    return t->ops->start(t);
}

static void hub_done(void *arg)
{
    (void)arg;
    T.hub_done++;
}

/* Drives the scenario one step per tick: wait for the link, unplug, replug, close. */
static void step_cb(uv_timer_t *tm)
{
    switch (T.phase) {
    case 0: /* first open */
        if (T.ups < 1)
            return;
        fake.plugged = 0; /* unplug: transfers end NO_DEVICE, then the hotplug event */
        fake.hp_left = fake.dev;
        fake.dev = NULL;
        fake_kick();
        T.phase = 1;
        return;
    case 1: /* released, as libusb would see it */
        if (T.downs < 1 || fake.handles_open)
            return;
        fake_plug();
        fake.hp_cb(&fake.ctx, fake.dev, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, fake.hp_user);
        T.phase = 2;
        return;
    case 2: /* open again after the replug */
        if (T.ups < 2)
            return;
        T.t->ops->close(T.t);
        kpud_usb_close(T.hub, hub_done, NULL);
        T.phase = 3;
        uv_close((uv_handle_t *)tm, NULL);
        return;
    }
}

START_TEST(test_unplug_replug_without_deadlock)
{
    struct kpud_usb_opts o = {.interface = -1, .backoff_min_ms = 1, .backoff_max_ms = 10};
    struct kpud_usb_hooks h = {.new_port = new_port};

    memset(&fake, 0, sizeof(fake));
    memset(&T, 0, sizeof(T));
    fake_plug();
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
    ck_assert_int_eq(kpud_usb_open(&T.loop, &o, &h, &T.hub), 0);
    uv_timer_init(&T.loop, &T.step);
    uv_timer_start(&T.step, step_cb, 1, 1);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);

    ck_assert_int_eq(fake.locked_calls, 0); /* libusb_open/close never under libusb's lock */
    ck_assert_int_eq(T.phase, 3);
    ck_assert_int_eq(T.ups, 2);
    ck_assert_int_eq(T.downs, 1);
    ck_assert_int_eq(T.closed, 1);
    ck_assert_int_eq(T.hub_done, 1);
    ck_assert_int_eq(fake.handles_open, 0);
    ck_assert_int_eq(fake.claimed, 0);
    ck_assert_uint_eq(fake.nxfers, 0);
    /* Every reference kpud took was dropped: the old device has none, the present one
     * only libusb's own. */
    ck_assert_int_eq(fake.devs[0]->refs, 0);
    ck_assert_int_eq(fake.devs[1]->refs, 1);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
    free(fake.devs[0]);
    free(fake.devs[1]);
}
END_TEST

/* ------------------------------------------------- two-port bridge through the daemon */

#define BUDGET_MS 100u /* [usb] give_back_after for these tests */
#define TEST_DEADLINE_MS                                                                           \
    25000u /* a scenario not done by then has failed (the ISP greets
                                   a silent ROM for about 8 s) */

static struct {
    uv_loop_t loop;
    struct kpud_config cfg;
    struct kpud_devices *devs;
    uv_timer_t step;
    int phase;
    int done;
    uint64_t t0, muted_at;
    int mute_after_hello;  /* the agent port goes silent once it streams */
    uint32_t budget_ms;    /* [usb] give_back_after */
    int replug;            /* unplug and replug the bridge after the give-back */
    int given_back_events; /* DeviceEvents saying "given back" */
    char given_back_path[256];
    char given_back_reason[160];
} D;

static void d_state(void *ctx, struct kpud_session *s, enum kpud_dev_state st, const char *reason)
{
    (void)ctx;
    /* The link-down (state lost) may say it too; the release is told exactly once. */
    if (st == KPUD_DEV_RELEASED && strstr(reason, "given back to the kernel driver")) {
        D.given_back_events++;
        snprintf(D.given_back_path, sizeof(D.given_back_path), "%s",
                 kpud_session_transport(s)->path);
        snprintf(D.given_back_reason, sizeof(D.given_back_reason), "%s", reason);
    }
}

static void d_closed(void *arg)
{
    (void)arg;
    D.done = 1;
}

/* The session on interface `iface` ("...:if<n>"), or NULL when it is not a device. */
static struct kpud_session *session_on(unsigned iface)
{
    char tail[8];

    snprintf(tail, sizeof(tail), ":if%u", iface);
    for (unsigned i = 0; i < kpud_devices_count(D.devs); i++) {
        struct kpud_session *s = kpud_devices_at(D.devs, i);
        const char *path = kpud_session_transport(s)->path;
        size_t l = strlen(path);
        if (l > strlen(tail) && strcmp(path + l - strlen(tail), tail) == 0)
            return s;
    }
    return NULL;
}

static enum kpud_dev_state state_of(struct kpud_session *s)
{
    struct kpud_session_info info;

    if (!s)
        return 0;
    kpud_session_get_info(s, &info);
    return info.state;
}

static void d_finish(uv_timer_t *tm)
{
    kpud_devices_close(D.devs, d_closed, NULL);
    D.phase = 99;
    uv_close((uv_handle_t *)tm, NULL);
}

/*
 * Interface 0 is silent, interface 1 an agent. Phase 0: wait until interface 0 has been
 * given back and interface 1 streams. Phase 1 (mute_after_hello): interface 1's agent
 * stops answering right after it streamed; wait four budgets more, then stop.
 */
static void d_step(uv_timer_t *tm)
{
    uint64_t now = uv_now(&D.loop);
    struct kpud_session *b = session_on(1);

    ck_assert_msg(now - D.t0 < TEST_DEADLINE_MS, "scenario stuck in phase %d", D.phase);
    switch (D.phase) {
    case 0:
        if (D.mute_after_hello && !fake.ifs[1].muted && state_of(b) == KPUD_DEV_STREAMING) {
            fake.ifs[1].muted = 1; /* the board goes quiet after one good HELLO */
            D.muted_at = now;
        }
        if (!fake.ifs[0].released || state_of(b) != KPUD_DEV_STREAMING)
            return;
        /* Given back: the interface released with the kernel driver re-attached, the
         * session gone from the device list, watchers told why; the agent port untouched. */
        ck_assert_int_eq(fake.ifs[0].claimed, 0);
        ck_assert_int_eq(fake.ifs[0].reattached, 1);
        ck_assert_int_eq(D.given_back_events, 1);
        ck_assert_str_eq(D.given_back_path, "usb:3-1:if0");
        {
            char want[160];
            snprintf(want, sizeof(want),
                     "no kpud agent answered HELLO in %u %s; port given back to the kernel driver",
                     D.budget_ms % 1000 ? D.budget_ms : D.budget_ms / 1000,
                     D.budget_ms % 1000 ? "ms" : "s");
            ck_assert_str_eq(D.given_back_reason, want);
        }
        ck_assert_ptr_null(session_on(0));
        ck_assert_uint_eq(kpud_devices_count(D.devs), 1);
        ck_assert_int_eq(fake.ifs[1].claimed, 1);
        ck_assert_int_eq(fake.ifs[1].released, 0);
        ck_assert_int_ge(fake.ifs[1].hellos, 1);
        /* No HELLO budget is measured with a stopwatch here: only that it ran out. */
        ck_assert_uint_ge(now - D.t0, D.budget_ms);
        if (D.replug) {
            fake.plugged = 0; /* unplug: transfers end NO_DEVICE, then the hotplug event */
            fake.hp_left = fake.dev;
            fake.dev = NULL;
            fake_kick();
            D.phase = 2;
            return;
        }
        if (!D.mute_after_hello) {
            d_finish(tm);
            return;
        }
        D.phase = 1;
        return;
    case 1:
        if (now - D.muted_at < 4 * D.budget_ms)
            return;
        /* Silent for four budgets after a good HELLO: still ours, still a device. */
        ck_assert_int_eq(fake.ifs[1].claimed, 1);
        ck_assert_int_eq(fake.ifs[1].released, 0);
        ck_assert_ptr_nonnull(session_on(1));
        ck_assert_int_eq(D.given_back_events, 1);
        d_finish(tm);
        return;
    case 2: /* unplugged: once everything is released, plug it back in */
        if (fake.handles_open)
            return;
        fake_plug();
        fake.hp_cb(&fake.ctx, fake.dev, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, fake.hp_user);
        D.phase = 3;
        return;
    case 3: /* the arrival probed interface 0 again: claimed, HELLO'd, given back again */
        if (D.given_back_events < 2 || fake.ifs[0].released < 2 ||
            state_of(b) != KPUD_DEV_STREAMING)
            return;
        ck_assert_int_eq(fake.ifs[0].reattached, 2);
        ck_assert_ptr_null(session_on(0));
        ck_assert_uint_eq(kpud_devices_count(D.devs), 1);
        ck_assert_int_eq(fake.ifs[1].claimed, 1);
        d_finish(tm);
        return;
    }
}

static void run_two_port(int interface, int mute_after_hello, const char *agent_image,
                         uint32_t budget_ms)
{
    struct kpud_devices_hooks hooks = {.state = d_state};

    memset(&fake, 0, sizeof(fake));
    memset(&D, 0, sizeof(D));
    fake.ft2232 = 1;
    for (unsigned i = 0; i < FAKE_IFACES; i++)
        klink_decoder_init(&fake.ifs[i].dec, fake.ifs[i].decbuf, sizeof(fake.ifs[i].decbuf));
    fake.ifs[1].agent = 1;
    fake_plug();
    kpud_log_set_level(LOG_NOTICE); /* shows the give-back line */
    kpud_config_defaults(&D.cfg);
    snprintf(D.cfg.state_dir, sizeof(D.cfg.state_dir), "/nonexistent");
    D.cfg.usb = 1;
    D.cfg.usb_interface = interface;
    D.cfg.usb_give_back_ms = D.budget_ms = budget_ms;
    if (agent_image) {
        D.cfg.agent_boot = KPUD_AGENT_BOOT_SRAM;
        snprintf(D.cfg.agent_image, sizeof(D.cfg.agent_image), "%s", agent_image);
    }
    D.mute_after_hello = mute_after_hello;
    ck_assert_int_eq(uv_loop_init(&D.loop), 0);
    D.t0 = uv_now(&D.loop);
    ck_assert_int_eq(kpud_devices_open(&D.loop, &D.cfg, NULL, &hooks, &D.devs), 0);
    uv_timer_init(&D.loop, &D.step);
    uv_timer_start(&D.step, d_step, 5, 5);
}

static void finish_two_port(void)
{
    ck_assert_int_eq(uv_run(&D.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(D.done, 1);
    ck_assert_int_eq(fake.locked_calls, 0);
    ck_assert_int_eq(fake.handles_open, 0);
    ck_assert_int_eq(fake.claimed, 0);
    ck_assert_uint_eq(fake.nxfers, 0);
    /* Every reference kpud took was dropped: a device unplugged has none left, the present
     * one only libusb's own. */
    for (unsigned k = 0; k < fake.ndevs; k++) {
        ck_assert_int_eq(fake.devs[k]->refs, k + 1 == fake.ndevs ? 1 : 0);
        free(fake.devs[k]);
    }
    ck_assert_int_eq(uv_loop_close(&D.loop), 0);
}

START_TEST(test_two_port_silent_one_given_back)
{
    run_two_port(-1, 0, NULL, BUDGET_MS);
    finish_two_port();
    ck_assert_int_eq(D.phase, 99);
    /* The agent port was released once, at shutdown, and given back then too. */
    ck_assert_int_eq(fake.ifs[0].released, 1);
    ck_assert_int_eq(fake.ifs[1].released, 1);
    ck_assert_int_eq(fake.ifs[1].reattached, 1);
}
END_TEST

START_TEST(test_port_that_said_hello_is_kept)
{
    run_two_port(-1, 1, NULL, BUDGET_MS);
    finish_two_port();
    ck_assert_int_eq(D.phase, 99);
    ck_assert_int_ne(D.muted_at, 0);
    ck_assert_int_eq(fake.ifs[1].released, 1); /* at shutdown only */
}
END_TEST

/* A given-back port is probed again when its device arrives again (a replug). */
START_TEST(test_given_back_port_probed_again_on_replug)
{
    run_two_port(-1, 0, NULL, BUDGET_MS);
    D.replug = 1;
    finish_two_port();
    ck_assert_int_eq(D.phase, 99);
    ck_assert_int_eq(D.given_back_events, 2);
    ck_assert_int_eq(fake.ifs[0].released, 2);
}
END_TEST

/* interface = 1: interface 0 is never opened, so it is never given back either. */
static void one_step(uv_timer_t *tm)
{
    struct kpud_session *b = session_on(1);

    ck_assert_msg(uv_now(&D.loop) - D.t0 < TEST_DEADLINE_MS, "agent port never streamed");
    if (state_of(b) != KPUD_DEV_STREAMING || uv_now(&D.loop) - D.t0 < 2 * D.budget_ms)
        return;
    ck_assert_uint_eq(kpud_devices_count(D.devs), 1);
    ck_assert_int_eq(fake.ifs[0].claimed, 0);
    ck_assert_int_eq(fake.ifs[0].released, 0);
    ck_assert_int_eq(D.given_back_events, 0);
    d_finish(tm);
}

START_TEST(test_explicit_interface_alone)
{
    run_two_port(1, 0, NULL, BUDGET_MS);
    uv_timer_stop(&D.step);
    uv_timer_start(&D.step, one_step, 5, 5);
    finish_two_port();
    ck_assert_int_eq(D.phase, 99);
    ck_assert_int_eq(fake.ifs[1].released, 1);
}
END_TEST

/* agent_boot = sram: no ROM answers the ISP on either port (the fake agent speaks only
 * klink), so both boots fail; the boot failure then counts like a silent port: interface 0
 * is given back once its HELLO budget has run out, interface 1's agent answers HELLO. The
 * ISP's bytes spoil the first HELLO frame at the agent (no delimiter before it), so the
 * budget leaves room for the session's retry after its 1 s request timeout. */
#define ISP_BUDGET_MS 3000u
START_TEST(test_failed_agent_boot_given_back)
{
    char image[] = "/tmp/kpud-check-usb-image-XXXXXX";
    static const uint8_t code[64] = {0x13}; /* any bytes: never reaches a K210 */
    int fd = mkstemp(image);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, code, sizeof(code)), (ssize_t)sizeof(code));
    close(fd);
    run_two_port(-1, 0, image, ISP_BUDGET_MS);
    finish_two_port();
    unlink(image);
    ck_assert_int_eq(D.phase, 99);
    ck_assert_int_eq(fake.ifs[0].released, 1);
    ck_assert_int_eq(fake.ifs[0].reattached, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("usb_transport");
    TCase *tc = tcase_create("hotplug");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_unplug_replug_without_deadlock);
    suite_add_tcase(s, tc);
    tc = tcase_create("give_back");
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, test_two_port_silent_one_given_back);
    tcase_add_test(tc, test_port_that_said_hello_is_kept);
    tcase_add_test(tc, test_given_back_port_probed_again_on_replug);
    tcase_add_test(tc, test_explicit_interface_alone);
    tcase_add_test(tc, test_failed_agent_boot_given_back);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
