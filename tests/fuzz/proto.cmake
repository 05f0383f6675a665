# SPDX-License-Identifier: MIT
# Fuzz targets of the two wires.
kpu_fuzz_target(fuzz_klink SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_klink.c LIBS kpu_klink)
kpu_fuzz_target(fuzz_link_msg SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_link_msg.c
                LIBS kpu_proto_host kpu_proto_nanopb)
kpu_fuzz_target(fuzz_ipc_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_ipc_frame.c
                LIBS kpu_proto_host)
