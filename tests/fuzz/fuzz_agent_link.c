/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: arbitrary bytes into the agent's uart receive path (klink decoder, nanopb
 * decoding, every request handler, the model store), with a fresh in-RAM flash and a
 * fresh agent per input. Inputs starting with 'F' are a list of records
 * { u8 type, u16 LE length, payload } that are klink-encoded first, so that the fuzzer
 * reaches the message handlers without having to learn CRC-32C; any other input is fed raw.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent.h"
#include "hal/hal.h"
#include "hal_posix.h"
#include "klink.h"

#define FUZZ_FLASH (2u * 1024u * 1024u) /* holds the store layout plus ~900 KiB of models */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sigjmp_buf reset_jump;
static uint8_t wire[KLINK_MAX_ENCODED];
static uint8_t sink[1 << 16];

static void drain(void)
{
    while (kfa_posix_take_tx(sink, sizeof(sink)) > 0)
        ;
}

static void feed_records(const uint8_t *p, size_t n)
{
    uint16_t seq = 1;

    while (n >= 3) {
        uint8_t type = p[0];
        size_t len = (size_t)p[1] | (size_t)p[2] << 8, w;

        p += 3;
        n -= 3;
        if (len > n)
            len = n;
        if (len > KLINK_MAX_PAYLOAD)
            len = KLINK_MAX_PAYLOAD;
        w = klink_encode(type, 0, seq++, 0, p, len, wire, sizeof(wire));
        if (w)
            (void)kfa_posix_inject_rx(wire, w);
        p += len;
        n -= len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    volatile size_t polls;

    if (!ready) {
        kfa_posix_time_manual(1);
        kfa_posix_camera_pace(0, 1);
        if (kfa_posix_flash_use_ram(FUZZ_FLASH) != 0)
            return 0;
        ready = 1;
    }
    kfa_posix_flash_erase_all();
    kfa_posix_flash_cut_after(-1);
    kfa_posix_uart_use_mem();
    kfa_posix_set_time_us(1000000);
    kfa_posix_set_reset_jump(&reset_jump);
    if (sigsetjmp(reset_jump, 0) != 0) {
        drain();
        return 0; /* a Reset request: the agent would reboot here */
    }
    kfa_hal_init();
    kfa_agent_init();
    if (size > 0 && data[0] == 'F')
        feed_records(data + 1, size - 1);
    else
        (void)kfa_posix_inject_rx(data, size);
    /* Enough polls to consume every byte (the agent reads a bounded amount per poll). */
    for (polls = 0; polls < size / 256 + 8; polls++) {
        (void)kfa_agent_poll();
        kfa_posix_advance_us(250000);
        drain();
    }
    return 0;
}
