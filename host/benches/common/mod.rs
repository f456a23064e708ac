//! Shared by the benchmark programs: the guests, built from source.

use std::path::{Path, PathBuf};

/// Builds the example plugins and the test guests (release), returning
/// the directories holding their components.
pub fn build_guests() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/guests");
    let examples = root.join("target/bench-plugins/examples");
    let tests = root.join("target/bench-plugins/test-guests");
    nri_wasm_guest_build::ensure_target().unwrap();
    nri_wasm_guest_build::build_workspace(
        &root.join("guest-examples/rust/Cargo.toml"),
        &target,
        &examples,
    )
    .unwrap();
    nri_wasm_guest_build::build_workspace(&root.join("tests/guests/Cargo.toml"), &target, &tests)
        .unwrap();
    (examples, tests)
}
