# SPDX-License-Identifier: MIT
# Toolchain for the K210 (and QEMU sifive_u) agent: Debian's riscv64-unknown-elf-gcc with
# picolibc. rv64imafdc/lp64d is the K210's ISA with its double-precision FPU; medany
# because SRAM sits at 0x80000000, outside the +-2 GiB around 0 that medlow reaches.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv64)
set(CMAKE_C_COMPILER riscv64-unknown-elf-gcc)
set(CMAKE_ASM_COMPILER riscv64-unknown-elf-gcc)
set(CMAKE_OBJCOPY riscv64-unknown-elf-objcopy CACHE FILEPATH "")
set(CMAKE_SIZE riscv64-unknown-elf-size CACHE FILEPATH "")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(KPU_RISCV_FLAGS "--specs=picolibc.specs -march=rv64imafdc -mabi=lp64d -mcmodel=medany")
set(CMAKE_C_FLAGS_INIT "${KPU_RISCV_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${KPU_RISCV_FLAGS}")
# CMake passes the C flags (with --specs) to the link line too; naming the specs twice fails.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,--gc-sections")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
