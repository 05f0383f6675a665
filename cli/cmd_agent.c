/* SPDX-License-Identifier: MIT */
/* kpuctl agent version|boot|flash DEVICE: the agent firmware on a board (version is open
 * to readers; boot through the ROM ISP and flashing need the admin role). */
#include "kpuctl.h"

#include <string.h>

int cmd_agent(struct kpuctl *k, int argc, char **argv)
{
    struct kpu_client_agent_info *ai;
    int action, r;

    if (argc != 3)
        return kpuctl_usage_error(k, "needs an action and a device");
    if (strcmp(argv[1], "version") == 0)
        action = KPU_CLIENT_AGENT_VERSION;
    else if (strcmp(argv[1], "boot") == 0)
        action = KPU_CLIENT_AGENT_BOOT_SRAM;
    else if (strcmp(argv[1], "flash") == 0)
        action = KPU_CLIENT_AGENT_FLASH;
    else
        return kpuctl_usage_error(k, "unknown action '%s'", argv[1]);
    if ((r = kpuctl_connect(k)) != 0)
        return r;
    r = kpu_client_agent_control(k->client, argv[2], action, &ai);
    if (r < 0)
        return kpuctl_fail(k, "agent", r);
    if (k->json)
        r = kpuctl_print_reply_json(k);
    else
        printf("%s: agent %s (this kpud ships %s)%s\n", ai->device, ai->agent_version,
               ai->expected_version, action ? (ai->progress_permille >= 1000 ? ", done" : "") : "");
    kpu_client_free(ai);
    return r;
}
