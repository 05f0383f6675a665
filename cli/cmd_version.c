/* SPDX-License-Identifier: MIT */
/* kpuctl version: kpuctl, libkpu-client (compiled against and running), kpud and the wire
 * protocol. The daemon part is "unreachable" when kpud does not answer; the exit code is
 * still 0, since the local versions were printed. */
#include "kpuctl.h"

int cmd_version(struct kpuctl *k, int argc, char **argv)
{
    const struct kpu_client_server_info *si = NULL;
    struct kpu_client_opts o = {0};

    (void)argv;
    if (argc > 1)
        return kpuctl_usage_error(k, "takes no arguments");
    o.socket_path = k->socket;
    o.client_name = "kpuctl";
    o.timeout_ms = k->timeout_ms;
    if (kpu_client_open(&o, &k->client) == 0)
        si = kpu_client_server_info(k->client);
    if (k->json) {
        printf(
            "{\"kpuctl\":\"%s\",\"library\":\"%s\",\"library_built\":\"%s\",\"protocol\":\"%d.%d\","
            "\"daemon\":",
            KPUCTL_VERSION, kpu_client_version_string(), KPU_CLIENT_VERSION_STRING,
            KPU_CLIENT_PROTOCOL_MAJOR, KPU_CLIENT_PROTOCOL_MINOR);
        if (si) {
            kpuctl_json_str(stdout, si->server_version);
            printf(",\"daemon_protocol\":\"%u.%u\"}\n", si->protocol_major, si->protocol_minor);
        } else {
            printf("null,\"daemon_protocol\":null}\n");
        }
        return 0;
    }
    printf("kpuctl          %s\n", KPUCTL_VERSION);
    printf("libkpu-client   %s (built against %s)\n", kpu_client_version_string(),
           KPU_CLIENT_VERSION_STRING);
    printf("protocol        kpu.ipc %d.%d\n", KPU_CLIENT_PROTOCOL_MAJOR, KPU_CLIENT_PROTOCOL_MINOR);
    if (si)
        printf("kpud            %s (kpu.ipc %u.%u)\n", si->server_version, si->protocol_major,
               si->protocol_minor);
    else
        printf("kpud            unreachable\n");
    return 0;
}
