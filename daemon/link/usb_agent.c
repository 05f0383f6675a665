/* SPDX-License-Identifier: MIT */
/*
 * Agent management (see usb_agent.h).
 */
#include "usb_agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcap.h"
#include "log.h"

int kpud_agent_read_image(const char *path, uint8_t **out, size_t *len)
{
    int r;

    if (!path || !*path)
        return -ENOENT;
    r = kcap_load_file(path, out, len); /* the daemon's whole-file reader */
    if (r == -EFBIG || (r == 0 && (*len == 0 || *len > KPUD_AGENT_IMAGE_MAX))) {
        if (r == 0)
            free(*out);
        return -EINVAL;
    }
    if (r == -ENOMEM || r == -EIO)
        return r;
    return r < 0 ? -ENOENT : 0;
}

/* An ISP boot's progress, passed on in the agent-management form. */
struct boot_ctx {
    kpud_agent_progress_fn cb;
    void *user;
};

static void boot_progress(void *user, int done, int status, uint32_t permille)
{
    struct boot_ctx *b = user;
    char text[96] = "";

    if (done && status < 0)
        snprintf(text, sizeof(text), "loading the agent into SRAM failed: %s", strerror(-status));
    b->cb(b->user, done, status, permille, "isp", text);
    if (done)
        free(b);
}

int kpud_usb_agent_control(uv_loop_t *loop, struct kpud_session *s, int action,
                           const char *image_path, kpud_agent_progress_fn cb, void *user)
{
    struct kpud_transport *t = (struct kpud_transport *)kpud_session_transport(s);
    struct boot_ctx *b;
    uint8_t *img;
    size_t len;
    int usb = strcmp(t->ops->kind, "usb") == 0;
    int r;

    switch (action) {
    case KPUD_AGENT_ACTION_VERSION:
        cb(user, 1, 0, 1000, "", "");
        return 0;
    case KPUD_AGENT_ACTION_BOOT_SRAM:
    case KPUD_AGENT_ACTION_FLASH:
        if ((action == KPUD_AGENT_ACTION_BOOT_SRAM && !usb) || strcmp(t->ops->kind, "replay") == 0)
            return -ENOTSUP;
        r = kpud_agent_read_image(image_path, &img, &len);
        if (r < 0) {
            log_warn("agent %s: image %s: %s", action == KPUD_AGENT_ACTION_FLASH ? "flash" : "boot",
                     image_path && *image_path ? image_path : "(none)", strerror(-r));
            return r;
        }
        if (action == KPUD_AGENT_ACTION_FLASH) {
            r = kpud_agent_flash_start(loop, s, img, len, usb, cb, user); /* copies */
            free(img);
            return r;
        }
        b = malloc(sizeof(*b));
        if (!b) {
            free(img);
            return -ENOMEM;
        }
        b->cb = cb;
        b->user = user;
        r = kpud_transport_usb_boot_agent(t, img, len, boot_progress, b); /* copies the image */
        free(img);
        if (r < 0)
            free(b);
        return r;
    default:
        return -EINVAL;
    }
}
