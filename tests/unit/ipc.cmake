# SPDX-License-Identifier: MIT
# Local clients (issue 5): the IPC server, libkpu-client and kpuctl against the
# deterministic test backend (daemon/ipc/test_backend.c) over real sockets.
if(TARGET kpud_ipc_testbackend)
    kpu_test(check_ipc_server SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_ipc_server.c
             LIBS kpud_ipc_testbackend TIMEOUT 120 LABELS ipc)
endif()
if(TARGET kpud_ipc_testbackend AND TARGET kpu_client AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/check_client.c)
    kpu_test(check_client SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_client.c
             LIBS kpud_ipc_testbackend kpu_client TIMEOUT 120 LABELS ipc)
endif()
if(TARGET kpud-ipc-testd AND TARGET kpuctl AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/check_kpuctl.c)
    kpu_test(check_kpuctl SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_kpuctl.c
             LIBS PkgConfig::LIBUV TIMEOUT 120 LABELS ipc)
    target_compile_definitions(check_kpuctl PRIVATE
        KPUCTL_PATH="$<TARGET_FILE:kpuctl>"
        KPUD_TESTD_PATH="$<TARGET_FILE:kpud-ipc-testd>"
        KPUCTL_GOLDEN_DIR="${CMAKE_CURRENT_LIST_DIR}/kpuctl-golden")
    add_dependencies(check_kpuctl kpuctl kpud-ipc-testd)
endif()
