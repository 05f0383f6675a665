# SPDX-License-Identifier: MIT
# Unit tests of firmware-agent/postproc (region decoding, NMS, preprocessing, top-k) and
# firmware-agent/manifest (manifest parser, the shipped manifests of the shared models).
kpu_test(check_postproc SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_postproc.c LIBS kfa_postproc)
kpu_test(check_manifest SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_manifest.c LIBS kfa_manifest)
target_compile_definitions(check_manifest PRIVATE
    KFA_MODELS_DIR="${CMAKE_SOURCE_DIR}/firmware-agent/models")
