//! Shadow mode end to end: a shadow guest is called and checked and
//! changes nothing; its records become suggested grants, which let it
//! through once it is enforced.

use std::{ffi::OsStr, process::Command, time::Duration};

use nri_sim::{SimConfig, Simulator};
use tempfile::TempDir;

use crate::{
    daemon::Daemon,
    guests::plugin_dir,
    harness::{container, pod, Harness, HOST_ID},
    status::{get, has_series},
};

async fn simulator(dir: &TempDir) -> Simulator {
    Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_shadow_guest_changes_nothing_while_its_would_be_changes_and_refusals_are_counted() {
    let config = r#"
[plugins.env-injector]
mode = "shadow"
config = "env NRI_WASM=1"
grants = { env = ["NRI_WASM"] }

[plugins.overreach]
mode = "shadow"
failure-policy = "fail-closed"

[plugins.spy]
read = { env = true }
grants = { annotations = ["spy.nri-wasm.io/*"] }
"#;
    let files = ["20-env-injector.wasm", "70-overreach.wasm", "80-spy.wasm"];
    let plugins = plugin_dir(&files, Some(config));
    let dir = TempDir::new().unwrap();
    let sim = simulator(&dir).await;
    let mut daemon = Daemon::start(sim.socket(), plugins.path());
    let address = daemon.status_address().await;
    assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await);
    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let mut app = container("p1", "app");
    app.env = vec!["PATH=/bin".into()];
    // A fail-closed shadow guest beyond its grants fails nothing.
    let created = sim.create_container(app).await.unwrap();

    assert_eq!(
        created.env,
        ["PATH=/bin"],
        "a granted shadow change applied"
    );
    assert!(created.hooks.is_none() && created.mounts.is_empty());
    // The guest after them saw the container as if they were absent.
    assert_eq!(
        created
            .annotations
            .get("spy.nri-wasm.io/env")
            .map(String::as_str),
        Some("PATH=/bin")
    );
    daemon
        .wait_for_log(r#"shadow guest answered; nothing applied guest=20-env-injector event="CreateContainer""#)
        .await;
    let (_, metrics) = get(address, "/metrics").await;
    let env = r#"guest="20-env-injector""#;
    let overreach = r#"guest="70-overreach""#;
    for (name, labels) in [
        (
            "nri_wasm_shadow_changes_total",
            vec![env, r#"family="env""#],
        ),
        (
            "nri_wasm_shadow_changes_total",
            vec![overreach, r#"family="hooks""#],
        ),
        (
            "nri_wasm_shadow_refusals_total",
            vec![overreach, r#"family="hooks""#, r#"field="hooks""#],
        ),
        (
            "nri_wasm_shadow_refusals_total",
            vec![overreach, r#"field="linux.devices""#],
        ),
    ] {
        assert!(
            has_series(&metrics, name, &labels),
            "no {name} {labels:?} in\n{metrics}"
        );
    }
    assert!(
        !has_series(&metrics, "nri_wasm_shadow_refusals_total", &[env]),
        "the granted shadow change was refused:\n{metrics}"
    );
    assert!(
        !has_series(&metrics, "nri_wasm_guest_refusals_total", &[overreach]),
        "a shadow guest's refusals are not the enforced ones:\n{metrics}"
    );
    assert!(daemon.is_running());
}

/// `nri-wasm grants suggest ARGS`: its stdout.
fn suggest(args: &[&OsStr]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
        .args(["grants", "suggest"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "grants suggest failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn grants_suggested_from_a_recorded_shadow_run_let_the_guest_through_once_enforced() {
    let shadow = r#"
[plugins.env-injector]
mode = "shadow"
config = "env NRI_WASM=1"
"#;
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(shadow));
    // Outside the plugin directory, which the daemon watches.
    let records = TempDir::new().unwrap();
    let record = records.path().join("record.jsonl");
    let dir = TempDir::new().unwrap();
    let sim = simulator(&dir).await;
    let daemon = Daemon::start_with(
        sim.socket(),
        plugins.path(),
        &["--record".as_ref(), record.as_os_str()],
    );
    assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await);
    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = sim.create_container(container("p1", "app")).await.unwrap();
    assert!(
        !created.env.contains(&"NRI_WASM=1".to_string()),
        "{:?}",
        created.env
    );
    // The record is written by a thread of its own: wait for it.
    let written = tokio::time::timeout(Duration::from_secs(10), async {
        while !std::fs::read_to_string(&record)
            .unwrap_or_default()
            .contains(r#""event":"CreateContainer""#)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(written.is_ok(), "no record of the CreateContainer answer");
    drop(daemon);
    drop(sim);

    let text = suggest(&[
        "--record".as_ref(),
        record.as_os_str(),
        "--guest".as_ref(),
        "env-injector".as_ref(),
    ]);
    assert!(text.contains(r#"env = ["NRI_WASM"]  # 1 of"#), "{text}");
    // Enforced with the suggestion, and the settings that are not grants.
    let enforced = text.replacen(
        "[plugins.env-injector]\n",
        "[plugins.env-injector]\nconfig = \"env NRI_WASM=1\"\n",
        1,
    );
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(&enforced));
    let dir = TempDir::new().unwrap();
    let sim = simulator(&dir).await;
    let _daemon = Daemon::start(sim.socket(), plugins.path());
    assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await);
    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = sim.create_container(container("p1", "app")).await.unwrap();
    assert!(
        created.env.contains(&"NRI_WASM=1".to_string()),
        "{enforced}"
    );
}

#[test]
fn grants_suggested_from_event_files_name_what_the_plugin_answered() {
    let plugins = plugin_dir(&["70-overreach.wasm"], None);
    let events = TempDir::new().unwrap();
    let sample = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
        .args(["test", "--event-template", "CreateContainer"])
        .output()
        .unwrap();
    std::fs::write(events.path().join("create.json"), sample.stdout).unwrap();
    let plugin = plugins.path().join("70-overreach.wasm");
    let text = suggest(&[
        "--events".as_ref(),
        events.path().as_os_str(),
        "--plugin".as_ref(),
        plugin.as_os_str(),
        "--cache-dir".as_ref(),
        crate::guests::compile_cache().as_os_str(),
    ]);
    assert!(text.starts_with("# Suggested from "), "{text}");
    assert!(text.contains("[plugins.overreach.grants]\n"), "{text}");
    for line in ["hooks = [{ ", "mounts = [{ ", "devices = [{ "] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert!(!text.contains("\"*\""), "{text}");
}

#[tokio::test]
async fn shadow_guests_never_leave_the_enforcing_guests_after_them_without_time() {
    // Three endless shadow loops of 600 ms each, in a budget of 1.5 s
    // (three quarters of the runtime's 2 s), before a fail-closed guest:
    // called while time is spare, they would leave it none.
    let mut config = String::from(
        "[plugins.env-injector]\nfailure-policy = \"fail-closed\"\nconfig = \"env NRI_WASM=1\"\ngrants = { env = [\"NRI_WASM\"] }\n",
    );
    let plugins = plugin_dir(&["20-env-injector.wasm", "90-endless-loop.wasm"], None);
    for name in ["loop-a", "loop-b", "loop-c"] {
        let index = 11 + config.matches("[plugins.loop").count();
        std::fs::copy(
            plugins.path().join("90-endless-loop.wasm"),
            plugins.path().join(format!("{index}-{name}.wasm")),
        )
        .unwrap();
        config.push_str(&format!(
            "[plugins.{name}]\nmode = \"shadow\"\ndeadline = \"600ms\"\n"
        ));
    }
    std::fs::remove_file(plugins.path().join("90-endless-loop.wasm")).unwrap();
    std::fs::write(plugins.path().join("nri-wasm.toml"), config).unwrap();
    let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = h
        .sim
        .create_container(container("p1", "app"))
        .await
        .unwrap();
    assert!(
        created.env.contains(&"NRI_WASM=1".to_string()),
        "{:?}",
        created.env
    );
    let faults: Vec<u64> = dispatcher
        .guests()
        .iter()
        .filter(|g| g.shadow())
        .map(|g| g.stats().faults)
        .collect();
    // Two ran out their deadline; the third was not called.
    assert_eq!(faults.iter().sum::<u64>(), 2, "{faults:?}");
}
