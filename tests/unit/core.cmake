# SPDX-License-Identifier: MIT
# Unit tests of the agent core (firmware-agent/core) through the POSIX HAL's test doors,
# with requests encoded by the host codec (protobuf-c): also a cross-codec check.
if(NOT TARGET kfa_core OR NOT TARGET kfa_hal_posix OR NOT TARGET kfa_hal_soft_kpu)
    message(STATUS "check_core not built: agent libraries missing")
    return()
endif()
pkg_check_modules(KPU_CORE_STB REQUIRED IMPORTED_TARGET stb)
pkg_check_modules(KPU_CORE_JPEG REQUIRED IMPORTED_TARGET libjpeg)
pkg_check_modules(KPU_CORE_CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
kpu_test(check_core
         SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_core.c
                 ${CMAKE_SOURCE_DIR}/firmware-agent/hal/posix/image_load.c
         LIBS kfa_core kfa_hal_posix kfa_kmodel kfa_postproc kfa_hal_soft_kpu kpu_proto_host
              PkgConfig::KPU_CORE_STB PkgConfig::KPU_CORE_JPEG PkgConfig::KPU_CORE_CRYPTO
         TIMEOUT 300 LABELS unit agent)
target_include_directories(check_core PRIVATE ${CMAKE_SOURCE_DIR}/firmware-agent/hal/posix)
target_compile_definitions(check_core PRIVATE
    KFA_MODELS_DIR="${CMAKE_SOURCE_DIR}/firmware-agent/models")
kpu_test(check_sha256
         SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sha256.c
         LIBS kfa_sha256 PkgConfig::KPU_CORE_CRYPTO
         TIMEOUT 30 LABELS unit agent)
