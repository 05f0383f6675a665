#!/bin/sh
# SPDX-License-Identifier: MIT
# Fail if any tracked C source or header differs from .clang-format (CI runs this).
set -eu
cd "$(dirname "$0")/.."
bad=$(git ls-files '*.c' '*.h' | while read -r f; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"
done)
if [ -n "$bad" ]; then
    echo "not clang-formatted (run clang-format -i on them):" >&2
    echo "$bad" >&2
    exit 1
fi
echo "format: ok"
