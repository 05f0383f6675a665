/* SPDX-License-Identifier: MIT */
/*
 * main() of kpu-agent-qemu.elf (called by hal/rv64/crt0.S on hart 1): bring the HAL up,
 * seed the flash model store with the model built into the image (when the build had one:
 * KPU_TEST_DATA's face model and its manifest), seal the heap, and run the agent. The
 * model goes through kfa_agent_seed_model(), the same checks as an upload over the link.
 */
#include "agent.h"
#include "hal/hal.h"
#include "hal_qemu.h"

int main(void);

int main(void)
{
    char text[128];

    kfa_hal_init();
    if (kfa_blob_model_size > 0)
        (void)kfa_agent_seed_model(kfa_blob_model_name, kfa_blob_model, (size_t)kfa_blob_model_size,
                                   kfa_blob_manifest, (size_t)kfa_blob_manifest_size, text,
                                   sizeof(text));
    kfa_qemu_init_done();
    kfa_agent_run();
    kfa_hal_reset(0);
}
