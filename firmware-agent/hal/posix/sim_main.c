/* SPDX-License-Identifier: MIT */
/*
 * kpu-agent-sim: the agent built for the host. This file holds only argv dispatch to the
 * subcommands (one table line each) and helpers the subcommands share.
 */
#include "sim_cmds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *sim_prog = "kpu-agent-sim";

struct sim_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct sim_cmd sim_cmds[] = {
    {"infer", cmd_infer, "run a kmodel on an image file and print detections or classes"},
    {"inspect", cmd_inspect, "print a kmodel's header, layer table and memory use"},
    {"serve", cmd_serve, "run the agent: the link on stdio, a socketpair fd or a pty"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: %s <command> [options]   (%s <command> --help for details)\n\ncommands:\n",
            sim_prog, sim_prog);
    for (size_t i = 0; i < sizeof(sim_cmds) / sizeof(sim_cmds[0]); i++)
        fprintf(f, "  %-10s %s\n", sim_cmds[i].name, sim_cmds[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SIM_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return SIM_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(sim_cmds) / sizeof(sim_cmds[0]); i++)
        if (!strcmp(argv[1], sim_cmds[i].name))
            return sim_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n", sim_prog, argv[1]);
    usage(stderr);
    return SIM_EXIT_USAGE;
}

int sim_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", sim_prog, path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1u << 16;
            uint8_t *nb;
            if (cap > max) {
                fprintf(stderr, "%s: %s: larger than %zu bytes\n", sim_prog, path, max);
                goto fail;
            }
            nb = realloc(buf, ncap);
            if (!nb) {
                fprintf(stderr, "%s: %s: out of memory\n", sim_prog, path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: %s: read error\n", sim_prog, path);
        goto fail;
    }
    if (n > max) {
        fprintf(stderr, "%s: %s: larger than %zu bytes\n", sim_prog, path, max);
        goto fail;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
fail:
    fclose(f);
    free(buf);
    return -1;
}

void sim_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}
