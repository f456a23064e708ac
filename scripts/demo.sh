#!/usr/bin/env bash
# The demo: the embedded runtime simulator and nri-wasm, no container
# runtime needed. Extra arguments go to `nri-wasm demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo run --quiet --release --locked -p nri-wasm -- demo "$@"
