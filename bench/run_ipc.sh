#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run the four local-client benchmarks of issue 5 (docs/performance.md "local clients"):
#   bench/run_ipc.sh [BUILD_DIR] [--rt]
# BUILD_DIR defaults to build (configured with tests on, any build type). The benchmarks
# are built first. mosquitto (the fan-out baseline) is installed from Debian when missing
# and this runs as root; otherwise the fan-out comparison is skipped with a message. It
# listens on 127.0.0.1 only, with a private configuration, for the run's duration.
# --rt (root) runs the fan-out benchmark at SCHED_FIFO priority 10 (chrt) and the query
# benchmark at nice -15: on a shared machine this keeps other tenants' jobs out of the
# latency tails; both sides of each comparison get the same priority. (Under SCHED_FIFO the
# query's four thread hops per request came out slower than under nice.)
# Data: the shared models and images from $KPU_TEST_DATA (else ../shared/data); the
# 10-million-row query database is made once in /tmp/kpu-bench-query.db (about 2.5 GB,
# 5 minutes) and reused.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
rt=""
nice=""
if [ "${2:-}" = "--rt" ]; then
    rt="chrt -f 10"
    nice="nice -n -15"
fi
data=${KPU_TEST_DATA:-$here/../shared/data}

cmake --build "$build" --target bench_ingest bench_fanout bench_query bench_rss kpud \
    kpu-agent-sim >/dev/null

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "run_ipc: installing mosquitto (benchmark baseline only)"
        # The Debian package enables a system service; it is not needed and not started here.
        apt-get install -y -qq --no-install-recommends mosquitto libmosquitto1 >/dev/null ||
            echo "run_ipc: could not install mosquitto: fan-out comparison skipped"
    else
        echo "run_ipc: mosquitto absent and not root: fan-out comparison skipped"
    fi
fi

b="$build/bench"
kpud="$build/daemon/kpud"
sim="$build/firmware-agent/hal/posix/kpu-agent-sim"
model="$data/models/maixpy_facedetect_320x240.kmodel"

echo "== ingest"
if [ -f "$model" ]; then
    "$b/bench_ingest" "$kpud" "$here/tests/replay/normal.kcap" 5 "$sim" "$model" "$data/images"
else
    "$b/bench_ingest" "$kpud" "$here/tests/replay/normal.kcap" 5
fi
echo "== fan-out"
$rt "$b/bench_fanout" 5
echo "== history query"
$nice "$b/bench_query" "$kpud" /tmp/kpu-bench-query.db 10000000 2000
echo "== idle RSS"
if [ -f "$model" ]; then
    "$b/bench_rss" "$kpud" "$sim" "$model" "$data/images" 60
else
    echo "run_ipc: $model missing: RSS with a simulated board skipped"
fi
