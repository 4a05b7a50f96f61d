#!/usr/bin/env bash
# Instructions per request of several builds of hello (1 worker, criteria off), side by side in
# one run: each NAME=BINARY is started under callgrind and loaded with the same REQUESTS
# keep-alive requests of GET /pid, as instructions.sh does. Run it at two request counts: the
# difference of the totals over the difference of the counts is what a request costs, without
# what a process pays once (its start, its statics).
#
#   regiment-bench/scripts/compare_builds.sh 10000 before=/tmp/a/hello after=target/release/hello
#
# HELLO_CRITERIA=on measures them with hello's criteria on (default off).
# Needs valgrind and target/release/regiment-load (cargo build --release -p regiment-bench).
# Output: target/regiment-bench/compare-REQUESTS/NAME.out (compare-on-REQUESTS with the
# criteria on), profiles with instruction addresses for attribute.py, and a line per build: its
# total instructions (summary) and per request.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=$1; shift
CRITERIA=${HELLO_CRITERIA:-off}
case $CRITERIA in
  off) OUT=target/regiment-bench/compare-$N ;;
  on) OUT=target/regiment-bench/compare-on-$N ;;
  *) echo "compare_builds.sh: HELLO_CRITERIA is on or off, not $CRITERIA" >&2; exit 2 ;;
esac
rm -rf "$OUT" && mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "compare_builds.sh: valgrind is not installed" >&2; exit 2; }
for build in "$@"; do
  name=${build%%=*} bin=${build#*=}
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$OUT/$name"
  HELLO_WORKERS=1 HELLO_CRITERIA=$CRITERIA HELLO_MAX_REQUESTS=1000000000000 REGIMENT_START_TIMEOUT=120s \
    HELLO_BIND=127.0.0.1:$port valgrind --tool=callgrind --dump-instr=yes --trace-children=yes \
    --callgrind-out-file="$OUT/$name/%p.out" "$bin" >/dev/null 2>"$OUT/$name/stderr" &
  pid=$!
  for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$port/pid" && break; sleep 0.1; done
  target/release/regiment-load -c 32 -d 300s -n "$N" --warmup 0s --json \
    "http://127.0.0.1:$port/pid" >"$OUT/$name/load.json"
  kill -TERM "$pid"; wait "$pid" || true
  # The serving process is the one that ran the most instructions (the master idles).
  best=$(grep -H '^summary:' "$OUT/$name"/*.out | sort -t' ' -k2 -n | tail -1 | cut -d: -f1)
  cp "$best" "$OUT/$name.out"
  total=$(grep '^summary:' "$OUT/$name.out" | cut -d' ' -f2)
  echo "$name $total $((total / N))"
done
