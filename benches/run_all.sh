#!/usr/bin/env bash
# Refreshes every table in benches/RESULTS.md (about 25 minutes on the
# 2-core machine, plus any wait for a quiet machine):
#
#   benches/run_all.sh              # everything
#   PARTS="echo idle" benches/run_all.sh   # some parts: pipe sock memory echo deflate idle broadcast
#
# Each part first waits (up to MAX_WAIT seconds, default 1200) until the
# 1-minute load average is below LOAD_MAX (default 1.2), since the machine
# is shared, and records the load it started and ended at. Servers run
# pinned to core 0 and the load generator to core 1; the pipe benchmark
# runs pinned to core 1. The tables between the <!-- BEGIN x --> and
# <!-- END x --> markers of RESULTS.md are replaced; the text around them
# is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/compare"
results="$here/RESULTS.md"
parts="${PARTS:-pipe sock memory echo deflate idle broadcast}"
load_max="${LOAD_MAX:-1.2}"
max_wait="${MAX_WAIT:-1200}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# 5,000 idle connections need more than the usual 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

load1() { cut -d' ' -f1 /proc/loadavg; }
wait_quiet() {
  local waited=0
  while awk -v l="$(load1)" -v m="$load_max" 'BEGIN { exit !(l >= m) }'; do
    if (( waited >= max_wait )); then
      echo "load still $(load1) after ${waited}s; measuring anyway" >&2
      break
    fi
    sleep 20
    waited=$((waited + 20))
  done
}

# Replaces the lines between <!-- BEGIN $1 --> and <!-- END $1 --> with
# the file $2.
fill() {
  python3 - "$results" "$1" "$2" <<'PY'
import sys
path, name, src = sys.argv[1:]
text = open(path).read()
begin, end = f"<!-- BEGIN {name} -->\n", f"<!-- END {name} -->"
i, j = text.index(begin) + len(begin), text.index(end)
text = text[:i] + open(src).read().rstrip("\n") + "\n" + text[j:]
open(path, "w").write(text)
PY
}

# Runs part $1: the command shown is $2, the command run the rest; fills
# section $1 with its stdout, after the command and the load around it.
part() {
  local name="$1" shown="$2"; shift 2
  [[ " $parts " == *" $name "* ]] || return 0
  wait_quiet
  local before after start
  before="$(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s)
  echo "== $name: $shown (load $before)" >&2
  "$@" > "$out/$name"
  after="$(cut -d' ' -f1-3 /proc/loadavg)"
  {
    echo "Command (in \`benches/compare\`): \`$shown\` — load average $before before, $after after; $(( $(date +%s) - start )) s."
    echo
    cat "$out/$name"
  } > "$out/$name.md"
  fill "$name" "$out/$name.md"
}

cargo build --release --bins --benches --quiet 2>&1 | grep -v '^$' || true

# The machine and the versions measured.
{
  echo '```'
  lscpu | grep -E '^(Architecture|CPU\(s\)|Model name|Thread|Core|Socket|L1d|L2|L3|Flags)' | sed -E 's/^(Flags:\s+).*/\1(avx2: '"$(grep -qw avx2 /proc/cpuinfo && echo yes || echo no)"', avx512f: '"$(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)"')/'
  echo "Kernel: $(uname -r); memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "$(rustc -V)"
  echo "Run: $(date -u +%Y-%m-%dT%H:%MZ); wscore at $(git -C "$here/.." rev-parse --short HEAD)"
  echo '```'
  echo
  echo '| crate | version |'
  echo '|---|---|'
  for c in tungstenite tokio-tungstenite fastwebsockets tokio-websockets ratchet_rs soketto flate2 libz-sys tokio; do
    v=$(awk -v n="$c" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
    echo "| $c | $v |"
  done
} > "$out/machine.md"
fill machine "$out/machine.md"

# Criterion's own report goes to stderr; the section gets summary.py's table.
pipe() { PIPE_PART=whole taskset -c 1 cargo bench --quiet --bench pipe >&2; python3 summary.py; }
sock() { PIPE_PART=sock taskset -c 1 cargo bench --quiet --bench pipe >&2; python3 summary.py sock; }

part pipe "PIPE_PART=whole taskset -c 1 cargo bench --bench pipe; python3 summary.py" pipe
part sock "PIPE_PART=sock taskset -c 1 cargo bench --bench pipe; python3 summary.py sock" sock
part memory "cargo run --release --bin idle_memory" cargo run --quiet --release --bin idle_memory
part echo "taskset -c 1 target/release/tcp echo --reps 3" taskset -c 1 target/release/tcp echo --reps 3
part deflate "taskset -c 1 target/release/tcp deflate --reps 3" taskset -c 1 target/release/tcp deflate --reps 3
part idle "taskset -c 1 target/release/tcp idle --conns 5000" taskset -c 1 target/release/tcp idle --conns 5000
part broadcast "taskset -c 1 target/release/tcp broadcast --reps 3 --clients 1000" \
  taskset -c 1 target/release/tcp broadcast --reps 3 --clients 1000
echo "RESULTS.md refreshed" >&2
