/* SPDX-License-Identifier: MIT */
/* kpuctl watch: live detections, one line each (NDJSON with --json, so
 * `kpuctl watch --json | jq` works), until --count events or --seconds pass or Ctrl-C. */
#include "kpuctl.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct watch {
    struct kpuctl *k;
    long count; /* events left; -1 = unlimited */
    int err;
};

static kpu_client_t *volatile stop_client;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_client)
        kpu_client_stop(stop_client);
}

static void on_event(kpu_client_t *c, const struct kpu_client_event *ev, void *user_data)
{
    struct watch *w = user_data;

    if (w->k->json) {
        char *json;
        if (kpu_client_event_json(ev, &json) == 0) {
            printf("%s\n", json);
            kpu_client_free(json);
        }
    } else if (ev->type == KPU_CLIENT_EVENT_DETECTION) {
        const struct kpu_client_detection *d = ev->detection;
        char t[40];
        printf("%s %s #%u", kpuctl_format_time(d->host_time_ns, t, sizeof(t)), d->device,
               d->frame_seq);
        for (size_t i = 0; i < d->n_boxes; i++)
            printf("  %s %.2f [%d,%d %ux%u]", d->boxes[i].label[0] ? d->boxes[i].label : "?",
                   d->boxes[i].score, d->boxes[i].x, d->boxes[i].y, d->boxes[i].w, d->boxes[i].h);
        printf("\n");
    } else if (ev->type == KPU_CLIENT_EVENT_DEVICE) {
        printf("device %s is %s (%s)\n", ev->device->id,
               kpu_client_device_state_name(ev->device->state), ev->reason);
    } else if (ev->type == KPU_CLIENT_EVENT_DROPPED) {
        printf("(%llu events dropped: output too slow)\n", (unsigned long long)ev->dropped_count);
    }
    fflush(stdout);
    if (ev->type == KPU_CLIENT_EVENT_DETECTION && w->count > 0 && --w->count == 0)
        kpu_client_stop(c);
}

int cmd_watch(struct kpuctl *k, int argc, char **argv)
{
    struct kpuctl_filter flt;
    struct kpu_client_sub_opts so = {0};
    struct watch w = {k, -1, 0};
    int64_t seconds = -1;
    int r;

    memset(&flt, 0, sizeof(flt));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--device-events") == 0) {
            so.device_events = 1;
            continue;
        }
        if (strcmp(a, "--include-empty") == 0) {
            so.include_empty = 1;
            continue;
        }
        if (strcmp(a, "--latest-only") == 0) {
            so.latest_only = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || !val)
            return kpuctl_usage_error(k, "unexpected '%s'", a);
        i++;
        if (strcmp(a, "--count") == 0) {
            uint32_t n;
            if (kpuctl_parse_u32(val, &n) < 0 || n == 0)
                return kpuctl_usage_error(k, "--count wants a positive number");
            w.count = n;
        } else if (strcmp(a, "--seconds") == 0) {
            uint64_t s;
            if (kpuctl_parse_duration(val, &s) < 0 || s > 0x7fffffff / 1000)
                return kpuctl_usage_error(k, "--seconds wants a duration");
            seconds = (int64_t)s;
        } else if (strcmp(a, "--max-rate") == 0) {
            if (kpuctl_parse_float(val, &so.max_rate_hz) < 0 || so.max_rate_hz < 0)
                return kpuctl_usage_error(k, "--max-rate wants events per second");
        } else {
            r = kpuctl_filter_option(k, &flt, a + 2, val);
            if (r < 0)
                return KPUCTL_EXIT_USAGE;
            if (r == 0)
                return kpuctl_usage_error(k, "unknown option '%s'", a);
        }
    }
    r = kpuctl_connect(k);
    if (r)
        return r;
    r = kpu_client_subscribe(k->client, &flt.f, &so, on_event, &w, NULL);
    if (r < 0)
        return kpuctl_fail(k, "subscribing", r);
    stop_client = k->client;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    r = kpu_client_run(k->client, seconds >= 0 ? (int)(seconds * 1000) : -1);
    stop_client = NULL;
    if (r < 0)
        return kpuctl_fail(k, "watching", r);
    return 0;
}
