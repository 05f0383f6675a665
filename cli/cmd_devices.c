/* SPDX-License-Identifier: MIT */
/* kpuctl devices: the boards kpud knows, as a table or the wire DeviceList in JSON. */
#include "kpuctl.h"

int cmd_devices(struct kpuctl *k, int argc, char **argv)
{
    struct kpu_client_device *d;
    size_t n;
    int r;

    (void)argv;
    if (argc > 1)
        return kpuctl_usage_error(k, "takes no arguments");
    r = kpuctl_connect(k);
    if (r)
        return r;
    r = kpu_client_list_devices(k->client, &d, &n);
    if (r < 0)
        return kpuctl_fail(k, "listing devices", r);
    if (k->json) {
        kpu_client_free(d);
        return kpuctl_print_reply_json(k);
    }
    printf("%-32s %-11s %-9s %-7s %-10s %-12s %6s %10s %s\n", "DEVICE", "STATE", "TRANSPORT",
           "BRIDGE", "BOARD", "MODEL", "FPS", "FRAMES", "PATH");
    for (size_t i = 0; i < n; i++)
        printf("%-32s %-11s %-9s %-7s %-10s %-12s %6.1f %10llu %s\n", d[i].id,
               kpu_client_device_state_name(d[i].state), d[i].transport,
               d[i].bridge[0] ? d[i].bridge : "-", d[i].board, d[i].model, d[i].fps,
               (unsigned long long)d[i].frames, d[i].path);
    if (n == 0)
        printf("(no boards: plug one in, or check `kpuctl debuginfo`)\n");
    kpu_client_free(d);
    return 0;
}
