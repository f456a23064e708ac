#!/bin/sh
# Builds {{index}}-{{name}}.wasm with `nri-wasm build`, as nri-wasm's own
# examples are built: {{toolchain}}, then the component of the world
# plugin.toml names, with what plugin.toml says the plugin reads. The
# toolchain is installed, pinned, into ~/.cache/nri-wasm/build when
# missing (NRI_WASM_BUILD_DIR to choose).
set -eu
cd "$(dirname "$0")"
"${NRI_WASM:-nri-wasm}" build . "$@"
