#!/bin/sh
# SPDX-License-Identifier: MIT
# Install libkpu-client from the build tree into a temporary prefix, then build the
# examples against the installed copy twice (pkg-config, and find_package(kpu-client)),
# and run each against kpud-ipc-testd. Arguments: BUILD_DIR SOURCE_DIR TESTD CC
set -eu
build=$1 src=$2 testd=$3 cc=$4
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
# The library's components (packaging/CMakeLists.txt: the libkpu-client1 and -dev debs).
for comp in libclient libclient_dev; do
    cmake --install "$build" --prefix "$tmp/prefix" --component $comp >/dev/null
done
libdir=$(dirname "$(find "$tmp/prefix" -name kpu-client.pc | head -n1)")
test -n "$libdir" || { echo "kpu-client.pc not installed"; exit 1; }
export PKG_CONFIG_PATH="$libdir"
prefix_lib=$(dirname "$libdir")
export LD_LIBRARY_PATH="$prefix_lib"
for ex in query_sync watch_poll; do
    # shellcheck disable=SC2046
    "$cc" -std=c11 -Wall -Werror -o "$tmp/pc_$ex" "$src/client-lib/examples/$ex.c" \
        $(pkg-config --cflags --libs kpu-client)
done
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Werror -o "$tmp/pc_watch_libuv" "$src/client-lib/examples/watch_libuv.c" \
    $(pkg-config --cflags --libs kpu-client libuv)
cmake -S "$src/tests/integration/clients/consumer" -B "$tmp/consumer" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" -DKPU_EXAMPLES_DIR="$src/client-lib/examples" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
# The installed headers are plain C11 and self-contained.
printf '#include <kpu/client.h>\nint main(void){return kpu_client_version() == KPU_CLIENT_VERSION_HEX ? 0 : 1;}\n' \
    > "$tmp/hdr.c"
"$cc" -std=c11 -pedantic -Wall -Werror -o "$tmp/hdr" "$tmp/hdr.c" $(pkg-config --cflags --libs kpu-client)
"$tmp/hdr"
sock="$tmp/kpud.sock"
"$testd" --socket "$sock" --publish-ms 5 > "$tmp/ready" &
pid=$!
i=0
while ! grep -q ready "$tmp/ready" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 500 ] || { echo "testd did not start"; exit 1; }; sleep 0.01
done
export KPUD_SOCKET="$sock"
for bin in "$tmp"/pc_query_sync "$tmp"/consumer/query_sync; do
    out=$(timeout 20 "$bin" 3)
    echo "$out" | grep -q "^3 rows$" || { echo "$bin: $out"; exit 1; }
done
for bin in "$tmp"/pc_watch_poll "$tmp"/pc_watch_libuv "$tmp"/consumer/watch_poll "$tmp"/consumer/watch_libuv; do
    n=$(timeout 20 "$bin" 3 2>/dev/null | grep -c "seq")
    [ "$n" -eq 3 ] || { echo "$bin printed $n events"; exit 1; }
done
echo "1 passed, 0 failed"
