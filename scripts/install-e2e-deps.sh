#!/bin/sh
# SPDX-License-Identifier: MIT
#
# What the emulated-USB end-to-end tests (tests/e2e) need, all Debian 12 packages:
# qemu-system-x86 (the x86 guest under TCG), busybox-static and cpio (its initramfs),
# and, downloaded and unpacked only (never installed on this machine), the guest's kernel
# (linux-image-amd64's current image: modules for xhci, dummy_hcd, FunctionFS, ch341,
# ftdi_sio) and udev + systemd (systemd-udevd, which Debian's libusb needs for hotplug
# events). The unpacked trees go to .deps/e2e (git ignores .deps). Safe to run again.
# Needs root or sudo for apt-get install.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/.deps/e2e"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x /bin/busybox ] || ! command -v cpio >/dev/null; then
    echo "kpud e2e: installing qemu-system-x86 busybox-static cpio"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-system-x86 busybox-static cpio xz-utils >/dev/null
fi

mkdir -p "$dest/debs"
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$kpkg" ]; then
    $SUDO apt-get update -qq
    kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
for p in "$kpkg" udev systemd; do
    if ! ls "$dest/debs/${p}_"*.deb >/dev/null 2>&1; then
        echo "kpud e2e: downloading $p"
        (cd "$dest/debs" && apt-get download -qq "$p")
    fi
done
if [ ! -f "$dest/root/.done-$kpkg" ]; then
    rm -rf "$dest/root"
    mkdir -p "$dest/root"
    for d in "$dest"/debs/*.deb; do
        dpkg-deb -x "$d" "$dest/root"
    done
    touch "$dest/root/.done-$kpkg"
fi
echo "${kpkg#linux-image-}" > "$dest/kernel-version"
echo "kpud e2e: guest kernel $(cat "$dest/kernel-version") ready in $dest"
