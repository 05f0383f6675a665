# SPDX-License-Identifier: MIT
# The firmware is its own CMake configure with its own toolchain (STYLE.md "Build"):
# firmware-agent/cross/ is configured into <build>/firmware with the riscv64 toolchain
# file and built as part of `all`. It needs the nanopb runtime sources, which Debian ships
# only in its source package: scripts/install-deps.sh unpacks them into .deps/nanopb.
include(ExternalProject)
set(KPU_NANOPB_SRC "${CMAKE_SOURCE_DIR}/.deps/nanopb" CACHE PATH
    "nanopb runtime sources (pb_encode.c, pb_decode.c, pb_common.c) for the firmware")
if(NOT EXISTS "${KPU_NANOPB_SRC}/pb_encode.c")
    message(FATAL_ERROR "KPU_BUILD_FIRMWARE needs the nanopb runtime sources in "
                        "${KPU_NANOPB_SRC}: run scripts/install-deps.sh, or configure with "
                        "-DKPU_BUILD_FIRMWARE=OFF")
endif()
ExternalProject_Add(firmware
    SOURCE_DIR ${CMAKE_SOURCE_DIR}/firmware-agent/cross
    BINARY_DIR ${CMAKE_BINARY_DIR}/firmware
    CMAKE_ARGS -DCMAKE_TOOLCHAIN_FILE=${CMAKE_SOURCE_DIR}/cmake/toolchain-riscv64-elf.cmake
               -DCMAKE_BUILD_TYPE=MinSizeRel
               -DKPU_NANOPB_SRC=${KPU_NANOPB_SRC}
               -DKPU_WERROR=${KPU_WERROR}
               -DKPU_PROTOC=${KPU_PROTOC}
               -DKPU_PROTOC_GEN_NANOPB=${KPU_PROTOC_GEN_NANOPB}
               -DKPU_TEST_DATA=${KPU_TEST_DATA}
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON
    USES_TERMINAL_BUILD ON)

# The QEMU end-to-end test (tests/e2e/) needs the firmware, kpud and kpuctl.
if(KPU_BUILD_TESTS AND EXISTS ${CMAKE_SOURCE_DIR}/tests/e2e/qemu.cmake)
    include(${CMAKE_SOURCE_DIR}/tests/e2e/qemu.cmake)
endif()
