/* SPDX-License-Identifier: MIT */
/*
 * Benchmark: klink framing throughput (encode, decode) against plain memcpy of the same
 * bytes in the same run, for payload sizes typical of the link (a detection frame of a
 * few boxes, a heartbeat, a full upload chunk, the largest payload). Prints MB/s and the
 * ratio to memcpy; the ratio is what docs/performance.md records, since absolute figures
 * on a shared machine drift.
 *
 * usage: bench_klink [seconds-per-case]   (default 0.5)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "klink.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Keeps the compiler from discarding work whose result is otherwise unused. */
static volatile uint64_t sink;

static uint8_t payload[KLINK_MAX_PAYLOAD];
static uint8_t wire[KLINK_MAX_ENCODED];
static uint8_t copy[KLINK_MAX_ENCODED];
static uint8_t decbuf[KLINK_MAX_FRAME];

struct result {
    double mbps;
    uint64_t iters;
};

static struct result run_memcpy(size_t n, double secs)
{
    uint64_t it = 0;
    double t0 = now_s(), t;
    do {
        for (int k = 0; k < 256; k++) {
            memcpy(copy, payload, n);
            __asm__ volatile("" : : "r"(copy) : "memory");
        }
        it += 256;
        t = now_s();
    } while (t - t0 < secs);
    sink += copy[n / 2];
    return (struct result){(double)n * (double)it / (t - t0) / 1e6, it};
}

static struct result run_encode(size_t n, double secs)
{
    uint64_t it = 0, bytes = 0;
    double t0 = now_s(), t;
    do {
        for (int k = 0; k < 256; k++)
            bytes += klink_encode(5, 0, (uint16_t)k, 0, payload, n, wire, sizeof(wire));
        it += 256;
        t = now_s();
    } while (t - t0 < secs);
    sink += bytes;
    return (struct result){(double)n * (double)it / (t - t0) / 1e6, it};
}

static struct result run_decode(size_t n, double secs)
{
    struct klink_decoder dec;
    struct klink_frame f;
    size_t w = klink_encode(5, 0, 1, 0, payload, n, wire, sizeof(wire));
    uint64_t it = 0, frames = 0;
    double t0 = now_s(), t;

    klink_decoder_init(&dec, decbuf, sizeof(decbuf));
    do {
        for (int k = 0; k < 256; k++) {
            const uint8_t *p = wire;
            size_t left = w;
            frames += (uint64_t)klink_decode(&dec, &p, &left, &f);
        }
        it += 256;
        t = now_s();
    } while (t - t0 < secs);
    if (frames != it) {
        fprintf(stderr, "decode lost frames: %llu of %llu\n", (unsigned long long)frames,
                (unsigned long long)it);
        exit(1);
    }
    return (struct result){(double)n * (double)it / (t - t0) / 1e6, it};
}

int main(int argc, char **argv)
{
    const size_t sizes[] = {48, 200, 2064, KLINK_MAX_PAYLOAD};
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    uint32_t x = 0x9E3779B9u;

    /* Payload bytes like protobuf: mostly small varints with some zeros. */
    for (size_t i = 0; i < sizeof(payload); i++) {
        x = x * 1664525u + 1013904223u;
        payload[i] = (x >> 24) % 7 == 0 ? 0 : (uint8_t)(x >> 16);
    }
    printf("# klink framing throughput, payload bytes per second; ratio = klink / memcpy\n");
    printf("%-8s %12s %12s %12s %8s %8s\n", "payload", "memcpy MB/s", "encode MB/s", "decode MB/s",
           "enc/cpy", "dec/cpy");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        struct result m = run_memcpy(n, secs), e = run_encode(n, secs), d = run_decode(n, secs);
        printf("%-8zu %12.0f %12.0f %12.0f %8.3f %8.3f\n", n, m.mbps, e.mbps, d.mbps,
               e.mbps / m.mbps, d.mbps / m.mbps);
    }
    /* Link budget context: 2 Mbaud 8N1 carries 200 KB/s. */
    printf("# link budget at 2 Mbaud: 0.2 MB/s\n");
    return (int)(sink & 0);
}
