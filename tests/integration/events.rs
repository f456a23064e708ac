//! Every NRI event, from the simulated runtime through the socket to the
//! host's handler, and the answers back into the runtime's containers.

use std::collections::BTreeSet;

use nri_proto::{
    api::{Event, LinuxResources},
    events::{event_name, ALL_EVENTS},
};
use nri_sim::{SimConfig, SimError};

use crate::harness::{
    container, memory, pod, resources_update, Harness, MEMORY_CLAMP, REJECT_LABEL,
};

/// Runs a pod with an app and a sidecar through its whole life.
async fn play_full_lifecycle(h: &Harness) {
    let sim = &h.sim;
    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let app = sim.create_container(container("p1", "app")).await.unwrap();
    sim.create_container(container("p1", "sidecar"))
        .await
        .unwrap();
    assert!(
        app.env.contains(&"SEEN_BY=recorder".to_string()),
        "{:?}",
        app.env
    );
    assert_eq!(app.annotations["recorder.example.com/seen"], "app");

    sim.post_create_container("p1-app").await.unwrap();
    sim.start_container("p1-app").await.unwrap();
    let updated = sim
        .update_container("p1-app", memory(4 << 30))
        .await
        .unwrap();
    let limit = updated.linux.resources.memory.limit.value;
    assert_eq!(limit, MEMORY_CLAMP, "the host clamped the update");
    sim.update_pod_sandbox("p1", LinuxResources::default(), memory(8 << 30))
        .await
        .unwrap();

    sim.stop_container("p1-app").await.unwrap();
    let sidecar = sim.container("p1-sidecar").unwrap();
    assert_eq!(
        sidecar.linux.resources.cpu.shares.value, 2048,
        "StopContainer's update applied"
    );
    sim.remove_container("p1-app").await.unwrap();
    sim.stop_pod_sandbox("p1").await.unwrap();
    sim.remove_pod_sandbox("p1").await.unwrap();
    assert!(sim.container("p1-sidecar").is_none());
}

#[tokio::test]
async fn containerd_2_3_delivers_all_fourteen_events_through_dedicated_rpcs() {
    let h = Harness::start(SimConfig::containerd_2_3).await;
    play_full_lifecycle(&h).await;

    let seen: BTreeSet<String> = h.recorder.events().into_iter().collect();
    let all: BTreeSet<String> = ALL_EVENTS
        .iter()
        .map(|&e| event_name(e).to_string())
        .collect();
    assert_eq!(seen, all);
    let methods: Vec<&str> = h.sim.calls().iter().map(|c| c.method).collect();
    assert!(!methods.contains(&"StateChange"), "{methods:?}");
    assert_eq!(h.sim.plugins().await[0].events.0, 0x3fff);
    assert!(h.sim.dropped().is_empty(), "{:?}", h.sim.dropped());
}

#[tokio::test]
async fn containerd_2_0_sends_state_change_and_gets_a_mask_it_knows() {
    let h = Harness::start(SimConfig::containerd_2_0).await;
    play_full_lifecycle(&h).await;

    // NRI's own logger subscribing to every v0.12 event was refused by this
    // runtime ("invalid plugin events: 0x3800"); the host subscribes to
    // what the runtime knows.
    assert_eq!(h.sim.plugins().await[0].events.0, 0x7ff);
    let runtime = h.recorder.runtimes.lock().unwrap()[0].clone();
    assert_eq!(runtime.nri_version.to_string(), "v0.8.0");
    let calls = h.sim.calls();
    let state_changes = calls.iter().filter(|c| c.method == "StateChange").count();
    // RunPodSandbox, PostCreate, Start, PostStart, PostUpdate, Remove,
    // StopPodSandbox, RemovePodSandbox.
    assert_eq!(state_changes, 8, "{calls:?}");
    let events = h.recorder.events();
    for event in [
        Event::RUN_POD_SANDBOX,
        Event::POST_START_CONTAINER,
        Event::REMOVE_POD_SANDBOX,
    ] {
        assert!(
            events.contains(&event_name(event).to_string()),
            "{events:?}"
        );
    }
    assert!(!events.contains(&"ValidateContainerAdjustment".to_string()));
}

#[tokio::test]
async fn crio_1_36_sends_state_change_and_validates() {
    let h = Harness::start(SimConfig::crio_1_36).await;
    play_full_lifecycle(&h).await;
    assert_eq!(h.sim.plugins().await[0].events.0, 0x3fff);
    let runtime = h.recorder.runtimes.lock().unwrap()[0].clone();
    assert_eq!(runtime.nri_version.to_string(), "v0.11.0");
    let methods: Vec<&str> = h.sim.calls().iter().map(|c| c.method).collect();
    assert!(methods.contains(&"StateChange"));
    assert!(methods.contains(&"ValidateContainerAdjustment"));
}

#[tokio::test]
async fn a_rejecting_validator_fails_the_creation_and_nothing_is_stored() {
    let h = Harness::start(SimConfig::containerd_2_3).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let mut doomed = container("p1", "doomed");
    doomed.labels.insert(REJECT_LABEL.into(), "yes".into());
    let err = h.sim.create_container(doomed).await.unwrap_err();
    assert_eq!(
        err,
        SimError::Rejected {
            plugin: "50-nri-wasm".into(),
            reason: "labelled for rejection".into()
        }
    );
    assert!(h.sim.container("p1-doomed").is_none());
}

#[tokio::test]
async fn synchronize_in_several_pages_reaches_the_handler_as_one() {
    let pods: Vec<_> = (0..5).map(|i| pod(&format!("p{i}"))).collect();
    let containers: Vec<_> = (0..7)
        .map(|i| container(&format!("p{}", i % 5), &format!("c{i}")))
        .collect();
    let h = Harness::start_with(
        SimConfig::containerd_2_3,
        |config| config.sync_page_size = 3,
        |sim| sim.preload(pods, containers),
    )
    .await;
    assert_eq!(*h.recorder.syncs.lock().unwrap(), [(5, 7)]);
    let pages = h
        .sim
        .calls()
        .iter()
        .filter(|c| c.method == "Synchronize")
        .count();
    assert_eq!(pages, 4);
}

#[tokio::test]
async fn unsolicited_updates_reach_the_runtime() {
    let h = Harness::start(SimConfig::containerd_2_3).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    h.sim
        .create_container(container("p1", "app"))
        .await
        .unwrap();

    let request = nri_proto::api::UpdateContainersRequest {
        update: vec![
            resources_update("p1-app", memory(123 << 20)),
            resources_update("missing", memory(1)),
        ],
        ..Default::default()
    };
    let reply = h
        .link
        .update_containers(request, std::time::Duration::from_secs(2))
        .await
        .unwrap();
    let failed: Vec<&str> = reply
        .failed
        .iter()
        .map(|u| u.container_id.as_str())
        .collect();
    assert_eq!(failed, ["missing"]);
    let app = h.sim.container("p1-app").unwrap();
    assert_eq!(app.linux.resources.memory.limit.value, 123 << 20);
    assert_eq!(h.sim.unsolicited().updates.len(), 2);
}
