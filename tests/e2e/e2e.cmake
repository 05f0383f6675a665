# SPDX-License-Identifier: MIT
# Emulated-USB end-to-end test (label e2e): tests/e2e/run.sh boots an x86 guest under QEMU
# TCG with the real kpud on its usb transport against QEMU's FTDI and a CH340 double.
# Guest programs: the CH340 and FT2232H doubles (FunctionFS) and a read-only SQLite check.
# Not with sanitizers: the guest has no sanitizer runtime and TCG is slow enough.
# Opt-in (-DKPU_E2E=ON, after scripts/install-e2e-deps.sh): it needs the guest kernel
# and about a minute of QEMU TCG; CI turns it on.
if(NOT KPU_E2E OR NOT TARGET kpud OR NOT TARGET kpu-agent-sim OR NOT TARGET kpuctl
   OR KPU_SANITIZE OR KPU_FUZZ)
    return()
endif()
find_package(Threads REQUIRED)
# FunctionFS plumbing and the log, shared by both doubles.
add_library(kpu_ffs_double STATIC ${CMAKE_SOURCE_DIR}/tests/e2e/ffs_double.c)
target_include_directories(kpu_ffs_double PUBLIC ${CMAKE_SOURCE_DIR}/tests/e2e)
target_link_libraries(kpu_ffs_double PUBLIC Threads::Threads)
kpu_target_defaults(kpu_ffs_double)
add_executable(ch340_double ${CMAKE_SOURCE_DIR}/tests/e2e/ch340_double.c)
target_link_libraries(ch340_double PRIVATE kpud_usb_pure kpu_ffs_double)
kpu_target_defaults(ch340_double)
# The FT2232H double checks kpud's requests against the kernel driver's rules written out
# in its own source: it links nothing of kpud.
add_executable(ft2232_double ${CMAKE_SOURCE_DIR}/tests/e2e/ft2232_double.c)
target_link_libraries(ft2232_double PRIVATE kpu_ffs_double)
kpu_target_defaults(ft2232_double)
add_executable(e2e_dbcheck ${CMAKE_SOURCE_DIR}/tests/e2e/e2e_dbcheck.c)
target_link_libraries(e2e_dbcheck PRIVATE PkgConfig::SQLITE3)
kpu_target_defaults(e2e_dbcheck)
set_target_properties(ch340_double ft2232_double e2e_dbcheck PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_test(NAME e2e_usb COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(e2e_usb PROPERTIES LABELS e2e TIMEOUT 420 SKIP_RETURN_CODE 77
    ENVIRONMENT "KPU_TEST_DATA=${KPU_TEST_DATA}")
