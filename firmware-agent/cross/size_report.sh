#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Size report and budget check of a bare-metal agent image (run after each link by
# firmware-agent/cross/CMakeLists.txt; docs/firmware-size.md explains the budgets).
# usage: size_report.sh NAME IMAGE_BUDGET RAM_BUDGET STACK_BUDGET BUILD_DIR OBJDIR...
# (OBJDIRs: the object folders whose -fstack-usage .su files belong to this image)
# Writes NAME.size.txt and prints it (including whether malloc is in the image at all; it
# is reachable only through hal/rv64/heap_guard.c, which refuses it after init). Fails (exit 1) when
#   - the flashable image NAME.bin is larger than IMAGE_BUDGET bytes,
#   - the RAM plan (image + .bss + heap + stacks, up to __ram_plan_end) is larger than
#     RAM_BUDGET bytes,
#   - the ELF has an undefined symbol (other than weak ones),
#   - one function's frame (-fstack-usage) takes more than an eighth of STACK_BUDGET.
set -eu
name=$1 budget_image=$2 budget_ram=$3 budget_stack=$4 dir=$5
shift 5
elf=$dir/$name.elf bin=$dir/$name.bin out=$dir/$name.size.txt
prefix=${KFA_CROSS_PREFIX:-riscv64-unknown-elf-}
fail=0

sym() {
    "${prefix}nm" "$elf" | awk -v s="$1" '$3 == s { print $1; exit }'
}
hex() {
    printf '%d' "0x$1"
}

image=$(wc -c <"$bin" | tr -d ' ')
base=$(hex "$(sym _start)")
plan_end=$(hex "$(sym __ram_plan_end)")
bss=$(($(hex "$(sym __bss_end)") - $(hex "$(sym __bss_start)")))
stack=$(($(hex "$(sym __stack_top)") - $(hex "$(sym __stack_bottom)")))
ram=$((plan_end - base))
undef=$("${prefix}nm" -u "$elf" | awk '$1 == "U" { print $2 }' | tr '\n' ' ')
heap_users=$("${prefix}nm" "$elf" | awk '$3 ~ /^(__real_)?(malloc|calloc|realloc|_malloc_r)$/ { print $3 }' |
    tr '\n' ' ')
worst=$(find "$@" -name '*.su' -exec cat {} + 2>/dev/null | sort -t "$(printf '\t')" -k2 -n -r |
    head -n 8)
worst_frame=$(printf '%s\n' "$worst" | head -n 1 | cut -f2)
worst_frame=${worst_frame:-0}
dynamic=$(find "$@" -name '*.su' -exec cat {} + 2>/dev/null | grep -c 'dynamic' || true)

{
    echo "== $name"
    "${prefix}size" -A "$elf" | awk 'NR > 2 && $2 > 0 { printf "  %-14s %10d\n", $1, $2 }'
    printf '  %-38s %10d / %10d bytes\n' "flashable image ($name.bin)" "$image" "$budget_image"
    printf '  %-38s %10d / %10d bytes\n' "RAM plan (image+bss+heap+stacks)" "$ram" "$budget_ram"
    printf '  %-38s %10d bytes\n' ".bss (incl. .tbss)" "$bss"
    printf '  %-38s %10d bytes\n' "main stack" "$stack"
    printf '  %-38s %10d bytes (limit %d)\n' "largest frame (-fstack-usage)" "$worst_frame" \
        $((budget_stack / 8))
    printf '  %-38s %10d\n' "frames with dynamic size" "$dynamic"
    echo "  undefined symbols: ${undef:-none}"
    echo "  allocator in image: ${heap_users:-none}"
    echo "  largest frames:"
    printf '%s\n' "$worst" | sed 's/^/    /'
} >"$out"
cat "$out"

if [ "$image" -gt "$budget_image" ]; then
    echo "size_report: $name.bin is $image bytes, over its budget of $budget_image" >&2
    fail=1
fi
if [ "$ram" -gt "$budget_ram" ]; then
    echo "size_report: $name RAM plan is $ram bytes, over its budget of $budget_ram" >&2
    fail=1
fi
if [ -n "$undef" ]; then
    echo "size_report: $name has undefined symbols: $undef" >&2
    fail=1
fi
if [ "$worst_frame" -gt $((budget_stack / 8)) ]; then
    echo "size_report: a frame of $worst_frame bytes is over an eighth of the stack" >&2
    fail=1
fi
exit $fail
