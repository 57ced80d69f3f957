#!/usr/bin/env bash
# Convergence of the data plane (issue 5): time from the 2xx of a session create to the first
# copy at the collector, p50/p99 over 50 trials, in a lab of network namespaces (root).
# Release build; prints one line of figures. Run by hand, not by CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "convergence.sh: needs root (network namespaces)" >&2; exit 1; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo test --release --locked -p tmirror-cli --test e2e_convergence -- --ignored --nocapture 2>&1 \
    | grep -E "^convergence over|panicked|^error"
