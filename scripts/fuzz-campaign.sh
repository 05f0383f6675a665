#!/bin/sh
# SPDX-License-Identifier: MIT
#
# LONG (hours; not run by CI): a fuzzing campaign over every libFuzzer target, one after
# the other, each for HOURS hours (default 2), with the corpus kept in the build directory
# between campaigns. It is scripts/fuzz.sh with a long time per target, plus a report of
# executions, corpus size and coverage (libFuzzer's cov: and ft: counters) per target in
# <build>/fuzz-campaign.txt, the figures docs/reliability.md records.
#
# Usage: scripts/fuzz-campaign.sh [hours-per-target] [build-dir] [target...]
#        (defaults: 2, build-fuzz, every target)
# A crash stops the campaign; its input is in <build>/artifacts/<target>/: minimise it
# (target -minimize_crash=1), fix the bug, and add the input to tests/fuzz/regressions/<target>/.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
hours=${1:-2}
build=${2:-"$here/build-fuzz"}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
secs=$(awk "BEGIN { printf \"%d\", $hours * 3600 }")

CC=clang cmake -S "$here" -B "$build" -DKPU_FUZZ=ON -DKPU_BUILD_FIRMWARE=OFF \
    -DKPU_BUILD_BENCH=OFF -DKPU_WERROR=ON >/dev/null
targets=${*:-$(cat "$build/tests/fuzz/targets.txt")}
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc)" --target $targets >/dev/null

report="$build/fuzz-campaign.txt"
echo "# fuzz campaign $(date -u +%Y-%m-%dT%H:%MZ), ${hours} h per target, $(nproc) cores" >"$report"
for t in $targets; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus" "$build/artifacts/$t"
    seeds=""
    for d in "$here/tests/fuzz/regressions/$t" "$here/tests/fuzz/seeds/$t"; do
        [ -d "$d" ] && seeds="$seeds $d"
    done
    extra=$(cat "$build/tests/fuzz/$t.corpus" 2>/dev/null || true)
    log="$build/artifacts/$t/campaign.log"
    # One job per core; -fork keeps going past timeouts and OOMs but stops on a crash.
    # shellcheck disable=SC2086
    if ! "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
        -fork="$(nproc)" -ignore_timeouts=1 -ignore_ooms=1 -ignore_crashes=0 \
        -artifact_prefix="$build/artifacts/$t/" -rss_limit_mb=2048 -timeout=20 \
        "$corpus" $seeds $extra >"$log" 2>&1; then
        echo "fuzz-campaign: $t FAILED (see $log)" >&2
        grep -A30 -m1 'ERROR\|deadly\|SUMMARY' "$log" >&2 || tail -40 "$log" >&2
        exit 1
    fi
    # -fork mode prints "#N: cov: C ft: F corp: K exec/s: E ..." lines; take the last.
    last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
    execs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(find "$corpus" -type f | wc -l)
    printf '%-20s %14s execs  cov %6s  ft %7s  corpus %6s files\n' "$t" "${execs:-?}" \
        "${cov:-?}" "${ft:-?}" "$corp" | tee -a "$report"
done
echo "fuzz-campaign: no crash; report in $report"
