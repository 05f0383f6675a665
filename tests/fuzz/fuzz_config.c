/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: kpud's configuration file reader (daemon/config.h, kpud_config_load through
 * inih). The input is the file, written to an in-memory file (memfd) that is read through
 * its /proc path like any other configuration file. Properties: no crash; a refusal names
 * the file and a line; an accepted file leaves every value in its documented range and
 * every string NUL-terminated, and kpud_config_finish() derives a terminated database path.
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

#define TERMINATED(c, field) terminated((c)->field, sizeof((c)->field))

static void check_config(const struct kpud_config *c)
{
    if (!TERMINATED(c, state_dir) || !TERMINATED(c, socket_path) || !TERMINATED(c, model) ||
        !TERMINATED(c, database) || !TERMINATED(c, reader_group) || !TERMINATED(c, admin_group) ||
        !TERMINATED(c, sim_agent) || !TERMINATED(c, sim_images) || !TERMINATED(c, sim_model) ||
        !TERMINATED(c, sim_manifest) || !TERMINATED(c, sim_faults) || !TERMINATED(c, sim_seed) ||
        !TERMINATED(c, replay) || !TERMINATED(c, config_path))
        abort();
    if (c->n_ttys < 0 || c->n_ttys > KPUD_MAX_TTYS)
        abort();
    for (int i = 0; i < c->n_ttys; i++)
        if (!TERMINATED(c, ttys[i]) || !c->ttys[i][0])
            abort();
    /* Ranges from docs/kpud.conf.md (and the parser's bounds). */
    if (!(c->threshold >= 0 && c->threshold <= 1) || !(c->nms >= 0 && c->nms <= 1) ||
        c->max_boxes < 1 || c->max_boxes > 32 || c->fps_cap > 1000 || c->batch_ms < 1 ||
        c->batch_ms > 10000 || c->max_clients < 1 || c->max_clients > 4096 ||
        c->queue_messages < 16 || c->queue_messages > (1u << 20) || c->sim_fps < 1 ||
        c->sim_fps > 1000 || c->tty_baud < 300 || c->tty_baud > 4000000 ||
        !(c->replay_speed >= 0 && c->replay_speed <= 1000) || c->log_level < 0 || c->log_level > 7)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    struct kpud_config *cfg;
    char err[320];
    int r;

    if (fd < 0) {
        fd = memfd_create("kpud-fuzz.conf", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    cfg = malloc(sizeof(*cfg)); /* large (PATH_MAX strings): keep it off the stack */
    if (!cfg)
        return 0;
    kpud_config_defaults(cfg);
    memset(err, 0, sizeof(err));
    r = kpud_config_load(cfg, path, err, sizeof(err));
    if (r == 0) {
        check_config(cfg);
        if (strcmp(cfg->config_path, path) != 0)
            abort();
        kpud_config_finish(cfg);
        check_config(cfg);
        if (!cfg->database[0])
            abort();
    } else {
        /* "path:line: message" */
        if (r != -EINVAL || strncmp(err, path, strlen(path)) != 0 || err[strlen(path)] != ':')
            abort();
    }
    free(cfg);
    return 0;
}
