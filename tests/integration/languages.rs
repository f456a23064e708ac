//! The examples written in languages other than Rust, built from source
//! by the one guest build, each loaded with the example configuration and
//! seen at work on the simulator's containers.

use nri_proto::api::Container;
use nri_sim::SimConfig;

use crate::{
    guests::plugin_dir,
    harness::{container, memory, pod, Harness},
};

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

fn example_config() -> &'static str {
    include_str!("../../guest-examples/nri-wasm.toml")
}

fn memory_limit(c: &Container) -> Option<i64> {
    c.linux
        .resources
        .memory
        .as_ref()
        .and_then(|m| m.limit.as_ref())
        .map(|l| l.value)
}

fn with_memory_limit(mut c: Container, limit: i64) -> Container {
    c.linux.mut_or_insert_default().resources = Some(memory(limit)).into();
    c
}

#[tokio::test]
async fn c_memory_clamp_sets_a_default_and_clamps_creations_and_updates() {
    let plugins = plugin_dir(&["35-memory-clamp.wasm"], Some(example_config()));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();

    let unlimited = h
        .sim
        .create_container(container("p1", "free"))
        .await
        .unwrap();
    assert_eq!(memory_limit(&unlimited), Some(256 * MIB));

    let greedy = with_memory_limit(container("p1", "greedy"), 4 * GIB);
    let greedy = h.sim.create_container(greedy).await.unwrap();
    assert_eq!(memory_limit(&greedy), Some(GIB));

    let modest = with_memory_limit(container("p1", "modest"), 512 * MIB);
    let modest = h.sim.create_container(modest).await.unwrap();
    assert_eq!(
        memory_limit(&modest),
        Some(512 * MIB),
        "within bounds: untouched"
    );

    let updated = h
        .sim
        .update_container(&modest.id, memory(8 * GIB))
        .await
        .unwrap();
    assert_eq!(
        memory_limit(&updated),
        Some(GIB),
        "an update above the maximum is clamped"
    );
}
