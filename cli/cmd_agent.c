/* SPDX-License-Identifier: MIT */
/* kpuctl agent version|boot|flash DEVICE: the agent firmware on a board (version is open
 * to readers; boot through the ROM ISP and flashing need the admin role). Boot and flash
 * show a progress bar on a terminal, and one line per phase otherwise. */
#include "kpuctl.h"

#include <stdio.h>
#include <string.h>

#define BAR_WIDTH 30

struct agent_watch {
    struct kpuctl *k;
    char phase[16];
};

static int on_progress(kpu_client_t *c, const struct kpu_client_agent_info *ai, void *user_data)
{
    struct agent_watch *w = user_data;
    unsigned pm = ai->progress_permille > 1000 ? 1000 : ai->progress_permille;
    int fill = (int)(pm * BAR_WIDTH / 1000);
    const char *phase = ai->phase ? ai->phase : "";

    (void)c;
    if (w->k->json)
        return 0;
    if (w->k->tty) {
        printf("\r[%.*s%*s] %3u%% %-8s", fill, "##############################", BAR_WIDTH - fill,
               "", pm / 10, phase);
        fflush(stdout);
    } else if (strcmp(phase, w->phase) != 0) {
        printf("%s %u%%\n", phase, pm / 10);
        fflush(stdout);
    }
    snprintf(w->phase, sizeof(w->phase), "%s", phase);
    return 0;
}

int cmd_agent(struct kpuctl *k, int argc, char **argv)
{
    struct kpu_client_agent_info *ai;
    struct agent_watch w = {k, ""};
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
    r = kpu_client_agent_control_progress(k->client, argv[2], action, on_progress, &w, &ai);
    if (k->tty && w.phase[0] && !k->json)
        printf("\n"); /* end the progress bar's line */
    if (r < 0)
        return kpuctl_fail(k, "agent", r);
    if (k->json)
        r = kpuctl_print_reply_json(k);
    else if (action == KPU_CLIENT_AGENT_FLASH)
        printf("%s: agent %s written to flash and booted (this kpud ships %s)\n", ai->device,
               ai->agent_version, ai->expected_version);
    else
        printf("%s: agent %s (this kpud ships %s)%s\n", ai->device, ai->agent_version,
               ai->expected_version, action ? (ai->progress_permille >= 1000 ? ", done" : "") : "");
    kpu_client_free(ai);
    return r;
}
