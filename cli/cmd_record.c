/* SPDX-License-Identifier: MIT */
/* kpuctl record start DEVICE [-o NAME] [--notes TEXT] | stop DEVICE: capture a board's
 * raw link into kpud's capture directory (.kcap), for bug reports and the replay corpus. */
#include "kpuctl.h"

#include <string.h>

int cmd_record(struct kpuctl *k, int argc, char **argv)
{
    struct kpu_client_record_state *st = NULL;
    const char *device = NULL, *path = NULL, *notes = NULL;
    int start, r;

    if (argc < 3 || (strcmp(argv[1], "start") != 0 && strcmp(argv[1], "stop") != 0))
        return kpuctl_usage_error(k, "needs start or stop and a device");
    start = strcmp(argv[1], "start") == 0;
    for (int i = 2; i < argc; i++) {
        if (start && strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (start && strcmp(argv[i], "--notes") == 0 && i + 1 < argc)
            notes = argv[++i];
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
    r = start ? kpu_client_record_start(k->client, device, path, notes, &st)
              : kpu_client_record_stop(k->client, device, &st);
    if (r < 0)
        return kpuctl_fail(k, start ? "starting the recording" : "stopping the recording", r);
    if (k->json)
        r = kpuctl_print_reply_json(k);
    else
        printf("%s: %s %s (%llu bytes)\n", st->device, st->recording ? "recording to" : "stopped,",
               st->path, (unsigned long long)st->bytes);
    kpu_client_free(st);
    return r;
}
