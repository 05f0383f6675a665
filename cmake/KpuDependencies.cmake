# SPDX-License-Identifier: MIT
# Host dependencies, all from Debian 12 packages (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(PROTOBUF_C REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(LIBUSB REQUIRED IMPORTED_TARGET libusb-1.0)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
if(KPU_BUILD_TESTS)
    pkg_check_modules(CHECK REQUIRED IMPORTED_TARGET check)
endif()

find_program(KPU_PROTOC_C protoc-c REQUIRED)
find_program(KPU_PROTOC protoc REQUIRED)
find_program(KPU_PROTOC_GEN_NANOPB protoc-gen-nanopb REQUIRED)
# Host build of the nanopb runtime (Debian libnanopb-dev), for the cross-codec tests.
find_library(KPU_NANOPB_LIB NAMES protobuf-nanopb REQUIRED)
find_path(KPU_NANOPB_INCLUDE pb_decode.h REQUIRED)
