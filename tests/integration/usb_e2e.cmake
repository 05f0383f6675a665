# SPDX-License-Identifier: MIT
# The emulated-USB end-to-end test lives in tests/e2e (its own folder, DESIGN.md §8);
# tests/CMakeLists.txt globs this folder, so it is pulled in from here.
include(${CMAKE_SOURCE_DIR}/tests/e2e/e2e.cmake)
