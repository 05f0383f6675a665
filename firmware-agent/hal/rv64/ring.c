/* SPDX-License-Identifier: MIT */
/* The UART byte ring (see ring.h). */
#include "ring.h"

#define BARRIER() __asm__ volatile("" ::: "memory")

int kfa_ring_init(struct kfa_ring *r, uint8_t *storage, uint32_t cap)
{
    if (!r || !storage || cap < 2u || (cap & (cap - 1u)) != 0)
        return -1;
    r->buf = storage;
    r->mask = cap - 1u;
    r->head = 0;
    r->tail = 0;
    r->dropped = 0;
    return 0;
}

uint32_t kfa_ring_count(const struct kfa_ring *r)
{
    return r->head - r->tail; /* unsigned wrap-around is the point */
}

uint32_t kfa_ring_space(const struct kfa_ring *r)
{
    return r->mask + 1u - kfa_ring_count(r);
}

int kfa_ring_put(struct kfa_ring *r, uint8_t b)
{
    uint32_t h = r->head;

    if (h - r->tail > r->mask) {
        r->dropped++;
        return -1;
    }
    r->buf[h & r->mask] = b;
    BARRIER(); /* the byte is stored before the consumer can see the new head */
    r->head = h + 1u;
    return 0;
}

size_t kfa_ring_get(struct kfa_ring *r, uint8_t *out, size_t cap)
{
    uint32_t t = r->tail, n = r->head - t;
    size_t i;

    BARRIER();
    if (n > cap)
        n = (uint32_t)cap;
    for (i = 0; i < n; i++)
        out[i] = r->buf[(t + (uint32_t)i) & r->mask];
    BARRIER(); /* bytes copied before the slots are handed back */
    r->tail = t + n;
    return n;
}
