# SPDX-License-Identifier: MIT
# Store benchmark: batched writer vs raw batched SQLite inserts, commit time per batch,
# retention step time. Run: build/bench/bench_store [FRAMES] (docs/performance.md "store").
if(TARGET kpud_store)
    add_executable(bench_store ${CMAKE_CURRENT_LIST_DIR}/bench_store.c)
    kpu_target_defaults(bench_store)
    target_link_libraries(bench_store PRIVATE kpud_store PkgConfig::SQLITE3)
    set_target_properties(bench_store PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                 ${CMAKE_BINARY_DIR}/bench)
endif()
