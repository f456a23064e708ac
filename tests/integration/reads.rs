//! Issue #24: a guest declares what it reads; a read declared and not
//! granted refuses it at load, since a guest blind to what it reads (a
//! validator that sees no mounts) silently turns its guard off.

use std::{process::Command, time::Duration};

use nri_sim::{SimConfig, Simulator};
use serde_json::Value;
use tempfile::TempDir;

use crate::{
    daemon::Daemon,
    guests::plugin_dir,
    harness::{container, pod, HOST_ID},
};

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

/// `nri-wasm check` of the example mount guard (which declares it reads
/// mounts) with its section `section`.
fn check_mount_guard(section: &str) -> (bool, String, String) {
    let config = format!("[plugins.mount-guard]\nfailure-policy = \"fail-closed\"\n{section}");
    let plugins = plugin_dir(&["92-mount-guard.wasm"], Some(&config));
    let plugin = plugins.path().join("92-mount-guard.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    nri_wasm(&[
        "check",
        plugin.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--cache-dir",
        crate::guests::compile_cache().to_str().unwrap(),
    ])
}

const BLIND: &str = "declares it reads mounts (mounts = true), which its read grants do not give";

#[test]
fn a_validator_blinded_by_a_missing_read_grant_is_refused_at_load() {
    let (ok, stdout, stderr) = check_mount_guard("grants = { validate = true }\n");
    assert!(!ok, "loaded blind: {stdout}");
    assert!(stderr.contains(BLIND), "{stderr}");

    let (ok, stdout, stderr) =
        check_mount_guard("grants = { validate = true }\nread = { mounts = true }\n");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("  declares it reads:\n    mounts = true\n"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn an_operator_may_run_it_half_blind_and_is_told_every_start() {
    let (ok, _, stderr) =
        check_mount_guard("grants = { validate = true }\nmissing-reads = \"warn\"\n");
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("{BLIND}; it runs without them")),
        "{stderr}"
    );
}

#[test]
fn a_guest_that_declares_nothing_is_told_what_its_grants_hide() {
    let plugins = plugin_dir(&["80-spy.wasm"], None);
    let plugin = plugins.path().join("80-spy.wasm");
    let (ok, stdout, stderr) = nri_wasm(&["check", plugin.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("declares nothing it reads (custom section nri-wasm:reads); its read grants hide env values, args, mounts, hooks, annotations, labels"),
        "{stderr}"
    );
    assert!(stdout.contains("  declares it reads: nothing"), "{stdout}");
}

#[tokio::test]
async fn the_daemon_refuses_a_blind_validator_and_serves_the_other_guests() {
    let config = "[plugins.mount-guard]\nfailure-policy = \"fail-closed\"\ngrants = { validate = true }\n\
                  [plugins.env-injector]\nconfig = \"env NRI_WASM=1\"\ngrants = { env = [\"NRI_WASM\"] }\n";
    let plugins = plugin_dir(
        &["20-env-injector.wasm", "92-mount-guard.wasm"],
        Some(config),
    );
    let dir = TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let daemon = Daemon::start(sim.socket(), plugins.path());
    daemon.wait_for_log(BLIND).await;
    assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await);
    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = sim.create_container(container("p1", "app")).await.unwrap();
    assert!(created.env.iter().any(|e| e == "NRI_WASM=1"));
}

#[test]
fn test_says_what_the_read_grants_hid_in_the_event() {
    let config =
        "[plugins.ulimit-adjuster]\nread = { annotations = [\"ulimits.noderesource.dev/*\", \"ulimits.nri.containerd.io/*\"] }\n";
    let plugins = plugin_dir(&["30-ulimit-adjuster.wasm"], Some(config));
    let event = plugins.path().join("event.json");
    let request = serde_json::json!({"event": "CreateContainer", "request": {
        "pod": {"id": "p1", "annotations": {"ulimits.noderesource.dev/container.app": "", "secret.example.com/token": "x"}},
        "container": {"id": "c1", "name": "app", "env": ["A=1", "B=2"], "mounts": [{"destination": "/data"}]}}});
    std::fs::write(&event, request.to_string()).unwrap();
    let plugin = plugins.path().join("30-ulimit-adjuster.wasm");
    let config = plugins.path().join("nri-wasm.toml");
    let args = [
        "test",
        plugin.to_str().unwrap(),
        "--event",
        event.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let (_, stdout, stderr) = nri_wasm(&[&args[..], &["--json"]].concat());
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(
        report["hidden"],
        serde_json::json!([
            "2 env values",
            "1 mounts",
            "pod annotations [\"secret.example.com/token\"]"
        ])
    );
    let (_, stdout, _) = nri_wasm(&args);
    assert!(
        stdout.contains("hidden from it by its read grants: 2 env values, 1 mounts, pod annotations [\"secret.example.com/token\"]"),
        "{stdout}"
    );
}
