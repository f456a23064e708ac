//! Replies of every size through the real daemon to a simulated runtime
//! that reads frames as NRI's Go side does (a frame larger than the read it
//! meets closes the trunk), and the runtime's own guard for the time
//! nri-wasm is away: NRI's default validator with nri-wasm required.

use std::time::Duration;

use nri_proto::api::{Container, PodSandbox};
use nri_sim::{DefaultValidator, SimConfig, SimError, Simulator};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    daemon::Daemon,
    guests::plugin_dir,
    harness::{container, pod, HOST_ID},
    status::get,
};

const REGISTERED: Duration = Duration::from_secs(30);

/// A plugin directory of attacker guests, one per answer, each granted
/// `grants`, at indices 30, 31, ...
fn attackers(answers: &[Value], grants: &str) -> TempDir {
    let dir = plugin_dir(&["70-attacker.wasm"], None);
    let mut config = String::new();
    for (n, answer) in answers.iter().enumerate() {
        std::fs::copy(
            dir.path().join("70-attacker.wasm"),
            dir.path().join(format!("{}-big{n}.wasm", 30 + n)),
        )
        .unwrap();
        config.push_str(&format!(
            "[plugins.big{n}]\nconfig = '''{answer}'''\ngrants = {{ {grants} }}\ndeadline = \"1s\"\n"
        ));
    }
    std::fs::remove_file(dir.path().join("70-attacker.wasm")).unwrap();
    std::fs::write(dir.path().join("nri-wasm.toml"), config).unwrap();
    dir
}

/// Env values are granted up to 32 KiB each; answers are made of these.
const VALUE: usize = 16 << 10;

/// An answer setting `OVG_<name>_0`, `OVG_<name>_1`, ... to values of
/// `len` bytes in all.
fn env_of(name: &str, len: usize) -> Value {
    let sized: Vec<Value> = (0..len.div_ceil(VALUE))
        .map(|i| json!([format!("OVG_{name}_{i}"), VALUE.min(len - i * VALUE)]))
        .collect();
    json!({"create": {"env_sized": sized}})
}

async fn started(sim_config: SimConfig, plugins: &TempDir) -> (Simulator, Daemon) {
    let sim = Simulator::start(sim_config).await.unwrap();
    let daemon = Daemon::start(sim.socket(), plugins.path());
    assert!(
        sim.wait_for_plugin(HOST_ID, REGISTERED).await,
        "{}",
        daemon.log()
    );
    (sim, daemon)
}

/// The bytes of the values of `OVG_<name>_*` in `created`, if any.
fn env_len(created: &Container, name: &str) -> Option<usize> {
    let prefix = format!("OVG_{name}_");
    let values: Vec<usize> = created
        .env
        .iter()
        .filter_map(|e| e.strip_prefix(&prefix))
        .filter_map(|e| e.split_once('=').map(|(_, v)| v.len()))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test]
async fn replies_of_every_size_up_to_the_cap_reach_the_runtime_and_nri_wasm_stays() {
    // Guests of 4 KiB and 64 KiB, two near the 1 MiB answer cap, one that
    // brings the reply near its 3 MiB cap, and one that finds it full.
    const NEAR_CAP: usize = (1 << 20) - 4096;
    const FILL: usize = (3 << 20) - (4 << 10) - (64 << 10) - 2 * NEAR_CAP - (16 << 10);
    let sizes = [4 << 10, 64 << 10, NEAR_CAP, NEAR_CAP, FILL, 64 << 10];
    let names = ["A", "B", "C", "D", "E", "F"];
    let answers: Vec<Value> = names
        .iter()
        .zip(sizes)
        .map(|(name, len)| env_of(name, len))
        .collect();
    let plugins = attackers(&answers, r#"env = ["OVG_*"]"#);
    let dir = TempDir::new().unwrap();
    let (sim, daemon) = started(
        SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())),
        &plugins,
    )
    .await;
    sim.run_pod_sandbox(pod("p1")).await.unwrap();

    let created = sim.create_container(container("p1", "big")).await.unwrap();
    let got: Vec<Option<usize>> = names.iter().map(|n| env_len(&created, n)).collect();
    let mut expected: Vec<Option<usize>> = sizes.iter().copied().map(Some).collect();
    expected[5] = None;
    assert_eq!(got, expected, "{}", daemon.log());
    assert!(sim.dropped().is_empty(), "dropped: {:?}", sim.dropped());

    // Still registered, and still answering.
    let again = sim
        .create_container(container("p1", "again"))
        .await
        .unwrap();
    assert_eq!(env_len(&again, "A"), Some(4 << 10));
    let (_, metrics) = get(daemon.status_address().await, "/metrics").await;
    assert!(
        metrics.contains("nri_wasm_runtime_drops_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn synchronize_answered_with_updates_for_500_containers() {
    let answer = json!({"sync": [{"container_id": "*", "pids": 512}]});
    let plugins = attackers(&[answer], r#"updates = "any", pids = [1, 1024]"#);
    let dir = TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let pods: Vec<PodSandbox> = (0..50).map(|p| pod(&format!("p{p}"))).collect();
    let containers: Vec<Container> = (0..500)
        .map(|c| container(&format!("p{}", c % 50), &format!("c{c}")))
        .collect();
    let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
    sim.preload(pods, containers);
    let daemon = Daemon::start(sim.socket(), plugins.path());
    assert!(
        sim.wait_for_plugin(HOST_ID, REGISTERED).await,
        "{}",
        daemon.log()
    );
    assert!(sim.dropped().is_empty(), "dropped: {:?}", sim.dropped());

    let limited = ids
        .iter()
        .filter_map(|id| sim.container(id))
        .filter(|c| {
            c.linux
                .as_ref()
                .and_then(|l| l.resources.as_ref())
                .and_then(|r| r.pids.as_ref())
                .is_some_and(|p| p.limit == 512)
        })
        .count();
    assert_eq!(limited, 500, "{}", daemon.log());
}

/// The default validator as a runtime configuration in `deploy/`
/// configures it: the table at `table`, switched on by `enable`, its
/// other keys with `prefix`.
fn deployed_validator(file: &str, table: &[&str], enable: &str, prefix: &str) -> DefaultValidator {
    let path = format!("{}/../deploy/{file}", env!("CARGO_MANIFEST_DIR"));
    let config: toml::Value =
        toml::Value::Table(std::fs::read_to_string(path).unwrap().parse().unwrap());
    let validator = table.iter().fold(&config, |v, k| &v[k]);
    let key = |name: &str| &validator[format!("{prefix}{name}").as_str()];
    assert_eq!(validator[enable].as_bool(), Some(true), "{file}");
    DefaultValidator {
        required_plugins: key("required_plugins")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect(),
        tolerate_missing_annotation: key("tolerate_missing_plugins_annotation")
            .as_str()
            .map(str::to_string),
    }
}

/// containerd's and CRI-O's configurations agree.
fn deployed_validators() -> [(SimConfig, DefaultValidator); 2] {
    let dir = std::env::temp_dir();
    let containerd = deployed_validator(
        "containerd/nri-required.toml",
        &["plugins", "io.containerd.nri.v1.nri", "default_validator"],
        "enable",
        "",
    );
    let crio = deployed_validator(
        "cri-o/10-nri-required.conf",
        &["crio", "nri", "default_validator"],
        "nri_enable_default_validator",
        "nri_validator_",
    );
    assert_eq!(containerd.required_plugins, crio.required_plugins);
    assert_eq!(
        containerd.tolerate_missing_annotation,
        crio.tolerate_missing_annotation
    );
    [
        (SimConfig::containerd_2_3(dir.clone()), containerd),
        (SimConfig::crio_1_36(dir), crio),
    ]
}

/// The annotation nri-wasm's own pod carries, as the DaemonSet sets it.
fn daemonset_tolerates(key: &str) -> bool {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/kubernetes/nri-wasm.yaml"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .any(|line| line.trim() == format!("{key}: \"true\""))
}

#[tokio::test]
async fn while_nri_wasm_is_away_the_runtime_creates_no_container_without_it() {
    for (runtime, validator) in deployed_validators() {
        no_container_without_nri_wasm(runtime, validator).await;
    }
}

async fn no_container_without_nri_wasm(mut config: SimConfig, validator: DefaultValidator) {
    let plugins = plugin_dir(&[], None);
    let dir = TempDir::new().unwrap();
    config.socket = nri_sim::socket_in(dir.path());
    let tolerate = validator.tolerate_missing_annotation.clone().unwrap();
    assert!(daemonset_tolerates(&tolerate));
    config.default_validator = Some(validator);
    let sim = Simulator::start(config).await.unwrap();
    sim.run_pod_sandbox(pod("app")).await.unwrap();
    let mut own = pod("nri-wasm");
    own.annotations.insert(tolerate, "true".into());
    sim.run_pod_sandbox(own).await.unwrap();

    // Before nri-wasm is up: only its own pod gets containers.
    let refused = sim.create_container(container("app", "early")).await;
    let Err(SimError::Rejected { plugin, reason }) = refused else {
        panic!("created without nri-wasm: {refused:?}");
    };
    assert_eq!(plugin, "00-default-validator");
    assert_eq!(
        reason,
        "validation error: required plugin \"nri-wasm\" not present"
    );
    sim.create_container(container("nri-wasm", "nri-wasm"))
        .await
        .unwrap();

    let daemon = Daemon::start(sim.socket(), plugins.path());
    assert!(
        sim.wait_for_plugin(HOST_ID, REGISTERED).await,
        "{}",
        daemon.log()
    );
    sim.create_container(container("app", "served"))
        .await
        .unwrap();

    // Away again: refused again, until it is back.
    drop(daemon);
    while !sim.plugins().await.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = sim.create_container(container("app", "while-away")).await;
    assert!(
        matches!(refused, Err(SimError::Rejected { .. })),
        "{refused:?}"
    );
    let daemon = Daemon::start(sim.socket(), plugins.path());
    assert!(
        sim.wait_for_plugin(HOST_ID, REGISTERED).await,
        "{}",
        daemon.log()
    );
    sim.create_container(container("app", "back"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_drop_by_the_runtime_is_logged_and_counted_with_what_it_was_sent_last() {
    let plugins = plugin_dir(&[], None);
    let dir = TempDir::new().unwrap();
    let (sim, daemon) = started(
        SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())),
        &plugins,
    )
    .await;
    sim.restart().await.unwrap();
    daemon
        .wait_for_log("runtime closed the connection; reconnecting")
        .await;
    assert!(
        daemon.log().contains("last_message_bytes="),
        "{}",
        daemon.log()
    );
    assert!(sim.wait_for_plugin(HOST_ID, REGISTERED).await);
    let (_, metrics) = get(daemon.status_address().await, "/metrics").await;
    assert!(
        metrics.contains("nri_wasm_runtime_drops_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(
            |l| l.starts_with("nri_wasm_runtime_drop_last_message_bytes ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
}
