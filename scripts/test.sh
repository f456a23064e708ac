#!/usr/bin/env bash
# The test command: formatting, lints and every test, of the host workspace
# and of the guests (the SDK, the examples, the test guests), the soak test,
# and a bounded run of every fuzz target. Installs what it needs; works on
# a fresh machine with rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-unknown-unknown wasm32-wasip2

# Grants are checked against what a real OCI runtime makes of an answer:
# the tests run busybox containers with runc. Registry plugins are pushed
# to and pulled from a real registry (Distribution), copied in with skopeo
# and signed with keys openssl makes.
if ! command -v runc >/dev/null || ! command -v busybox >/dev/null \
    || ! command -v docker-registry >/dev/null || ! command -v skopeo >/dev/null \
    || ! command -v openssl >/dev/null; then
    packages=(runc busybox-static docker-registry skopeo openssl)
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${packages[@]}" \
        || { apt-get update && apt-get install -y --no-install-recommends "${packages[@]}"; }
fi

guest_workspaces=(sdk/rust guest-examples/rust tests/guests)

cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
for ws in "${guest_workspaces[@]}"; do
    cargo fmt --manifest-path "$ws/Cargo.toml" --all -- --check
done

cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --manifest-path fuzz/Cargo.toml --locked -- -D warnings
for ws in "${guest_workspaces[@]}"; do
    cargo clippy --manifest-path "$ws/Cargo.toml" --locked --target wasm32-unknown-unknown -- -D warnings
done

# Guest unit tests run natively; the integration tests build the guests
# for wasm32 themselves and run them in the host.
cargo test --manifest-path sdk/rust/Cargo.toml --locked
cargo test --manifest-path guest-examples/rust/Cargo.toml --locked
# The soak test (tests/soak) prints its figures whether it passes or not.
cargo test --workspace --locked

# Every fuzz target for FUZZ_SECONDS (default 30).
bash scripts/fuzz.sh
