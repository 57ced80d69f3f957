#!/usr/bin/env bash
# The share of the source core's time spent in the capture, from the profiles that
# `BENCH_PERF=PREFIX BENCH_PERF_CPU=0 bench/dataplane.sh` records (one PREFIX-CASE-SIZE.data per
# saturated case): the fraction of CPU-0 samples with a capture function in their call chain
# (AF_PACKET's tpacket_rcv, the fan-out's packet_rcv_fanout, the tap clone of sent frames
# dev_queue_xmit_nit, the TCX program and the timer that sends its batches, bpf_timer_cb), and
# of those the fan-out's flow hash. A ratio inside one profile: the VM's steal time, which
# moves saturated rates by tens of percent, moves it little (docs/dataplane.md). Reads only;
# needs perf.
#
#   bench/capture_share.sh /tmp/bench-perf
set -euo pipefail
prefix="${1:?usage: bench/capture_share.sh PREFIX (as given to BENCH_PERF)}"
chain='tpacket_rcv|packet_rcv_fanout|dev_queue_xmit_nit|tmirror_ingress|tmirror_egress|tmirror_fanout|bpf_timer_cb'
printf "%-22s %8s %12s  %s\n" case capture "fanout hash" "by entry point"
for f in "$prefix"-*.data; do
    [ -e "$f" ] || { echo "no profiles at $prefix-*.data" >&2; exit 1; }
    name="${f#"$prefix"-}"; name="${name%.data}"
    by=$(perf report -i "$f" --stdio -q --sort parent --parent="$chain" -g none 2>/dev/null |
        awk '$3 != "[other]" && $1 + 0 > 0 {print $3, $1}')
    total=$(awk '{sub("%", "", $2); s += $2} END {printf "%.1f%%", s}' <<<"$by")
    hash=$(perf report -i "$f" --stdio -q --no-children --sort parent,symbol \
        --parent='packet_rcv_fanout' -g none 2>/dev/null |
        awk '$2 == "packet_rcv_fanout" && $4 ~ /flow_dissect|siphash|get_hash/ {
            sub("%", "", $1); s += $1 } END {printf "%.1f%%", s}')
    detail=$(awk '$2 + 0 >= 0.3 {sub(/^bpf_prog_[0-9a-f]+_/, "", $1); printf "%s=%s ", $1, $2}' <<<"$by")
    printf "%-22s %8s %12s  %s\n" "$name" "$total" "$hash" "$detail"
done
