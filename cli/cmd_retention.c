/* SPDX-License-Identifier: MIT */
/* kpuctl retention show | set [--max-age 30d] [--max-bytes 10G] | apply [--dry-run]: how
 * long kpud keeps detections, and what a pass would delete (say it before doing it). */
#include "kpuctl.h"

#include <string.h>

static void show(const struct kpu_client_retention *r)
{
    if (r->max_age_s)
        printf("max age    %llu s (%.1f days)\n", (unsigned long long)r->max_age_s,
               (double)r->max_age_s / 86400.0);
    else
        printf("max age    none (keep forever)\n");
    if (r->max_bytes)
        printf("max bytes  %llu\n", (unsigned long long)r->max_bytes);
    else
        printf("max bytes  none\n");
}

int cmd_retention(struct kpuctl *k, int argc, char **argv)
{
    struct kpu_client_retention ret = {0}, out;
    struct kpu_client_retention_report rep;
    int r;

    if (argc < 2)
        return kpuctl_usage_error(k, "needs show, set or apply");
    if (strcmp(argv[1], "show") == 0) {
        if (argc != 2)
            return kpuctl_usage_error(k, "show takes no arguments");
        if ((r = kpuctl_connect(k)) != 0)
            return r;
        r = kpu_client_retention_get(k->client, &out);
        if (r < 0)
            return kpuctl_fail(k, "reading retention", r);
        if (k->json)
            return kpuctl_print_reply_json(k);
        show(&out);
        return 0;
    }
    if (strcmp(argv[1], "set") == 0) {
        int any = 0;
        if ((r = kpuctl_connect(k)) != 0)
            return r;
        r = kpu_client_retention_get(k->client, &ret);
        if (r < 0)
            return kpuctl_fail(k, "reading retention", r);
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--max-age") == 0 && i + 1 < argc) {
                if (kpuctl_parse_duration(argv[++i], &ret.max_age_s) < 0)
                    return kpuctl_usage_error(k, "--max-age wants a duration like 30d");
            } else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc) {
                if (kpuctl_parse_size(argv[++i], &ret.max_bytes) < 0)
                    return kpuctl_usage_error(k, "--max-bytes wants a size like 10G");
            } else {
                return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
            }
            any = 1;
        }
        if (!any)
            return kpuctl_usage_error(k, "set needs --max-age or --max-bytes (0 = no bound)");
        r = kpu_client_retention_set(k->client, &ret, &out);
        if (r < 0)
            return kpuctl_fail(k, "changing retention", r);
        if (k->json)
            return kpuctl_print_reply_json(k);
        show(&out);
        return 0;
    }
    if (strcmp(argv[1], "apply") == 0) {
        int dry = 0;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--dry-run") == 0)
                dry = 1;
            else
                return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
        }
        if ((r = kpuctl_connect(k)) != 0)
            return r;
        r = kpu_client_retention_apply(k->client, dry, &rep);
        if (r < 0)
            return kpuctl_fail(k, "applying retention", r);
        if (k->json)
            return kpuctl_print_reply_json(k);
        {
            char t[40];
            printf("%s %llu rows; oldest kept %s; database %llu bytes\n",
                   rep.dry_run ? "would delete" : "deleted", (unsigned long long)rep.rows_deleted,
                   rep.oldest_kept_ns ? kpuctl_format_time(rep.oldest_kept_ns, t, sizeof(t)) : "-",
                   (unsigned long long)rep.db_bytes);
        }
        return 0;
    }
    return kpuctl_usage_error(k, "unknown subcommand '%s'", argv[1]);
}
