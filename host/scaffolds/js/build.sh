#!/bin/sh
# Builds {{index}}-{{name}}.wasm: componentize-js embeds {{module}}.js in
# the StarlingMonkey engine, as a component of the world plugin.toml
# names, and `nri-wasm annotate` declares in it what plugin.toml says it
# reads. Needs Node.js with npm; componentize-js is installed into
# node_modules from package.json.
set -eu
cd "$(dirname "$0")"
NRI_WASM="${NRI_WASM:-nri-wasm}"

if [ ! -x node_modules/.bin/componentize-js ]; then
    npm install --no-audit --no-fund --silent
fi
# Every optional engine feature is left out: the plugin imports nothing
# but nri-wasm's log.
node_modules/.bin/componentize-js {{module}}.js --wit wit -n adjusting \
    -d stdio random clocks http fetch-event -o {{index}}-{{name}}.wasm
chmod 0644 {{index}}-{{name}}.wasm
"$NRI_WASM" annotate {{index}}-{{name}}.wasm --manifest plugin.toml
