# SPDX-License-Identifier: MIT
# Integration tests of `kpu-agent-sim infer` / `inspect`: the real binary on the shared
# models and images (KPU_TEST_DATA), output parsed with json-c.
if(TARGET kpu-agent-sim)
    pkg_check_modules(JSONC REQUIRED IMPORTED_TARGET json-c)
    pkg_check_modules(STB REQUIRED IMPORTED_TARGET stb)
    kpu_test(check_infer SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_infer.c
             LIBS PkgConfig::JSONC PkgConfig::STB m TIMEOUT 600 LABELS integration)
    target_compile_definitions(check_infer PRIVATE
        KFA_SIM_BIN="$<TARGET_FILE:kpu-agent-sim>"
        KFA_MODELS_DIR="${CMAKE_SOURCE_DIR}/firmware-agent/models")
    # The expectation table leaves optional trailing fields out.
    target_compile_options(check_infer PRIVATE -Wno-missing-field-initializers)
    add_dependencies(check_infer kpu-agent-sim)
else()
    message(STATUS "check_infer not built: no kpu-agent-sim target")
endif()
