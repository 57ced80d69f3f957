#!/usr/bin/env bash
# Storage at scale (issue 14; run by hand, not by CI): a release `tmirror serve` on SQLite (or
# on the PostgreSQL that TMIRROR_TEST_DATABASE_URL names, e.g. under `scripts/pg-cluster.sh
# run`) holding PROJECTS × PER sessions and as many ports (default 4 × 25,000 = 100,000 of
# each: a project's session priorities stop at 32,766), each session mirroring its own port.
# Then, in the first project, through both faces: the latency of a 100-item list page after a
# random marker (one client at a time) and show requests per second (32 clients).
#
#   bench/storage.sh [PROJECTS] [PER]
#   STORAGE_ROUNDS=3 bench/storage.sh     measure three times over, the faces alternated
#
# Seeding goes through the API like any client; the load generator prints its rate every 20 s
# and each project's overall rate, so a rate that falls with the rows stored shows. The server
# and the load generator share this machine's cores: compare figures from one run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
projects="${1:-4}"
per="${2:-25000}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p tmirror-cli -p tmirror-server --bins --example loadgen
dir="$(mktemp -d)"
pid="" lgpid="" name=""
# Everything this script starts goes when it ends, also when it is interrupted: the server,
# a load generator still running, the data directory, the PostgreSQL database.
cleanup() {
    for p in $lgpid $pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "$name" ] && psql "$TMIRROR_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db=()
if [ -n "${TMIRROR_TEST_DATABASE_URL:-}" ]; then
    name="storage_$$"
    psql "$TMIRROR_TEST_DATABASE_URL" -qc "CREATE DATABASE $name"
    db=(--database-url "${TMIRROR_TEST_DATABASE_URL%/*}/$name")
fi
# The throttles are lifted: this measures the store, not the per-key rate limit.
"$target"/release/tmirror serve --listen "127.0.0.1:$port" --data-dir "$dir" "${db[@]}" \
    --rate-per-key 1000000 --burst-per-key 1000000 --rate-per-address 1000000 --burst-per-address 1000000 \
    >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
tm() { "$target"/release/tmirror --data-dir "$dir" "$@"; }
# In the background and waited for, so that a signal reaches the trap (and the cleanup) at once.
lg() {
    "$target"/release/examples/loadgen "$@" &
    lgpid=$!
    wait "$lgpid"
    lgpid=""
}
# The database by name only: its URL holds the cluster's password.
where=SQLite
[ -n "$name" ] && where="PostgreSQL database $name"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $where"
for p in $(seq "$projects"); do
    echo "project $p of $projects: $(((p - 1) * per)) ports and as many sessions stored so far"
    id=$(tm admin project create --name "bench$p" --quota-sessions "$per" --quota-ports "$((per + 10))" \
        --output json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("id") or d["project"]["id"])')
    tm admin credential create --project "$id" --role member --output json >"$dir/p$p.json"
    lg --credentials "$dir/p$p.json" --scenario seed-ports --count "$per" --first-address "$(((p - 1) * per))"
    lg --credentials "$dir/p$p.json" --scenario seed --count "$per" --first-address "$(((p - 1) * per))"
done
first="$dir/p1.json"
echo "stored: $((projects * per)) sessions and $((projects * per)) ports; measuring in one project of $per"
# Rounds alternate the faces: on a shared machine a single run of each can land in a busy
# moment of one face only.
for round in $(seq "${STORAGE_ROUNDS:-1}"); do
    [ "${STORAGE_ROUNDS:-1}" -gt 1 ] && echo "round $round"
    for face in huawei aliyun; do
        lg --credentials "$first" --face "$face" --concurrency 1 --scenario list --seconds 10
        lg --credentials "$first" --face "$face" --concurrency 32 --scenario show --seconds 10
    done
done
