#!/usr/bin/env bash
# Runs every test of tmirror, from a fresh machine: installs what is missing, checks formatting
# and lints, runs the Rust tests (unit, integration, crash), a bounded fuzz smoke run, and the
# conformance suites through the official cloud SDKs (the Python ones, and Huawei's Node.js SDK:
# node and npm must be on PATH). The store suite, the multi-server tests and the conformance
# suites run on SQLite and on a throwaway PostgreSQL cluster (scripts/pg-cluster.sh), removed at
# the end whatever happens; the conformance run on SQLite speaks plain HTTP, the one on
# PostgreSQL HTTPS (`serve --tls-self-signed`, every SDK verifying the certificate): each
# back-end and each transport once, in two runs. Idempotent; CI runs exactly this.
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=5 scripts/test.sh   shorter fuzz runs
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Honours CARGO_TARGET_DIR (the conformance suite runs the binary built there).
# One full run builds everything once: incremental compilation's caches would only double the
# disk the build takes (with full debug info a cold run needed 16 GB and CI ran out of disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n== %s ==\n' "$*"; }

step "system packages"
scripts/deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "PostgreSQL: a throwaway cluster for the tests"
pg_dir="$(scripts/pg-cluster.sh start)"
trap 'scripts/pg-cluster.sh stop "$pg_dir"' EXIT
trap 'exit 130' INT TERM
# shellcheck disable=SC1091
. "$pg_dir/env" # TMIRROR_TEST_DATABASE_URL: the tests make a database of their own on it

step "Rust tests (SQLite, and PostgreSQL where a test takes both)"
cargo build --workspace --locked --bins
cargo test --workspace --locked

step "fuzz smoke (${FUZZ_SECONDS:-30} s per target)"
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-30}"

venv="$(scripts/venv.sh)"
# Huawei's Node.js SDK for huawei/test_node_sdk.py (npm ci, only when its lock file changed); fails
# here, before the long steps, if node or npm is missing.
scripts/node-deps.sh >/dev/null
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/tmirror"
step "conformance through the official SDKs, on SQLite, plain HTTP"
env -u TMIRROR_TEST_DATABASE_URL TMIRROR_CONFORMANCE_TLS=0 TMIRROR_BIN="$bin" \
    "$venv/bin/pytest" -q tests/conformance

step "conformance through the official SDKs, on PostgreSQL, over TLS (certificates verified)"
TMIRROR_TEST_DATABASE_URL="$(scripts/pg-cluster.sh createdb "$pg_dir" conformance)" \
    TMIRROR_CONFORMANCE_TLS=1 TMIRROR_BIN="$bin" "$venv/bin/pytest" -q tests/conformance

step "all tests passed"
