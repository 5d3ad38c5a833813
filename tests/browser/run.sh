#!/usr/bin/env bash
# The chat example's browser test: builds examples/chat in release mode,
# starts it on a free port, drives it with chat.mjs (headless Chromium
# through playwright-core), stops it, and exits with the test's status.
#
# Needs Node.js 20+ and npm, and Chromium, which this script does not
# install: `apt-get install -y chromium` (or set CHROMIUM to a browser).
# CHAT_FLAGS adds server flags, e.g. CHAT_FLAGS=--no-deflate.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "run.sh: no Chromium at $CHROMIUM; install it (apt-get install -y chromium) or set CHROMIUM" >&2
  exit 1
fi

cargo build --release --example chat --features tokio --manifest-path "$root/Cargo.toml"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

log="$(mktemp)"
server=""
stop() {
  if [[ -n "$server" ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap stop EXIT

# Port 0: the system picks a free port, and the server prints it, so no
# other process can take it between choosing and binding. `--ping 1` makes
# the heartbeat step take seconds, not minutes.
# shellcheck disable=SC2086 # CHAT_FLAGS is a list of flags.
"${CARGO_TARGET_DIR:-$root/target}/release/examples/chat" 127.0.0.1:0 --ping 1 ${CHAT_FLAGS:-} >"$log" 2>&1 &
server=$!

port=""
for _ in $(seq 100); do
  port="$(sed -n 's|^chat listening on http://127\.0\.0\.1:\([0-9]*\)/$|\1|p' "$log")"
  [[ -n "$port" ]] && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "run.sh: the server exited before listening:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "run.sh: the server did not start listening within 10 s:" >&2
  cat "$log" >&2
  exit 1
fi
# It prints after binding, but check that the port takes connections.
accepting=""
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    accepting=1
    break
  fi
  sleep 0.1
done
if [[ -z "$accepting" ]]; then
  echo "run.sh: port $port does not take connections" >&2
  exit 1
fi

deflate=1
[[ " ${CHAT_FLAGS:-} " == *" --no-deflate "* ]] && deflate=0
status=0
# The test keeps to 30 s itself; the outer limit is for a stuck Node.
CHAT_URL="http://127.0.0.1:$port/" CHAT_LOG="$log" CHAT_DEFLATE="$deflate" timeout 60 node "$here/chat.mjs" || status=$?
if [[ "$status" -ne 0 ]]; then
  echo "run.sh: the browser test failed ($status); the server's output:" >&2
  cat "$log" >&2
fi
exit "$status"
