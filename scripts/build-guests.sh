#!/usr/bin/env bash
# Builds every example plugin from source into target/plugins/ (named
# NN-name.wasm, as nri-wasm loads them, with the example configuration
# nri-wasm.toml beside them), and the test guests into target/test-guests/.
# Installs the wasm32 target when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo run --quiet --locked -p nri-wasm-guest-build -- "$@"
