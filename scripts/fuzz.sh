#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build every libFuzzer target with clang (ASan+UBSan) and run each for a bounded time:
# first its regressions and seeds are replayed, then it fuzzes from a corpus kept in the
# build directory. Prints executions per target and the total; fails on any crash and when
# fewer than KPU_FUZZ_MIN_EXECS executions ran in total.
#
# Usage: scripts/fuzz.sh [seconds-per-target] [build-dir]    (defaults: 30, build-fuzz)
# A long campaign is the same command with a large time, e.g. scripts/fuzz.sh 3600.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-30}
build=${2:-"$here/build-fuzz"}
min_execs=${KPU_FUZZ_MIN_EXECS:-1000000}

CC=clang cmake -S "$here" -B "$build" -DKPU_FUZZ=ON -DKPU_BUILD_FIRMWARE=OFF \
    -DKPU_BUILD_BENCH=OFF -DKPU_WERROR=ON >/dev/null
targets=$(cat "$build/tests/fuzz/targets.txt")
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc)" --target $targets >/dev/null

total=0
for t in $targets; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus" "$build/artifacts/$t"
    seeds=""
    for d in "$here/tests/fuzz/regressions/$t" "$here/tests/fuzz/seeds/$t"; do
        [ -d "$d" ] && seeds="$seeds $d"
    done
    # Extra seed corpora a target declares (e.g. the shared models) are passed read-only.
    extra=$(cat "$build/tests/fuzz/$t.corpus" 2>/dev/null || true)
    log="$build/artifacts/$t/run.log"
    # shellcheck disable=SC2086
    if ! "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$t/" -rss_limit_mb=2048 -timeout=20 \
        "$corpus" $seeds $extra >"$log" 2>&1; then
        echo "fuzz: $t FAILED (see $log):" >&2
        grep -A30 -m1 'ERROR\|deadly\|SUMMARY' "$log" >&2 || tail -40 "$log" >&2
        exit 1
    fi
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    total=$((total + ${n:-0}))
    printf 'fuzz: %-20s %10s executions in %ss\n' "$t" "${n:-0}" "$secs"
done
echo "fuzz: $total executions in total, no crash"
if [ "$total" -lt "$min_execs" ]; then
    echo "fuzz: fewer than $min_execs executions" >&2
    exit 1
fi
