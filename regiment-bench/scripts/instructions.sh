#!/usr/bin/env bash
# Instructions per request of plain_axum and of hello (1 worker, criteria off and on), counted
# by callgrind over the same number of keep-alive requests of GET /pid, and where they differ,
# function by function. Deterministic where a timed run is not: it needs no quiet machine.
#
#   cargo build --release -p examples --bin hello --bin plain_axum
#   cargo build --release -p regiment-bench --bins
#   regiment-bench/scripts/instructions.sh [REQUESTS]     # default 10000; needs valgrind
#
# The counts include each process's start (about 1.5 M instructions, the same order for both
# servers), so use 10,000 requests or more. Output: target/regiment-bench/callgrind/.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}
BIN=target/release
OUT=target/regiment-bench/callgrind
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 2; }
rm -rf "$OUT" && mkdir -p "$OUT"

# Starts $2... under callgrind (children traced: hello's worker), loads it with $N requests,
# stops it, and leaves the serving process's profile as $OUT/$1.out.
measure() {
  local name=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$OUT/$name"
  env "$@" HELLO_BIND=127.0.0.1:$port valgrind --tool=callgrind --trace-children=yes \
    --callgrind-out-file="$OUT/$name/%p.out" "$BIN/$SERVER" >/dev/null 2>"$OUT/$name/stderr" &
  local pid=$!
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/pid" && break
    sleep 0.1
  done
  "$BIN/regiment-load" -c 32 -d 300s -n "$N" --warmup 0s --json "http://127.0.0.1:$port/pid" \
    >"$OUT/$name/load.json"
  kill -TERM "$pid"
  wait "$pid" || true
  # The serving process is the one that ran the most instructions (hello's master idles).
  local best
  best=$(grep -H '^summary:' "$OUT/$name"/*.out | sort -t' ' -k2 -n | tail -1 | cut -d: -f1)
  cp "$best" "$OUT/$name.out"
}

SERVER=plain_axum measure plain
SERVER=hello measure hello-criteria-off HELLO_WORKERS=1 HELLO_CRITERIA=off \
  HELLO_MAX_REQUESTS=1000000000000 REGIMENT_START_TIMEOUT=120s
SERVER=hello measure hello-criteria-on HELLO_WORKERS=1 HELLO_CRITERIA=on \
  HELLO_MAX_REQUESTS=1000000000000 REGIMENT_START_TIMEOUT=120s
python3 regiment-bench/scripts/instructions.py "$N" "$OUT/plain.out" \
  "$OUT/hello-criteria-off.out" "$OUT/hello-criteria-on.out"
