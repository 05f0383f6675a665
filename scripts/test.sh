#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build kpud with warnings as errors and run every test (the README's test command).
# Usage: scripts/test.sh [build-dir]      (default: build)
# Extra CMake options can be passed in KPU_CMAKE_ARGS. Tests that need the shared models
# and images read them from $KPU_TEST_DATA (default ../shared/data); without them they
# skip, except under CI=true, where they fail.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$here/build"}
jobs=$(nproc 2>/dev/null || echo 2)

# shellcheck disable=SC2086
cmake -S "$here" -B "$build" -DKPU_WERROR=ON ${KPU_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" ${KPU_CTEST_ARGS:-}
