/* SPDX-License-Identifier: MIT */
/*
 * `kpu-agent-sim inspect`: what a kmodel file holds, as the runtime's loader sees it:
 * header, outputs, the layer table with K210_CONV shapes, main memory and KPU RAM peak.
 * Text for people, or one JSON object with --json. Host only.
 */
#include "sim_cmds.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel/kmodel.h"

#define KMODEL_V3_HEADER_BYTES 28u /* version..output_count (kmodel-facts §2) */
#define KMODEL_OUTPUT_ENTRY_BYTES 8u

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s inspect M.kmodel [--json]\n"
            "\n"
            "Print a kmodel v3 file's header, outputs, layer table (index, type, body size,\n"
            "K210_CONV shapes) and memory use (main buffer, KPU RAM peak). Files the loader\n"
            "refuses give its error and exit status 1.\n"
            "\n"
            "options:\n"
            "      --json   one JSON object instead of text\n"
            "  -h, --help   this text\n",
            sim_prog);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Output i's (address, size) from the table after the header; 0 on success. */
static int output_entry(const struct kfa_kmodel *m, uint32_t i, uint32_t *addr, uint32_t *size)
{
    size_t off = KMODEL_V3_HEADER_BYTES + (size_t)i * KMODEL_OUTPUT_ENTRY_BYTES;

    if (i >= m->output_count || off + KMODEL_OUTPUT_ENTRY_BYTES > m->size)
        return -1;
    *addr = rd32(m->data + off);
    *size = rd32(m->data + off + 4);
    return 0;
}

static void print_text(const char *path, const struct kfa_kmodel *m)
{
    struct kfa_kmodel_layer_info li;

    printf("file:            %s (%zu bytes)\n", path, m->size);
    printf("format:          kmodel v3, flags 0x%x (%s weights)\n", m->flags,
           (m->flags & 1u) ? "8-bit" : "16-bit");
    if (m->input_kind == KFA_INPUT_U8_CHW)
        printf("input:           u8 CxHxW %ux%ux%u (%zu bytes)\n", m->input_c, m->input_h,
               m->input_w, m->input_bytes);
    else
        printf("input:           %u float32 (%zu bytes)\n", m->input_c, m->input_bytes);
    for (uint32_t i = 0; i < m->output_count; i++) {
        uint32_t a, s;
        if (output_entry(m, i, &a, &s) == 0)
            printf("output %-10u main +%u, %u bytes (%u float32)\n", i, a, s, s / 4u);
    }
    printf("main memory:     %u bytes declared, %zu bytes needed by a run\n", m->main_mem_usage,
           m->main_size);
    printf("KPU RAM peak:    %u bytes of %u\n", m->kpu_ram_peak, KFA_KPU_RAM_SIZE);
    printf("KPU MACs:        %" PRIu64 "\n", m->total_macs);
    printf("layers:          %u\n\n", m->layer_count);
    printf("%5s  %-28s %8s  %s\n", "#", "type", "body", "details");
    for (uint32_t i = 0; i < m->layer_count; i++) {
        if (kfa_kmodel_layer_info(m, i, &li) < 0)
            break;
        printf("%5u  %-28s %8u  ", li.index, li.name, li.body_size);
        if (li.kernel) {
            printf("%ux%ux%u -> %ux%ux%u, %ux%u%s, pool %u, kpu %u -> %u, %" PRIu64 " MACs",
                   li.in_c, li.in_h, li.in_w, li.out_c, li.out_h, li.out_w, li.kernel, li.kernel,
                   li.depthwise ? " depthwise" : "", li.pool_type, li.kpu_src_line, li.kpu_dst_line,
                   li.macs);
            if (li.flags & 1u)
                printf(", main out +%u", li.main_out);
        } else {
            printf("flags 0x%x", li.flags);
        }
        putchar('\n');
    }
}

static void print_json(const char *path, const struct kfa_kmodel *m)
{
    struct kfa_kmodel_layer_info li;

    printf("{\"file\":");
    sim_json_string(stdout, path);
    printf(",\"size\":%zu,\"version\":3,\"flags\":%u,\"eight_bit\":%s,", m->size, m->flags,
           (m->flags & 1u) ? "true" : "false");
    printf("\"input\":{\"kind\":\"%s\",\"c\":%u,\"h\":%u,\"w\":%u,\"bytes\":%zu},",
           m->input_kind == KFA_INPUT_U8_CHW ? "u8" : "float", m->input_c, m->input_h, m->input_w,
           m->input_bytes);
    printf("\"outputs\":[");
    for (uint32_t i = 0; i < m->output_count; i++) {
        uint32_t a = 0, s = 0;
        output_entry(m, i, &a, &s);
        printf("%s{\"address\":%u,\"size\":%u}", i ? "," : "", a, s);
    }
    printf("],\"main_mem_usage\":%u,\"main_size\":%zu,\"kpu_ram_peak\":%u,\"macs\":%" PRIu64
           ",\"layers\":[",
           m->main_mem_usage, m->main_size, m->kpu_ram_peak, m->total_macs);
    for (uint32_t i = 0; i < m->layer_count; i++) {
        if (kfa_kmodel_layer_info(m, i, &li) < 0)
            break;
        printf("%s{\"index\":%u,\"type\":%u,\"name\":", i ? "," : "", li.index, li.type);
        sim_json_string(stdout, li.name);
        printf(",\"body_offset\":%zu,\"body_size\":%u,\"flags\":%u", li.body_offset, li.body_size,
               li.flags);
        if (li.kernel)
            printf(",\"in\":[%u,%u,%u],\"out\":[%u,%u,%u],\"kernel\":%u,\"depthwise\":%s,"
                   "\"pool\":%u,\"kpu_src\":%u,\"kpu_dst\":%u,\"main_out\":%u,\"macs\":%" PRIu64,
                   li.in_c, li.in_h, li.in_w, li.out_c, li.out_h, li.out_w, li.kernel,
                   li.depthwise ? "true" : "false", li.pool_type, li.kpu_src_line, li.kpu_dst_line,
                   li.main_out, li.macs);
        putchar('}');
    }
    printf("]}\n");
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    uint8_t *file = NULL;
    size_t len = 0;
    int json = 0, c, rc = SIM_EXIT_FAIL;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return SIM_EXIT_OK;
        default:
            fprintf(stderr, "%s inspect: unknown option '%s'\n", sim_prog, argv[optind - 1]);
            return SIM_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "%s inspect: give exactly one kmodel file\n", sim_prog);
        usage(stderr);
        return SIM_EXIT_USAGE;
    }
    path = argv[optind];
    if (sim_read_file(path, SIM_MAX_MODEL_BYTES, &file, &len) < 0)
        return SIM_EXIT_FAIL;
    if (kfa_kmodel_load(&m, file, len, &err) < 0) {
        fprintf(stderr, "%s inspect: %s: %s\n", sim_prog, path, err.text);
        goto out;
    }
    if (json)
        print_json(path, &m);
    else
        print_text(path, &m);
    rc = fflush(stdout) == 0 ? SIM_EXIT_OK : SIM_EXIT_FAIL;
out:
    free(file);
    return rc;
}
