# SPDX-License-Identifier: MIT
# Unit tests of the usb transport's pieces: bridge encodings (daemon/link/usb_*.c) and the
# K210 ROM ISP client (daemon/link/isp.c). Both are pure code (no libusb, no libuv).
add_library(kpud_usb_pure STATIC
    ${CMAKE_SOURCE_DIR}/daemon/link/usb_bridge.c ${CMAKE_SOURCE_DIR}/daemon/link/usb_ch34x.c
    ${CMAKE_SOURCE_DIR}/daemon/link/usb_ftdi.c ${CMAKE_SOURCE_DIR}/daemon/link/isp.c)
target_include_directories(kpud_usb_pure PUBLIC ${CMAKE_SOURCE_DIR}/daemon/link)
kpu_target_defaults(kpud_usb_pure)

kpu_test(check_usb_bridge SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_usb_bridge.c
         LIBS kpud_usb_pure TIMEOUT 30 LABELS usb)
kpu_test(check_usb_isp SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_usb_isp.c
         LIBS kpud_usb_pure TIMEOUT 30 LABELS usb)
