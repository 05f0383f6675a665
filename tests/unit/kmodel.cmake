# SPDX-License-Identifier: MIT
# kmodel runtime + software KPU: real models (check_kmodel) and writer-built layers
# (check_kmodel_layers).
kpu_test(check_kmodel
         SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_kmodel.c ${CMAKE_CURRENT_LIST_DIR}/kmodel_test_util.c
         LIBS kfa_kmodel kfa_hal_soft_kpu m
         TIMEOUT 600 LABELS kmodel)
target_include_directories(check_kmodel PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_options(check_kmodel PRIVATE -O2)
kpu_test(check_kmodel_layers
         SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_kmodel_layers.c ${CMAKE_CURRENT_LIST_DIR}/kmodel_writer.c
                 ${CMAKE_CURRENT_LIST_DIR}/kmodel_test_util.c
         LIBS kfa_kmodel kfa_hal_soft_kpu m
         TIMEOUT 300 LABELS kmodel)
target_include_directories(check_kmodel_layers PRIVATE ${CMAKE_CURRENT_LIST_DIR})
