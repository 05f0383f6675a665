# SPDX-License-Identifier: MIT
# Fuzz target of the model manifest parser; the shipped manifests are its seed corpus.
kpu_fuzz_target(fuzz_manifest SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_manifest.c
                LIBS kfa_manifest CORPUS ${CMAKE_SOURCE_DIR}/firmware-agent/models)
