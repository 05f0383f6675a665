/* SPDX-License-Identifier: MIT */
/* kpuctl reset DEVICE [--hard]: restart a board through its agent, or with --hard through
 * the bridge's DTR/RTS lines. */
#include "kpuctl.h"

#include <string.h>

int cmd_reset(struct kpuctl *k, int argc, char **argv)
{
    const char *device = NULL;
    int hard = 0, r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hard") == 0)
            hard = 1;
        else if (argv[i][0] != '-' && !device)
            device = argv[i];
        else
            return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
    }
    if (!device)
        return kpuctl_usage_error(k, "needs a device");
    r = kpuctl_connect(k);
    if (r)
        return r;
    r = kpu_client_reset(k->client, device, hard);
    if (r < 0)
        return kpuctl_fail(k, "resetting", r);
    if (k->json)
        return kpuctl_print_reply_json(k);
    printf("%s: %s reset requested\n", device, hard ? "hard" : "soft");
    return 0;
}
