#!/usr/bin/env bash
# Capture footprint with many mirrored interfaces (run by hand as root, not by CI): creates a
# network namespace `$PREFIX` with N veth pairs (fp0..), runs crates/agent/examples/footprint.rs
# inside it once per capture back-end, and prints threads, capture memory and idle CPU.
#   bench/footprint.sh            # N=200, back-ends "ebpf af-packet"
#   FOOTPRINT_N=50 FOOTPRINT_BACKENDS=ebpf bench/footprint.sh
# Removes the namespace (and with it every interface) on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N="${FOOTPRINT_N:-200}"
BACKENDS="${FOOTPRINT_BACKENDS:-ebpf af-packet}"
NS="${FOOTPRINT_PREFIX:-bench-fp}"
target="${CARGO_TARGET_DIR:-target}"
profile="${FOOTPRINT_PROFILE:-release}"
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, BPF)" >&2; exit 1; }
[ "${BENCH_NO_BUILD:-0}" = 1 ] || cargo build --profile "$profile" -q -p tmirror-agent --example footprint
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
cleanup
ip netns add "$NS"
ip -n "$NS" link set lo up
for i in $(seq 0 $((N - 1))); do
    ip -n "$NS" link add "fp$i" type veth peer name "fp${i}p"
    ip -n "$NS" link set "fp$i" up
    ip -n "$NS" link set "fp${i}p" up
done
for b in $BACKENDS; do
    timeout 120 ip netns exec "$NS" "$target/${profile/dev/debug}/examples/footprint" "$b" "$N"
done
