#!/usr/bin/env bash
# Fuzz smoke test of the packet engine: runs every cargo-fuzz target of crates/packet/fuzz for
# a bounded time (default 30 s each) from the checked-in seed corpus.
#
#   scripts/fuzz-smoke.sh [SECONDS]
#
# Works on stable Rust: cargo-fuzz needs nightly flags, which RUSTC_BOOTSTRAP=1 unlocks.
# Installs cargo-fuzz when it is missing. Uses AddressSanitizer when the toolchain can build
# with it and falls back to no sanitizer otherwise (the engine has no unsafe code; libFuzzer
# still catches panics, overflows and out-of-bounds slices). Idempotent: new corpus entries go
# to a scratch directory, never into the checked-in seeds. Exits non-zero on a crash and
# copies the crashing input to crates/packet/fuzz/regressions/<target>/, which
# tests/fuzz_regression.rs replays on every cargo test: fix the bug, then commit the input.
set -euo pipefail

secs="${1:-30}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/crates/packet/fuzz"
target_dir="${FUZZ_TARGET_DIR:-$fuzz_dir/target}"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/tmirror-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

export RUSTC_BOOTSTRAP=1
# cargo-fuzz locates its binaries under --target-dir; a CARGO_TARGET_DIR from the caller
# would send cargo elsewhere.
unset CARGO_TARGET_DIR
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version '^0.13'
fi

cd "$fuzz_dir"
targets=$(cargo fuzz list)

# Pick a sanitizer the toolchain can build with.
sanitizer=address
first=$(echo "$targets" | head -n1)
if ! cargo fuzz build --target-dir "$target_dir" -s address "$first" >"$scratch/asan.log" 2>&1; then
  echo "fuzz-smoke: AddressSanitizer build failed, using --sanitizer none:" >&2
  tail -n 5 "$scratch/asan.log" >&2
  sanitizer=none
fi

status=0
for t in $targets; do
  echo "fuzz-smoke: $t for ${secs}s (sanitizer: $sanitizer)" >&2
  mkdir -p "$scratch/corpus/$t" "$fuzz_dir/artifacts/$t"
  seeds=()
  [ -d "$fuzz_dir/seeds/$t" ] && seeds+=("$fuzz_dir/seeds/$t")
  [ -d "$fuzz_dir/regressions/$t" ] && seeds+=("$fuzz_dir/regressions/$t")
  if ! cargo fuzz run --target-dir "$target_dir" -s "$sanitizer" "$t" \
      "$scratch/corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=9100 \
      -print_final_stats=1 2>"$scratch/$t.log"; then
    status=1
    tail -n 40 "$scratch/$t.log" >&2
    mkdir -p "$fuzz_dir/regressions/$t"
    for a in "$fuzz_dir/artifacts/$t"/*; do
      [ -f "$a" ] && cp -n "$a" "$fuzz_dir/regressions/$t/"
    done
    echo "fuzz-smoke: $t FAILED; crashing input(s) copied from $fuzz_dir/artifacts/$t/" \
      "to $fuzz_dir/regressions/$t/ (replayed by tests/fuzz_regression.rs): fix, then commit them" >&2
  else
    grep -E '^stat::number_of_executed_units|^Done ' "$scratch/$t.log" >&2 || true
    echo "fuzz-smoke: $t ok" >&2
  fi
done
exit "$status"
