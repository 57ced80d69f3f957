#!/usr/bin/env bash
# Control-plane benchmark on PostgreSQL next to SQLite (run by hand, not by CI): release
# `tmirror serve` processes driven by the loadgen example over loopback, in three set-ups
# measured in one run so that their ratios compare on this (noisy) machine:
#
#   sqlite     one server, SQLite in its data directory (the default, synchronous=NORMAL)
#   pg-1       one server on a throwaway PostgreSQL cluster (fsync on, as PostgreSQL ships;
#              PG_FSYNC=off to see what the flushes cost)
#   pg-2       two servers on one database of that cluster, the clients spread over both
#
# For each: signed session creates per second (CREATES of them) and session shows per second
# (SHOW_SECONDS long), CONCURRENCY clients.
#
#   bench/postgres.sh [CONCURRENCY]        CREATES=3000 SHOW_SECONDS=10 by default
#
# Everything (servers, cluster, data) is removed on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
conc="${1:-32}"
creates="${CREATES:-3000}"
show_seconds="${SHOW_SECONDS:-10}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p tmirror-cli -p tmirror-server --bins --example loadgen

work="$(mktemp -d /tmp/pg-bench.XXXXXX)"
pids=()
pg_dir=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "$pg_dir" ] && scripts/pg-cluster.sh stop "$pg_dir"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pg_dir="$(PG_FSYNC="${PG_FSYNC:-on}" scripts/pg-cluster.sh start)"

# Servers sharing a database share its master key (the one-server set-ups use it too).
TMIRROR_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export TMIRROR_MASTER_KEY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve NAME [DATABASE_URL]: starts a server with data directory $work/NAME and sets $url to
# its URL. Not called inside $(…): a subshell's `pids+=` would be lost, and with it the clean-up.
serve() {
    local dir="$work/$1" port
    mkdir -p "$dir"
    port="$(free_port)"
    local args=(serve --listen "127.0.0.1:$port" --data-dir "$dir")
    [ $# -ge 2 ] && args+=(--database-url "$2")
    RUST_LOG=warn "$target"/release/tmirror "${args[@]}" >"$dir/server.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && [ -s "$dir/admin-credentials.json" ] && break
        sleep 0.1
    done
    url="http://127.0.0.1:$port"
}

lg() { "$target"/release/examples/loadgen "$@"; }

measure() {
    local label="$1" creds="$2" endpoints="$3"
    echo "-- $label"
    lg --credentials "$creds" --endpoints "$endpoints" --concurrency "$conc" --scenario create --count "$creates"
    lg --credentials "$creds" --endpoints "$endpoints" --concurrency "$conc" --scenario show --seconds "$show_seconds"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $conc concurrent clients; PostgreSQL $("$(. "$pg_dir/env"; echo "$PG_CLUSTER_BIN")"/postgres --version | awk '{print $3}')"

serve sqlite; sqlite_url="$url"
measure "sqlite, one server" "$work/sqlite/admin-credentials.json" "$sqlite_url"

db1="$(scripts/pg-cluster.sh createdb "$pg_dir" bench_one)"
serve pg1 "$db1"; pg1_url="$url"
measure "postgres, one server" "$work/pg1/admin-credentials.json" "$pg1_url"

db2="$(scripts/pg-cluster.sh createdb "$pg_dir" bench_two)"
serve pg2a "$db2"; pg2a_url="$url"
serve pg2b "$db2"; pg2b_url="$url"
measure "postgres, two servers" "$work/pg2a/admin-credentials.json" "$pg2a_url,$pg2b_url"
