# SPDX-License-Identifier: MIT
# kmodel loader + interpreter fuzzing, seeded with the shared real models.
kpu_fuzz_target(fuzz_kmodel
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_kmodel.c
                LIBS kfa_kmodel kfa_hal_soft_kpu
                CORPUS "${KPU_TEST_DATA}/models")
