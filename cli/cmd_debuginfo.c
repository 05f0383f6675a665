/* SPDX-License-Identifier: MIT */
/* kpuctl debuginfo: what a bug report needs in one go (gpsdebuginfo's idea): versions, the
 * socket path with its permissions and this user's ids, whether kpud answers and with what
 * role, its counters and boards. Each part reports its own failure and the rest goes on. */
#include "kpuctl.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One JSON object: versions, socket, user, and the daemon's hello, stats and devices
 * (null where that part failed). */
static int debuginfo_json(struct kpuctl *k, const char *path)
{
    const struct kpu_client_server_info *si;
    struct kpu_client_stats s;
    struct kpu_client_device *d;
    struct stat st;
    char *json;
    size_t n;
    int r;

    printf("{\"kpuctl\":\"%s\",\"library\":\"%s\",\"protocol\":\"%d.%d\",\"socket\":{\"path\":",
           KPUCTL_VERSION, kpu_client_version_string(), KPU_CLIENT_PROTOCOL_MAJOR,
           KPU_CLIENT_PROTOCOL_MINOR);
    kpuctl_json_str(stdout, path);
    if (stat(path, &st) == 0)
        printf(",\"mode\":\"%04o\",\"uid\":%u,\"gid\":%u,\"is_socket\":%s}", st.st_mode & 07777,
               (unsigned)st.st_uid, (unsigned)st.st_gid, S_ISSOCK(st.st_mode) ? "true" : "false");
    else
        printf(",\"error\":\"cannot stat\"}");
    printf(",\"user\":{\"uid\":%u,\"gid\":%u},\"daemon\":", (unsigned)geteuid(),
           (unsigned)getegid());
    r = kpuctl_connect(k);
    if (r) {
        printf("null}\n");
        return r;
    }
    si = kpu_client_server_info(k->client);
    printf("{\"version\":");
    kpuctl_json_str(stdout, si->server_version);
    printf(",\"protocol\":\"%u.%u\",\"role\":\"%s\",\"max_frame\":%u,\"max_subscriptions\":%u,"
           "\"max_page_rows\":%u,\"queue_messages\":%u,\"queue_bytes\":%llu,\"features\":[",
           si->protocol_major, si->protocol_minor,
           si->role == KPU_CLIENT_ROLE_ADMIN ? "admin" : "reader", si->max_frame,
           si->max_subscriptions, si->max_page_rows, si->queue_messages,
           (unsigned long long)si->queue_bytes);
    for (size_t i = 0; i < si->n_features; i++) {
        if (i)
            printf(",");
        kpuctl_json_str(stdout, si->features[i]);
    }
    printf("]},\"stats\":");
    if (kpu_client_get_stats(k->client, &s) == 0 &&
        kpu_client_last_reply_json(k->client, &json) == 0) {
        printf("%s", json);
        kpu_client_free(json);
    } else {
        printf("null");
    }
    printf(",\"devices\":");
    if (kpu_client_list_devices(k->client, &d, &n) == 0 &&
        kpu_client_last_reply_json(k->client, &json) == 0) {
        printf("%s", json);
        kpu_client_free(json);
        kpu_client_free(d);
    } else {
        printf("null");
    }
    printf("}\n");
    return 0;
}

int cmd_debuginfo(struct kpuctl *k, int argc, char **argv)
{
    char path[256];
    struct stat st;
    struct group *gr;
    struct passwd *pw;
    const struct kpu_client_server_info *si;
    struct kpu_client_stats s;
    struct kpu_client_device *d;
    size_t n;
    int r;

    (void)argv;
    if (argc > 1)
        return kpuctl_usage_error(k, "takes no arguments");
    if (k->socket)
        snprintf(path, sizeof(path), "%s", k->socket);
    else if (kpu_client_default_socket(path, sizeof(path)) < 0)
        snprintf(path, sizeof(path), "?");
    if (k->json)
        return debuginfo_json(k, path);
    printf("== versions\nkpuctl %s, libkpu-client %s, protocol %d.%d\n", KPUCTL_VERSION,
           kpu_client_version_string(), KPU_CLIENT_PROTOCOL_MAJOR, KPU_CLIENT_PROTOCOL_MINOR);
    printf("== socket\n%s\n", path);
    if (stat(path, &st) == 0) {
        pw = getpwuid(st.st_uid);
        gr = getgrgid(st.st_gid);
        printf("mode %04o owner %s group %s%s\n", st.st_mode & 07777, pw ? pw->pw_name : "?",
               gr ? gr->gr_name : "?", S_ISSOCK(st.st_mode) ? "" : " (not a socket!)");
    } else {
        perror("  stat");
    }
    pw = getpwuid(geteuid());
    printf("you: uid %u (%s) gid %u\n", (unsigned)geteuid(), pw ? pw->pw_name : "?",
           (unsigned)getegid());
    printf("== daemon\n");
    fflush(stdout);
    r = kpuctl_connect(k);
    if (r)
        return r;
    si = kpu_client_server_info(k->client);
    printf("kpud %s, protocol %u.%u, role %s, instance %s\n", si->server_version,
           si->protocol_major, si->protocol_minor,
           si->role == KPU_CLIENT_ROLE_ADMIN ? "admin" : "reader", si->instance_id);
    printf("limits: frame %u B, %u subscriptions, %u rows/page, queue %u msgs / %llu B\n",
           si->max_frame, si->max_subscriptions, si->max_page_rows, si->queue_messages,
           (unsigned long long)si->queue_bytes);
    printf("features:");
    for (size_t i = 0; i < si->n_features; i++)
        printf(" %s", si->features[i]);
    printf("\n== stats\n");
    if ((r = kpu_client_get_stats(k->client, &s)) == 0)
        printf("uptime %llu ms, %u devices, %u clients, %llu frames, %llu lost, %llu link errors, "
               "%llu dropped, db %llu B / %llu rows, rss %llu B\n",
               (unsigned long long)s.uptime_ms, s.devices, s.clients,
               (unsigned long long)s.frames_received, (unsigned long long)s.frames_lost,
               (unsigned long long)s.link_errors, (unsigned long long)s.events_dropped,
               (unsigned long long)s.db_bytes, (unsigned long long)s.db_rows,
               (unsigned long long)s.rss_bytes);
    else
        kpuctl_fail(k, "stats", r);
    printf("== devices\n");
    if ((r = kpu_client_list_devices(k->client, &d, &n)) == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s %s %s %s %s bridge=%s agent=%s model=%s frames=%llu lost=%llu "
                   "link_errors=%llu reconnects=%u reset=%s last_error=%s\n",
                   d[i].id, kpu_client_device_state_name(d[i].state), d[i].transport, d[i].path,
                   d[i].board, d[i].bridge, d[i].agent_version, d[i].model,
                   (unsigned long long)d[i].frames, (unsigned long long)d[i].frames_lost,
                   (unsigned long long)d[i].link_errors, d[i].reconnects, d[i].reset_cause,
                   d[i].last_error[0] ? d[i].last_error : "-");
        kpu_client_free(d);
    } else {
        kpuctl_fail(k, "devices", r);
    }
    return 0;
}
