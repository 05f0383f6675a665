#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Install everything kpud needs to build, test and run on Debian 12 (bookworm):
# the Debian packages, and the nanopb runtime sources for the firmware (Debian ships
# pb_encode.c & co. only in its source package, so they are unpacked into .deps/nanopb,
# which git ignores). Safe to run again. Needs root or sudo.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

PACKAGES="
build-essential cmake pkg-config git ca-certificates python3
clang clang-format libclang-rt-14-dev llvm
libuv1-dev libusb-1.0-0-dev libsqlite3-dev sqlite3 libsystemd-dev libinih-dev libstb-dev
libjpeg62-turbo-dev libpng-dev libjson-c-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
libprotobuf-c-dev protobuf-c-compiler protobuf-compiler nanopb libnanopb-dev
check scdoc debootstrap valgrind
gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
qemu-system-misc
"

echo "kpud: installing Debian packages"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $PACKAGES >/dev/null

# nanopb runtime sources, matching the installed generator's version.
nanopb_dir="$here/.deps/nanopb"
if [ ! -f "$nanopb_dir/pb_encode.c" ]; then
    echo "kpud: fetching the nanopb source package for the firmware build"
    if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        $SUDO sh -c 'cat > /etc/apt/sources.list.d/kpud-deb-src.sources' <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        $SUDO apt-get update -qq
    fi
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get source --download-only -qq nanopb >/dev/null 2>&1)
    orig=$(ls "$tmp"/nanopb_*.orig.tar.* | head -n 1)
    mkdir -p "$nanopb_dir"
    tar -xf "$orig" -C "$nanopb_dir" --strip-components=1
    rm -rf "$tmp"
    [ -f "$nanopb_dir/pb_encode.c" ] || { echo "kpud: nanopb sources not found" >&2; exit 1; }
fi
echo "kpud: dependencies ready"
