#!/usr/bin/env bash
# Profiles one library's server under one TCP load: runs the load (server
# pinned to core 0, load generator to core 1), attaches `perf record`
# (cpu-clock sampling, DWARF call graphs) to the server for 4 seconds, and
# prints the hottest functions, self time, with their callers.
#
#   ./profile_server.sh wscore echo 64KiB_16c          # perf.data in /tmp/perf-wscore-echo-64KiB_16c.data
#   ./profile_server.sh ratchet deflate 1KiB_64c
#   ./profile_server.sh tokio-websockets echo 16B_64c
#
# The machine has no hardware counters (perf stat shows "not supported"),
# so perf samples the cpu-clock software event.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
lib="$1" mode="$2" scenario="$3"
data="/tmp/perf-$lib-$mode-$scenario.data"
cargo build --release --quiet --bins
taskset -c 1 target/release/tcp "$mode" --libs "$lib" --scenarios "$scenario" --reps 1 --warmup 1 --secs 7 >/dev/null 2>/tmp/profile-load.log &
load=$!
sleep 2
pid=$(pgrep -f "release/server $lib $mode|release/server $lib echo" | head -1)
perf record -q -e cpu-clock -F 2000 --call-graph dwarf,16384 -p "$pid" -o "$data" -- sleep 4 2>/dev/null
wait "$load"
grep '^run' /tmp/profile-load.log >&2 || true
perf report -i "$data" --no-children --sort symbol --stdio --percent-limit 1.5 -G 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-160
