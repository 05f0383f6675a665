/* SPDX-License-Identifier: MIT */
/*
 * Internals of kpud's IPC server shared between its source files and its unit tests:
 * the pure subscription-filter functions (ipc_filter.c) and the peer-role decision
 * (ipc_role.c). Nothing here touches libuv or sockets, so each piece is testable alone.
 */
#ifndef KPUD_IPC_INTERNAL_H
#define KPUD_IPC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kpu/ipc/v1/ipc.pb-c.h"

/*
 * kpud_ipc_filter_device - whether device id dev passes f's device list (an empty list,
 * or f == NULL, passes everything). Returns 1 or 0.
 */
int kpud_ipc_filter_device(const Kpu__Ipc__V1__Filter *f, const char *dev);

/*
 * kpud_ipc_filter_box - whether box b passes f's class ids, labels, min_score and region
 * (box centre inside the rectangle, edges inclusive on the left/top, exclusive on the
 * right/bottom). f == NULL passes everything. Returns 1 or 0.
 */
int kpud_ipc_filter_box(const Kpu__Ipc__V1__Filter *f, const Kpu__Ipc__V1__Box *b);

/*
 * kpud_ipc_filter_validate - check a client-supplied filter for values the server refuses
 * (NaN or out-of-range min_score, more than max_items entries in a list). Returns NULL
 * when acceptable, else a static text naming the offending field.
 */
const char *kpud_ipc_filter_validate(const Kpu__Ipc__V1__Filter *f, size_t max_items);

/* Inputs of the role decision (kpud_ipc_role_decide). */
struct kpud_ipc_peer {
    pid_t pid;           /* from SO_PEERCRED */
    uid_t uid;           /* from SO_PEERCRED */
    gid_t gid;           /* primary group, from SO_PEERCRED */
    const gid_t *groups; /* supplementary groups of the peer */
    size_t n_groups;     /* entries in groups */
};

/*
 * kpud_ipc_role_decide - the role a peer gets: ADMIN for root, for everyone when
 * everyone_admin, or for a member of admin_gid (primary or supplementary; (gid_t)-1 = no
 * admin group); READER for a member of reader_gid, or anyone when reader_gid is
 * (gid_t)-1; otherwise ROLE_NONE.
 */
Kpu__Ipc__V1__Role kpud_ipc_role_decide(const struct kpud_ipc_peer *peer, gid_t reader_gid,
                                        gid_t admin_gid, int everyone_admin);

/*
 * kpud_ipc_peer_groups - fill groups (capacity cap) with the supplementary groups of the
 * process pid (from /proc/<pid>/status "Groups:"), falling back to getgrouplist() of
 * uid's passwd entry. Returns the number found (at most cap), or a negative errno when
 * neither source is available.
 */
int kpud_ipc_peer_groups(pid_t pid, uid_t uid, gid_t gid, gid_t *groups, size_t cap);

/* kpud_ipc_is_admin_request - whether a request of this body (and, for AgentControl, this
 * action) needs the ADMIN role. Returns 1 or 0. */
int kpud_ipc_is_admin_request(const Kpu__Ipc__V1__Frame *frame);

#endif /* KPUD_IPC_INTERNAL_H */
