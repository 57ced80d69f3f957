#!/usr/bin/env bash
# Control-plane benchmark (run by hand, not by CI): a release `tmirror serve` on SQLite in a
# temporary data directory, driven by the loadgen example over loopback. Prints signed session
# creates per second, show requests per second with 10,000 sessions stored, and the latency of
# a 100-item list page, under load and for one client at a time.
#
#   bench/control-plane.sh [CONCURRENCY]
#
# The server and the load generator share this machine's cores: compare figures from one run.
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
lg() { "$target"/release/examples/loadgen --credentials "$dir/admin-credentials.json" "$@"; }
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $conc concurrent clients"
lg --concurrency "$conc" --scenario create --count 5000
lg --concurrency "$conc" --scenario seed --count 10000
lg --concurrency "$conc" --scenario show --seconds 10
lg --concurrency "$conc" --scenario list --seconds 10
echo "one client at a time (latency without queueing):"
lg --concurrency 1 --scenario show --seconds 5
lg --concurrency 1 --scenario list --seconds 5
