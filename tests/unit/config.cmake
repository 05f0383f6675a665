# SPDX-License-Identifier: MIT
# kpud's configuration file and its value parsers (daemon/config.c).
if(TARGET kpud_core)
    kpu_test(check_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_config.c
             LIBS kpud_core TIMEOUT 30 LABELS config)
endif()
