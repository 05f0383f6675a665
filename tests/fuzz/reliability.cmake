# SPDX-License-Identifier: MIT
# Fuzz targets of the daemon's decoders (issue 9): the session state machine fed board
# bytes, the .kcap reader, the configuration file, and IPC requests through the real IPC
# server. Each formats but discards kpud's log (fuzz_log_stub.c).
if(TARGET kpud_core)
    set(_kpu_fz ${CMAKE_CURRENT_LIST_DIR})
    kpu_fuzz_target(fuzz_session SOURCES ${_kpu_fz}/fuzz_session.c ${_kpu_fz}/fuzz_log_stub.c
                    LIBS kpud_core)
    kpu_fuzz_target(fuzz_kcap SOURCES ${_kpu_fz}/fuzz_kcap.c ${_kpu_fz}/fuzz_log_stub.c
                    LIBS kpud_core CORPUS ${CMAKE_SOURCE_DIR}/tests/replay)
    kpu_fuzz_target(fuzz_config SOURCES ${_kpu_fz}/fuzz_config.c ${_kpu_fz}/fuzz_log_stub.c
                    LIBS kpud_core)
endif()
if(TARGET kpud_ipc_testbackend)
    kpu_fuzz_target(fuzz_ipc_request SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_ipc_request.c
                    LIBS kpud_ipc_testbackend)
endif()
