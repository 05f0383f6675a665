# SPDX-License-Identifier: MIT
# kpu_fuzz_target(<name> SOURCES <files...> LIBS <targets...> [CORPUS <dirs...>])
#
# One fuzz target = one file defining LLVMFuzzerTestOneInput(). With KPU_FUZZ (clang) it
# links libFuzzer: run it as build/tests/fuzz/<name> <corpus dirs>. Without KPU_FUZZ it
# links tests/fuzz/replay_main.c and CTest replays the seed corpus and
# tests/fuzz/regressions/<name>/ through it on every test run, so every crash ever found
# stays fixed. CORPUS dirs are read-only seeds (e.g. the shared models).
set(KPU_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
set_property(GLOBAL PROPERTY KPU_FUZZ_TARGETS "")

function(kpu_fuzz_target name)
    cmake_parse_arguments(F "" "" "SOURCES;LIBS;CORPUS" ${ARGN})
    set(_corpus ${KPU_FUZZ_DIR}/regressions/${name} ${KPU_FUZZ_DIR}/seeds/${name} ${F_CORPUS})
    if(KPU_FUZZ)
        add_executable(${name} ${F_SOURCES})
        kpu_target_defaults(${name})
        target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    else()
        add_executable(${name} ${F_SOURCES} ${KPU_FUZZ_DIR}/replay_main.c)
        kpu_target_defaults(${name})
    endif()
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                             ${CMAKE_BINARY_DIR}/tests/fuzz)
    set_property(GLOBAL APPEND PROPERTY KPU_FUZZ_TARGETS "${name}")
    # scripts/fuzz.sh reads the extra seed corpora from here.
    string(REPLACE ";" " " _extra "${F_CORPUS}")
    file(WRITE ${CMAKE_BINARY_DIR}/tests/fuzz/${name}.corpus "${_extra}\n")
    if(NOT KPU_FUZZ)
        add_test(NAME replay_${name} COMMAND ${name} ${_corpus})
        set_tests_properties(replay_${name} PROPERTIES TIMEOUT 300 LABELS fuzz-replay)
    endif()
endfunction()
