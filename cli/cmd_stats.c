/* SPDX-License-Identifier: MIT */
/* kpuctl stats: daemon counters as text, the wire Stats in JSON, or the Prometheus text
 * exposition format (--prometheus; names kpud_*, counters end in _total). */
#include "kpuctl.h"

#include <string.h>

int cmd_stats(struct kpuctl *k, int argc, char **argv)
{
    struct kpu_client_stats s;
    int prom = 0, r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prometheus") == 0)
            prom = 1;
        else
            return kpuctl_usage_error(k, "unknown argument '%s'", argv[i]);
    }
    r = kpuctl_connect(k);
    if (r)
        return r;
    r = kpu_client_get_stats(k->client, &s);
    if (r < 0)
        return kpuctl_fail(k, "reading stats", r);
    if (prom) {
#define G(name, help, v)                                                                           \
    printf("# HELP kpud_%s %s\n# TYPE kpud_%s gauge\nkpud_%s %llu\n", name, help, name, name,      \
           (unsigned long long)(v))
#define C(name, help, v)                                                                           \
    printf("# HELP kpud_%s_total %s\n# TYPE kpud_%s_total counter\nkpud_%s_total %llu\n", name,    \
           help, name, name, (unsigned long long)(v))
        printf("# HELP kpud_uptime_seconds Seconds since kpud started.\n"
               "# TYPE kpud_uptime_seconds gauge\nkpud_uptime_seconds %.3f\n",
               (double)s.uptime_ms / 1000.0);
        G("devices", "Boards known to kpud.", s.devices);
        G("clients", "Connected IPC clients.", s.clients);
        C("frames_received", "Detection frames received from boards.", s.frames_received);
        C("detections_stored", "Detections written to the database.", s.detections_stored);
        C("frames_lost", "Frames lost on the device links (sequence gaps).", s.frames_lost);
        C("link_errors", "Malformed or corrupt link frames.", s.link_errors);
        C("events_dropped", "Events dropped from slow clients' queues.", s.events_dropped);
        G("db_bytes", "Database size in bytes.", s.db_bytes);
        G("db_rows", "Detections in the database.", s.db_rows);
        C("db_write_errors", "Failed database writes.", s.db_write_errors);
        C("db_batches", "Database write batches.", s.db_batches);
        G("rss_bytes", "Resident memory of kpud in bytes.", s.rss_bytes);
#undef G
#undef C
        return 0;
    }
    if (k->json)
        return kpuctl_print_reply_json(k);
    printf("uptime           %llu s\n", (unsigned long long)(s.uptime_ms / 1000));
    printf("devices          %u\nclients          %u\n", s.devices, s.clients);
    printf("frames received  %llu\n", (unsigned long long)s.frames_received);
    printf("detections       %llu stored\n", (unsigned long long)s.detections_stored);
    printf("frames lost      %llu\n", (unsigned long long)s.frames_lost);
    printf("link errors      %llu\n", (unsigned long long)s.link_errors);
    printf("events dropped   %llu\n", (unsigned long long)s.events_dropped);
    printf("database         %llu bytes, %llu rows, %llu batches, %llu write errors\n",
           (unsigned long long)s.db_bytes, (unsigned long long)s.db_rows,
           (unsigned long long)s.db_batches, (unsigned long long)s.db_write_errors);
    printf("memory           %llu bytes resident\n", (unsigned long long)s.rss_bytes);
    return 0;
}
