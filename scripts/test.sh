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

# The emulated-USB end-to-end test runs when its guest is prepared
# (scripts/install-e2e-deps.sh, which CI runs).
e2e=""
if ls "$here"/.deps/e2e/root/.done-* >/dev/null 2>&1; then
    e2e="-DKPU_E2E=ON"
fi
# shellcheck disable=SC2086
cmake -S "$here" -B "$build" -DKPU_WERROR=ON $e2e ${KPU_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" ${KPU_CTEST_ARGS:-}
