/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the kmodel loader and interpreter: every input is loaded; a model that
 * loads is inspected layer by layer and, if small enough, run once on a zero input with
 * the fast soft KPU. The work per input is bounded (MAC and buffer limits below) so the
 * fuzzer explores formats rather than timing out on big convolutions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hal/soft_kpu/soft_kpu.h"
#include "kmodel/kmodel.h"

#define FUZZ_MAX_MACS (4u * 1000u * 1000u) /* multiply-accumulates per run */
#define FUZZ_MAX_MAIN (4u << 20)           /* main buffer bytes */
#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kfa_kmodel m;
    struct kfa_kmodel_error err;
    if (kfa_kmodel_load(&m, data, size, &err) != 0)
        return 0;
    for (uint32_t i = 0; i < m.layer_count; i++) {
        struct kfa_kmodel_layer_info li;
        if (kfa_kmodel_layer_info(&m, i, &li) != 0)
            abort();
    }
    if (m.total_macs > FUZZ_MAX_MACS || m.main_size > FUZZ_MAX_MAIN ||
        m.input_bytes > FUZZ_MAX_INPUT)
        return 0;
    uint8_t *mb = malloc(m.main_size ? m.main_size : 1);
    uint8_t *in = calloc(1, m.input_bytes ? m.input_bytes : 1);
    if (mb && in &&
        kfa_kmodel_run(&m, in, m.input_bytes, mb, m.main_size, kfa_hal_kpu_ram(),
                       (enum kfa_rounding)(size & 1), &err) == 0) {
        for (uint32_t i = 0; i < m.output_count; i++) {
            const void *o;
            size_t n;
            if (kfa_kmodel_output(&m, mb, i, &o, &n) != 0 ||
                (const uint8_t *)o + n > mb + m.main_size)
                abort();
        }
    }
    free(mb);
    free(in);
    return 0;
}
