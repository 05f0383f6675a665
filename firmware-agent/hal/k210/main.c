/* SPDX-License-Identifier: MIT */
/*
 * main() of kpu-agent-k210.elf (called by hal/rv64/crt0.S on hart 0; hart 1 stays parked):
 * bring the HAL up, seal the heap and run the agent, which loads its model from the flash
 * store. The agent never returns on hardware; if it did, the chip resets.
 */
#include "agent.h"
#include "hal/hal.h"
#include "rv64/rv64.h"

int main(void);

int main(void)
{
    kfa_hal_init();
    kfa_rv64_heap_seal();
    kfa_agent_run();
    kfa_hal_reset(0);
}
