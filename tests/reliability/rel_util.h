/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the reliability tests (tests/reliability/check_rel_*.c): starting the
 * real kpud on a replayed capture, watching its memory and descriptors through /proc,
 * talking kpu.ipc.v1 over a raw socket (to send what no well-behaved client sends), and
 * counting live events through libkpu-client.
 */
#ifndef KPU_TESTS_REL_UTIL_H
#define KPU_TESTS_REL_UTIL_H

#include <kpu/client.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kipc.h"

/* rel_pause_ms - sleep; only for pacing a client or picking a random moment, never to
 * wait for a condition. */
void rel_pause_ms(int ms);

/* rel_now_ms - CLOCK_MONOTONIC in milliseconds. */
uint64_t rel_now_ms(void);

/* rel_rss_kb - VmRSS of pid in KiB (-1 if gone). */
long rel_rss_kb(pid_t pid);

/* rel_fd_count - open descriptors of pid (-1 if gone). */
int rel_fd_count(pid_t pid);

/* rel_write_config - write text to <tmpdir>/name; returns its path (static rotating). */
const char *rel_write_config(const char *name, const char *text);

/*
 * rel_start_kpud - kpud with the replayed capture tests/replay/<capture> looping at its
 * recorded pace, the given config file ("/dev/null" for none) and extra arguments (NULL-
 * terminated, may be NULL); waits until the socket answers. Returns the pid.
 */
pid_t rel_start_kpud(const char *capture, const char *config, const char *const *extra);

/* rel_client - a libkpu-client connection to the test kpud (aborts the test on failure). */
kpu_client_t *rel_client(void);

/* Raw protocol. */

/* rel_raw_connect - connect a plain socket to the test kpud. Returns the fd. */
int rel_raw_connect(void);

/* rel_raw_send - pack and send frame f on fd (blocking). Returns 0 or -1. */
int rel_raw_send(int fd, const Kpu__Ipc__V1__Frame *f);

/* rel_raw_hello - read the ServerHello and send a ClientHello of protocol major. */
void rel_raw_hello(int fd, uint32_t major);

/* rel_raw_recv - the next frame from fd within timeout_ms (NULL on timeout, EOF or
 * garbage). Free with kpu__ipc__v1__frame__free_unpacked. */
Kpu__Ipc__V1__Frame *rel_raw_recv(int fd, struct kipc_reader *rd, int timeout_ms);

/* Event counting. */
struct rel_counter {
    uint64_t detections; /* detection events received */
    uint64_t dropped;    /* events kpud reported dropped */
    uint64_t device;     /* device events */
};

/* rel_subscribe - subscribe c to every detection (include_empty) counting into n. */
void rel_subscribe(kpu_client_t *c, struct rel_counter *n);

/* rel_pump - process clients[0..n) for ms milliseconds (poll on their fds). */
void rel_pump(kpu_client_t *const *clients, size_t n, int ms);

/* rel_socket_path - the test kpud's socket path. */
const char *rel_socket_path(void);

#endif
