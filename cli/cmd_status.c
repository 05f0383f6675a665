/* SPDX-License-Identifier: MIT */
/* kpuctl status: daemon identity, devices and counters in one look. With --json one
 * object {"server":{...},"devices":[...],"stats":{...}}. */
#include "kpuctl.h"

#include <stdlib.h>
#include <string.h>

static const char *role_name(int role)
{
    return role == KPU_CLIENT_ROLE_ADMIN    ? "admin"
           : role == KPU_CLIENT_ROLE_READER ? "reader"
                                            : "none";
}

int cmd_status(struct kpuctl *k, int argc, char **argv)
{
    const struct kpu_client_server_info *si;
    struct kpu_client_device *d;
    struct kpu_client_stats st;
    char *devjson = NULL, *statsjson = NULL;
    size_t n;
    int r;

    (void)argv;
    if (argc > 1)
        return kpuctl_usage_error(k, "takes no arguments");
    r = kpuctl_connect(k);
    if (r)
        return r;
    si = kpu_client_server_info(k->client);
    r = kpu_client_list_devices(k->client, &d, &n);
    if (r < 0)
        return kpuctl_fail(k, "listing devices", r);
    if (k->json && kpu_client_last_reply_json(k->client, &devjson) < 0) {
        kpu_client_free(d);
        return KPUCTL_EXIT_DEVICE;
    }
    r = kpu_client_get_stats(k->client, &st);
    if (r < 0) {
        kpu_client_free(d);
        kpu_client_free(devjson);
        return kpuctl_fail(k, "reading stats", r);
    }
    if (k->json) {
        if (kpu_client_last_reply_json(k->client, &statsjson) < 0) {
            kpu_client_free(d);
            kpu_client_free(devjson);
            return KPUCTL_EXIT_DEVICE;
        }
        printf("{\"server\":{\"version\":");
        kpuctl_json_str(stdout, si ? si->server_version : "");
        printf(",\"protocol\":\"%u.%u\",\"role\":\"%s\",\"instance_id\":\"%s\",\"boot_time_ns\":%"
               "llu},",
               si ? si->protocol_major : 0, si ? si->protocol_minor : 0,
               role_name(si ? si->role : 0), si ? si->instance_id : "",
               si ? (unsigned long long)si->boot_time_ns : 0ull);
        /* devjson is {"devices":[...]}: splice its member into this object. */
        printf("%.*s,\"stats\":%s}\n", (int)(strlen(devjson) - 2), devjson + 1, statsjson);
        kpu_client_free(devjson);
        kpu_client_free(statsjson);
        kpu_client_free(d);
        return 0;
    }
    printf("kpud %s (protocol %u.%u), you are %s, up %llu s\n", si ? si->server_version : "?",
           si ? si->protocol_major : 0, si ? si->protocol_minor : 0, role_name(si ? si->role : 0),
           (unsigned long long)(st.uptime_ms / 1000));
    printf("%u device(s), %u client(s); %llu frames received, %llu detections stored, "
           "%llu frames lost, %llu events dropped\n",
           st.devices, st.clients, (unsigned long long)st.frames_received,
           (unsigned long long)st.detections_stored, (unsigned long long)st.frames_lost,
           (unsigned long long)st.events_dropped);
    for (size_t i = 0; i < n; i++) {
        printf("  %s  %-11s %s %s, model %s, %.1f fps", d[i].id,
               kpu_client_device_state_name(d[i].state), d[i].transport, d[i].board, d[i].model,
               d[i].fps);
        if (d[i].last_error[0])
            printf(", last error: %s", d[i].last_error);
        printf("\n");
    }
    kpu_client_free(d);
    return 0;
}
