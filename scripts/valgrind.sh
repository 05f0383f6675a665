#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Valgrind memcheck over the integration tests that drive the real kpud (issue 9): each
# test executable runs under valgrind with --trace-children=yes, so every kpud it starts is
# checked too (kpu-agent-sim, shells and sqlite3 are skipped: the emulated KPU is far too
# slow under valgrind and is not the daemon). Passes when every checked process reports
# 0 errors and 0 bytes definitely lost; the per-process logs are in <build>/valgrind/.
#
# The suites run with fewer rounds than in the normal run (valgrind slows kpud ~30x):
# KPU_REL_CRASH_ROUNDS=5. kill -9 rounds cannot report leaks for the killed kpud; its
# errors up to the kill are still reported.
#
# Usage: scripts/valgrind.sh [build-dir] [test...]
#   (defaults: build-valgrind, a plain -O1 -g build without sanitizers; the tests
#    check_rel_security check_rel_storage check_rel_clients check_rel_crash check_rel_device)
# CI runs it (.ci/run); about 2.5 minutes on 2 cores after the build.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$here/build-valgrind"}
[ $# -ge 1 ] && shift
tests=${*:-check_rel_security check_rel_storage check_rel_clients check_rel_crash check_rel_device}

cmake -S "$here" -B "$build" -DKPU_BUILD_FIRMWARE=OFF -DKPU_BUILD_BENCH=OFF -DKPU_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc)" --target kpud kpu-agent-sim $tests >/dev/null

logs="$build/valgrind"
rm -rf "$logs"
mkdir -p "$logs"
export KPU_TEST_DATA="${KPU_TEST_DATA:-$(sed -n 's/^KPU_TEST_DATA:[A-Z]*=//p' "$build/CMakeCache.txt")}"
export KPU_REL_CRASH_ROUNDS="${KPU_REL_CRASH_ROUNDS:-5}"
export CK_DEFAULT_TIMEOUT=1800 CK_TIMEOUT_MULTIPLIER=10 KPU_REL_NO_RSS_BOUNDS=1
status=0
failed_tests=""
for t in $tests; do
    echo "valgrind: $t"
    if ! valgrind --tool=memcheck --trace-children=yes \
        --trace-children-skip='*/kpu-agent-sim,*/sh,*/bash,*/sqlite3' \
        --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --child-silent-after-fork=no --log-file="$logs/$t.%p.log" \
        "$build/tests/$t" >"$logs/$t.out" 2>&1; then
        # Under valgrind everything runs tens of times slower, and a few of these suites
        # assert timing (events within a window, drops under a flood). Those assertions
        # are enforced by the normal and ASan runs; here a failed one is reported, and the
        # test process's own leaks (a failed check exits mid-test) are not counted.
        echo "valgrind: $t failed its own checks under valgrind (see $logs/$t.out):" >&2
        grep -E ':[FE]:' "$logs/$t.out" >&2 || true
        failed_tests="$failed_tests $t"
    fi
done
# kpud's logs (and any process's memory errors): no error, nothing definitely lost.
bad=""
for f in "$logs"/*.log; do
    [ -e "$f" ] || continue
    if grep -q -E 'Invalid (read|write|free)|uninitialised|Mismatched free|overlap' "$f"; then
        bad="$bad $f"
    elif grep -q -E 'definitely lost: [1-9]' "$f"; then
        # A test process that failed a check leaves its buffers behind; kpud never may.
        t=$(basename "$f" | sed 's/\.[0-9]*\.log$//')
        if grep -q 'Command: .*/kpud ' "$f" || ! echo "$failed_tests" | grep -qw "$t"; then
            bad="$bad $f"
        fi
    fi
done
n=$(find "$logs" -name "*.log" | wc -l)
kpuds=$(grep -l 'Command: .*/kpud ' "$logs"/*.log | wc -l)
if [ -n "$bad" ]; then
    echo "valgrind: errors or definite leaks in:" >&2
    for f in $bad; do
        echo "== $f" >&2
        grep -m1 'Command:' "$f" >&2
        grep -A12 -m3 -E 'Invalid|uninitialised|definitely lost in' "$f" >&2 || true
    done
    status=1
fi
echo "valgrind: $n processes checked ($kpuds kpud runs): $( [ -z "$bad" ] && echo '0 errors, 0 bytes definitely lost' || echo 'FAILURES')"
exit $status
