/* SPDX-License-Identifier: MIT */
/*
 * The usb transport (daemon/link/transport_usb.c) against a fake libusb defined in this
 * file: one CH340 that can be unplugged and plugged back in. The fake behaves as libusb
 * 1.0.26 on Linux where it matters here: transfer and hotplug callbacks run inside
 * libusb_handle_events_timeout_completed(), an unplug completes every transfer in flight
 * with LIBUSB_TRANSFER_NO_DEVICE, and reaping happens with the context's open_devs_lock
 * held (linux_usbfs.c op_handle_events), so libusb_open() or libusb_close() called from
 * a callback would deadlock. The fake counts such calls instead of hanging.
 *
 * Regression test for issue 7: kpud closed the handle from the NO_DEVICE callback and
 * hung on the first unplug (no replug, no exit on SIGTERM).
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

#include "transport_usb.h"

/* ------------------------------------------------------------------ the fake libusb */

#define FAKE_MAX_XFERS 16

struct libusb_context {
    int unused;
};
struct libusb_device {
    int refs;
};
struct libusb_device_handle {
    struct libusb_device *dev;
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
    desc->idVendor = 0x1a86; /* CH340 (Linux drivers/usb/serial/ch341.c id_table) */
    desc->idProduct = 0x7523;
    desc->bcdDevice = 0x0264;
    return 0;
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

    (void)dev;
    *config = &cfg;
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
    (void)dev_handle;
    (void)enable;
    return 0;
}

int libusb_claim_interface(libusb_device_handle *dev_handle, int interface_number)
{
    (void)dev_handle;
    (void)interface_number;
    fake.claimed++;
    return 0;
}

int libusb_release_interface(libusb_device_handle *dev_handle, int interface_number)
{
    (void)dev_handle;
    (void)interface_number;
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

/* Completes control and OUT transfers at once (control IN data all zeros); bulk IN waits
 * for data that never comes. After an unplug every transfer ends with NO_DEVICE. */
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
        } else {
            x->actual_length = st[i] == LIBUSB_TRANSFER_COMPLETED ? x->length : 0;
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

int main(void)
{
    Suite *s = suite_create("usb_transport");
    TCase *tc = tcase_create("hotplug");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_unplug_replug_without_deadlock);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
