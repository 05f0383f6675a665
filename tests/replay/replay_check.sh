#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Replay test (gpsfake's idea): play a recorded link capture through the real kpud
# (replay transport, as fast as possible, exit at the end of the capture) into a fresh
# database, dump what kpud stored as NDJSON, and compare with the expected file.
#
# usage: replay_check.sh KPUD CAPTURE.kcap EXPECTED.ndjson [--update]
# --update rewrites EXPECTED from this run (explain any change in the commit message).
set -eu

kpud=$1
capture=$2
expected=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$kpud" --config /dev/null --state-dir "$tmp/state" --socket "$tmp/kpud.sock" \
    --replay "$capture" --replay-speed 0 --replay-exit 2>"$tmp/kpud.log"; then
    echo "kpud failed on $capture:" >&2
    cat "$tmp/kpud.log" >&2
    exit 1
fi

db="$tmp/state/kpud.db"
test "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok
{
    # Sessions in order, then every stored frame with its boxes. Host times differ between
    # runs and are left out; scores are rounded to 3 decimals.
    sqlite3 "$db" "SELECT json_object('session', row_number() OVER (ORDER BY id),
        'agent_version', agent_version, 'model', model, 'reset_cause', reset_cause,
        'frames', frames, 'frames_lost', frames_lost, 'link_errors', link_errors)
        FROM sessions ORDER BY id"
    sqlite3 "$db" "SELECT json_object('session', s.n, 'frame_seq', f.frame_seq,
        'model', f.model, 'image', json_array(f.image_w, f.image_h), 'n_boxes', f.n_boxes,
        'boxes', (SELECT json_group_array(json_object('class', d.class_id, 'label', d.label,
                  'score', round(d.score, 3), 'x', d.x, 'y', d.y, 'w', d.w, 'h', d.h))
                  FROM (SELECT * FROM detections WHERE frame_id = f.id ORDER BY id) d))
        FROM frames f JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM sessions) s
        ON s.id = f.session_id ORDER BY f.id"
} >"$tmp/out.ndjson"

if [ "${4:-}" = "--update" ]; then
    cp "$tmp/out.ndjson" "$expected"
    echo "updated $expected ($(wc -l <"$expected") lines)"
    exit 0
fi
if ! diff -u "$expected" "$tmp/out.ndjson"; then
    echo "replay of $capture differs from $expected" >&2
    exit 1
fi
echo "replay $capture: $(wc -l <"$expected") lines as expected"
