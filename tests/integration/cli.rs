//! The command line, run as a person would.

use std::process::Command;

use crate::guests::plugin_dir;

fn nri_wasm(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
        .args(args)
        .env("NRI_WASM_LOG", "error")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_describes_a_plugin_and_what_it_is_granted() {
    let config = "[plugins.env-injector]\ngrants = { env = [\"NRI_WASM\"] }\n";
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(config));
    let plugin = plugins.path().join("20-env-injector.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let (ok, stdout, stderr) = nri_wasm(&[
        "check",
        plugin.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("guest:      20-env-injector"), "{stdout}");
    assert!(
        stdout.contains("exports:    lifecycle, pod-events, container-events, adjuster, validator"),
        "{stdout}"
    );
    assert!(
        stdout.contains("imports:    nri:plugin/types@0.1.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  grants:\n    env = [\"NRI_WASM\"]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  read: nothing"), "{stdout}");
}

#[test]
fn check_of_a_file_that_is_not_a_component_fails_with_one_line() {
    let plugins = plugin_dir(&[], None);
    let file = plugins.path().join("10-junk.wasm");
    std::fs::write(&file, b"not wasm at all").unwrap();
    let (ok, stdout, stderr) = nri_wasm(&["check", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(stdout.is_empty());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("nri-wasm: ")
            && lines[0].contains("10-junk.wasm: is not a valid Wasm component"),
        "{stderr}"
    );
}
