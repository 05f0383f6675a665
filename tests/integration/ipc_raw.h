/* SPDX-License-Identifier: MIT */
/*
 * A bare kpu.ipc.v1 client for integration tests: it speaks the framing by hand so tests
 * can misbehave on purpose (stop reading, send broken frames) where libkpu-client would
 * not let them. Every wait has a deadline.
 */
#ifndef KPU_TESTS_IPC_RAW_H
#define KPU_TESTS_IPC_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "kipc.h"
#include "kpu/ipc/v1/ipc.pb-c.h"

struct raw {
    int fd;
    struct kipc_reader rd;
    uint8_t buf[65536]; /* bytes read and not yet fed */
    size_t off, len;
};

/* raw_connect - connect to the socket at path (retrying until timeout_ms while it does not
 * exist yet). Returns 0 or -1. */
int raw_connect(struct raw *c, const char *path, int timeout_ms);

/* raw_close - close the socket and free the reader. */
void raw_close(struct raw *c);

/* raw_send_bytes - write all of buf. Returns 0 or -1. */
int raw_send_bytes(struct raw *c, const void *buf, size_t len);

/* raw_send - frame and write f. Returns 0 or -1. */
int raw_send(struct raw *c, const Kpu__Ipc__V1__Frame *f);

/* raw_read - the next frame within timeout_ms: 1 and *out (free with
 * kpu__ipc__v1__frame__free_unpacked), 0 on timeout, -1 when the server closed (or the
 * bytes do not decode). */
int raw_read(struct raw *c, Kpu__Ipc__V1__Frame **out, int timeout_ms);

/* raw_wait_closed - 1 if the server closes the connection within timeout_ms (frames
 * before that are skipped; the last Status seen, if any, is copied to *code). */
int raw_wait_closed(struct raw *c, int timeout_ms, int *code);

/* raw_hello - read ServerHello and answer ClientHello with the given major. Returns 0 or
 * -1. *role (may be NULL) gets the announced role. */
int raw_hello(struct raw *c, uint32_t major, int *role);

#endif
