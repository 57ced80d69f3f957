#!/usr/bin/env bash
# Control-plane benchmark (run by hand, not by CI): a release `tmirror serve` on SQLite in a
# temporary data directory, driven by the loadgen example over loopback. Prints creates per
# second (signed), show requests per second with 10,000 sessions stored, and the latency of a
# 100-item list page.
#
#   bench/control-plane.sh [CONCURRENCY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
conc="${1:-32}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p tmirror-cli -p tmirror-server --bins --example loadgen
dir="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$target"/release/tmirror serve --listen "127.0.0.1:$port" --data-dir "$dir" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
lg() { "$target"/release/examples/loadgen --credentials "$dir/admin-credentials.json" --concurrency "$conc" "$@"; }
echo "machine: $(nproc) cores; server and load generator share them"
lg --scenario create --count 5000
lg --scenario seed --count 10000
lg --scenario show --seconds 10
lg --scenario list --seconds 10
