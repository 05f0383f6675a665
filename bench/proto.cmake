# SPDX-License-Identifier: MIT
add_executable(bench_klink ${CMAKE_CURRENT_LIST_DIR}/bench_klink.c)
target_compile_options(bench_klink PRIVATE -O2)
target_link_libraries(bench_klink PRIVATE kpu_klink)
kpu_target_defaults(bench_klink)
