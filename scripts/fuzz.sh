#!/usr/bin/env bash
# Fuzzes every target of fuzz/ for a bounded time each (FUZZ_SECONDS,
# default 30), with corpora seeded from the frames captured on real
# runtimes. Any crash fails the run and leaves its input in
# fuzz/artifacts/<target>/. Installs cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
# cargo-fuzz passes the compiler's coverage-instrumentation flags, which
# it only accepts from a nightly build; the toolchain here is stable.
export RUSTC_BOOTSTRAP=1
python3 fuzz/seed_corpus.py

# No sanitizer: the code fuzzed is safe Rust; the checks are the
# targets' own assertions and the absence of panics.
fuzz=(cargo fuzz)
"${fuzz[@]}" build --dev --sanitizer none
log=$(mktemp)
for target in $("${fuzz[@]}" list); do
    echo "== fuzz $target for ${seconds}s"
    if ! "${fuzz[@]}" run --dev --sanitizer none "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+[[:space:]]+DONE)' "$log" || true
done
