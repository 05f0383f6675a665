/* SPDX-License-Identifier: MIT */
/*
 * Agent management on usb boards, for the IPC backend's AgentControl request
 * (kpuctl agent boot|flash|version DEV): boot the agent image into SRAM through the
 * K210 ROM ISP of the board's session. The backend answers AgentInfo from the callback.
 */
#ifndef KPUD_USB_AGENT_H
#define KPUD_USB_AGENT_H

#include <stdint.h>

#include "session.h"
#include "transport_usb.h"

enum kpud_agent_action {
    KPUD_AGENT_ACTION_VERSION = 0,   /* = kpu.ipc.v1.AgentAction AGENT_VERSION */
    KPUD_AGENT_ACTION_BOOT_SRAM = 1, /* AGENT_BOOT_SRAM */
    KPUD_AGENT_ACTION_FLASH = 2,     /* AGENT_FLASH */
};

/*
 * kpud_usb_agent_control - run action on session s's board. VERSION completes at once
 * (cb with done 1, status 0: the version is the session's info.agent_version).
 * BOOT_SRAM reads image_path (the configured agent_image) and loads it through the ROM
 * ISP; cb reports progress (done 0, permille) and the end (done 1, status). FLASH needs
 * the agent's flash-write message, which the link protocol does not have yet.
 * Returns 0 when cb will be (or was) called; -ENOTSUP (not a usb board, or FLASH),
 * -ENOENT (no image configured or readable), -EBUSY, -ENOTCONN, -EINVAL.
 */
int kpud_usb_agent_control(struct kpud_session *s, int action, const char *image_path,
                           kpud_usb_boot_cb cb, void *user);

#endif
