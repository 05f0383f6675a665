# SPDX-License-Identifier: MIT
# Integration: the real kpud with the real kpu-agent-sim, the shared face model and
# images, the real SQLite file (tests/integration/harness.c runs and watches them).
if(NOT TARGET kpud OR NOT TARGET kpu-agent-sim)
    return()
endif()
add_library(kpu_test_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/harness.c)
target_include_directories(kpu_test_harness PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(kpu_test_harness PRIVATE
    KPU_TEST_KPUD="$<TARGET_FILE:kpud>"
    KPU_TEST_AGENT_SIM="$<TARGET_FILE:kpu-agent-sim>")
target_link_libraries(kpu_test_harness PUBLIC PkgConfig::CHECK PkgConfig::SQLITE3)
kpu_target_defaults(kpu_test_harness)

kpu_test(check_daemon SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_daemon.c
         LIBS kpu_test_harness TIMEOUT 1500 LABELS integration)
add_dependencies(check_daemon kpud kpu-agent-sim)
target_compile_definitions(check_daemon PRIVATE
    KPU_TEST_MODELS_DIR="${CMAKE_SOURCE_DIR}/firmware-agent/models")
