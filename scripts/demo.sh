#!/usr/bin/env bash
# The demo: builds the example plugins, then runs the embedded runtime
# simulator with nri-wasm and the examples; no container runtime needed.
# Extra arguments go to `nri-wasm demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build-guests.sh >/dev/null
cargo run --quiet --release --locked -p nri-wasm -- demo --plugins target/plugins "$@"
