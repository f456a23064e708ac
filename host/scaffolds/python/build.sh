#!/bin/sh
# Builds {{index}}-{{name}}.wasm: componentize-py bundles CPython with
# {{module}}.py into a component of the world plugin.toml names, and
# `nri-wasm annotate` declares in it what plugin.toml says it reads.
# Needs Python 3 with venv; componentize-py is installed into .venv.
set -eu
cd "$(dirname "$0")"
NRI_WASM="${NRI_WASM:-nri-wasm}"
COMPONENTIZE_PY=componentize-py==0.25.1

if ! .venv/bin/python -m pip freeze 2>/dev/null | grep -qx "$COMPONENTIZE_PY"; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check "$COMPONENTIZE_PY"
fi
.venv/bin/componentize-py -d wit -w adjusting componentize {{module}} -p . \
    -o {{index}}-{{name}}.wasm
chmod 0644 {{index}}-{{name}}.wasm
"$NRI_WASM" annotate {{index}}-{{name}}.wasm --manifest plugin.toml
