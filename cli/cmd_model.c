/* SPDX-License-Identifier: MIT */
/*
 * kpuctl model list | upload | select | remove | inspect. Upload reads the whole kmodel
 * (models are at most a few MiB, DESIGN.md §2) and shows a progress bar when stdout is a
 * terminal. inspect reads a file locally: size, CRC-32C and the kmodel header's version
 * word (kmodel v3: u32 version = 3 at offset 0, research/kmodel-facts.md §2).
 */
#include "kpuctl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_MODEL_FILE (64u * 1024u * 1024u)
#define MAX_MANIFEST (64u * 1024u)
#define BAR_WIDTH 30

static int read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || (size_t)n > max ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return -1;
    }
    buf[n] = 0;
    fclose(f);
    *data = buf;
    *len = (size_t)n;
    return 0;
}

/* CRC-32C as the daemon checks it (docs/protocol.md §1). */
static uint32_t crc32c(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

static int progress(kpu_client_t *c, uint64_t done, uint64_t total, void *user_data)
{
    struct kpuctl *k = user_data;
    int fill = total ? (int)(done * BAR_WIDTH / total) : BAR_WIDTH;
    (void)c;
    if (!k->tty || k->json)
        return 0;
    printf("\r[%.*s%*s] %3d%% %llu/%llu KiB", fill, "##############################",
           BAR_WIDTH - fill, "", total ? (int)(done * 100 / total) : 100,
           (unsigned long long)(done / 1024), (unsigned long long)(total / 1024));
    if (done == total)
        printf("\n");
    fflush(stdout);
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int model_list(struct kpuctl *k, int argc, char **argv)
{
    const char *device = NULL;
    struct kpu_client_model *m;
    size_t n;
    int r;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
            device = argv[++i];
        else
            return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
    }
    r = kpuctl_connect(k);
    if (r)
        return r;
    r = kpu_client_model_list(k->client, device, &m, &n);
    if (r < 0)
        return kpuctl_fail(k, "listing models", r);
    if (k->json) {
        kpu_client_free(m);
        return kpuctl_print_reply_json(k);
    }
    printf("%-24s %10s %-10s %s\n", "NAME", "SIZE", "CRC32C", "DEVICES (* = current)");
    for (size_t i = 0; i < n; i++) {
        printf("%-24s %10u %08x", m[i].name, m[i].size, m[i].crc32c);
        for (size_t d = 0; d < m[i].n_devices; d++) {
            int cur = 0;
            for (size_t s = 0; s < m[i].n_selected_on; s++)
                cur |= strcmp(m[i].selected_on[s], m[i].devices[d]) == 0;
            printf(" %s%s", m[i].devices[d], cur ? "*" : "");
        }
        printf("\n");
    }
    kpu_client_free(m);
    return 0;
}

static int model_upload(struct kpuctl *k, int argc, char **argv)
{
    const char *file = NULL, *device = NULL, *name = NULL, *manifest_file = NULL;
    uint8_t *data = NULL, *manifest = NULL;
    size_t len, mlen;
    char nm[32];
    int r;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
            device = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--manifest") == 0 && i + 1 < argc)
            manifest_file = argv[++i];
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else
            return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
    }
    if (!file || !device)
        return kpuctl_usage_error(k, "upload needs FILE and --device");
    if (!name) {
        /* The file name without its extension, cut to the 31 characters the agent keeps. */
        snprintf(nm, sizeof(nm), "%s", base_name(file));
        if (strchr(nm, '.'))
            *strchr(nm, '.') = '\0';
        name = nm;
    }
    if (read_file(file, MAX_MODEL_FILE, &data, &len) < 0) {
        perror(file);
        return KPUCTL_EXIT_USAGE;
    }
    if (manifest_file && read_file(manifest_file, MAX_MANIFEST, &manifest, &mlen) < 0) {
        perror(manifest_file);
        free(data);
        return KPUCTL_EXIT_USAGE;
    }
    r = kpuctl_connect(k);
    if (r == 0) {
        r = kpu_client_model_upload(k->client, device, name, data, len, (const char *)manifest,
                                    progress, k);
        r = r < 0 ? kpuctl_fail(k, "uploading", r) : 0;
    }
    if (r == 0) {
        if (k->json) {
            printf("{\"device\":");
            kpuctl_json_str(stdout, device);
            printf(",\"name\":");
            kpuctl_json_str(stdout, name);
            printf(",\"size\":%zu,\"crc32c\":%u}\n", len, crc32c(data, len));
        } else {
            printf("uploaded %s to %s as '%s' (%zu bytes)\n", file, device, name, len);
        }
    }
    free(data);
    free(manifest);
    return r;
}

static int model_inspect(struct kpuctl *k, const char *file)
{
    uint8_t *data;
    size_t len;
    uint32_t version = 0;
    const char *kind;

    if (read_file(file, MAX_MODEL_FILE, &data, &len) < 0) {
        perror(file);
        return KPUCTL_EXIT_USAGE;
    }
    if (len >= 4)
        version =
            data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    kind = len >= 4 && version == 3 ? "kmodel v3" : "not a kmodel v3";
    if (k->json) {
        printf("{\"file\":");
        kpuctl_json_str(stdout, file);
        printf(",\"size\":%zu,\"crc32c\":%u,\"version\":%u,\"kind\":\"%s\"}\n", len,
               crc32c(data, len), version, kind);
    } else {
        printf("%s: %zu bytes, crc32c %08x, %s (version word %u)\n", file, len, crc32c(data, len),
               kind, version);
    }
    free(data);
    return len >= 4 && version == 3 ? 0 : KPUCTL_EXIT_DEVICE;
}

int cmd_model(struct kpuctl *k, int argc, char **argv)
{
    int r;

    if (argc < 2)
        return kpuctl_usage_error(k, "needs a subcommand");
    if (strcmp(argv[1], "list") == 0)
        return model_list(k, argc, argv);
    if (strcmp(argv[1], "upload") == 0)
        return model_upload(k, argc, argv);
    if (strcmp(argv[1], "fetch") == 0)
        return cmd_model_fetch(k, argc, argv);
    if (strcmp(argv[1], "inspect") == 0) {
        if (argc != 3)
            return kpuctl_usage_error(k, "inspect takes one file");
        return model_inspect(k, argv[2]);
    }
    if (strcmp(argv[1], "select") == 0) {
        if (argc != 4)
            return kpuctl_usage_error(k, "select takes DEVICE NAME");
        r = kpuctl_connect(k);
        if (r)
            return r;
        r = kpu_client_model_select(k->client, argv[2], argv[3]);
        if (r < 0)
            return kpuctl_fail(k, "selecting", r);
        return k->json ? kpuctl_print_reply_json(k)
                       : (printf("%s now runs %s\n", argv[2], argv[3]), 0);
    }
    if (strcmp(argv[1], "remove") == 0) {
        const char *device = NULL, *name = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
                device = argv[++i];
            else if (argv[i][0] != '-' && !name)
                name = argv[i];
            else
                return kpuctl_usage_error(k, "unexpected '%s'", argv[i]);
        }
        if (!name)
            return kpuctl_usage_error(k, "remove needs a model name");
        r = kpuctl_connect(k);
        if (r)
            return r;
        r = kpu_client_model_delete(k->client, device, name);
        if (r < 0)
            return kpuctl_fail(k, "removing", r);
        return k->json ? kpuctl_print_reply_json(k) : (printf("removed %s\n", name), 0);
    }
    return kpuctl_usage_error(k, "unknown subcommand '%s'", argv[1]);
}
