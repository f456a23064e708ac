//! The status endpoint of the real daemon: /metrics has the per-guest
//! series, /healthz and /readyz answer.

use std::{net::SocketAddr, time::Duration};

use nri_sim::{SimConfig, Simulator};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    daemon::Daemon,
    guests::plugin_dir,
    harness::{container, pod, HOST_ID},
};

/// GET `path`; the status code and the body.
pub async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: nri-wasm\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    (code, body)
}

pub fn has_series(metrics: &str, name: &str, labels: &[&str]) -> bool {
    metrics.lines().any(|line| {
        line.starts_with(name) && labels.iter().all(|l| line.contains(l)) && !line.ends_with(" 0")
    })
}

#[tokio::test]
async fn metrics_have_calls_latency_errors_and_refusals_per_guest() {
    let config = r#"
[plugins.env-injector]
config = "env NRI_WASM=1"
grants = { env = ["NRI_WASM"] }
"#;
    let plugins = plugin_dir(&["20-env-injector.wasm", "70-overreach.wasm"], Some(config));
    let dir = TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let daemon = Daemon::start(sim.socket(), plugins.path());
    let address = daemon.status_address().await;
    assert_eq!(get(address, "/healthz").await, (200, "ok\n".into()));
    assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await);
    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    sim.create_container(container("p1", "app")).await.unwrap();

    assert_eq!(get(address, "/readyz").await, (200, "registered\n".into()));
    let (code, metrics) = get(address, "/metrics").await;
    assert_eq!(code, 200);
    let env = r#"guest="20-env-injector""#;
    let overreach = r#"guest="70-overreach""#;
    let create = r#"event="CreateContainer""#;
    for (name, labels) in [
        ("nri_wasm_guest_calls_total", vec![env, create]),
        ("nri_wasm_guest_calls_total", vec![overreach, create]),
        (
            "nri_wasm_guest_calls_total",
            vec![env, r#"event="Synchronize""#],
        ),
        (
            "nri_wasm_guest_call_duration_seconds_count",
            vec![env, create],
        ),
        (
            "nri_wasm_guest_call_duration_seconds_bucket",
            vec![env, create, r#"le="+Inf""#],
        ),
        (
            "nri_wasm_guest_errors_total",
            vec![overreach, r#"kind="refused""#],
        ),
        (
            "nri_wasm_guest_refusals_total",
            vec![overreach, r#"family="hooks""#],
        ),
        (
            "nri_wasm_guest_refusals_total",
            vec![overreach, r#"family="mounts""#],
        ),
        ("nri_wasm_guests", vec![]),
        ("nri_wasm_runtime_connected", vec![]),
    ] {
        assert!(
            has_series(&metrics, name, &labels),
            "no {name} {labels:?} in\n{metrics}"
        );
    }
    assert!(
        !has_series(&metrics, "nri_wasm_guest_errors_total", &[env]),
        "the granted guest had no errors:\n{metrics}"
    );
    assert_eq!(get(address, "/nothing").await.0, 404);
}
