# SPDX-License-Identifier: MIT
# Unit tests of the two wires: klink framing, IPC framing, nanopb <-> protobuf-c.
kpu_test(check_klink SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_klink.c LIBS kpu_klink TIMEOUT 120)
kpu_test(check_kipc SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_kipc.c LIBS kpu_proto_host)
kpu_test(check_crosscodec SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_crosscodec.c
         ${CMAKE_CURRENT_LIST_DIR}/proto_random.c
         LIBS kpu_proto_host kpu_proto_nanopb TIMEOUT 120)
target_compile_definitions(check_crosscodec PRIVATE
    KPU_LINK_OPTIONS="${CMAKE_SOURCE_DIR}/proto/kpu/link/v1/link.options")
