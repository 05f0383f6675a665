#!/bin/bash
# SPDX-License-Identifier: MIT
#
# LONG (1 hour by default; not run by CI): soak test of the real kpud. A simulated board
# (kpu-agent-sim with the face model, 30 fps) streams for MINUTES minutes while 8 clients
# watch (kpuctl watch --json), with retention bounding the database (max_age 10m, max_bytes
# 8M). Every minute the script records kpud's RSS, its open descriptors, the database
# size (main file + WAL), the frames stored and each watcher's line count, in
# <out>/soak.csv. At the end it fails if kpud died, a watcher stalled, the descriptors
# changed, RSS grew by more than RSS_GROWTH_KB after the first 5 minutes, the database file
# exceeded the retention bound by more than one retention step, or its write-ahead log
# outgrew the store's limit (docs/store.md: retention bounds the main file; the WAL, at
# most about 8 MiB, comes on top).
#
# Usage: scripts/soak.sh [minutes] [build-dir] [out-dir]   (defaults: 60, build, a temp dir)
# Needs KPU_TEST_DATA (or ../shared/data) with the face model and an image.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-60}
build=${2:-"$here/build"}
out=${3:-$(mktemp -d /tmp/kpud-soak-XXXXXX)}
data=${KPU_TEST_DATA:-"$here/../shared/data"}
watchers=8
rss_growth_kb=${RSS_GROWTH_KB:-8192}
db_bound=$((8 * 1024 * 1024))
slack=$((2 * 1024 * 1024)) # a retention step may overshoot the bound briefly
wal_bound=$((8 * 1024 * 1024 + 2 * 1024 * 1024)) # the store's wal_limit_bytes + one cycle

kpud="$build/daemon/kpud"
kpuctl="$build/cli/kpuctl"
sim="$build/firmware-agent/hal/posix/kpu-agent-sim"
for f in "$kpud" "$kpuctl" "$sim" "$data/models/maixpy_facedetect_320x240.kmodel"; do
    [ -e "$f" ] || { echo "soak: $f missing (build first, or set KPU_TEST_DATA)" >&2; exit 2; }
done
mkdir -p "$out"
cat >"$out/kpud.conf" <<CONF
[store]
retention_max_age = 10m
retention_max_bytes = 8M
[ipc]
max_clients = 64
CONF

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${kpud_pid:-}" ] && kill "$kpud_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

"$kpud" --state-dir "$out/state" --socket "$out/kpud.sock" --config "$out/kpud.conf" \
    --sim="$data/images/astronaut_320x240.png" \
    --sim-model "$data/models/maixpy_facedetect_320x240.kmodel" --sim-agent "$sim" \
    --sim-fps 30 >"$out/kpud.log" 2>&1 &
kpud_pid=$!
for _ in $(seq 100); do [ -S "$out/kpud.sock" ] && break; sleep 0.1; done
for i in $(seq "$watchers"); do
    "$kpuctl" --socket "$out/kpud.sock" --json watch >"$out/watch-$i.ndjson" 2>"$out/watch-$i.err" &
    pids+=($!)
done

db="$out/state/kpud.db"
echo "minute,rss_kb,fds,db_bytes,wal_bytes,frames,min_watcher_lines" >"$out/soak.csv"
fds0="" rss5="" prev_min=0 fail=0
for m in $(seq 0 "$minutes"); do
    [ "$m" -gt 0 ] && sleep 60
    if ! kill -0 "$kpud_pid" 2>/dev/null; then echo "soak: kpud died at minute $m" >&2; exit 1; fi
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$kpud_pid/status")
    fds=$(ls "/proc/$kpud_pid/fd" | wc -l)
    dbb=$(stat -c %s "$db" 2>/dev/null || echo 0)
    walb=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
    frames=$(sqlite3 -readonly "$db" 'SELECT count(*) FROM frames' 2>/dev/null || echo 0)
    minw=""
    for i in $(seq "$watchers"); do
        n=$(wc -l <"$out/watch-$i.ndjson")
        [ -z "$minw" ] || [ "$n" -lt "$minw" ] && minw=$n
    done
    echo "$m,$rss,$fds,$dbb,$walb,$frames,$minw" | tee -a "$out/soak.csv"
    [ "$m" -eq 1 ] && fds0=$fds
    [ "$m" -eq 5 ] && rss5=$rss
    if [ "$m" -ge 2 ] && [ "$minw" -le "$prev_min" ]; then
        echo "soak: a watcher stalled at minute $m" >&2; fail=1
    fi
    prev_min=$minw
    if [ "$dbb" -gt $((db_bound + slack)) ]; then
        echo "soak: database $dbb bytes exceeds retention ($db_bound + $slack)" >&2; fail=1
    fi
    if [ "$walb" -gt "$wal_bound" ]; then
        echo "soak: write-ahead log $walb bytes exceeds $wal_bound" >&2; fail=1
    fi
    if [ -n "$fds0" ] && [ "$fds" -ne "$fds0" ]; then
        echo "soak: kpud descriptors changed: $fds0 -> $fds at minute $m" >&2; fail=1
    fi
done
if [ -n "$rss5" ] && [ $((rss - rss5)) -gt "$rss_growth_kb" ]; then
    echo "soak: RSS grew from $rss5 to $rss KiB after minute 5" >&2; fail=1
fi
echo "soak: $minutes minutes, kpud RSS ${rss5:-?} -> $rss KiB after minute 5, fds $fds, database $dbb + WAL $walb bytes; $out/soak.csv"
exit $fail
