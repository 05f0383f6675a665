# SPDX-License-Identifier: MIT
# Packaging and operations (issue 8):
#  - check_systemd: kpud's systemd protocol without systemd running: READY/STATUS/WATCHDOG/
#    STOPPING on a notification socket the test owns, socket activation through
#    systemd-socket-activate, SIGHUP reload with a live subscriber, SIGTERM flush.
#  - packaging_files: systemd-analyze verify on the units, the man pages render, the
#    sysusers/tmpfiles/udev files parse, kpud.conf names every key config.c knows.
#  - packaging_debs (label "deb", run by .ci/run's packaging stage): build the debs with
#    CPack and install them into a Debian 12 root (tests/packaging/debs.sh).
if(TARGET kpud AND TARGET kpuctl AND TARGET kpu_test_harness)
    find_program(KPU_SOCKET_ACTIVATE systemd-socket-activate)
    if(NOT KPU_SOCKET_ACTIVATE)
        set(KPU_SOCKET_ACTIVATE /usr/bin/systemd-socket-activate)
    endif()
    kpu_test(check_systemd SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_systemd.c
             LIBS kpu_test_harness TIMEOUT 300 LABELS integration packaging)
    add_dependencies(check_systemd kpud kpuctl kpu-agent-sim)
    target_compile_definitions(check_systemd PRIVATE
        KPU_TEST_KPUCTL="$<TARGET_FILE:kpuctl>"
        KPU_TEST_SOCKET_ACTIVATE="${KPU_SOCKET_ACTIVATE}"
        KPU_TEST_REPLAY_DIR="${CMAKE_SOURCE_DIR}/tests/replay")
endif()

if(TARGET kpud)
    add_test(NAME packaging_files
             COMMAND sh ${CMAKE_SOURCE_DIR}/tests/packaging/files.sh ${CMAKE_SOURCE_DIR}
                     $<TARGET_FILE:kpud>)
    set_tests_properties(packaging_files PROPERTIES TIMEOUT 120 LABELS "packaging")
endif()

# Root, network (the Debian mirror) and about 2 to 5 minutes: off in the normal test run;
# .ci/run's "packaging" stage runs tests/packaging/debs.sh itself.
option(KPU_TEST_DEBS "Register packaging_debs (debs installed into a debootstrap root)" OFF)
if(KPU_TEST_DEBS)
    add_test(NAME packaging_debs
             COMMAND bash ${CMAKE_SOURCE_DIR}/tests/packaging/debs.sh ${CMAKE_SOURCE_DIR}
                     ${CMAKE_BINARY_DIR}/packaging-test)
    set_tests_properties(packaging_debs PROPERTIES TIMEOUT 1200 LABELS "packaging;deb"
                         ENVIRONMENT "KPU_TEST_DATA=${KPU_TEST_DATA}")
endif()
