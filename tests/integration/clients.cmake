# SPDX-License-Identifier: MIT
# Local clients, integration level:
#  - clients_installed_examples: install libkpu-client into a temp prefix and build the
#    examples against it with pkg-config and with find_package(kpu-client), then run them
#    against kpud-ipc-testd (the IPC server with its test backend).
#  - Against the real kpud (with kpu-agent-sim): to come when daemon/main.c lands; the
#    kpuctl golden cases of tests/unit/check_kpuctl.c are meant to run against it then,
#    with a filter on the fields that differ from the test backend.
# Not with sanitizers: an instrumented library cannot be loaded by the plain example builds.
if(TARGET kpu_client AND TARGET kpud-ipc-testd AND NOT KPU_SANITIZE AND NOT KPU_FUZZ)
    add_test(NAME clients_installed_examples
             COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/clients/installed_examples.sh
                     ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR} $<TARGET_FILE:kpud-ipc-testd>
                     ${CMAKE_C_COMPILER})
    set_tests_properties(clients_installed_examples PROPERTIES TIMEOUT 300 LABELS "ipc;integration")
endif()
