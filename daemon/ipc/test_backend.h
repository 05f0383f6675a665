/* SPDX-License-Identifier: MIT */
/*
 * A small, deterministic IPC backend for tests (check_ipc_server, check_client, the
 * kpuctl golden tests through kpud-ipc-testd): two devices, a synthetic history table,
 * configs, models with a real chunked upload, retention and recording state, all in
 * memory. Replies can be delayed to test timeouts and ordering. Not used by kpud.
 */
#ifndef KPUD_IPC_TEST_BACKEND_H
#define KPUD_IPC_TEST_BACKEND_H

#include "ipc_server.h"

#define TB_DEVICE_A "a1b2c3d4e5f60718"        /* streaming sim board */
#define TB_DEVICE_B "0011223344556677"        /* idle board */
#define TB_HISTORY_ROWS 2500u                 /* rows in the synthetic history */
#define TB_TIME_BASE_NS 1800000000000000000ll /* row i has time TB_TIME_BASE_NS + i * 1 ms */
#define TB_LABEL_COUNT 3u

struct tb;

/* tb_labels - the label of class id k (k < TB_LABEL_COUNT). */
const char *tb_label(uint32_t class_id);

/* tb_new - a backend with its fixed tables. Returns NULL when out of memory. */
struct tb *tb_new(uv_loop_t *loop);

/* tb_free - free the backend; answers every delayed request with Status{INTERNAL} first. */
void tb_free(struct tb *tb);

/* tb_backend - the callback table to put in kpud_ipc_opts with tb as backend_ctx. */
const struct kpud_ipc_backend *tb_backend(void);

/* tb_set_delay - answer later requests after ms milliseconds (0 = at once). */
void tb_set_delay(struct tb *tb, unsigned ms);

/* tb_set_server - let GetStats report the server's counters. */
void tb_set_server(struct tb *tb, struct kpud_ipc_server *srv);

/* tb_requests - how many requests reached the backend. */
unsigned long tb_requests(const struct tb *tb);

/*
 * tb_make_detection - fill ev (caller's storage, boxes in the caller's arrays of n) with
 * a deterministic event of device dev, frame seq: box k has class k % TB_LABEL_COUNT,
 * score 0.5 + 0.1 * k, at (10 + 20k, 10 + 10k), 16x16, image 320x240.
 */
void tb_make_detection(Kpu__Ipc__V1__DetectionEvent *ev, Kpu__Ipc__V1__Box *boxes,
                       Kpu__Ipc__V1__Box **ptrs, size_t n, const char *dev, uint32_t seq);

#endif /* KPUD_IPC_TEST_BACKEND_H */
