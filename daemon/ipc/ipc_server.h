/* SPDX-License-Identifier: MIT */
/*
 * kpud's IPC server: the Unix stream socket that local programs (kpuctl, libkpu-client
 * apps) talk kpu.ipc.v1 on (docs/protocol.md §3-4).
 *
 * The server owns connections, the handshake, roles from SO_PEERCRED, framing and limits,
 * subscriptions with their filters, rate limits and bounded per-client queues (drop oldest,
 * then a Dropped notice). Every other request is handed to the daemon through the backend
 * callback with a reply handle; the daemon answers when it has the result (at once, or
 * after a thread-pool query or an agent round trip). The server knows nothing of SQLite
 * or devices; loop.c wires it to them.
 */
#ifndef KPUD_IPC_SERVER_H
#define KPUD_IPC_SERVER_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "kpu/ipc/v1/ipc.pb-c.h"

struct kpud_ipc_server;
struct kpud_ipc_request;

struct kpud_ipc_backend {
    /*
     * request - a client request the server does not answer itself (everything but
     * ClientHello, Ping, Subscribe, Unsubscribe). Called on the loop thread after the role
     * check passed. The backend must eventually call kpud_ipc_reply() or
     * kpud_ipc_reply_status() exactly once on req, even if the client disconnects
     * meanwhile (the server then drops the reply); req stays valid until then.
     * frame is the decoded request, owned by req.
     */
    void (*request)(void *ctx, struct kpud_ipc_request *req, const Kpu__Ipc__V1__Frame *frame);
};

struct kpud_ipc_opts {
    const char *path;            /* socket path; created, mode 0660 */
    int listen_fd;               /* >= 0: an already bound and listening socket (systemd
                                    socket activation); path is then informational */
    gid_t reader_gid;            /* group whose members are readers; (gid_t)-1 = anyone */
    gid_t admin_gid;             /* group whose members are admins besides root;
                                    (gid_t)-1 = root only */
    int everyone_admin;          /* tests and unprivileged single-user runs: all admins */
    uint32_t max_frame;          /* bytes, 0 = 1 MiB */
    uint32_t max_clients;        /* 0 = 64 */
    uint32_t max_subscriptions;  /* per client, 0 = 16 */
    uint32_t queue_messages;     /* per client, 0 = 1024 */
    uint64_t queue_bytes;        /* per client, 0 = 4 MiB */
    uint32_t max_page_rows;      /* announced in ServerHello, 0 = 1000 */
    const char *server_version;  /* announced in ServerHello */
    const char *const *features; /* NULL-terminated list announced in ServerHello */
    const struct kpud_ipc_backend *backend;
    void *backend_ctx;
};

/* Counters for GetStats and tests. */
struct kpud_ipc_stats {
    uint32_t clients;         /* connected now */
    uint64_t connections;     /* accepted since start */
    uint64_t events_sent;     /* events written to clients */
    uint64_t events_dropped;  /* events dropped from full queues */
    uint64_t protocol_errors; /* connections closed for malformed input */
    uint64_t refused;         /* connections refused (limit, or no role) */
};

/*
 * kpud_ipc_server_open - create the socket (or adopt opts->listen_fd) and start
 * accepting on loop. A stale socket file at path (nobody listening) is replaced; a live
 * one is an error (another kpud runs). Returns 0 and sets *ret, or a negative errno.
 * The process must ignore SIGPIPE: libuv writes to client sockets with write(2), and a
 * client that vanishes mid-write would otherwise kill the daemon.
 */
int kpud_ipc_server_open(uv_loop_t *loop, const struct kpud_ipc_opts *opts,
                         struct kpud_ipc_server **ret);

/*
 * kpud_ipc_server_close - stop accepting, close every connection (queued events are
 * dropped), remove the socket file if this server created it, and free the server once
 * libuv has closed its handles; cb (may be NULL) is called then. Pending requests'
 * replies become no-ops.
 */
void kpud_ipc_server_close(struct kpud_ipc_server *srv, void (*cb)(void *arg), void *arg);

/*
 * kpud_ipc_publish_detection - offer one detection frame to every subscription whose
 * filter, rate limit and include_empty setting accept it. The server copies what it
 * needs (boxes are filtered per subscription); ev is not kept. subscription_id in ev is
 * ignored (each copy gets its subscription's id).
 */
void kpud_ipc_publish_detection(struct kpud_ipc_server *srv,
                                const Kpu__Ipc__V1__DetectionEvent *ev);

/* kpud_ipc_publish_device - offer a device state change to subscriptions that asked for
 * device events. ev is copied; subscription_id is set per subscription. */
void kpud_ipc_publish_device(struct kpud_ipc_server *srv, const Kpu__Ipc__V1__DeviceEvent *ev);

/*
 * kpud_ipc_reply - answer req with frame (its request_id is set by the server; the body
 * is the backend's). Serialized at once; frame may be freed after the call. Frees req.
 */
void kpud_ipc_reply(struct kpud_ipc_request *req, Kpu__Ipc__V1__Frame *frame);

/*
 * kpud_ipc_reply_interim - send frame as an interim response to req (progress of a long
 * request, e.g. AgentInfo with in_progress set) without completing it. Dropped for clients
 * that speak kpu.ipc 1.0 and for closed connections. frame may be freed after the call.
 */
void kpud_ipc_reply_interim(struct kpud_ipc_request *req, Kpu__Ipc__V1__Frame *frame);

/* kpud_ipc_reply_status - answer req with Status{code, text, hint}; hint may be NULL.
 * Frees req. */
void kpud_ipc_reply_status(struct kpud_ipc_request *req, Kpu__Ipc__V1__StatusCode code,
                           const char *text, const char *hint);

/* kpud_ipc_request_role - the role of the connection that sent req. */
Kpu__Ipc__V1__Role kpud_ipc_request_role(const struct kpud_ipc_request *req);

/* kpud_ipc_server_stats - current counters. */
void kpud_ipc_server_stats(const struct kpud_ipc_server *srv, struct kpud_ipc_stats *out);

/* kpud_ipc_server_subscriptions - subscriptions open on all connections now (the daemon
 * may skip work nobody watches; tests wait on it). */
unsigned kpud_ipc_server_subscriptions(const struct kpud_ipc_server *srv);

#endif /* KPUD_IPC_SERVER_H */
