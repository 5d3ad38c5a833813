#!/usr/bin/env bash
# Runs the comparison: the pipe benchmark (criterion, ~2 s per benchmark,
# about 2 minutes in all) and the idle-memory measurement, then prints both
# tables. Arguments are passed to criterion as a filter, e.g.
#   ./run.sh text_1024        # re-run one group
#   SKIP_BENCH=1 ./run.sh     # only re-print the table and measure memory
#   WSCORE_VARIANTS=1 ./run.sh # also wscore with retained_buffer_capacity = 1 MiB
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ -z "${SKIP_BENCH:-}" ]]; then
  echo "== pipe benchmark (load: $(cut -d' ' -f1-3 /proc/loadavg)) =="
  cargo bench --bench pipe -- "$@"
fi

echo
echo "== idle memory =="
cargo run --quiet --release --bin idle_memory

echo
echo "== pipe throughput (median of criterion's samples) =="
python3 summary.py
echo "(load at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
