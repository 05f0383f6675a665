#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The installed-system test (issue 8): build the four debs with CPack, install them into
# a clean Debian 12 root made by debootstrap (cached as a tarball under WORK), and check
# them there as a person would:
#   1. without systemd in the root: the maintainer scripts fall back to groupadd/useradd
#      and plain folders, and never fail;
#   2. kpud --version, kpuctl version; users, groups, folders, the conffile;
#   3. the examples of libkpu-client-dev build against the installed pkg-config file and
#      CMake package;
#   4. kpud started from the installed unit's ExecStart line, as user kpud with its groups
#      (what User=, Group=, SupplementaryGroups= give), with a simulated board: a member of
#      kpu gets answers, a user outside it is denied, kpu-admin members are admins;
#   5. systemd then installed in the root: the debs reinstall through systemd-sysusers,
#      `systemd-analyze verify` passes on the installed units, and `systemd-analyze
#      security` gives the exposure score (written to WORK/exposure.txt).
# Usage: debs.sh SOURCE_DIR WORK_DIR   (needs root: debootstrap, chroot, mount)
# Env: KPU_DEB_MIRROR (default: the first Debian URI in the machine's apt sources),
#      KPU_TEST_DATA (the face model and an image for a real simulated board; without them
#      kpud replays its bundled capture, which fails the test under CI=true).
set -euo pipefail

src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
root=$work/root
cache=$work/bookworm-root.tar
debs=$work/debs
build=$work/build
log=$work/debs.log
passed=0
failed=0

say() { printf '== %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check NAME COMMAND...: one counted check
    local name=$1
    shift
    if "$@" >>"$log" 2>&1; then pass "$name"; else fail "$name (see $log)"; fi
}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 "$@"; }
as_user() { # as_user USER COMMAND...: with the user's ids and groups, as login would give
    local user=$1
    shift
    in_root setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
}

kpud_pid=""
cleanup() {
    if [ -n "$kpud_pid" ]; then kill "$kpud_pid" 2>/dev/null || true; fi
    for m in proc dev/pts; do
        if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m" || true; fi
    done
}
trap cleanup EXIT
: >"$log"

mirror=${KPU_DEB_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
        grep -v security | head -n1 || true)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
fi

say "building the debs"
cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DKPUD_INSTALLED_PATHS=ON \
    -DKPU_BUILD_TESTS=OFF -DKPU_BUILD_BENCH=OFF -DKPU_BUILD_FIRMWARE=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log"
cmake --build "$build" -j"$(nproc)" >>"$log"
rm -rf "$debs" && mkdir -p "$debs"
(cd "$build" && cpack -G DEB -B "$debs" >>"$log")
ls "$debs"/*.deb
for p in kpud kpuctl libkpu-client1 libkpu-client-dev; do
    check "deb $p built" test -f "$(ls "$debs"/${p}_*.deb 2>/dev/null | head -n1)"
done

say "a clean Debian 12 root (mirror $mirror)"
if [ ! -f "$cache" ]; then
    rm -rf "$root"
    # Build tools for the examples and the daemon's run-time libraries, so the debs
    # install without further downloads when their dependencies have not changed.
    debootstrap --variant=minbase \
        --include=gcc,libc6-dev,make,cmake,pkg-config,passwd,libuv1-dev,libprotobuf-c-dev,libuv1,libsqlite3-0,libinih1,libprotobuf-c1,libjpeg62-turbo,libpng16-16,libusb-1.0-0,libcurl4,libssl3,zlib1g \
        bookworm "$root" "$mirror" >>"$log" 2>&1
    tar -C "$root" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
fi
rm -rf "$root" && mkdir -p "$root"
tar -C "$root" -xf "$cache"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"
check "no systemd in the root" test ! -e "$root/usr/bin/systemd-sysusers"

say "installing the debs (no systemd, no udev)"
mkdir -p "$root/tmp/debs" && cp "$debs"/*.deb "$root/tmp/debs/"
check "apt-get install the four debs" in_root sh -c \
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/debs/*.deb'
check "kpud --version" in_root sh -c 'kpud --version | grep -q "^kpud [0-9]"'
check "kpuctl version" in_root sh -c 'kpuctl version | grep -q "^kpuctl"'
check "user kpud, groups kpu and kpu-admin" in_root sh -c \
    'getent passwd kpud && getent group kpu && getent group kpu-admin && id -nG kpud | grep -qw kpu'
check "kpud has no login shell" in_root sh -c 'getent passwd kpud | grep -q nologin$'
check "/var/lib/kpud belongs to kpud, 0750" in_root sh -c \
    '[ "$(stat -c %U:%a /var/lib/kpud)" = kpud:750 ]'
check "/etc/kpud/kpud.conf is a conffile" in_root sh -c \
    'dpkg-query -W -f="\${Conffiles}" kpud | grep -q /etc/kpud/kpud.conf'
check "man pages installed" in_root sh -c 'ls /usr/share/man/man8/kpud.8* /usr/share/man/man1/kpuctl.1* \
    /usr/share/man/man5/kpud.conf.5* /usr/share/man/man3/libkpu-client.3*'
check "kpu-agent-sim where kpud looks" in_root test -x /usr/libexec/kpud/kpu-agent-sim
check "manifests in /usr/share/kpud/models" in_root test -f \
    /usr/share/kpud/models/maixpy_facedetect_320x240.ini

say "building the examples against the installed library"
check "examples with pkg-config" in_root sh -c 'cd /usr/share/doc/libkpu-client-dev/examples &&
    for ex in query_sync watch_poll; do
        cc -std=c11 -Wall -Werror -o /tmp/pc_$ex $ex.c $(pkg-config --cflags --libs kpu-client) || exit 1
    done &&
    cc -std=c11 -Wall -Werror -o /tmp/pc_watch_libuv watch_libuv.c \
        $(pkg-config --cflags --libs kpu-client libuv)'
mkdir -p "$root/tmp/consumer"
cp "$src/tests/integration/clients/consumer/CMakeLists.txt" "$root/tmp/consumer/"
check "examples with find_package(kpu-client)" in_root sh -c 'cmake -S /tmp/consumer \
    -B /tmp/consumer/build -DKPU_EXAMPLES_DIR=/usr/share/doc/libkpu-client-dev/examples &&
    cmake --build /tmp/consumer/build'

say "kpud from the unit's ExecStart line, with a simulated board"
execstart=$(sed -n 's/^ExecStart=//p' "$root/usr/lib/systemd/system/kpud.service" | head -n1)
user=$(sed -n 's/^User=//p' "$root/usr/lib/systemd/system/kpud.service")
echo "ExecStart: $execstart (User=$user)"
check "ExecStart names the installed kpud" test -x "$root/${execstart%% *}"
in_root sh -c 'getent passwd alice >/dev/null || useradd -m -G kpu alice
    getent passwd bob >/dev/null || useradd -m bob
    getent passwd carol >/dev/null || useradd -m -G kpu,kpu-admin carol'
kid=$(in_root id -u kpud)
kgid=$(in_root id -g kpud)
data=${KPU_TEST_DATA:-$src/../shared/data}
model=$data/models/maixpy_facedetect_320x240.kmodel
image=$data/images/astronaut_320x240.png
if [ -f "$model" ] && [ -f "$image" ]; then
    # Where `kpuctl model fetch` puts models: kpud's --sim finds it there.
    install -o "$kid" -g "$kgid" -m 0640 "$model" "$root/var/lib/kpud/models/"
    install -m 0644 "$image" "$root/usr/share/kpud/astronaut.png"
    printf '\n[sim]\nenabled = yes\nimages = /usr/share/kpud/astronaut.png\n' \
        >>"$root/etc/kpud/kpud.conf"
    sim=model
else
    [ "${CI:-}" != true ] || { fail "test data missing under CI=true ($data)"; }
    echo "no face model in $data: kpud --sim replays its bundled capture instead"
    printf '\n[sim]\nenabled = yes\n' >>"$root/etc/kpud/kpud.conf"
    sim=replay
fi
# What systemd does before ExecStart: RuntimeDirectory= (owned by User=, 0755).
install -d -o "$kid" -g "$kgid" -m 0755 "$root/run/kpud"
# chroot, env and setpriv each exec the next: $! is kpud itself, for the SIGTERM below.
# shellcheck disable=SC2086
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin LANG=C.UTF-8 \
    setpriv --reuid="$user" --regid="$user" --init-groups -- $execstart >"$work/kpud.log" 2>&1 &
kpud_pid=$!
for _ in $(seq 1 300); do
    [ -S "$root/run/kpud/kpud.sock" ] && break
    sleep 0.1
done
check "kpud listens on /run/kpud/kpud.sock" test -S "$root/run/kpud/kpud.sock"
check "socket is kpud:kpu 0660" sh -c \
    "[ \"\$(chroot '$root' stat -c %U:%G:%a /run/kpud/kpud.sock)\" = kpud:kpu:660 ]"
ok=""
for _ in $(seq 1 300); do
    if as_user alice kpuctl --json devices 2>/dev/null | grep -q 'STREAMING'; then
        ok=1
        break
    fi
    sleep 0.2
done
check "a kpu member sees the simulated board streaming ($sim)" test -n "$ok"
check "a kpu member watches detections" sh -c \
    "chroot '$root' setpriv --reuid=alice --regid=alice --init-groups -- \
     kpuctl --json watch --count 3 | grep -c detection | grep -qx 3"
check "a kpu member is a reader, not an admin" sh -c \
    "chroot '$root' setpriv --reuid=alice --regid=alice --init-groups -- kpuctl debuginfo | grep -q 'role reader'"
check "a kpu-admin member is an admin" sh -c \
    "chroot '$root' setpriv --reuid=carol --regid=carol --init-groups -- kpuctl debuginfo | grep -q 'role admin'"
set +e
as_user bob kpuctl devices >"$work/bob.txt" 2>&1
rc=$?
set -e
echo "bob: exit $rc: $(cat "$work/bob.txt")" >>"$log"
check "a user outside kpu is denied (exit 4)" test "$rc" -eq 4
check "kpuctl debuginfo as a member" sh -c \
    "chroot '$root' setpriv --reuid=alice --regid=alice --init-groups -- kpuctl debuginfo > '$work/debuginfo.txt'"
kill -TERM "$kpud_pid"
rc=0
wait "$kpud_pid" || rc=$?
kpud_pid=""
check "kpud stops cleanly on SIGTERM" test "$rc" -eq 0
check "kpud ran as user kpud (database owned by it)" sh -c \
    "[ \"\$(chroot '$root' stat -c %U /var/lib/kpud/kpud.db)\" = kpud ]"

say "with systemd in the root"
if in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd' \
    >>"$log" 2>&1; then
    check "reinstall through systemd-sysusers" in_root sh -c \
        'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall /tmp/debs/kpud_*.deb'
    check "units enabled by the postinst" in_root sh -c \
        'test -L /etc/systemd/system/multi-user.target.wants/kpud.service &&
         test -L /etc/systemd/system/sockets.target.wants/kpud.socket'
    check "systemd-analyze verify kpud.service kpud.socket" in_root sh -c \
        'out=$(systemd-analyze verify --man=no /usr/lib/systemd/system/kpud.service \
               /usr/lib/systemd/system/kpud.socket 2>&1); echo "$out"; [ -z "$out" ]'
    if in_root systemd-analyze security --offline=yes --no-pager \
        /usr/lib/systemd/system/kpud.service >"$work/security.txt" 2>&1; then
        score=$(grep -o 'Overall exposure level for kpud.service: [0-9.]* [A-Z]*' \
            "$work/security.txt" | sed 's/.*: //')
        echo "$score" >"$work/exposure.txt"
        pass "systemd-analyze security: exposure $score"
    else
        echo "systemd-analyze security did not run (see $work/security.txt)"
    fi
    check "purge leaves no unit enabled and no state" in_root sh -c \
        'DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kpud &&
         test ! -e /etc/systemd/system/multi-user.target.wants/kpud.service &&
         test ! -e /var/lib/kpud'
else
    fail "systemd could not be installed in the root (see $log)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
