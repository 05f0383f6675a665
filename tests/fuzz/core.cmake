# SPDX-License-Identifier: MIT
# Fuzz target of the agent core: bytes into the agent's uart rx path.
if(TARGET kfa_core AND TARGET kfa_hal_posix AND TARGET kfa_hal_soft_kpu)
    kpu_fuzz_target(fuzz_agent_link SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_agent_link.c
                    LIBS kfa_core kfa_hal_posix kfa_kmodel kfa_postproc kfa_hal_soft_kpu)
endif()
