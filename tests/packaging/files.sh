#!/bin/sh
# SPDX-License-Identifier: MIT
# Static checks of packaging/ (fast, no root): kpud.conf names every key daemon/config.c
# accepts and no other; the man pages generate without groff warnings; the maintainer
# scripts and the bash completion parse; sysusers.d parses; the units pass
# `systemd-analyze verify` (ExecStart pointed at the built kpud, since none is installed).
# Usage: files.sh SOURCE_DIR KPUD_BINARY
set -eu
src=$(cd "$1" && pwd)
kpud=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { passed=$((passed + 1)); echo "ok   $*"; }
no() { failed=$((failed + 1)); echo "FAIL $*"; }
need() { # a tool the check needs: missing is a failure under CI=true, else a skip
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "${CI:-}" = true ]; then no "$1 not installed"; else echo "skip: $1 not installed"; fi
    return 1
}

# Every key of config.c's set_key() appears as "#key = " in kpud.conf, and back.
grep -o 'strcmp(k, "[a-z_]*")' "$src/daemon/config.c" | sed 's/.*"\(.*\)".*/\1/' | sort -u \
    >"$tmp/keys.c"
grep -o '^#[a-z_]* =' "$src/packaging/kpud.conf" | sed 's/^#//; s/ =$//' | sort -u >"$tmp/keys.conf"
if diff "$tmp/keys.c" "$tmp/keys.conf" >"$tmp/keys.diff"; then
    ok "kpud.conf lists the $(wc -l <"$tmp/keys.c") keys of config.c"
else
    no "kpud.conf and config.c keys differ: $(cat "$tmp/keys.diff")"
fi
# The file as shipped, and with every default uncommented, is accepted by kpud.
sed 's/^#\([a-z_]* =\)/\1/' "$src/packaging/kpud.conf" >"$tmp/uncommented.conf"
for conf in "$src/packaging/kpud.conf" "$tmp/uncommented.conf"; do
    # --version exits after the option parse; the file is read by a --replay of nothing:
    # run kpud until it has read the file (a bad key exits 1 at once).
    if "$kpud" --config "$conf" --state-dir "$tmp/state" --socket "$tmp/s.sock" \
        --replay /nonexistent.kcap >"$tmp/kpud.log" 2>&1; then :; fi
    if grep -q "unknown key\|invalid value\|syntax error\|unknown section" "$tmp/kpud.log"; then
        no "kpud rejects $(basename "$conf"): $(head -n1 "$tmp/kpud.log")"
    else
        ok "kpud reads $(basename "$conf")"
    fi
done

if need scdoc; then
    for page in "$src"/packaging/man/*.scd; do
        name=$(basename "$page" .scd)
        if scdoc <"$page" >"$tmp/$name" && [ -z "$(groff -man -Tutf8 -ww -z "$tmp/$name" 2>&1)" ]
        then ok "man page $name"; else no "man page $name"; fi
    done
fi
for s in "$src"/packaging/deb/kpud.postinst "$src"/packaging/deb/kpud.prerm \
    "$src"/packaging/deb/kpud.postrm; do
    if sh -n "$s"; then ok "sh -n $(basename "$s")"; else no "sh -n $(basename "$s")"; fi
done
if bash -n "$src/packaging/bash-completion/kpuctl"; then ok "bash completion parses"
else no "bash completion parses"; fi
if need systemd-sysusers; then
    if systemd-sysusers --dry-run "$src/packaging/sysusers/kpud.conf" >"$tmp/su" 2>&1 &&
        ! grep -qi "ignoring\|failed" "$tmp/su"; then ok "sysusers.d parses"
    else no "sysusers.d: $(cat "$tmp/su")"; fi
fi
if need systemd-analyze; then
    mkdir -p "$tmp/units"
    sed "s|^ExecStart=/usr/sbin/kpud|ExecStart=$kpud|" "$src/packaging/systemd/kpud.service" \
        >"$tmp/units/kpud.service"
    cp "$src/packaging/systemd/kpud.socket" "$tmp/units/"
    if out=$(systemd-analyze verify --man=no "$tmp/units/kpud.service" "$tmp/units/kpud.socket" 2>&1) &&
        [ -z "$out" ]; then ok "systemd-analyze verify"; else no "systemd-analyze verify: $out"; fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
