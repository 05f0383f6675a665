# SPDX-License-Identifier: MIT
# Unit tests of the daemon's SQLite store (daemon/store/).
if(TARGET kpud_store)
    kpu_test(check_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_store.c
             LIBS kpud_store PkgConfig::SQLITE3 TIMEOUT 120 LABELS store)
endif()
