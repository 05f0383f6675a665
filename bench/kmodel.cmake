# SPDX-License-Identifier: MIT
# bench_kmodel: fps of the shared detection models, fast soft KPU vs the naive reference.
add_executable(bench_kmodel ${CMAKE_CURRENT_LIST_DIR}/bench_kmodel.c)
target_compile_options(bench_kmodel PRIVATE -O2)
target_link_libraries(bench_kmodel PRIVATE kfa_kmodel kfa_hal_soft_kpu)
kpu_target_defaults(bench_kmodel)
