# SPDX-License-Identifier: MIT
# daemon/sd_notify.c: systemd notification and socket activation without libsystemd.
if(TARGET kpud_core)
    kpu_test(check_sd_notify SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_sd_notify.c LIBS kpud_core
             TIMEOUT 30 LABELS unit packaging)
endif()
