//! Guests in their sandbox, end to end through the simulator: state kept
//! across events, rebuilt after a trap; hostile guests stopped at their
//! limits while the other guests' answers still count.

use std::time::Duration;

use nri_sim::{SimConfig, SimError};
use nri_wasm::{
    dispatch::{Dispatcher, GuestStats},
    runtime::GuestFault,
};

use crate::{
    guests::plugin_dir,
    harness::{container, pod, Harness},
};

const COUNTER_CONFIG: &str = "[plugins.counter]\ngrants = { env = [\"COUNT\"] }\n";

fn env_value(container: &nri_proto::api::Container, name: &str) -> Option<String> {
    container
        .env
        .iter()
        .find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[tokio::test]
async fn a_guest_keeps_its_state_and_is_rebuilt_and_resynchronized_after_a_trap() {
    let plugins = plugin_dir(&["50-counter.wasm"], Some(COUNTER_CONFIG));
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

/// The stats of the guest `id` of a dispatcher.
fn stats(dispatcher: &Dispatcher, id: &str) -> GuestStats {
    let guests = dispatcher.guests();
    let guest = guests
        .iter()
        .find(|g| g.id().to_string() == id)
        .expect("guest loaded");
    guest.stats()
}

const HOSTILE_CONFIG: &str = r#"
[defaults]
deadline = "50ms"
memory-limit = "16MiB"

[plugins.counter]
grants = { env = ["COUNT"] }

# Building its answer takes time and memory; what it abuses is the size.
[plugins.huge-answer]
deadline = "1s"
memory-limit = "128MiB"
"#;

/// Runs a hostile guest beside the counter: the event completes with the
/// counter's change, the runtime keeps the host, and the next event is
/// answered normally. Returns the hostile guest's fault.
async fn survives(hostile: &str) -> GuestFault {
    let plugins = plugin_dir(&["50-counter.wasm", hostile], Some(HOSTILE_CONFIG));
    let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let first = h.sim.create_container(container("p1", "a")).await.unwrap();
    assert_eq!(
        env_value(&first, "COUNT").as_deref(),
        Some("1"),
        "{hostile}"
    );
    let second = h.sim.create_container(container("p1", "b")).await.unwrap();
    assert_eq!(
        env_value(&second, "COUNT").as_deref(),
        Some("2"),
        "{hostile}"
    );
    assert!(
        h.sim.dropped().is_empty(),
        "{hostile}: the runtime dropped the host: {:?}",
        h.sim.dropped()
    );
    let id = hostile.trim_end_matches(".wasm");
    let stats = stats(&dispatcher, id);
    assert_eq!(stats.faults, 2, "{hostile}: {stats:?}");
    stats.last_fault.expect("a fault")
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_its_deadline() {
    let fault = survives("90-endless-loop.wasm").await;
    assert_eq!(fault, GuestFault::Timeout(Duration::from_millis(50)));
}

#[tokio::test]
async fn a_memory_bomb_stops_at_its_cap() {
    let fault = survives("91-memory-bomb.wasm").await;
    assert_eq!(fault, GuestFault::MemoryLimit(16 << 20));
}

#[tokio::test]
async fn deep_recursion_overflows_the_guest_stack_not_the_host() {
    let fault = survives("92-deep-recursion.wasm").await;
    assert_eq!(fault, GuestFault::StackOverflow);
}

#[tokio::test]
async fn a_panic_is_a_trap() {
    let fault = survives("93-panic.wasm").await;
    assert!(
        matches!(&fault, GuestFault::Trap(msg) if msg.contains("unreachable")),
        "{fault:?}"
    );
}

#[tokio::test]
async fn a_huge_answer_is_refused() {
    let fault = survives("94-huge-answer.wasm").await;
    assert!(
        matches!(fault, GuestFault::AnswerTooLarge { max: 1048576, .. }),
        "{fault:?}"
    );
}

#[tokio::test]
async fn a_fail_closed_guest_that_traps_fails_the_creation() {
    let config = "[plugins.panic]\nfailure-policy = \"fail-closed\"\n[plugins.counter]\ngrants = { env = [\"COUNT\"] }\n";
    let plugins = plugin_dir(&["50-counter.wasm", "93-panic.wasm"], Some(config));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let err = h
        .sim
        .create_container(container("p1", "a"))
        .await
        .unwrap_err();
    let SimError::Plugin {
        plugin,
        event,
        message,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (plugin.as_str(), event.as_str()),
        ("50-nri-wasm", "CreateContainer")
    );
    assert!(message.starts_with("guest 93-panic trapped:"), "{message}");
    assert!(message.ends_with("(CreateContainer of p1-a)"), "{message}");
    assert!(h.sim.container("p1-a").is_none());
}

#[tokio::test]
async fn a_guest_that_keeps_faulting_is_disabled() {
    let plugins = plugin_dir(&["93-panic.wasm"], Some(HOSTILE_CONFIG));
    let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    for name in ["a", "b", "c", "d", "e"] {
        h.sim.create_container(container("p1", name)).await.unwrap();
    }
    let stats = stats(&dispatcher, "93-panic");
    assert_eq!(stats.faults, 3, "disabled after the third fault: {stats:?}");
}
