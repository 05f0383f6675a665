# SPDX-License-Identifier: MIT
# End to end on emulated hardware (label e2e): kpu-agent-qemu.elf boots under
# qemu-system-riscv64 -machine sifive_u (TCG) with its UART on a pty, the real kpud reads
# it through its tty transport, and the face model built into the image must find the
# astronaut's face in SQLite and through kpuctl query --json. Included by
# cmake/KpuFirmware.cmake (the test needs the firmware subbuild).
find_program(KPU_QEMU_RISCV64 qemu-system-riscv64)
if(NOT KPU_QEMU_RISCV64 OR NOT TARGET kpud OR NOT TARGET kpuctl OR NOT TARGET kpu_test_harness)
    message(STATUS "QEMU e2e test not built (needs qemu-system-riscv64, kpud, kpuctl)")
    return()
endif()
kpu_test(check_qemu_e2e SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_qemu_e2e.c
         LIBS kpu_test_harness TIMEOUT 300 LABELS e2e)
add_dependencies(check_qemu_e2e kpud kpuctl firmware)
target_compile_definitions(check_qemu_e2e PRIVATE
    KPU_TEST_QEMU="${KPU_QEMU_RISCV64}"
    KPU_TEST_KPUCTL="$<TARGET_FILE:kpuctl>"
    KPU_TEST_AGENT_QEMU="${CMAKE_BINARY_DIR}/firmware/kpu-agent-qemu.elf"
    KPU_TEST_AGENT_K210_BIN="${CMAKE_BINARY_DIR}/firmware/kpu-agent-k210.bin")
