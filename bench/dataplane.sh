#!/usr/bin/env bash
# Data-plane benchmark of issue 5 (run by hand as root, not by CI).
#
# Builds the tmirror test cloud in network namespaces (`$PREFIX-hv` with tap1/tap2 to `-vm1` and
# `-vm2`, ul0 to `-col`), sends UDP from vm1 to vm2 and compares, in one run:
#   base        no mirroring: the source path's capacity
#   tc-mirred   tc u32 + `mirred egress mirror` on tap1 ingress (what vm1 sends) to a vxlan device
#   CAP-MODE-96 tmirror agent (release) with --capture CAP (BENCH_CAPTURES, default "af-packet
#               ebpf": afp, bpf) and --send-mode MODE (BENCH_MODES, default "raw packet
#               packet-bypass"), session on vm1's port, packet_length 96
#   CAP-MODE-full  the same, packet_length 1460 (whole frames)
#   CAP-MODE-none  the same session with a filter that selects nothing (the cost of capture
#               alone: what unselected traffic costs the source)
#   CAP-MODE-other  (not in the default BENCH_SELECTS) the same session with a filter whose
#               rules are all of the other direction (what vm1 receives): vm1's sending is not
#               examined at all (the eBPF back-end attaches no program to that hook)
#   busy-spin   (case `busy`, not in the default BENCH_CASES) no mirroring, the agent's core kept
#               busy by a spinner at the agent's priority instead (a shell loop: no memory
#               traffic): what a busy neighbour core alone costs the source on this machine
#   busy-stream the same with `dd if=/dev/zero of=/dev/null bs=32M` (32 MiB of stores per
#               block, the size of the agent's ring, through the shared last-level cache)
#   off, CAP-MODE-SEL  (case `pairs`, not in the default BENCH_CASES) one agent kept running;
#               for each of BENCH_SELECTS (96, full, none, other) the source measured with the session
#               disabled and at once with it enabled (the other way round in even rounds),
#               BENCH_PAIRS (5) times over; the summary gives the median of the rounds'
#               ratios (the source's rate kept), which the VM's drift between a `base` and an
#               agent case minutes apart does not move. With BENCH_PERF, bench/source_cost.sh
#               reads the rounds' profiles: the source core's share taken by mirroring
#   fan-BIND-96/-full/-none  (case `fanout`, not in the default BENCH_CASES) the benchmark-only
#               prototype crates/agent/examples/fanout.rs instead of the agent: a PACKET_FANOUT
#               group of BENCH_FANOUT_SOCKETS (2) AF_PACKET sockets with the eBPF socket filter
#               of bpf/fanout.bpf.c, bound to tap1 (BIND dev) or to every interface (BIND all;
#               BENCH_FANOUT_BINDS, default "dev all"; BENCH_FANOUT_MODE=cpu: PACKET_FANOUT_CPU
#               instead of _HASH, labels fcpu-*), copies sent by the agent's pipelines
#               (send mode packet); same session, packet lengths and counters as the agent's
# at 64- and 1,400-byte payloads, first with the sender saturating one core, then paced at a
# fixed rate (300,000 packets/s by default). Counters: vm2's and the collector's UDP counters
# (/proc/net/snmp and snmp6, nothing reads: no receiver process wakes up), busy CPU =
# 1 - idle/wall from /proc/stat, the agent's own CPU from /proc/PID/task/*/schedstat, its
# /metrics (captured, ring drops, send drops). The sender is pinned to CPU 0 and the agent to
# CPU 1 (BENCH_PIN=0: not).
#
#   bench/dataplane.sh                      # everything, about 3 minutes
#   BENCH_SECONDS=6 BENCH_RATE=300000 BENCH_SIZES="64 1400" BENCH_CASES="base tc agent" \
#   BENCH_MODES="raw packet packet-bypass" BENCH_AGENT_ARGS="..." bench/dataplane.sh
#   BENCH_PERF=/tmp/bench-perf bench/dataplane.sh   # perf-record CPU 1 (BENCH_PERF_CPU) per case
#   BENCH_PERF=/tmp/p BENCH_PERF_CPU=0 ...; bench/capture_share.sh /tmp/p  # capture's share of the source core
#                                            (bench/source_cost.sh for `pairs`; bench/bpf_lines.py:
#                                            the kernel program's samples by source line)
#   BENCH_CASES="base agent fanout base agent fanout" BENCH_SELECTS=none ...
#                                            # cases may repeat (interleaved rounds); only -none
#
# BENCH_UNDERLAY=6: the collector is reached over IPv6 (fd77::1 on the hypervisor's ul0, fd77::2
# on the collector; the session's target and the tc-mirred vxlan device's remote are IPv6, the
# agent gets --underlay-ip 192.168.77.1,fd77::1); the VMs' traffic stays IPv4. Default 4.
#
# Everything it creates (namespaces $PREFIX-*, processes, a /tmp/bench-dp.* directory) is
# removed on exit, also on Ctrl-C. Figures of one run compare; across runs on a shared VM they
# spread by 10-20%.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

P="${BENCH_PREFIX:-bench-dp}"
SECS="${BENCH_SECONDS:-4}"       # measured window of each saturated case
WARM="${BENCH_WARMUP:-1.5}"      # seconds of traffic before the window opens
RATE="${BENCH_RATE:-300000}"     # fixed offered load of the paced cases (0: skip them)
SIZES="${BENCH_SIZES:-64 1400}"
CASES="${BENCH_CASES:-base tc agent}"
PIN="${BENCH_PIN:-1}"
# Sender and agent run round-robin real-time (chrt -r 10; BENCH_RT=0: normal), so that other
# work on a shared machine (compilers at any nice level, in other autogroups) does not decide
# the figures. Bounded: the sender stops by itself after each case.
PRIO="chrt -r 10"; [ "${BENCH_RT:-1}" = 1 ] || PRIO="nice -n 0"
# The measuring shell itself runs above them (and what it starts inherits that; the sender and
# the agent are set to 10 explicitly): with both cores busy at real-time priority, a normal
# shell got a few % of a CPU, its snapshots took seconds and the window outlived the sender
# (the sender's CPU read as negative, its rate understated).
[ "${BENCH_RT:-1}" = 1 ] && chrt -r -p 20 $$ >/dev/null
AGENT_ARGS="${BENCH_AGENT_ARGS:-}"
MODES="${BENCH_MODES:-raw packet packet-bypass}"   # the agent's --send-mode values compared
CAPTURES="${BENCH_CAPTURES:-af-packet ebpf}"       # the agent's --capture values compared
# Which of each back-end's cases run: -96, -full, -none (these three by default), -other.
SELECTS="${BENCH_SELECTS:-96 full none}"
PAIRS="${BENCH_PAIRS:-5}"   # rounds of the case `pairs`
# Case labels of the send modes and capture back-ends (the first column is 14 characters wide).
short() {
    case "$1" in
    packet) echo pkt ;; packet-bypass) echo bypass ;; af-packet) echo afp ;; ebpf) echo bpf ;;
    *) echo "$1" ;;
    esac
}
target="${CARGO_TARGET_DIR:-target}"
UNDERLAY="${BENCH_UNDERLAY:-4}"
case "$UNDERLAY" in
4) HV_IP=192.168.77.1; COL_IP=192.168.77.2; COL_SOCK=192.168.77.2; AGENT_UL=$HV_IP ;;
6) HV_IP=fd77::1; COL_IP=fd77::2; COL_SOCK="[fd77::2]"; AGENT_UL=192.168.77.1,fd77::1 ;;
*) echo "BENCH_UNDERLAY is 4 or 6" >&2; exit 1 ;;
esac

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    cargo build --release -q -p tmirror-cli --bin tmirror
    cargo build --release -q -p tmirror-agent --example bench_udp --example fanout
fi
BIN="$target/release/tmirror"
UDP="$target/release/examples/bench_udp"
FAN="$target/release/examples/fanout"
FAN_SOCKETS="${BENCH_FANOUT_SOCKETS:-2}"
FAN_BINDS="${BENCH_FANOUT_BINDS:-dev all}"
FAN_MODE="${BENCH_FANOUT_MODE:-hash}"   # PACKET_FANOUT_HASH, or cpu: PACKET_FANOUT_CPU

dir="$(mktemp -d /tmp/bench-dp.XXXXXX)"
pids=()
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    done
    for ns in hv vm1 vm2 col; do ip netns del "$P-$ns" 2>/dev/null; done
    [ -n "${BENCH_DEBUG:-}" ] && tail -n 20 "$dir/agent.log" >&2
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns="$1"; shift; ip netns exec "$P-$ns" "$@"; }

# ---- topology (as tmirror-netlab's mirror_cloud) ----
for ns in hv vm1 vm2 col; do ip netns del "$P-$ns" 2>/dev/null || true; done
for ns in hv vm1 vm2 col; do ip netns add "$P-$ns"; nsx "$ns" ip link set lo up; done
ip link add ul0 netns "$P-hv" type veth peer name eth0 netns "$P-col"
nsx hv ip addr add 192.168.77.1/24 dev ul0
nsx col ip addr add 192.168.77.2/24 dev eth0
if [ "$UNDERLAY" = 6 ]; then
    # nodad: usable at once, no duplicate address detection to wait for.
    nsx hv ip addr add fd77::1/64 dev ul0 nodad
    nsx col ip addr add fd77::2/64 dev eth0 nodad
fi
nsx hv ip link set ul0 up
nsx col ip link set eth0 up
for n in 1 2; do
    ip link add "tap$n" netns "$P-hv" type veth peer name eth0 netns "$P-vm$n"
    nsx hv ip addr add "10.0.$n.1/24" dev "tap$n"
    nsx "vm$n" ip addr add "10.0.$n.2/24" dev eth0
    nsx hv ip link set "tap$n" up
    nsx "vm$n" ip link set eth0 up
    nsx "vm$n" ip route add default via "10.0.$n.1"
done
nsx hv sysctl -qw net.ipv4.ip_forward=1
# Resolve the neighbours once, so that no case pays for it.
# Resolve neighbours up front (a few datagrams; no ping needed).
nsx vm1 "$UDP" 10.0.2.2:9 16 0.2 1000 >/dev/null
nsx hv "$UDP" "$COL_SOCK:9" 16 0.2 1000 >/dev/null

# Sinks at vm2 and the collector: a UDP socket that is never read, with the smallest receive
# buffer, so datagrams are dropped at the socket (counted as InErrors) without waking anyone
# and without the ICMP port-unreachable work that a closed port would add to every packet.
# An IPv6 socket on "::" takes IPv4 datagrams too (IPV6_V6ONLY is off by default).
sink='import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
s.bind(("::", int(__import__("sys").argv[1])))
print("ready", flush=True)
time.sleep(3600)'

# ---- control plane, agent ----
start() { # name ns cpu cmd...
    local name="$1" ns="$2" cpu="$3"; shift 3
    # Not through a shell function: `$!` must be the program itself (ip and taskset exec it).
    if [ "$cpu" = - ]; then ip netns exec "$P-$ns" "$@" >"$dir/$name.log" 2>&1 &
    else ip netns exec "$P-$ns" $PRIO taskset -c "$cpu" "$@" >"$dir/$name.log" 2>&1 & fi
    pids+=("$!")
}
start sink-vm2 vm2 - python3 -c "$sink" 9
start sink-col col - python3 -c "$sink" 4789
start server hv - "$BIN" serve --listen 127.0.0.1:9696 --data-dir "$dir/data"
cli() { nsx hv "$BIN" --data-dir "$dir/data" -o json "$@"; }
id_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
for _ in $(seq 200); do cli port list >/dev/null 2>&1 && break; sleep 0.1; done
# The hypervisor's own agent credential, enrolled by the operator (mode 0600: a secret).
(umask 077 && cli admin host create hv >"$dir/hv-credential.json")
net=11111111-1111-1111-1111-111111111111
vm1=$(cli port create --network-id $net --ip 10.0.1.2 --host-id hv --interface-name tap1 | id_of)
col=$(cli port create --network-id $net --ip "$COL_IP" | id_of)
filter=$(cli filter create --name bench | id_of)
# What vm1 sends is the egress of its port.
cli rule create --filter "$filter" --direction egress --protocol all --ethertype IPv4 \
    --action accept --priority 1 >/dev/null
# A filter that selects none of the benchmark's traffic (vm1 sends UDP to port 9): every frame
# is examined, none is copied.
nothing=$(cli filter create --name nothing | id_of)
cli rule create --filter "$nothing" --direction egress --protocol udp --ethertype IPv4 \
    --destination-port-range 1-1 --action accept --priority 1 >/dev/null
# A filter of the other direction only: what vm1 receives (none of the benchmark's traffic).
other=$(cli filter create --name other | id_of)
cli rule create --filter "$other" --direction ingress --protocol all --ethertype IPv4 \
    --action accept --priority 1 >/dev/null
# The filter of each selection: none and other select nothing of what vm1 sends.
filter_of() { case "$1" in none) echo "$nothing" ;; other) echo "$other" ;; *) echo "$filter" ;; esac; }
session=$(cli session create --name bench --filter "$filter" --source "$vm1" --target "$col" \
    --priority 1 --vni 4242 --packet-length 96 --enabled=false | id_of)
agent_cpu=-; [ "$PIN" = 1 ] && agent_cpu=1
metrics() { nsx hv curl -fs --max-time 2 http://127.0.0.1:9100/metrics 2>/dev/null || true; }
agent_pid=
agent_start() { # send mode ("" = the agent's default), capture back-end ("" = default)
    local mode=(); [ -n "$1" ] && mode=(--send-mode "$1")
    [ -n "${2:-}" ] && mode+=(--capture "$2")
    # shellcheck disable=SC2086
    start agent hv "$agent_cpu" "$BIN" agent --credential-file "$dir/hv-credential.json" \
        --underlay-ip "$AGENT_UL" \
        --state-dir "$dir/agent-state" --metrics-listen 127.0.0.1:9100 "${mode[@]}" $AGENT_ARGS
    agent_pid="${pids[-1]}"
    for _ in $(seq 100); do metrics | grep -q '^tmirror_agent_connected 1' && break; sleep 0.1; done
}
agent_stop() {
    [ -n "$agent_pid" ] || return 0
    kill -TERM "$agent_pid"; wait "$agent_pid" 2>/dev/null || true
    local keep=() p; for p in "${pids[@]}"; do [ "$p" = "$agent_pid" ] || keep+=("$p"); done
    pids=("${keep[@]}"); agent_pid=
}
# The agent's process: `ip netns exec` execs it, taskset too, so the pid is the agent's own.
task_ns() { # CPU time of process $1 (all threads), ns
    [ -n "$1" ] || { echo 0; return; }
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {printf "%.0f\n", s}'
}
agent_ns() { task_ns "$agent_pid"; }
udp_in() { # datagrams that reached the namespace's UDP layer (delivered, no port, errors),
    # IPv4 and IPv6, less those with a wrong checksum (an IPv6 copy's is always checked)
    nsx "$1" sh -c 'cat /proc/net/snmp; cat /proc/net/snmp6' | awk '
        /^Udp: [0-9]/ {n += $2 + $3 + $4 - $8}
        $1 == "Udp6InDatagrams" || $1 == "Udp6NoPorts" || $1 == "Udp6InErrors" {n += $2}
        $1 == "Udp6InCsumErrors" {n -= $2}
        END {print n}'
}
# One snapshot: time_ns vm2 col idle0 idle1 agent_ns sender_ns captured ring_drops send_drops mirrored
# `snap PID fast`: without the agent's counters (zeros), for the window's ends: the rates come
# from the fast reads only, and /metrics from a saturated agent can take up to curl's 2 s.
snap() {
    # Fast reads first (the rates come from them); /metrics last, it may take a moment.
    local head; head="$(date +%s%N) $(udp_in vm2) $(udp_in col)"
    head="$head $(awk '/^cpu0 / {print $5+$6} /^cpu1 / {print $5+$6}' /proc/stat | xargs)"
    head="$head $(agent_ns) $(task_ns "${1:-}")"
    [ "${2:-}" = fast ] && { echo "$head 0 0 0 0"; return; }
    local m; m="$(metrics)"
    local c r s mi
    c=$(awk '/^tmirror_interface_captured_packets_total/ {s+=$2} END {print s+0}' <<<"$m")
    r=$(awk '/^tmirror_interface_ring_drops_total/ {s+=$2} END {print s+0}' <<<"$m")
    s=$(awk '/^tmirror_interface_send_drops_total/ {s+=$2} END {print s+0}' <<<"$m")
    mi=$(awk '/^tmirror_interface_mirrored_packets_total/ {s+=$2} END {print s+0}' <<<"$m")
    echo "$head $c $r $s $mi"
}

session_set() { # packet_length enabled
    cli session update "$session" --packet-length "$1" --enabled="$2" >/dev/null
    local want=0; [ "$2" = true ] && want=1
    for _ in $(seq 100); do
        metrics | grep -q "^tmirror_interface_capturing{interface=\"tap1\"} $want" && break
        [ "$want" = 0 ] && ! metrics | grep -q 'interface="tap1"' && break
        sleep 0.05
    done
    sleep 0.5
}
# The fanout prototype in place of the agent (same CPU, priority, metrics port and counters):
# bind (dev|all), select (all|none), packet_length. It exits by itself after 300 s at most.
busy_start() { # spin | stream: a load on the agent's core, measured as the agent
    case "$1" in
    spin) start busy hv "$agent_cpu" bash -c 'while :; do :; done' ;;
    stream) start busy hv "$agent_cpu" dd if=/dev/zero of=/dev/null bs=32M ;;
    esac
    agent_pid="${pids[-1]}"
}
fan_start() {
    local bind=device; [ "$1" = all ] && bind=all
    start agent hv "$agent_cpu" "$FAN" --interface tap1 --target "$COL_IP" \
        --underlay-ip "$HV_IP" --vni 4242 --packet-length "$3" --select "$2" --bind "$bind" \
        --sockets "$FAN_SOCKETS" --fanout "$FAN_MODE" --metrics 127.0.0.1:9100 --lifetime 300
    agent_pid="${pids[-1]}"
    for _ in $(seq 100); do
        [ "$(metrics | grep -c '^tmirror_interface_capturing{interface="tap1#[0-9]*"} 1')" = "$FAN_SOCKETS" ] && break
        sleep 0.1
    done
    sleep 0.5
}
tc_on() {
    nsx hv ip link add bvx0 type vxlan id 4242 remote "$COL_IP" local "$HV_IP" \
        dstport 4789 dev ul0
    nsx hv ip link set bvx0 up
    nsx hv tc qdisc add dev tap1 ingress
    nsx hv tc filter add dev tap1 parent ffff: protocol all u32 match u32 0 0 \
        action mirred egress mirror dev bvx0
}
tc_off() { nsx hv tc qdisc del dev tap1 ingress; nsx hv ip link del bvx0; }

hz=$(getconf CLK_TCK)
results="$dir/results"
: >"$results"
# measure LABEL SIZE RATE(0 = saturate): one sender run; rates over a window inside it,
# loss over the whole run (counters read before it starts and once the copies drained).
measure() {
    local label="$1" size="$2" rate="$3" secs="$SECS" a b c d
    # The kernel program's line table while it is loaded, before the traffic (for
    # bench/bpf_lines.py report; nothing when the agent has no program loaded).
    if [ -n "${BENCH_PERF:-}" ] && [ "$rate" = 0 ] && [ -n "$agent_pid" ]; then
        python3 bench/bpf_lines.py dump "$agent_pid" \
            "$BENCH_PERF-${perf_name:-$label}-$size.lines.json" 2>/dev/null || true
    fi
    local total; total=$(awk -v w="$WARM" -v s="$secs" 'BEGIN {print w + s + 2}')
    a=$(snap)
    local rarg=(); [ "$rate" != 0 ] && rarg=("$rate")
    if [ "$PIN" = 1 ]; then set -- $PRIO taskset -c 0; else set -- $PRIO; fi
    "$@" ip netns exec "$P-vm1" "$UDP" 10.0.2.2:9 "$size" "$total" "${rarg[@]}" >"$dir/sender.out" &
    local spid=$!
    pids+=("$spid") # stopped by the clean-up if this run fails half-way
    sleep "$WARM"; b=$(snap "$spid" fast)
    local perfpid=
    if [ -n "${BENCH_PERF:-}" ] && [ "$rate" = 0 ]; then
        # The agent's core, sampled by the clock (no hardware counters on this VM). At a
        # normal priority: this shell's real-time one would let perf (its build-id pass at
        # the end) take the agent's core for longer than the ring holds.
        chrt -o 0 perf record -q -e cpu-clock -F 2000 -g -C "${BENCH_PERF_CPU:-1}" -o "$BENCH_PERF-${perf_name:-$label}-$size.data" \
            -- sleep "$secs" 2>/dev/null &
        perfpid=$!
        pids+=("$perfpid")
    fi
    sleep "$secs"; c=$(snap "$spid" fast)
    [ -n "$perfpid" ] && wait "$perfpid"
    wait "$spid"
    # A saturated agent may still hold a backlog in its ring (up to its size, 32 MiB of
    # copies by default, a few tenths of a second of sending): the last snapshot waits until
    # the collector's count stops moving (at most 5 s), or copies in flight would count as lost.
    local last now=-1
    for _ in $(seq 25); do
        sleep 0.2; last=$now; now=$(udp_in col)
        [ "$now" = "$last" ] && break
    done
    d=$(snap)
    local sent; sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$dir/sender.out")
    echo "$label $size $rate $sent $a | $b | $c | $d" >>"$results"; [ -n "${BENCH_DEBUG:-}" ] && tail -1 "$results" >&2
    awk -v hz="$hz" -v label="$label" -v size="$size" -v rate="$rate" -v sent="$sent" '
    { split($0, p, "|"); split(p[1], A, " "); split(p[2], B, " "); split(p[3], C, " "); split(p[4], D, " ")
      o = 0; wall = (C[1] - B[1]) / 1e9
      src = (C[2] - B[2]) / wall; cop = (C[3] - B[3]) / wall
      busy0 = 1 - (C[4] - B[4]) / hz / wall; busy1 = 1 - (C[5] - B[5]) / hz / wall
      agent = (C[6] - B[6]) / 1e9 / wall; sender = (C[7] - B[7]) / 1e9 / wall
      got = D[2] - A[o+2]; copies = D[3] - A[o+3]
      ringd = D[9] - A[o+9]; sendd = D[10] - A[o+10]
      srcloss = (sent > 0) ? 100 * (sent - got) / sent : 0
      # No copy is expected without mirroring, nor from a filter that selects nothing.
      none = (label == "base" || label == "off" || label ~ /^busy-/ || label ~ /-(none|other)$/)
      coploss = none ? "-" : sprintf("%.3f", (got > 0) ? 100 * (got - copies) / got : 0)
      # Lost copies the agent did not count (ring or send drops): should be none.
      uncounted = (none || label == "tc-mirred") ? "-" : \
          sprintf("%.3f", (got > 0) ? 100 * (got - copies - ringd - sendd) / got : 0)
      printf "%-14s %5s %7s %9.0f %9.0f %9.0f %7.2f %8s %5.0f%% %5.0f%% %5.0f%% %5.0f%% %9.0f %8d %8d %8s\n", \
        label, size, (rate == 0 ? "max" : rate), src, (sender > 0 ? src / sender : 0), cop, \
        srcloss, coploss, 100 * busy0, 100 * busy1, 100 * sender, 100 * agent, \
        (agent > 0 ? cop / agent : 0), ringd, sendd, uncounted
    }' <<<"$(tail -1 "$results" | cut -d' ' -f5-)" | tee -a "$dir/table"
}

header() {
    printf "%-14s %5s %7s %9s %9s %9s %7s %8s %6s %6s %6s %6s %9s %8s %8s %8s\n" case payload offered \
        "src pps" "src/core" "copies/s" "srcloss%" "coploss%" cpu0 cpu1 sender agent \
        "copy/core" ringdrop senddrop uncount%
}
run_cases() { # size rate
    local size="$1" rate="$2"
    for c in $CASES; do
        case "$c" in
        base) measure base "$size" "$rate" ;;
        tc) tc_on; measure tc-mirred "$size" "$rate"; tc_off ;;
        busy) for what in spin stream; do busy_start "$what"; measure "busy-$what" "$size" "$rate"; agent_stop; done ;;
        pairs)
            # One agent (first of BENCH_CAPTURES and BENCH_MODES) for the whole case; each
            # selection measured BENCH_PAIRS times right after the same source with mirroring
            # off (the session disabled), so that the VM's drift of minutes falls out.
            local cap="${CAPTURES%% *}" mode="${MODES%% *}"
            local l; l="$(short "$cap")-$(short "$mode")"
            agent_start "$mode" "$cap"
            # Profiles (BENCH_PERF) are named by round: PREFIX-off-SEL-rN-SIZE.data and
            # PREFIX-CASE-rN-SIZE.data, the pairs bench/source_cost.sh compares.
            for round in $(seq "$PAIRS"); do
                for sel in $SELECTS; do
                    # none, other: the session on with a filter that selects nothing.
                    case "$sel" in 96 | none | other) len=96 ;; full) len=1460 ;; *) continue ;; esac
                    cli session update "$session" --filter "$(filter_of "$sel")" >/dev/null
                    # Off first in odd rounds, on first in even ones: a drift within a
                    # pair (the VM slowing down over seconds) falls out of the median.
                    if [ $((round % 2)) = 1 ]; then
                        session_set 96 false; perf_name="off-$sel-r$round" measure "off" "$size" "$rate"
                    fi
                    session_set "$len" true; perf_name="$l-$sel-r$round" measure "$l-$sel" "$size" "$rate"
                    if [ $((round % 2)) = 0 ]; then
                        session_set 96 false; perf_name="off-$sel-r$round" measure "off" "$size" "$rate"
                    fi
                    cli session update "$session" --filter "$filter" >/dev/null
                    tail -2 "$dir/table" >>"$dir/pairs"
                done
            done
            session_set 96 false
            agent_stop ;;
        agent)
            for cap in $CAPTURES; do
            for mode in $MODES; do
                local m="$mode"; [ "$m" = default ] && m=
                local l; l="$(short "$cap")-$(short "$mode")"
                agent_start "$m" "$cap"
                metrics | grep '^tmirror_agent_capture_backend' >&2 || true
                for sel in $SELECTS; do
                    case "$sel" in
                    96) session_set 96 true; measure "$l-96" "$size" "$rate" ;;
                    full) session_set 1460 true; measure "$l-full" "$size" "$rate" ;;
                    none | other)
                        cli session update "$session" --filter "$(filter_of "$sel")" >/dev/null
                        session_set 96 true; measure "$l-$sel" "$size" "$rate"
                        cli session update "$session" --filter "$filter" >/dev/null ;;
                    esac
                done
                session_set 96 false
                agent_stop
            done
            done ;;
        fanout)
            for bind in $FAN_BINDS; do
                for sel in $SELECTS; do
                    case "$sel" in
                    96) fan_start "$bind" all 96 ;;
                    full) fan_start "$bind" all 1460 ;;
                    none) fan_start "$bind" none 96 ;;
                    *) continue ;;
                    esac
                    local fl="fan-$bind"; [ "$FAN_MODE" = hash ] || fl="f$FAN_MODE-$bind"
                    measure "$fl-$sel" "$size" "$rate"; agent_stop
                done
            done ;;
        esac
    done
}

echo "machine: $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "underlay: IPv$UNDERLAY;" \
    "pinned: $PIN, $PRIO; agent modes: $MODES; args: ${AGENT_ARGS:-none}; window ${SECS}s"
echo "src pps = UDP datagrams/s reaching vm2; copies/s = VXLAN datagrams/s reaching the collector;"
echo "srcloss = sent by vm1 but not at vm2; coploss = at vm2 but no copy at the collector (whole run);"
echo "cpu0/cpu1 = 1 - idle/wall per core (sender on cpu0); sender, agent = their own CPU (schedstat);"
echo "src/core = src pps per second of sender CPU (the source path runs in the sender's context);"
echo "copy/core = copies/s per second of agent CPU (includes the collector's receive work, inline)"
echo "ringdrop/senddrop = the agent's counters over the run; uncount% = copies lost that neither explains"
header
for size in $SIZES; do run_cases "$size" 0; done
if [ "$RATE" != 0 ]; then
    for size in $SIZES; do run_cases "$size" "$RATE"; done
fi
if [[ " $CASES " == *" pairs "* ]]; then
    # Each mirrored row against the `off` row next to it (before it in odd rounds, after it
    # in even ones): the source's rate kept.
    echo "pairs: src/core with mirroring on ÷ off next to it, median (min–max) of the rounds"
    awk '$1 == "off" {off = $5} $1 != "off" {on = $0}
         NR % 2 == 0 && off > 0 {split(on, r, " "); print r[1], r[2], r[3], 100 * r[5] / off}' \
        "$dir/pairs" |
        sort -k1,1 -k2,2n -k3,3 -k4,4n |
        awk '{k = $1 " " $2 " " $3; v[k] = v[k] " " $4; n[k]++}
             END {for (k in v) {split(k, c, " "); split(substr(v[k], 2), a, " ")
                  printf "  %-14s %5s %7s  kept %5.1f%% (%.1f-%.1f), %d rounds\n", c[1], c[2], \
                      (c[3] == 0 ? "max" : c[3]), a[int((n[k] + 1) / 2)], a[1], a[n[k]], n[k]}}' |
        sort -k2,2n -k1,1
fi
if [ -n "${BENCH_KEEP_RESULTS:-}" ]; then cp "$dir/table" "$BENCH_KEEP_RESULTS"; fi
