# SPDX-License-Identifier: MIT
# Per-target build settings and the kpu_test() helper. Flags go on targets, never global.

# kpu_target_defaults(<target>): warnings, sanitizers and fuzz instrumentation for one of
# the project's own targets.
function(kpu_target_defaults tgt)
    target_compile_options(${tgt} PRIVATE -Wall -Wextra -Wshadow -Wstrict-prototypes
                                          -Wmissing-prototypes -Wformat=2 -Wvla
                                          -Wno-unused-parameter)
    if(KPU_WERROR)
        target_compile_options(${tgt} PRIVATE -Werror)
    endif()
    if(KPU_SANITIZE)
        target_compile_options(${tgt} PRIVATE -fsanitize=address,undefined
                                              -fno-sanitize-recover=all -fno-omit-frame-pointer)
        target_link_options(${tgt} PRIVATE -fsanitize=address,undefined)
    endif()
    if(KPU_FUZZ)
        target_compile_options(${tgt} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                                              -fno-sanitize-recover=all -fno-omit-frame-pointer)
        target_link_options(${tgt} PRIVATE -fsanitize=address,undefined)
    endif()
endfunction()

# Generated code is not ours to warn about; it only gets the sanitizer flags.
function(kpu_generated_defaults tgt)
    if(KPU_SANITIZE)
        target_compile_options(${tgt} PRIVATE -fsanitize=address,undefined
                                              -fno-sanitize-recover=all -fno-omit-frame-pointer)
    endif()
    if(KPU_FUZZ)
        target_compile_options(${tgt} PRIVATE -fsanitize=fuzzer-no-link,address,undefined)
    endif()
endfunction()

# kpu_test(<name> SOURCES <files...> LIBS <targets...> [TIMEOUT <s>] [LABELS <l...>]
#          [ENV <VAR=value...>]): a Check test executable registered with CTest.
function(kpu_test name)
    cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ENV" ${ARGN})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 60)
    endif()
    add_executable(${name} ${T_SOURCES})
    kpu_target_defaults(${name})
    target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CHECK)
    add_test(NAME ${name} COMMAND ${name})
    set(_env "CK_DEFAULT_TIMEOUT=${T_TIMEOUT}" "KPU_TEST_DATA=${KPU_TEST_DATA}" ${T_ENV})
    set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${_env}")
    if(T_LABELS)
        set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
    endif()
endfunction()
