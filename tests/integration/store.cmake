# SPDX-License-Identifier: MIT
# Store integration tests: kill -9 during ingest (a real child process on a real libuv
# loop), disk full on a size-limited tmpfs (root), and read-only database files.
if(TARGET kpud_store)
    add_executable(store_ingest_child ${CMAKE_CURRENT_LIST_DIR}/store_ingest_child.c)
    kpu_target_defaults(store_ingest_child)
    target_link_libraries(store_ingest_child PRIVATE kpud_store)

    # KPU_STORE_CRASH_ROUNDS=50 for issue 9's long run.
    kpu_test(check_store_crash SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_store_crash.c
             LIBS kpud_store PkgConfig::SQLITE3 TIMEOUT 300 LABELS store integration
             ENV "STORE_CHILD=$<TARGET_FILE:store_ingest_child>")
    add_dependencies(check_store_crash store_ingest_child)

    kpu_test(check_store_faults SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_store_faults.c
             LIBS kpud_store PkgConfig::SQLITE3 TIMEOUT 120 LABELS store integration)
endif()
