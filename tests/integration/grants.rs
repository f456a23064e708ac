//! Grants end to end: what a guest may change, read and see.

use std::time::Duration;

use nri_sim::{SimConfig, Simulator};
use tempfile::TempDir;

use crate::{
    daemon::Daemon,
    guests::plugin_dir,
    harness::{container, pod, Harness, HOST_ID},
};

#[tokio::test]
async fn a_third_party_guest_beyond_its_grants_changes_nothing_and_each_refusal_is_logged() {
    let config = r#"
[plugins.env-injector]
config = "env NRI_WASM=1"
grants = { env = ["NRI_WASM"] }

[plugins.overreach]
# Even a memory grant does not let through a limit outside its bounds.
grants = { memory = { limit = [67108864, 1073741824] } }
"#;
    let plugins = plugin_dir(&["20-env-injector.wasm", "70-overreach.wasm"], Some(config));
    let dir = TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let mut daemon = Daemon::start(sim.socket(), plugins.path());
    assert!(
        sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await,
        "the daemon did not register"
    );

    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = sim.create_container(container("p1", "app")).await.unwrap();
    assert!(
        created.env.contains(&"NRI_WASM=1".to_string()),
        "the granted guest's change: {:?}",
        created.env
    );
    assert!(created.hooks.is_none(), "{:?}", created.hooks);
    assert!(created.mounts.is_empty(), "{:?}", created.mounts);
    assert!(
        created.linux.devices.is_empty(),
        "{:?}",
        created.linux.devices
    );
    assert!(
        created.linux.resources.memory.is_none(),
        "{:?}",
        created.linux.resources
    );

    for refusal in [
        r#"field=hooks value="Prestart /tmp/evil []" grant=0 grants"#,
        r#"field=mounts value="/host from / (bind rbind,rw)" grant=0 grants; the runtime would make it a bind mount, writable"#,
        r#"field=linux.devices value="/dev/mem (c 1:1)" grant=0 grants (mode 666, uid 0, gid 0)"#,
        r#"field=linux.resources.memory.limit value="1" grant=[67108864, 1073741824]"#,
    ] {
        daemon.wait_for_log(refusal).await;
    }
    daemon
        .wait_for_log(
            r#"guest failed; skipped (fail-open) guest=70-overreach event="CreateContainer""#,
        )
        .await;
    assert!(daemon.is_running());
}

fn annotation(c: &nri_proto::api::Container, key: &str) -> String {
    c.annotations.get(key).cloned().unwrap_or_default()
}

async fn what_the_spy_sees(read: &str) -> (String, String) {
    let config =
        format!("[plugins.spy]\n{read}\ngrants = {{ annotations = [\"spy.nri-wasm.io/*\"] }}\n");
    let plugins = plugin_dir(&["80-spy.wasm"], Some(&config));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let mut secret = container("p1", "app");
    secret.env = vec!["DB_PASSWORD=hunter2".into(), "PATH=/bin".into()];
    secret.args = vec!["/app".into(), "--token=abc".into()];
    let created = h.sim.create_container(secret).await.unwrap();
    (
        annotation(&created, "spy.nri-wasm.io/env"),
        annotation(&created, "spy.nri-wasm.io/args"),
    )
}

#[tokio::test]
async fn a_guest_without_read_grants_never_receives_env_values_or_args() {
    assert_eq!(
        what_the_spy_sees("").await,
        ("DB_PASSWORD=;PATH=".to_string(), String::new())
    );
    assert_eq!(
        what_the_spy_sees("read = { env = true, args = true }").await,
        (
            "DB_PASSWORD=hunter2;PATH=/bin".to_string(),
            "/app --token=abc".to_string()
        )
    );
}

#[tokio::test]
async fn a_guest_is_called_only_for_pods_in_its_scope() {
    let config = r#"
[plugins.env-injector]
config = "env NRI_WASM=1"
grants = { env = ["NRI_WASM"] }
scope = { namespaces = ["prod-*"], labels = { tier = "web" } }
"#;
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(config));
    let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    let mut prod = pod("web");
    prod.namespace = "prod-eu".into();
    prod.labels.insert("tier".into(), "web".into());
    h.sim.run_pod_sandbox(prod).await.unwrap();
    h.sim.run_pod_sandbox(pod("other")).await.unwrap();
    let inside = h
        .sim
        .create_container(container("web", "app"))
        .await
        .unwrap();
    let outside = h
        .sim
        .create_container(container("other", "app"))
        .await
        .unwrap();
    assert!(inside.env.contains(&"NRI_WASM=1".to_string()));
    assert!(!outside.env.contains(&"NRI_WASM=1".to_string()));
    let calls = dispatcher.guests()[0].stats().calls;
    // configure, synchronize, the one CreateContainer in scope
    assert_eq!(calls, 3);
}

#[tokio::test]
async fn a_guest_granted_a_data_directory_reads_it_and_cannot_write_it() {
    let data = TempDir::new().unwrap();
    std::fs::write(data.path().join("env.txt"), "FROM_FILE=42\n").unwrap();
    let config = format!(
        "[plugins.data-reader]\n\
         grants = {{ env = [\"FROM_FILE\", \"DATA_READER_WROTE\"] }}\n\
         wasi = {{ dirs = [{{ host = {:?}, guest = \"/data\" }}] }}\n",
        data.path()
    );
    let plugins = plugin_dir(&["85-data-reader.wasm"], Some(&config));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = h
        .sim
        .create_container(container("p1", "app"))
        .await
        .unwrap();
    assert!(
        created.env.contains(&"FROM_FILE=42".to_string()),
        "{:?}",
        created.env
    );
    assert!(
        created.env.contains(&"DATA_READER_WROTE=no".to_string()),
        "{:?}",
        created.env
    );
    assert!(!data.path().join("written.txt").exists());
}

#[tokio::test]
async fn a_guest_that_imports_wasi_without_a_grant_loads_and_reaches_nothing() {
    let plugins = plugin_dir(&["85-data-reader.wasm"], None);
    let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    assert_eq!(dispatcher.guests().len(), 1, "it loads");
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = h
        .sim
        .create_container(container("p1", "app"))
        .await
        .unwrap();
    // No directory was preopened: its configure cannot read its data and
    // it is not started.
    assert!(
        !created
            .env
            .iter()
            .any(|e| e.starts_with("FROM_FILE") || e.starts_with("DATA_READER")),
        "{:?}",
        created.env
    );
    assert_eq!(dispatcher.guests()[0].stats().faults, 0);
}
