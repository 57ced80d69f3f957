#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: a temporary directory, a free loopback port,
# password authentication, nothing else on the machine touched.
#
#   scripts/pg-cluster.sh run CMD [ARGS...]   start a cluster, run CMD with
#                                             TMIRROR_TEST_DATABASE_URL set, remove the cluster
#   scripts/pg-cluster.sh start               start one; prints its directory (DIR/env holds
#                                             `export TMIRROR_TEST_DATABASE_URL=…`)
#   scripts/pg-cluster.sh createdb DIR NAME   create database NAME in it; prints its URL
#   scripts/pg-cluster.sh stop DIR            stop it and remove DIR
#
# e.g. scripts/pg-cluster.sh run cargo test -p tmirror-store
#
# PostgreSQL comes from the distribution's packages (`apt-get install postgresql`, done here
# when run as root and it is missing). initdb refuses to run as root, so as root the cluster
# belongs to the `postgres` user the package creates. The cluster runs with fsync=off: it
# lives for one test run, and the tests kill tmirror servers, never PostgreSQL (PG_FSYNC=on
# to change that).
#
# `run` records its own pid in the cluster's directory; a cluster whose `run` is gone (killed
# with SIGKILL, which no trap sees) is stopped and removed by the next `start` or `run`.
set -euo pipefail

log() { echo "pg-cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The newest installed server's binaries.
find_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    return 1
}

ensure_installed() {
    find_bin >/dev/null && return
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; as root: apt-get install postgresql"
    log "installing PostgreSQL from the distribution's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
    find_bin >/dev/null || die "apt-get installed postgresql but no initdb/pg_ctl was found"
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

pick_owner() {
    if [ "$(id -u)" != 0 ]; then owner="$(id -un)"; return; fi
    if id postgres >/dev/null 2>&1; then owner=postgres; return; fi
    id tmirror-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tmirror-pg
    owner=tmirror-pg
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Stops the clusters of `run`s that are no longer running.
reap_orphans() {
    local d pid
    for d in /tmp/pg-cluster.*; do
        [ -f "$d/runner.pid" ] || continue
        pid="$(cat "$d/runner.pid" 2>/dev/null || true)"
        # Gone, or a zombie nobody has reaped yet (it still answers `kill -0`).
        if [ -n "$pid" ] && { ! kill -0 "$pid" 2>/dev/null \
            || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; }; then
            log "stopping the cluster of a run that is gone (pid $pid)"
            stop "$d"
        fi
    done
}

start() {
    reap_orphans
    ensure_installed
    local bin dir port password
    bin="$(find_bin)"
    pick_owner
    dir="$(mktemp -d /tmp/pg-cluster.XXXXXX)"
    password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s\n' "$password" >"$dir/password"
    chmod 600 "$dir/password"
    chown -R "$owner" "$dir"
    if ! as_owner "$bin/initdb" -D "$dir/data" -U tmirror --pwfile="$dir/password" \
        --auth=scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        die "initdb failed"
    fi
    local tries=0
    while :; do
        port="$(free_port)"
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${PG_FSYNC:-off} -c full_page_writes=${PG_FSYNC:-off}" \
            start >/dev/null; then
            break
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 3 ]; then
            tail -n 20 "$dir/server.log" >&2 || true
            rm -rf "$dir"
            die "the cluster did not start"
        fi
    done
    local url="postgres://tmirror:$password@127.0.0.1:$port/postgres"
    {
        echo "export TMIRROR_TEST_DATABASE_URL='$url'"
        echo "export PG_CLUSTER_DIR='$dir'"
        echo "export PG_CLUSTER_BIN='$bin'"
    } >"$dir/env"
    log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port in $dir"
    echo "$dir"
}

stop() {
    local dir="$1"
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    case "$dir" in /tmp/pg-cluster.*) ;; *) die "not a cluster directory of this script: $dir" ;; esac
    local bin
    bin="$(find_bin)"
    pick_owner
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    log "removed the cluster in $dir"
}

createdb() {
    local dir="$1" name="$2"
    # shellcheck disable=SC1091
    . "$dir/env"
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || die "database names here are lower-case identifiers: $name"
    "$PG_CLUSTER_BIN/psql" -q -v ON_ERROR_STOP=1 "$TMIRROR_TEST_DATABASE_URL" \
        -c "CREATE DATABASE $name" >/dev/null
    echo "${TMIRROR_TEST_DATABASE_URL%/postgres}/$name"
}

cmd="${1:-}"
shift || true
case "$cmd" in
start) start ;;
stop) stop "${1:?usage: pg-cluster.sh stop DIR}" ;;
createdb) createdb "${1:?usage: pg-cluster.sh createdb DIR NAME}" "${2:?usage: pg-cluster.sh createdb DIR NAME}" ;;
run)
    [ $# -gt 0 ] || die "usage: pg-cluster.sh run CMD [ARGS...]"
    dir="$(start)"
    trap 'stop "$dir"' EXIT
    echo "$$" >"$dir/runner.pid"
    trap 'exit 130' INT TERM
    # shellcheck disable=SC1091
    . "$dir/env"
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
*) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
