# SPDX-License-Identifier: MIT
# kpuctl model fetch as a real process: offline error (closed loopback port), sha256
# mismatch, file:// downloads of the shared models, .kfpkg zips (stored and deflated).
if(NOT TARGET kpuctl)
    return()
endif()
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
kpu_test(check_model_fetch SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_model_fetch.c
         LIBS kfa_manifest PkgConfig::ZLIB TIMEOUT 60 LABELS integration)
add_dependencies(check_model_fetch kpuctl)
target_compile_definitions(check_model_fetch PRIVATE KPUCTL_PATH="$<TARGET_FILE:kpuctl>")
