/* SPDX-License-Identifier: MIT */
/*
 * kpuctl replay FILE: captures are replayed by kpud's replay transport (a capture attached
 * as a device), not streamed through kpuctl. kpu.ipc.v1 has no request for it yet, so this
 * verb checks the daemon is reachable and says clearly that it does not support it.
 */
#include "kpuctl.h"

int cmd_replay(struct kpuctl *k, int argc, char **argv)
{
    int r;

    if (argc != 2)
        return kpuctl_usage_error(k, "needs one capture file");
    r = kpuctl_connect(k);
    if (r)
        return r;
    if (k->json) {
        printf("{\"error\":{\"code\":\"UNSUPPORTED\",\"message\":\"%s\",\"text\":",
               kpu_client_strerror(KPU_CLIENT_EUNSUPPORTED));
        kpuctl_json_str(stdout, argv[1]);
        printf(",\"hint\":\"attach the capture as a replay device in kpud's configuration\","
               "\"exit\":%d}}\n",
               KPUCTL_EXIT_DEVICE);
    }
    fprintf(stderr,
            "kpuctl replay: %s: not supported by this daemon\n"
            "  hint: attach the capture as a replay device in kpud's configuration\n",
            argv[1]);
    return KPUCTL_EXIT_DEVICE;
}
