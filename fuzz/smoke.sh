#!/usr/bin/env bash
# CI fuzz smoke: builds every fuzz target once and runs each for a bounded
# time on a copy of the committed corpus; fails on any crash, invariant
# violation, timeout or out-of-memory. Needs only stable Rust and a C++
# compiler (libfuzzer-sys builds libFuzzer); no cargo-fuzz, no nightly.
#
#   fuzz/smoke.sh                    # 30 s per target
#   FUZZ_SECONDS=60 fuzz/smoke.sh    # longer
#   fuzz/smoke.sh authorize target   # only these targets
#
# The targets are built with `cargo build` and the instrumentation flags
# cargo-fuzz passes (`cargo fuzz build -O -a -s none`: sancov, --cfg fuzzing,
# debug assertions), which skips installing cargo-fuzz; see docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
ALL=(manifest grant target authorize ir_load credentials)
TARGETS=("${@:-${ALL[@]}}")

# Longest input per target: TOML files, a target string (past the 2 KiB
# limit), IR JSON, structured bytes (authorize, credentials).
max_len() {
  case "$1" in
    manifest | grant) echo 8192 ;;
    target) echo 4096 ;;
    ir_load) echo 16384 ;;
    authorize) echo 1024 ;;
    credentials) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

triple=$(rustc -vV | sed -n 's/^host: //p')
# `--target` keeps the flags off build scripts and proc macros, as in
# cargo-fuzz; a target dir of its own keeps `cargo fuzz` builds intact.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions"
echo "==> building fuzz targets (${triple})"
cargo build --locked --release --target "$triple" --target-dir target/smoke \
  --config 'profile.release.debug="line-tables-only"' --bins
bin=target/smoke/$triple/release

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
  echo "==> fuzzing $t for ${SECONDS_PER_TARGET}s"
  mkdir -p "$work/$t" "$work/artifacts"
  if [ -d "corpus/$t" ]; then
    cp -R "corpus/$t/." "$work/$t/"
  fi
  dict=()
  case "$t" in target | authorize) dict=(-dict=url.dict) ;; esac
  if "$bin/$t" "$work/$t" "${dict[@]}" \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t-" >"$work/$t.log" 2>&1; then
    grep -a 'DONE' "$work/$t.log" || tail -n 3 "$work/$t.log"
  else
    failed+=("$t")
    # The whole report, and the reproducer, so the CI log is enough.
    cat "$work/$t.log"
    for a in "$work/artifacts/$t-"*; do
      [ -e "$a" ] || continue
      echo "--- reproducer $(basename "$a") (base64):"
      base64 "$a"
    done
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz smoke failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz smoke ok: ${TARGETS[*]}"
