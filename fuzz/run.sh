#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time: `fuzz/run.sh [seconds] [target...]`
# (default 600 s each, all targets). Needs cargo-fuzz (`cargo install cargo-fuzz`);
# works on stable Rust through RUSTC_BOOTSTRAP=1.
#
# Each target starts from the committed seeds (fuzz/corpus/<target>) in a scratch
# corpus under fuzz/target/work-corpus/, so the committed corpus only grows when you
# copy an input in on purpose. Crashes land in fuzz/artifacts/<target>/. A summary
# line per target (executions, corpus size, crashes) goes to fuzz/target/summary.txt.
# FUZZ_TARGET_DIR=/dev/shm/x puts the (large) build elsewhere, e.g. when disk is short.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
export RUSTC_BOOTSTRAP=1
# Our crates forbid unsafe code; the sanitizer would only slow the search down.
build_flags=(--sanitizer none --release --debug-assertions)
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
    build_flags+=(--target-dir "$FUZZ_TARGET_DIR")
fi
cargo fuzz build "${build_flags[@]}"
mkdir -p target artifacts
summary=target/summary.txt
: > "$summary"
status=0
for t in "${targets[@]}"; do
    work="target/work-corpus/$t"
    mkdir -p "$work" "artifacts/$t"
    cp -n corpus/"$t"/* "$work"/ 2>/dev/null || true
    log="target/$t.log"
    echo "== $t: ${secs}s"
    if ! cargo fuzz run "${build_flags[@]}" "$t" "$work" -- \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        status=1
        echo "   $t FAILED; see fuzz/$log and fuzz/artifacts/$t/"
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    crashes=$(find "artifacts/$t" -type f | wc -l)
    corpus=$(find "$work" -type f | wc -l)
    line="$t seconds=$secs execs=$execs corpus=$corpus crashes=$crashes"
    echo "   $line"
    echo "$line" >> "$summary"
done
exit "$status"
