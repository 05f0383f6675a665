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
# (the issue 7 hang); a two-port FT2232 through the real device manager and sessions,
# whose port without an agent is given back (issue 7, "HELLO decides"). The test's own
# libusb_* definitions win over the library kpud_core links.
if(TARGET kpud_core)
    kpu_test(check_usb_transport SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_usb_transport.c
             LIBS kpud_core TIMEOUT 60 LABELS usb)
    target_include_directories(check_usb_transport PRIVATE ${CMAKE_SOURCE_DIR}/daemon
        ${CMAKE_SOURCE_DIR}/daemon/link ${LIBUSB_INCLUDE_DIRS})
endif()
