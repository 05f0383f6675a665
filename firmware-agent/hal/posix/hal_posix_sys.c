/* SPDX-License-Identifier: MIT */
/*
 * POSIX HAL: lifecycle, clock, event wait, chip identity, reset and watchdog for
 * kpu-agent-sim. The KPU functions come from the software KPU (hal/soft_kpu).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hal/hal.h"
#include "hal_posix.h"
#include "hal_posix_int.h"

/* The sim has no SRAM plan; it reports what a K210 agent has left (DESIGN.md §2). */
#define SIM_FREE_RAM (1024u * 1024u)
#define BOARD_SIM 1u /* kpu.link.v1.Board BOARD_SIM */

static struct {
    int manual;
    uint64_t manual_us;
    struct timespec base;
    int have_base;
    uint64_t seed;
    int cause;
    unsigned resets;
    sigjmp_buf *jump;
} s = {.cause = KFA_RESET_POWER_ON};

int kfa_hal_init(void)
{
    if (!s.have_base) {
        clock_gettime(CLOCK_MONOTONIC, &s.base);
        s.have_base = 1;
    }
    return 0;
}

void kfa_posix_time_manual(int on)
{
    s.manual = on;
}

void kfa_posix_set_time_us(uint64_t t)
{
    s.manual_us = t;
}

void kfa_posix_advance_us(uint64_t dt)
{
    s.manual_us += dt;
}

uint64_t kfa_hal_time_us(void)
{
    struct timespec now;

    if (s.manual)
        return s.manual_us;
    if (!s.have_base) {
        clock_gettime(CLOCK_MONOTONIC, &s.base);
        s.have_base = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - s.base.tv_sec) * 1000000u +
           (uint64_t)((now.tv_nsec - s.base.tv_nsec) / 1000);
}

void kfa_posix_stall_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};

    if (s.manual) {
        s.manual_us += (uint64_t)ms * 1000u;
        return;
    }
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void kfa_hal_wait_event(uint32_t timeout_us)
{
    uint64_t now = kfa_hal_time_us(), due = kfa_posix_camera_next_due_us();
    struct pollfd pfd;
    int fd = kfa_posix_uart_rx_fd(), ms;

    if (s.manual || fd < 0)
        return; /* tests drive time and input themselves */
    if (kfa_posix_camera_take_polled())
        timeout_us = 0; /* unpaced camera with a consumer: a frame is always ready */
    if (due && due > now && due - now < timeout_us)
        timeout_us = (uint32_t)(due - now);
    else if (due && due <= now)
        timeout_us = 0;
    ms = (int)((timeout_us + 999u) / 1000u);
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    (void)poll(&pfd, 1, ms);
}

static uint64_t splitmix64(uint64_t *x)
{
    /* SplitMix64 (Steele, Lea, Flood, OOPSLA 2014) */
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void kfa_posix_set_seed(uint64_t seed)
{
    uint64_t x = seed;

    s.seed = seed;
    kfa_posix_uart_seed(splitmix64(&x));
}

size_t kfa_hal_unique_id(uint8_t *buf, size_t cap)
{
    uint8_t id[16];
    uint64_t x = s.seed ^ 0x4b50552d53494d00ull; /* "KPU-SIM" */

    for (int half = 0; half < 2; half++) {
        uint64_t v = splitmix64(&x);

        for (int i = 0; i < 8; i++)
            id[half * 8 + i] = (uint8_t)(v >> (8 * i));
    }
    if (cap > sizeof(id))
        cap = sizeof(id);
    memcpy(buf, id, cap);
    return cap;
}

enum kfa_reset_cause kfa_hal_reset_cause(void)
{
    return (enum kfa_reset_cause)s.cause;
}

void kfa_posix_set_reset_cause(int cause)
{
    s.cause = cause;
}

void kfa_posix_set_reset_jump(sigjmp_buf *jb)
{
    s.jump = jb;
}

unsigned kfa_posix_resets(void)
{
    return s.resets;
}

void kfa_posix_reboot(void)
{
    s.resets++;
    if (s.jump)
        siglongjmp(*s.jump, 1);
    exit(0);
}

void kfa_hal_reset(int to_isp)
{
    s.cause = KFA_RESET_SOFTWARE;
    s.resets++;
    /* No ROM to emulate: the sim's ISP reset restarts the agent too (docs/agent.md). */
    if (s.jump)
        siglongjmp(*s.jump, 1 + (to_isp ? 1 : 0));
    exit(to_isp ? 3 : 0);
}

void kfa_hal_watchdog_kick(void)
{
}

uint32_t kfa_hal_free_ram(void)
{
    return SIM_FREE_RAM;
}

uint32_t kfa_hal_board(void)
{
    return BOARD_SIM;
}
