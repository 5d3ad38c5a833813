#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for SECONDS (default 20) on a
# temporary copy of its committed corpus (plus fuzz/regressions/<target>/,
# inputs that once found a defect),
# with fuzz/dict/<target>.dict if there is one,
# so nothing is written into the repository except fuzz/target (build output)
# and, on a crash, fuzz/artifacts/<target>/ (both ignored by git).
# Exits non-zero if any target crashes, times out or fails to build.
#
#   fuzz/run.sh [SECONDS]
#
# Needs only a stable Rust toolchain and a C++ compiler (libFuzzer is built
# from source by libfuzzer-sys): RUSTC_BOOTSTRAP=1 lets stable rustc accept
# the -Z flags cargo-fuzz passes. FUZZ_SANITIZER=none|address (default
# address) picks the sanitizer.
set -euo pipefail

SECS="${1:-20}"
case "$SECS" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
SANITIZER="${FUZZ_SANITIZER:-address}"
FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$FUZZ_DIR"
echo "fuzz: building all targets (sanitizer: $SANITIZER)"
cargo fuzz build --sanitizer "$SANITIZER"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wscore-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
touch "$WORK/start"

passed=0
failed=0
failures=()
for target in $(cargo fuzz list); do
    corpus="$WORK/corpus/$target"
    mkdir -p "$corpus" "artifacts/$target"
    if [ -d "corpus/$target" ]; then cp -R "corpus/$target/." "$corpus/"; fi
    if [ -d "regressions/$target" ]; then cp -R "regressions/$target/." "$corpus/"; fi
    echo "fuzz: running $target for ${SECS}s on $(find "$corpus" -type f | wc -l) inputs"
    log="$WORK/$target.log"
    # A dictionary of the input's building blocks, where the target has one.
    dict=()
    if [ -f "dict/$target.dict" ]; then dict=(-dict="dict/$target.dict"); fi
    # -timeout: a single input taking this long counts as a failure (a hang).
    if cargo fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" -- \
        -max_total_time="$SECS" -timeout=30 -print_final_stats=1 ${dict[@]+"${dict[@]}"} >"$log" 2>&1; then
        passed=$((passed + 1))
        grep -E '^(Done|stat::number_of_executed_units)' "$log" | sed "s/^/fuzz: $target: /" || true
    else
        failed=$((failed + 1))
        failures+=("$target")
        echo "fuzz: $target FAILED; what it reported:"
        grep -E -A4 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|Failing input|ALARM|error(\[E[0-9]+\])?:' "$log" | head -n 40 || true
        echo "fuzz: the end of its log:"
        tail -n 15 "$log"
        find "artifacts/$target" -type f -newer "$WORK/start" | while read -r crash; do
            echo "fuzz: $target: input $FUZZ_DIR/$crash (hex):"
            od -An -tx1 -v "$crash" | head -n 40
        done
    fi
done

if [ "$failed" -gt 0 ]; then
    echo "fuzz: failing targets: ${failures[*]}"
    echo "fuzz: reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <input>"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
