/* SPDX-License-Identifier: MIT */
/*
 * `kpu-agent-sim serve`: the agent core on the POSIX HAL, speaking the link over stdio, an
 * inherited socketpair descriptor or a pty it creates. The camera shows an image, a folder
 * or a list of images; the flash is a file; faults can be injected on the output. With
 * --model the flash model store is seeded so that a fresh sim streams at once.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent.h"
#include "hal/hal.h"
#include "hal_posix.h"
#include "image_load.h"
#include "sim_cmds.h"

#define MANIFEST_MAX 1536u /* link.options: ModelUploadBegin.manifest max_size */
#define NAME_MAX_LEN 31u

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: %s serve [options]\n"
            "link (default: stdin/stdout):\n"
            "  --fd N             use the inherited descriptor N (a socketpair end)\n"
            "  --pty              create a pty; its path is the first line on stdout\n"
            "camera (default: a synthetic gradient):\n"
            "  --image FILE       one image\n"
            "  --dir DIR          every .jpg/.jpeg/.png/.bmp in DIR, in name order, cycled\n"
            "  --list FILE        image paths, one a line, cycled\n"
            "  --fps F            frames per second (default 30)   --fast  no pacing\n"
            "  --hold N           frames per image before the next one (default 1)\n"
            "flash and identity:\n"
            "  --flash FILE       flash image (created at 16 MiB if absent; default: RAM)\n"
            "  --seed N           chip uid and fault generator seed (default 1)\n"
            "  --model M.kmodel   seed the model store with this model (and select it)\n"
            "  --manifest F       its manifest (stored with it)\n"
            "  --model-name NAME  name in the store (default: file name without .kmodel)\n"
            "faults on the output:\n"
            "  --fault SPEC       drop=R,corrupt=R,dup=R,garbage=R,stall=MS@N,\n"
            "                     reboot-after=N,silent-after=N\n",
            sim_prog);
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');

    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") ||
                   !strcasecmp(dot, ".png") || !strcasecmp(dot, ".bmp"));
}

static int add_image(const char *path)
{
    struct kfa_loaded_image img;
    char err[160];
    int r;

    if (kfa_image_load(path, &img, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s serve: %s: %s\n", sim_prog, path, err);
        return -1;
    }
    r = kfa_posix_camera_add(img.rgb, img.width, img.height);
    kfa_image_free(&img);
    if (r != 0)
        fprintf(stderr, "%s serve: %s: too many or too large images\n", sim_prog, path);
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r = 0;

    if (!d) {
        fprintf(stderr, "%s serve: %s: %s\n", sim_prog, dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (!has_image_ext(de->d_name))
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));

            if (!nn) {
                r = -1;
                break;
            }
            names = nn;
        }
        if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
            r = -1;
            break;
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (r == 0 && add_image(names[i]) != 0)
            r = -1;
        free(names[i]);
    }
    free(names);
    if (r == 0 && n == 0) {
        fprintf(stderr, "%s serve: %s: no images\n", sim_prog, dir);
        r = -1;
    }
    return r;
}

static int add_list(const char *list)
{
    FILE *f = fopen(list, "r");
    char line[PATH_MAX];
    int r = 0, n = 0;

    if (!f) {
        fprintf(stderr, "%s serve: %s: %s\n", sim_prog, list, strerror(errno));
        return -1;
    }
    while (r == 0 && fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\r\n");

        line[len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        r = add_image(line);
        n++;
    }
    fclose(f);
    if (r == 0 && n == 0) {
        fprintf(stderr, "%s serve: %s: no images\n", sim_prog, list);
        r = -1;
    }
    return r;
}

static int seed_model(const char *model, const char *manifest, const char *name)
{
    uint8_t *data = NULL, *man = NULL;
    size_t len = 0, mlen = 0;
    char derived[NAME_MAX_LEN + 1], text[128];
    int r;

    if (sim_read_file(model, SIM_MAX_MODEL_BYTES, &data, &len) != 0)
        return -1;
    if (manifest && sim_read_file(manifest, MANIFEST_MAX, &man, &mlen) != 0) {
        free(data);
        return -1;
    }
    if (mlen > MANIFEST_MAX) {
        fprintf(stderr, "%s serve: %s: manifest larger than %u bytes\n", sim_prog, manifest,
                MANIFEST_MAX);
        r = -1;
        goto out;
    }
    if (!name) {
        const char *base = strrchr(model, '/');
        size_t n;

        base = base ? base + 1 : model;
        n = strcspn(base, ".");
        if (n > NAME_MAX_LEN)
            n = NAME_MAX_LEN;
        memcpy(derived, base, n);
        derived[n] = '\0';
        name = derived;
    }
    r = kfa_agent_seed_model(name, data, len, man, mlen, text, sizeof(text));
    if (r != 0)
        fprintf(stderr, "%s serve: %s: cannot store model '%s': %s (status %d)\n", sim_prog, model,
                name, text, -r);
out:
    free(data);
    free(man);
    return r == 0 ? 0 : -1;
}

static sigjmp_buf reboot_jump;

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"fd", required_argument, NULL, 'd'},
        {"pty", no_argument, NULL, 'p'},
        {"image", required_argument, NULL, 'i'},
        {"dir", required_argument, NULL, 'D'},
        {"list", required_argument, NULL, 'l'},
        {"fps", required_argument, NULL, 'f'},
        {"fast", no_argument, NULL, 'F'},
        {"hold", required_argument, NULL, 'H'},
        {"flash", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"model", required_argument, NULL, 'm'},
        {"manifest", required_argument, NULL, 'M'},
        {"model-name", required_argument, NULL, 'n'},
        {"fault", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *flash = NULL, *model = NULL, *manifest = NULL, *name = NULL, *fault = NULL;
    int fd = -1, pty = 0, fast = 0, c;
    double fps = 30.0;
    unsigned long hold = 1;
    unsigned long long seed = 1;
    char *end;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            fd = (int)strtol(optarg, &end, 10);
            if (*end || fd < 0)
                goto usage;
            break;
        case 'p':
            pty = 1;
            break;
        case 'i':
            if (add_image(optarg) != 0)
                return SIM_EXIT_FAIL;
            break;
        case 'D':
            if (add_dir(optarg) != 0)
                return SIM_EXIT_FAIL;
            break;
        case 'l':
            if (add_list(optarg) != 0)
                return SIM_EXIT_FAIL;
            break;
        case 'f':
            fps = strtod(optarg, &end);
            if (*end || !(fps > 0 && fps <= 10000))
                goto usage;
            break;
        case 'F':
            fast = 1;
            break;
        case 'H':
            hold = strtoul(optarg, &end, 10);
            if (*end || hold == 0 || hold > 1000000)
                goto usage;
            break;
        case 's':
            flash = optarg;
            break;
        case 'S':
            seed = strtoull(optarg, &end, 0);
            if (*end)
                goto usage;
            break;
        case 'm':
            model = optarg;
            break;
        case 'M':
            manifest = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'x':
            fault = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return SIM_EXIT_OK;
        default:
            goto usage;
        }
    }
    if (optind != argc || (fd >= 0 && pty) || (manifest && !model))
        goto usage;

    signal(SIGPIPE, SIG_IGN);
    kfa_posix_set_seed(seed);
    kfa_posix_camera_pace(fast ? 0 : fps, (uint32_t)hold);
    if (fault && kfa_posix_set_fault(fault) != 0) {
        fprintf(stderr, "%s serve: --fault %s: malformed\n", sim_prog, fault);
        return SIM_EXIT_USAGE;
    }
    if (flash ? kfa_posix_flash_use_file(flash, KFA_POSIX_FLASH_DEFAULT)
              : kfa_posix_flash_use_ram(KFA_POSIX_FLASH_DEFAULT)) {
        fprintf(stderr, "%s serve: flash %s: %s\n", sim_prog, flash ? flash : "(ram)",
                strerror(errno));
        return SIM_EXIT_FAIL;
    }
    if (pty) {
        char path[PATH_MAX];

        if (kfa_posix_uart_use_pty(path, sizeof(path)) != 0) {
            fprintf(stderr, "%s serve: pty: %s\n", sim_prog, strerror(errno));
            return SIM_EXIT_FAIL;
        }
        printf("%s\n", path);
        fflush(stdout);
    } else if (kfa_posix_uart_use_fds(fd >= 0 ? fd : 0, fd >= 0 ? fd : 1) != 0) {
        fprintf(stderr, "%s serve: fd %d: %s\n", sim_prog, fd >= 0 ? fd : 0, strerror(errno));
        return SIM_EXIT_FAIL;
    }
    kfa_hal_init();
    if (model && seed_model(model, manifest, name) != 0)
        return SIM_EXIT_FAIL;
    /* kfa_hal_reset() (a Reset request, or the reboot fault) lands here: a fresh agent
     * on the same link, flash and camera, like a board that rebooted. */
    kfa_posix_set_reset_jump(&reboot_jump);
    if (sigsetjmp(reboot_jump, 0))
        fprintf(stderr, "%s serve: agent reset (cause %d)\n", sim_prog, (int)kfa_hal_reset_cause());
    kfa_agent_run();
    return SIM_EXIT_OK;
usage:
    serve_usage(stderr);
    return SIM_EXIT_USAGE;
}
