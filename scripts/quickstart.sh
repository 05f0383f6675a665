#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The README's run command: install what kpud needs, build it, start kpud with a
# simulated board, and show the live detections with `kpuctl watch`.
#
# The simulated board runs the MaixPy face detector on a test picture. Models are not
# part of the repository: the script looks in $KPU_TEST_DATA (default ../shared/data).
# Without them it replays a capture recorded from that model (tests/replay/normal.kcap)
# and says so.
#
# Usage: scripts/quickstart.sh [seconds]    (default 15; 0 = until Ctrl-C)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-15}
data=${KPU_TEST_DATA:-"$here/../shared/data"}
run="$here/build/quickstart"

"$here/scripts/install-deps.sh"
cmake -S "$here" -B "$here/build" >/dev/null
cmake --build "$here/build" -j "$(nproc 2>/dev/null || echo 2)"

kpud="$here/build/daemon/kpud"
kpuctl="$here/build/cli/kpuctl"
model="$data/models/maixpy_facedetect_320x240.kmodel"
image="$data/images/astronaut_320x240.png"
mkdir -p "$run"
rm -f "$run/kpud.sock"

if [ -f "$model" ] && [ -f "$image" ]; then
    echo "kpud: simulated board with the face model on $(basename "$image")"
    set -- --sim="$image" --sim-model "$model"
else
    echo "kpud: no model found under $data: replaying a capture recorded from the face model"
    set -- --replay "$here/tests/replay/normal.kcap" --replay-loop
fi
"$kpud" --config /dev/null --state-dir "$run/state" --socket "$run/kpud.sock" "$@" \
    2>"$run/kpud.log" &
kpud_pid=$!
trap 'kill $kpud_pid 2>/dev/null; wait $kpud_pid 2>/dev/null' EXIT INT TERM

# Wait for the socket (kpud creates it before it opens the board).
i=0
while [ ! -S "$run/kpud.sock" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $kpud_pid 2>/dev/null; then
        echo "kpud did not start; its log:" >&2
        cat "$run/kpud.log" >&2
        exit 1
    fi
    sleep 0.1
done

export KPUD_SOCKET="$run/kpud.sock"
"$kpuctl" devices
echo
if [ "$seconds" = 0 ]; then
    echo "kpuctl watch (Ctrl-C to stop):"
    "$kpuctl" watch
else
    echo "kpuctl watch for $seconds s:"
    "$kpuctl" watch --seconds "$seconds"
fi
echo
"$kpuctl" stats
cat <<EOT

kpud kept every detection in $run/state/kpud.db. To run it yourself:
  $kpud --config /dev/null --state-dir $run/state --socket $run/kpud.sock $*
  KPUD_SOCKET=$run/kpud.sock $kpuctl watch
EOT
