/* SPDX-License-Identifier: MIT */
/*
 * A single-producer single-consumer byte ring for the UART: the interrupt handler (or the
 * poller) puts received bytes, the agent's uart_read takes them. The capacity is a power
 * of two given by the caller's storage; head and tail are free-running 32-bit counters,
 * so full and empty are told apart without a spare slot. Pure (host-tested in
 * tests/unit/check_k210_ring.c); on the target the producer is the trap handler, which
 * cannot interrupt itself, and the consumer only moves the tail, so no lock is needed
 * beyond the compiler barriers below.
 */
#ifndef KFA_RING_H
#define KFA_RING_H

#include <stddef.h>
#include <stdint.h>

struct kfa_ring {
    uint8_t *buf;
    uint32_t mask;          /* capacity - 1 */
    volatile uint32_t head; /* total bytes put */
    volatile uint32_t tail; /* total bytes taken */
    uint32_t dropped;       /* bytes refused because the ring was full */
};

/*
 * kfa_ring_init - use storage (cap bytes, cap a power of two >= 2, owned by the caller
 * for the ring's life). Returns 0, or -1 if cap is not a power of two.
 */
int kfa_ring_init(struct kfa_ring *r, uint8_t *storage, uint32_t cap);

/* kfa_ring_count - bytes waiting. */
uint32_t kfa_ring_count(const struct kfa_ring *r);

/* kfa_ring_space - bytes that can still be put. */
uint32_t kfa_ring_space(const struct kfa_ring *r);

/* kfa_ring_put - append one byte; 0, or -1 (and dropped counts it) when full. */
int kfa_ring_put(struct kfa_ring *r, uint8_t b);

/* kfa_ring_get - take up to cap bytes into out; returns how many. */
size_t kfa_ring_get(struct kfa_ring *r, uint8_t *out, size_t cap);

#endif /* KFA_RING_H */
