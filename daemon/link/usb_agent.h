/* SPDX-License-Identifier: MIT */
/*
 * Agent management, for the IPC backend's AgentControl request (kpuctl agent
 * version|boot|flash DEV): boot the configured agent image into SRAM through the K210 ROM
 * ISP of a usb board, or write it to the board's flash (daemon/agent_flash.h). The backend
 * answers AgentInfo from the progress callback.
 */
#ifndef KPUD_USB_AGENT_H
#define KPUD_USB_AGENT_H

#include <stdint.h>
#include <uv.h>

#include "agent_flash.h"
#include "session.h"
#include "transport_usb.h"

enum kpud_agent_action {
    KPUD_AGENT_ACTION_VERSION = 0,   /* = kpu.ipc.v1.AgentAction AGENT_VERSION */
    KPUD_AGENT_ACTION_BOOT_SRAM = 1, /* AGENT_BOOT_SRAM */
    KPUD_AGENT_ACTION_FLASH = 2,     /* AGENT_FLASH */
};

#define KPUD_AGENT_IMAGE_MAX (6u * 1024u * 1024u) /* general SRAM (DESIGN.md §2) */

/*
 * kpud_agent_read_image - read the agent image file at path (at most KPUD_AGENT_IMAGE_MAX
 * bytes) into a new buffer *out (caller frees). Returns 0, -ENOENT (no path, or not
 * readable), -EINVAL (empty or too large), -ENOMEM or -EIO.
 */
int kpud_agent_read_image(const char *path, uint8_t **out, size_t *len);

/*
 * kpud_usb_agent_control - run action on session s's board. VERSION completes at once
 * (cb with done 1, status 0: the version is the session's info.agent_version).
 * BOOT_SRAM (usb boards only) reads image_path (the configured agent_image) and loads it
 * through the ROM ISP. FLASH (every transport but replay) writes image_path to the board's
 * flash, booting it into SRAM first on usb boards. cb reports progress (done 0) and the end
 * (done 1, status, text). Returns 0 when cb will be (or was) called; -ENOTSUP (BOOT_SRAM
 * off usb, FLASH on a replay), -ENOENT (no image configured or readable), -EBUSY,
 * -ENOTCONN, -EINVAL.
 */
int kpud_usb_agent_control(uv_loop_t *loop, struct kpud_session *s, int action,
                           const char *image_path, kpud_agent_progress_fn cb, void *user);

#endif
