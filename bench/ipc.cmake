# SPDX-License-Identifier: MIT
# Local-client benchmarks (issue 5, docs/performance.md "local clients"):
#   bench_ingest  kpud ingest (replayed capture, speed 0; and --sim-fast) vs raw SQLite
#   bench_fanout  kpud's IPC server vs mosquitto, 1/8/64 subscribers, CPU and latency
#   bench_query   class + time-range history query on 10 million rows through the library
#   bench_rss     kpud's idle RSS with one simulated board, and where it goes
# bench/run_ipc.sh runs all four with the right arguments (and installs mosquitto if it
# can). Built with the tests' other benchmarks; none is a CTest test.
if(NOT TARGET kpud OR NOT TARGET kpu_client OR NOT TARGET kpud_store)
    return()
endif()
foreach(b ingest fanout query rss)
    add_executable(bench_${b} ${CMAKE_CURRENT_LIST_DIR}/bench_${b}.c)
    kpu_target_defaults(bench_${b})
    target_link_libraries(bench_${b} PRIVATE kpu::client kpud_store PkgConfig::SQLITE3
                                             PkgConfig::LIBUV)
    set_target_properties(bench_${b} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
    add_dependencies(bench_${b} kpud)
endforeach()
target_link_libraries(bench_fanout PRIVATE kpud_ipc ${CMAKE_DL_LIBS})
