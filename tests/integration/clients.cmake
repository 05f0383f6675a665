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

# The clients against the real kpud with kpu-agent-sim (tests/integration/check_ipc_daemon.c):
# filters, paging, slow-client drops, restart, roles, malformed frames, snapshots, model
# upload, kpuctl --json, agent flash. The harness is built again under its own name: daemon.cmake's copy
# is defined after this file (glob order).
if(TARGET kpud AND TARGET kpu-agent-sim AND TARGET kpu_client AND TARGET kpuctl)
    add_library(kpu_test_harness_ipc STATIC ${CMAKE_CURRENT_LIST_DIR}/harness.c
                                            ${CMAKE_CURRENT_LIST_DIR}/ipc_raw.c)
    target_include_directories(kpu_test_harness_ipc PUBLIC ${CMAKE_CURRENT_LIST_DIR})
    target_compile_definitions(kpu_test_harness_ipc PRIVATE
        KPU_TEST_KPUD="$<TARGET_FILE:kpud>"
        KPU_TEST_AGENT_SIM="$<TARGET_FILE:kpu-agent-sim>")
    target_link_libraries(kpu_test_harness_ipc PUBLIC PkgConfig::CHECK PkgConfig::SQLITE3
                                                      kpu_proto_host)
    kpu_target_defaults(kpu_test_harness_ipc)
    pkg_check_modules(KPU_IPCD_CRYPTO REQUIRED IMPORTED_TARGET libcrypto) # agent flash digest
    kpu_test(check_ipc_daemon SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_ipc_daemon.c
             LIBS kpu_test_harness_ipc kpu_client PkgConfig::KPU_IPCD_CRYPTO
             TIMEOUT 1500 LABELS "ipc;integration")
    add_dependencies(check_ipc_daemon kpud kpu-agent-sim kpuctl)
    target_compile_definitions(check_ipc_daemon PRIVATE
        KPUCTL_PATH="$<TARGET_FILE:kpuctl>"
        KPU_TEST_MODELS_DIR="${CMAKE_SOURCE_DIR}/firmware-agent/models")
endif()
