//! `build-guests [OUT_DIR [TEST_OUT_DIR]]`: builds the example plugins of
//! every language into OUT_DIR (default `target/plugins`), and the test
//! guests into TEST_OUT_DIR (default `target/test-guests`), installing
//! missing toolchains. The examples' configuration,
//! `guest-examples/nri-wasm.toml`, is copied beside them.

use std::path::PathBuf;

use anyhow::Context;
use nri_wasm_guest_build::{
    build_examples, build_workspace, ensure_target, writable_by_owner_only,
};

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let out = args.next().unwrap_or_else(|| root.join("target/plugins"));
    let test_out = args
        .next()
        .unwrap_or_else(|| root.join("target/test-guests"));
    ensure_target()?;
    let target_dir = root.join("target/guests");
    let mut built = build_examples(
        &root.join("guest-examples"),
        &root.join("wit"),
        &target_dir,
        &out,
    )?;
    built.extend(
        build_workspace(
            &root.join("tests/guests/Cargo.toml"),
            &target_dir,
            &test_out,
        )
        .context("building tests/guests")?,
    );
    let config = root.join("guest-examples/nri-wasm.toml");
    let installed = out.join("nri-wasm.toml");
    std::fs::copy(&config, &installed).with_context(|| format!("copying {}", config.display()))?;
    writable_by_owner_only(&installed, 0o644)?;
    for guest in &built {
        println!("{}", guest.path.display());
    }
    Ok(())
}
