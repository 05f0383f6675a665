/* SPDX-License-Identifier: MIT */
/*
 * Peer roles for kpud's IPC server: the supplementary groups of a connected peer and the
 * decision READER / ADMIN / none (DESIGN.md §6: "peer credentials (SO_PEERCRED) give
 * reader and admin roles"). The kernel gives only uid, gid and pid through SO_PEERCRED;
 * the peer's supplementary groups come from /proc/<pid>/status (the groups the process
 * really has, see proc(5) "Groups"), or getgrouplist(3) of its user as a fallback.
 */
#include "ipc_internal.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int in_groups(const struct kpud_ipc_peer *peer, gid_t g)
{
    if (peer->gid == g)
        return 1;
    for (size_t i = 0; i < peer->n_groups; i++)
        if (peer->groups[i] == g)
            return 1;
    return 0;
}

Kpu__Ipc__V1__Role kpud_ipc_role_decide(const struct kpud_ipc_peer *peer, gid_t reader_gid,
                                        gid_t admin_gid, int everyone_admin)
{
    if (everyone_admin || peer->uid == 0)
        return KPU__IPC__V1__ROLE__ROLE_ADMIN;
    if (admin_gid != (gid_t)-1 && in_groups(peer, admin_gid))
        return KPU__IPC__V1__ROLE__ROLE_ADMIN;
    if (reader_gid == (gid_t)-1 || in_groups(peer, reader_gid))
        return KPU__IPC__V1__ROLE__ROLE_READER;
    return KPU__IPC__V1__ROLE__ROLE_NONE;
}

/* Parse the "Groups:" line of /proc/<pid>/status. Returns the count or -errno. */
static int proc_groups(pid_t pid, gid_t *groups, size_t cap)
{
    char path[64], line[4096];
    FILE *f;
    int n = -ENOENT;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "re");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        char *p, *end;
        if (strncmp(line, "Groups:", 7) != 0)
            continue;
        n = 0;
        p = line + 7;
        for (;;) {
            unsigned long v;
            errno = 0;
            v = strtoul(p, &end, 10);
            if (end == p || errno)
                break;
            if ((size_t)n < cap)
                groups[n++] = (gid_t)v;
            p = end;
        }
        break;
    }
    fclose(f);
    return n;
}

int kpud_ipc_peer_groups(pid_t pid, uid_t uid, gid_t gid, gid_t *groups, size_t cap)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    int n, r;

    if (pid > 0) {
        r = proc_groups(pid, groups, cap);
        if (r >= 0)
            return r;
    }
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return -ENOENT;
    n = (int)(cap > 0x7fffffff ? 0x7fffffff : cap);
    if (getgrouplist(res->pw_name, gid, groups, &n) < 0)
        n = (int)cap; /* truncated: the first cap groups are filled in */
    return n;
}
