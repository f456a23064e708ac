#!/bin/sh
# Builds {{index}}-{{name}}.wasm: cargo compiles src/lib.rs for
# wasm32-wasip2, whose linker makes the component, and `nri-wasm annotate`
# declares in it what plugin.toml says it reads. Needs cargo; the target
# is added with rustup when missing.
set -eu
cd "$(dirname "$0")"
NRI_WASM="${NRI_WASM:-nri-wasm}"

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
cargo build --release --target wasm32-wasip2 --target-dir target
install -m 0644 target/wasm32-wasip2/release/{{module}}.wasm {{index}}-{{name}}.wasm
"$NRI_WASM" annotate {{index}}-{{name}}.wasm --manifest plugin.toml
