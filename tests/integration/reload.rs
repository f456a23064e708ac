//! Hot reload of the real daemon: guests added, replaced and removed
//! while containers are being created, none of which fails.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use nri_proto::api::Container;
use nri_sim::{SimConfig, Simulator};
use tempfile::TempDir;

use crate::{
    daemon::Daemon,
    guests::{built, plugin_dir},
    harness::{container, pod, HOST_ID},
};

const CONFIG: &str = r#"
[plugins.env-injector]
config = "env INJECTED=1"
grants = { env = ["INJECTED"] }

[plugins.counter]
# The counter ignores its configuration; the env-injector that replaces
# it under the same name reads it.
config = "env REPLACED=1"
grants = { env = ["COUNT", "REPLACED"] }
"#;

/// Creates containers one after another until stopped; every result is
/// kept.
struct Load {
    created: Arc<Mutex<Vec<Result<Container, String>>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(sim: Arc<Simulator>) -> Load {
        let created = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (results, stopped) = (created.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !stopped.load(Ordering::Relaxed) {
                n += 1;
                let result = sim
                    .create_container(container("p1", &format!("c{n}")))
                    .await;
                if result.is_ok() {
                    sim.remove_container(&format!("p1-c{n}")).await.ok();
                }
                results
                    .lock()
                    .unwrap()
                    .push(result.map_err(|e| e.to_string()));
            }
        });
        Load {
            created,
            stop,
            task,
        }
    }

    /// Waits until a container is created whose environment `holds`.
    async fn wait_for(&self, what: &str, holds: impl Fn(&[String]) -> bool) {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let latest = self.created.lock().unwrap().last().cloned();
                if let Some(Ok(c)) = latest {
                    if holds(&c.env) {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let latest = self.created.lock().unwrap().last().cloned();
        assert!(found.is_ok(), "never saw {what}; latest: {latest:?}");
    }

    async fn finish(self) -> Vec<Result<Container, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        Arc::try_unwrap(self.created).unwrap().into_inner().unwrap()
    }
}

fn has(env: &[String], var: &str) -> bool {
    env.iter().any(|e| e.starts_with(&format!("{var}=")))
}

/// Puts `source` in place as `name`, as package managers do: written
/// beside, then renamed.
fn install(source: &Path, dir: &Path, name: &str) {
    let temp = dir.join(format!(".{name}.new"));
    std::fs::copy(source, &temp).unwrap();
    std::fs::rename(temp, dir.join(name)).unwrap();
}

#[tokio::test]
async fn guests_are_added_replaced_and_removed_under_load_without_failing_an_event() {
    let plugins = plugin_dir(&["20-env-injector.wasm"], Some(CONFIG));
    let dir = TempDir::new().unwrap();
    let sim = Arc::new(
        Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
            .await
            .unwrap(),
    );
    let daemon = Daemon::start(sim.socket(), plugins.path());
    assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await);
    sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let load = Load::start(sim.clone());
    load.wait_for("the first guest", |env| has(env, "INJECTED"))
        .await;

    let built = built();
    install(
        &built.test_guests.join("50-counter.wasm"),
        plugins.path(),
        "50-counter.wasm",
    );
    load.wait_for("the added counter", |env| {
        has(env, "COUNT") && has(env, "INJECTED")
    })
    .await;
    daemon
        .wait_for_log("plugins reloaded added=[\"50-counter\"]")
        .await;

    install(
        &built.examples.join("20-env-injector.wasm"),
        plugins.path(),
        "50-counter.wasm",
    );
    load.wait_for("the replaced counter", |env| {
        has(env, "REPLACED") && !has(env, "COUNT")
    })
    .await;
    daemon.wait_for_log("replaced=[\"50-counter\"]").await;

    std::fs::remove_file(plugins.path().join("50-counter.wasm")).unwrap();
    load.wait_for("the counter removed", |env| {
        has(env, "INJECTED") && !has(env, "REPLACED")
    })
    .await;
    daemon.wait_for_log("removed=[\"50-counter\"]").await;

    // A broken file in place of a running guest leaves it running.
    std::fs::write(plugins.path().join("20-env-injector.wasm"), b"truncated").unwrap();
    daemon.wait_for_log("plugin refused file=").await;

    let results = load.finish().await;
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "events failed during reloads: {failed:?}"
    );
    let last = results.last().unwrap().as_ref().unwrap();
    assert!(has(&last.env, "INJECTED"), "{:?}", last.env);
    assert!(sim.dropped().is_empty(), "{:?}", sim.dropped());
    assert!(
        results.len() > 20,
        "only {} containers created",
        results.len()
    );
}
