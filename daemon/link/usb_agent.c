/* SPDX-License-Identifier: MIT */
/*
 * Agent management on usb boards (see usb_agent.h).
 */
#include "usb_agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define AGENT_IMAGE_MAX (6u * 1024u * 1024u) /* general SRAM (DESIGN.md §2) */

static int read_image(const char *path, uint8_t **out, size_t *len)
{
    FILE *f;
    long n;
    uint8_t *buf;

    if (!path || !*path)
        return -ENOENT;
    f = fopen(path, "rb");
    if (!f)
        return -ENOENT;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || (unsigned long)n > AGENT_IMAGE_MAX ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -EINVAL;
    }
    buf = malloc((size_t)n);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    *out = buf;
    *len = (size_t)n;
    return 0;
}

int kpud_usb_agent_control(struct kpud_session *s, int action, const char *image_path,
                           kpud_usb_boot_cb cb, void *user)
{
    struct kpud_transport *t = (struct kpud_transport *)kpud_session_transport(s);
    uint8_t *img;
    size_t len;
    int r;

    switch (action) {
    case KPUD_AGENT_ACTION_VERSION:
        if (cb)
            cb(user, 1, 0, 1000);
        return 0;
    case KPUD_AGENT_ACTION_BOOT_SRAM:
        if (strcmp(t->ops->kind, "usb") != 0)
            return -ENOTSUP;
        r = read_image(image_path, &img, &len);
        if (r < 0) {
            log_warn("agent boot: image %s: %s", image_path && *image_path ? image_path : "(none)",
                     strerror(-r));
            return r;
        }
        r = kpud_transport_usb_boot_agent(t, img, len, cb, user); /* copies the image */
        free(img);
        return r;
    case KPUD_AGENT_ACTION_FLASH:
        return -ENOTSUP;
    default:
        return -EINVAL;
    }
}
