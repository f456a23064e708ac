//! The guide `docs/first-plugin.md`, run as written: its `sh` blocks, in
//! order, in an empty directory, with nri-wasm on the PATH, for each
//! language it covers. A step of the guide that stops working fails here.

use std::{path::Path, process::Command};

const GUIDE: &str = include_str!("../../docs/first-plugin.md");

/// The commands of the guide's `sh` blocks, in order.
fn guide_commands() -> String {
    let mut commands = String::new();
    let mut in_sh = false;
    for line in GUIDE.lines() {
        match (in_sh, line.trim_end()) {
            (false, "```sh") => in_sh = true,
            (true, "```") => in_sh = false,
            (true, command) => {
                commands.push_str(command);
                commands.push('\n');
            }
            _ => {}
        }
    }
    commands
}

/// Runs the guide with `--lang lang`; returns what it printed.
fn run_guide(lang: &str) -> String {
    let commands = guide_commands();
    assert!(
        commands.contains("nri-wasm new --lang python team-env\n"),
        "the guide no longer starts with `nri-wasm new`:\n{commands}"
    );
    let commands = commands.replace("--lang python", &format!("--lang {lang}"));
    let work = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_nri-wasm")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", &commands])
        .current_dir(work.path())
        .env("PATH", path)
        .env("NRI_WASM_LOG", "info")
        // A compile cache of its own, so that what it compiles is counted.
        .env("NRI_WASM_CACHE_DIR", work.path().join("cache"))
        // The pinned toolchains `nri-wasm build` installs, where the
        // examples' build has them.
        .env(
            "NRI_WASM_BUILD_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests"),
        );
    let output = command.output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the guide failed for {lang}:\n{printed}"
    );
    printed
}

fn assert_the_guide_works(lang: &str) {
    let printed = run_guide(lang);
    assert!(
        printed.contains("  declares it reads:\n    labels = [\"team\"]"),
        "{printed}"
    );
    assert!(printed.contains("+ env TEAM=payments"), "{printed}");
    assert!(
        printed.contains(
            r#"reply to the runtime: {"adjust":{"env":[{"key":"TEAM","value":"payments"}]}}"#
        ),
        "{printed}"
    );
    // `check` compiled it; the tests after it found it in the cache.
    assert_eq!(
        printed.matches("compiled the guest").count(),
        1,
        "{printed}"
    );
}

#[test]
fn the_first_plugin_guide_works_in_rust() {
    assert_the_guide_works("rust");
}

#[test]
fn the_first_plugin_guide_works_in_c() {
    assert_the_guide_works("c");
}

#[test]
fn the_first_plugin_guide_works_in_cpp() {
    assert_the_guide_works("cpp");
}

#[test]
fn the_first_plugin_guide_works_in_zig() {
    assert_the_guide_works("zig");
}

#[test]
fn the_first_plugin_guide_works_in_go() {
    assert_the_guide_works("go");
}

#[test]
fn the_first_plugin_guide_works_in_python() {
    assert_the_guide_works("python");
}

#[test]
fn the_first_plugin_guide_works_in_javascript() {
    assert_the_guide_works("js");
}
