/* SPDX-License-Identifier: MIT */
/* kpuctl query: stored detections (one NDJSON object per row with --json). Paging is done
 * by the library. */
#include "kpuctl.h"

#include <string.h>

static int print_row(kpu_client_t *c, const struct kpu_client_row *row, void *user_data)
{
    struct kpuctl *k = user_data;
    (void)c;
    if (k->json) {
        char *json;
        if (kpu_client_row_json(row, &json) == 0) {
            printf("%s\n", json);
            kpu_client_free(json);
        }
    } else {
        char t[40];
        printf("%-23s %-18s %-10s %5.2f %5d %5d %5u %5u %8u\n",
               kpuctl_format_time(row->time_ns, t, sizeof(t)), row->device,
               row->box.label[0] ? row->box.label : "?", row->box.score, row->box.x, row->box.y,
               row->box.w, row->box.h, row->frame_seq);
    }
    return 0;
}

int cmd_query(struct kpuctl *k, int argc, char **argv)
{
    struct kpuctl_filter flt;
    struct kpu_client_query q = {0};
    int64_t now = kpuctl_now_ns();
    int r;

    memset(&flt, 0, sizeof(flt));
    q.max_rows = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(a, "--", 2) != 0 || !val)
            return kpuctl_usage_error(k, "unexpected '%s'", a);
        i++;
        if (strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0) {
            int64_t *t = a[2] == 's' ? &q.since_ns : &q.until_ns;
            if (kpuctl_parse_time(val, now, t) < 0)
                return kpuctl_usage_error(k, "%s: cannot read time '%s'", a, val);
        } else if (strcmp(a, "--limit") == 0) {
            uint32_t n;
            if (kpuctl_parse_u32(val, &n) < 0)
                return kpuctl_usage_error(k, "--limit wants a number (0 = all)");
            q.max_rows = n;
        } else if (strcmp(a, "--order") == 0) {
            if (strcmp(val, "newest") == 0)
                q.oldest_first = 0;
            else if (strcmp(val, "oldest") == 0)
                q.oldest_first = 1;
            else
                return kpuctl_usage_error(k, "--order is newest or oldest");
        } else {
            r = kpuctl_filter_option(k, &flt, a + 2, val);
            if (r < 0)
                return KPUCTL_EXIT_USAGE;
            if (r == 0)
                return kpuctl_usage_error(k, "unknown option '%s'", a);
        }
    }
    if (q.since_ns && q.until_ns && q.until_ns <= q.since_ns)
        return kpuctl_usage_error(k, "--until must be after --since");
    q.filter = &flt.f;
    r = kpuctl_connect(k);
    if (r)
        return r;
    if (!k->json)
        printf("%-23s %-18s %-10s %5s %5s %5s %5s %5s %8s\n", "TIME", "DEVICE", "LABEL", "SCORE",
               "X", "Y", "W", "H", "FRAME");
    r = kpu_client_query(k->client, &q, print_row, k);
    if (r < 0)
        return kpuctl_fail(k, "querying", r);
    return 0;
}
