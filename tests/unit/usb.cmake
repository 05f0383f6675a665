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

# The transport itself (daemon/link/transport_usb.c) against a fake libusb defined in the
# test: unplug and replug, and no libusb_open/close from inside libusb's event handling
# (the issue 7 hang). Only libusb's headers are used, never the library.
kpu_test(check_usb_transport SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_usb_transport.c
         ${CMAKE_SOURCE_DIR}/daemon/link/transport_usb.c ${CMAKE_SOURCE_DIR}/daemon/log.c
         LIBS kpud_usb_pure PkgConfig::LIBUV TIMEOUT 30 LABELS usb)
target_include_directories(check_usb_transport PRIVATE ${CMAKE_SOURCE_DIR}/daemon
    ${CMAKE_SOURCE_DIR}/daemon/link ${LIBUSB_INCLUDE_DIRS})
