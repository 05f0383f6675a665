/* SPDX-License-Identifier: MIT */
/*
 * Writing the agent firmware to a board's SPI flash (kpuctl agent flash DEV), driven from
 * kpud's loop with the session's requests only:
 *
 *   isp     usb boards: boot the new agent into SRAM through the ROM ISP (transport_usb),
 *           so flashing never depends on what the flash holds now;
 *   hello   wait until the session's handshake with that agent has settled, and check it
 *           can write flash (FEATURE_IMAGE_WRITE);
 *   write   ImageWriteBegin, 2 KiB ImageWrite chunks, stop-and-wait, of the boot image
 *           (link/boot_image.h) wrapped around the firmware;
 *   verify  ImageWriteCommit: the agent checks CRC-32C, header and SHA-256, then erases,
 *           programs and reads back the image slot;
 *   reboot  reset the board (DTR/RTS on usb; a restart for the simulator) and wait for the
 *           agent that boots from flash; on usb its version must equal the SRAM agent's.
 *
 * Boards on other transports (sim, tty, qemu) skip "isp": their running agent writes its
 * own flash, which it can because it runs from RAM.
 */
#ifndef KPUD_AGENT_FLASH_H
#define KPUD_AGENT_FLASH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "session.h"

/*
 * Progress (done 0: permille of the whole job and the phase's name) and the end (done 1:
 * status 0, or a negative errno with text saying what failed, e.g. the agent's refusal).
 * phase and text are valid during the call only.
 */
typedef void (*kpud_agent_progress_fn)(void *user, int done, int status, uint32_t permille,
                                       const char *phase, const char *text);

/* How long the new agent may take to finish its handshake after a boot or a reset. */
#define KPUD_AGENT_HELLO_TIMEOUT_MS 30000u

/*
 * kpud_agent_flash_start - write firmware fw (len bytes, copied; the raw .bin the ISP loads)
 * to session s's board. isp_first: boot fw into SRAM first (usb boards). cb is called with
 * progress and exactly once with done 1, unless this returns an error. Returns 0; -EBUSY
 * (a flash of this board runs), -EINVAL (empty or oversized fw), -ENOMEM.
 */
int kpud_agent_flash_start(uv_loop_t *loop, struct kpud_session *s, const uint8_t *fw, size_t len,
                           int isp_first, kpud_agent_progress_fn cb, void *user);

#endif
