#!/usr/bin/env bash
# What mirroring costs the source's core, by profile, for the rounds of the case `pairs`:
#
#   BENCH_CASES=pairs BENCH_PERF=/tmp/p BENCH_PERF_CPU=0 ... bench/dataplane.sh
#   bench/source_cost.sh /tmp/p
#
# Each mirrored round (PREFIX-CASE-SEL-rN-SIZE.data) is read beside the source's profile with
# the session disabled next to it (PREFIX-off-SEL-rN-SIZE.data). Shares are of the core's
# busy samples (idle left out), so the VM's speed, which moves the saturated rates by ±5-10 %
# from one window to the next, hardly moves them:
#   program  samples with the TCX program (or its batch timer) in their call chain
#   hook     what the kernel's TCX hook adds around the program: tc_run (called only when an
#            interface has a TCX entry) and the growth of __netif_receive_skb_core's own
#            samples, into which the hook's dispatch (and its indirect call) is inlined
#   kept     100 - program - hook: the rate the source keeps if the rest of its work per
#            packet is unchanged (the rates themselves: dataplane.sh's `pairs` summary)
# Reads the profiles only (its scratch files go to a temporary directory); needs perf.
set -euo pipefail
prefix="${1:?usage: bench/source_cost.sh PREFIX (as given to BENCH_PERF with BENCH_CASES=pairs)}"
chain='tmirror_ingress|tmirror_egress|bpf_timer_cb'
idle='pv_native_safe_halt|native_safe_halt|default_idle|cpu_idle_poll|poll_idle|acpi_idle_do_entry'

# "SYMBOL SHARE" per line: each symbol's own samples, in % of all.
self_shares() {
    perf report -i "$1" --stdio -q --no-children --sort symbol -g none 2>/dev/null |
        awk '{sub("%", "", $1); print $3, $1}'
}
# The % of all samples with the program in their call chain.
chain_share() {
    perf report -i "$1" --stdio -q --sort parent --parent="$chain" -g none 2>/dev/null |
        awk '$3 != "[other]" {sub("%", "", $1); s += $1} END {printf "%.3f", s}'
}
share_of() { # file-of-self-shares regex
    awk -v re="^($2)$" '$1 ~ re {s += $2} END {printf "%.3f", s}' "$1"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf "%-24s %5s %8s %8s %8s %8s\n" case size program hook total kept
found=0
for on in "$prefix"-*-r[0-9]*-*.data; do
    [ -e "$on" ] || break
    name="${on#"$prefix"-}"; name="${name%.data}"
    case "$name" in off-*) continue ;; esac
    size="${name##*-}"; rest="${name%-*}"          # CASE-SEL-rN
    round="${rest##*-}"; rest="${rest%-*}"         # CASE-SEL
    sel="${rest##*-}"
    off="$prefix-off-$sel-$round-$size.data"
    [ -e "$off" ] || { echo "no $off for $on" >&2; continue; }
    found=1
    self_shares "$on" >"$tmp/on"; self_shares "$off" >"$tmp/off"
    busy_on=$(awk -v i="$(share_of "$tmp/on" "$idle")" 'BEGIN {print 100 - i}')
    busy_off=$(awk -v i="$(share_of "$tmp/off" "$idle")" 'BEGIN {print 100 - i}')
    awk -v name="$rest-$round" -v size="$size" -v bon="$busy_on" -v boff="$busy_off" \
        -v prog="$(chain_share "$on")" -v tc="$(share_of "$tmp/on" tc_run)" \
        -v core_on="$(share_of "$tmp/on" '__netif_receive_skb_core.*')" \
        -v core_off="$(share_of "$tmp/off" '__netif_receive_skb_core.*')" 'BEGIN {
        p = 100 * prog / bon
        h = 100 * tc / bon + 100 * core_on / bon - 100 * core_off / boff
        printf "%-24s %5s %7.1f%% %7.1f%% %7.1f%% %7.1f%%\n", name, size, p, h, p + h, 100 - p - h
    }'
done
[ "$found" = 1 ] || { echo "no round profiles at $prefix-*-rN-*.data" >&2; exit 1; }
