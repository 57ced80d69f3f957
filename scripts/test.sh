#!/usr/bin/env bash
# Runs every test of tmirror, from a fresh machine: installs what is missing, checks formatting
# and lints, runs the Rust tests (unit, integration, crash), a bounded fuzz smoke run, and the
# conformance suites through the official cloud SDKs. Idempotent; CI runs exactly this.
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=5 scripts/test.sh   shorter fuzz runs
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Honours CARGO_TARGET_DIR (the conformance suite runs the binary built there).

step() { printf '\n== %s ==\n' "$*"; }

step "system packages"
scripts/deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust tests"
cargo build --workspace --locked --bins
cargo test --workspace --locked

step "fuzz smoke (${FUZZ_SECONDS:-30} s per target)"
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-30}"

step "conformance through the official SDKs"
venv="$(scripts/venv.sh)"
TMIRROR_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/tmirror" "$venv/bin/pytest" -q tests/conformance

step "all tests passed"
