#!/usr/bin/env bash
# The test command: formatting, lints and every test of the workspace.
# Installs what it needs; works on a fresh machine with rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
