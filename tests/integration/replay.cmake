# SPDX-License-Identifier: MIT
# Replay corpus: every tests/replay/<name>.kcap is played through kpud and what kpud stored
# is compared with tests/replay/<name>.ndjson.
if(NOT TARGET kpud)
    return()
endif()
file(GLOB _kpu_captures ${CMAKE_SOURCE_DIR}/tests/replay/*.kcap)
foreach(cap ${_kpu_captures})
    get_filename_component(name ${cap} NAME_WE)
    add_test(NAME replay_${name}
             COMMAND ${CMAKE_SOURCE_DIR}/tests/replay/replay_check.sh $<TARGET_FILE:kpud> ${cap}
                     ${CMAKE_SOURCE_DIR}/tests/replay/${name}.ndjson)
    set_tests_properties(replay_${name} PROPERTIES TIMEOUT 60 LABELS replay)
endforeach()
