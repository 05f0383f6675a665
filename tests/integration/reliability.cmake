# SPDX-License-Identifier: MIT
# Reliability and security suite (issue 9, docs/reliability.md): the real kpud under
# device faults, kill -9, disk full and read-only storage, hostile and numerous clients,
# and privilege checks. Sources live in tests/reliability/.
set(_kpu_rel ${CMAKE_SOURCE_DIR}/tests/reliability)

# Writes fuzz seed corpora from the protocols (see seedgen.c); not a test.
if(TARGET kpud_core)
    add_executable(kpu_seedgen ${_kpu_rel}/seedgen.c)
    target_link_libraries(kpu_seedgen PRIVATE kpud_core)
    kpu_target_defaults(kpu_seedgen)
endif()

if(NOT TARGET kpud OR NOT TARGET kpu-agent-sim OR NOT TARGET kpu_test_harness)
    return()
endif()

# kill -9 of the real kpud during full-speed ingest; KPU_REL_CRASH_ROUNDS (default 50).
kpu_test(check_rel_crash SOURCES ${_kpu_rel}/check_rel_crash.c
         LIBS kpu_test_harness TIMEOUT 900 LABELS integration reliability)
add_dependencies(check_rel_crash kpud kpu-agent-sim)
target_compile_definitions(check_rel_crash PRIVATE
    KPU_TEST_REPLAY_DIR="${CMAKE_SOURCE_DIR}/tests/replay")

if(NOT TARGET kpu_client)
    return()
endif()
add_library(kpu_rel_util STATIC ${_kpu_rel}/rel_util.c)
target_include_directories(kpu_rel_util PUBLIC ${_kpu_rel})
target_compile_definitions(kpu_rel_util PRIVATE
    KPU_TEST_REPLAY_DIR="${CMAKE_SOURCE_DIR}/tests/replay")
target_link_libraries(kpu_rel_util PUBLIC kpu_test_harness kpu_client kpu_proto_host)
kpu_target_defaults(kpu_rel_util)

# Many, slow, stopped and hostile clients against the real kpud; RSS bounds.
kpu_test(check_rel_clients SOURCES ${_kpu_rel}/check_rel_clients.c
         LIBS kpu_rel_util TIMEOUT 600 LABELS integration reliability)
add_dependencies(check_rel_clients kpud)

# Socket mode, reader/admin roles, path escapes, capabilities (needs root; skips without).
kpu_test(check_rel_security SOURCES ${_kpu_rel}/check_rel_security.c
         LIBS kpu_rel_util kpud_core TIMEOUT 300 LABELS integration reliability)
add_dependencies(check_rel_security kpud)
target_compile_definitions(check_rel_security PRIVATE
    KPU_TEST_MODELS_DIR="${CMAKE_SOURCE_DIR}/firmware-agent/models")

# Device faults beyond check_daemon's matrix: corrupt 1e-3 / 1e-2, reboot loop, garbage
# at line rate and at full rate on a pty, then the real agent on the same line.
kpu_test(check_rel_device SOURCES ${_kpu_rel}/check_rel_device.c
         LIBS kpu_rel_util TIMEOUT 900 LABELS integration reliability)
add_dependencies(check_rel_device kpud kpu-agent-sim)
target_compile_definitions(check_rel_device PRIVATE
    KPU_TEST_MODELS_DIR="${CMAKE_SOURCE_DIR}/firmware-agent/models")

# Disk full (a tmpfs in a private mount namespace) and a read-only database (needs root).
kpu_test(check_rel_storage SOURCES ${_kpu_rel}/check_rel_storage.c
         LIBS kpu_rel_util TIMEOUT 600 LABELS integration reliability)
add_dependencies(check_rel_storage kpud)
