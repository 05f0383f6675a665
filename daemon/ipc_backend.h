/* SPDX-License-Identifier: MIT */
/*
 * The daemon side of the IPC server: opens the socket with the configured roles and
 * answers the requests the server hands over (devices, stats, history queries, config,
 * retention, recording, models, snapshots) from the store and the device sessions, and
 * turns session events into IPC events.
 */
#ifndef KPUD_IPC_BACKEND_H
#define KPUD_IPC_BACKEND_H

#include <uv.h>

#include "config.h"
#include "devices.h"
#include "store/store.h"

struct kpud_ipc;

/*
 * kpud_ipc_open - create the socket at cfg->socket_path (its directory too) and start
 * accepting; under systemd socket activation ($LISTEN_FDS) adopt the passed listening socket
 * bound to that path (or the only one passed) instead. Requests that need the store or devices get DEVICE_OFFLINE/INTERNAL until
 * kpud_ipc_attach(). Returns 0 and sets *ret, or a negative errno (logged).
 */
int kpud_ipc_open(uv_loop_t *loop, const struct kpud_config *cfg, struct kpud_ipc **ret);

/* kpud_ipc_attach - give the backend the store and the device manager. */
void kpud_ipc_attach(struct kpud_ipc *ipc, struct kpud_store *store, struct kpud_devices *devs);

/* kpud_ipc_detection - publish a detection frame of session s to subscribers. */
void kpud_ipc_detection(struct kpud_ipc *ipc, struct kpud_session *s,
                        const Kpu__Link__V1__DetectionFrame *f, int64_t host_ns);

/* kpud_ipc_device_state - publish a device state change. */
void kpud_ipc_device_state(struct kpud_ipc *ipc, struct kpud_session *s, enum kpud_dev_state st,
                           const char *reason);

/* kpud_ipc_close - close the socket and every connection; NULL is a no-op. After it the
 * store and devices may go; requests still completing are answered into the void. */
void kpud_ipc_close(struct kpud_ipc *ipc);

/* kpud_ipc_free - release the backend once the loop has stopped (after uv_run returns,
 * when no callback can reach it any more). NULL is a no-op. */
void kpud_ipc_free(struct kpud_ipc *ipc);

#endif
