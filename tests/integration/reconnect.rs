//! Staying registered: the runtime restarts or drops the host, and the
//! host comes back by itself, registered and synchronized.

use std::time::{Duration, Instant};

use nri_sim::SimConfig;

use crate::harness::{container, pod, Harness, HOST_ID, REGISTRATION_WAIT};

#[tokio::test]
async fn after_a_runtime_restart_the_host_registers_and_synchronizes_again() {
    let h = Harness::start(SimConfig::containerd_2_3).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    h.sim
        .create_container(container("p1", "app"))
        .await
        .unwrap();

    let restarted = Instant::now();
    h.sim.restart().await.unwrap();
    assert!(
        h.sim.wait_for_plugin(HOST_ID, REGISTRATION_WAIT).await,
        "not registered again within {REGISTRATION_WAIT:?}"
    );
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // The second Synchronize carries what the runtime kept.
    assert_eq!(*h.recorder.syncs.lock().unwrap(), [(0, 0), (1, 1)]);
    assert_eq!(h.recorder.runtimes.lock().unwrap().len(), 2);
    let created = h
        .sim
        .create_container(container("p1", "second"))
        .await
        .unwrap();
    assert!(created.env.contains(&"SEEN_BY=recorder".to_string()));
}

#[tokio::test]
async fn a_host_too_slow_for_the_runtime_is_dropped_then_registers_again() {
    let h = Harness::start_with(
        SimConfig::containerd_2_3,
        |config| config.request_timeout = Duration::from_millis(300),
        |_| {},
    )
    .await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    *h.recorder.create_delay.lock().unwrap() = Some(Duration::from_millis(900));

    // Like NRI, the runtime goes on without a plugin that timed out.
    let created = h
        .sim
        .create_container(container("p1", "slow"))
        .await
        .unwrap();
    assert!(!created.env.contains(&"SEEN_BY=recorder".to_string()));
    let dropped = h.sim.dropped();
    assert_eq!(dropped[0].plugin, HOST_ID);
    assert_eq!(dropped[0].reason, "no answer within 300ms");

    *h.recorder.create_delay.lock().unwrap() = None;
    assert!(h.sim.wait_for_plugin(HOST_ID, REGISTRATION_WAIT).await);
    let created = h
        .sim
        .create_container(container("p1", "fast"))
        .await
        .unwrap();
    assert!(created.env.contains(&"SEEN_BY=recorder".to_string()));
}

#[tokio::test]
async fn a_stopped_host_leaves_the_runtime_which_goes_on_without_it() {
    let mut h = Harness::start(SimConfig::containerd_2_3).await;
    h.stop_host().await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let created = h
        .sim
        .create_container(container("p1", "app"))
        .await
        .unwrap();
    assert!(!created.env.contains(&"SEEN_BY=recorder".to_string()));
    assert!(h.sim.plugins().await.is_empty());
    assert!(!h.link.is_connected());
}
