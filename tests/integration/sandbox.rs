//! Guests in their sandbox, end to end through the simulator: state kept
//! across events, rebuilt after a trap; hostile guests stopped at their
//! limits while the other guests' answers still count.

use nri_sim::SimConfig;

use crate::{
    guests::plugin_dir,
    harness::{container, pod, Harness},
};

fn env_value(container: &nri_proto::api::Container, name: &str) -> Option<String> {
    container
        .env
        .iter()
        .find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[tokio::test]
async fn a_guest_keeps_its_state_and_is_rebuilt_and_resynchronized_after_a_trap() {
    let plugins = plugin_dir(&["50-counter.wasm"], None);
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let first = h.sim.create_container(container("p1", "a")).await.unwrap();
    let second = h.sim.create_container(container("p1", "b")).await.unwrap();
    assert_eq!(env_value(&first, "COUNT").as_deref(), Some("1"));
    assert_eq!(
        env_value(&second, "COUNT").as_deref(),
        Some("2"),
        "state kept across events"
    );

    // The guest panics: fail-open, so the container is created unchanged.
    let crashed = h
        .sim
        .create_container(container("p1", "crash"))
        .await
        .unwrap();
    assert_eq!(env_value(&crashed, "COUNT"), None);

    // A new instance learns the node from Synchronize: a, b and crash,
    // then counts this one.
    let after = h.sim.create_container(container("p1", "c")).await.unwrap();
    assert_eq!(env_value(&after, "COUNT").as_deref(), Some("4"));
}
