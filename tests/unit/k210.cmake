# SPDX-License-Identifier: MIT
# Host unit tests of the pure parts of the bare-metal HALs (firmware-agent/hal/k210 and
# hal/rv64): PLL and clock arithmetic, UART divisors, FPIOA board profiles, KPU argument
# relocation, the UART ring buffer, the flash layout, and the camera path (sensor register
# tables, SCCB/XCLK divisors, DVP capture plan, capture buffer ring). The hardware paths are
# exercised by the QEMU end-to-end test (tests/e2e/qemu.cmake).
set(_kfa_fw ${CMAKE_SOURCE_DIR}/firmware-agent)
add_library(kfa_k210_pure_host STATIC ${_kfa_fw}/hal/k210/k210_pure.c
                                      ${_kfa_fw}/hal/k210/k210_camera_pure.c
                                      ${_kfa_fw}/hal/k210/k210_sensor_tables.c
                                      ${_kfa_fw}/hal/rv64/sifive_uart.c ${_kfa_fw}/hal/rv64/ring.c)
target_include_directories(kfa_k210_pure_host PUBLIC ${_kfa_fw}/hal/k210 ${_kfa_fw}/hal/rv64
                                                     ${_kfa_fw})
target_compile_definitions(kfa_k210_pure_host PUBLIC KFA_HOST_TEST=1)
kpu_target_defaults(kfa_k210_pure_host)
foreach(t clock uart fpioa kpu ring flash camera)
    kpu_test(check_k210_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_k210_${t}.c
             LIBS kfa_k210_pure_host TIMEOUT 30 LABELS unit firmware)
endforeach()
