#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The README's run command: install what kpud needs, build it, and run it.
# Stage of the project at this commit: the protocols, framing and firmware cross build
# exist; the daemon and the simulated board come with the next issues, so this builds
# everything and prints what was built.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
cmake -S "$here" -B "$here/build" >/dev/null
cmake --build "$here/build" -j "$(nproc 2>/dev/null || echo 2)"
echo
echo "kpud: build done in $here/build"
echo "  framing benchmark:   $here/build/bench/bench_klink"
echo "  firmware link check: $here/build/firmware/kfa-portable-check.elf"
