//! Soak with faults: more than 10,000 NRI events from the runtime
//! simulator into nri-wasm's real dispatcher, with hostile guests beside
//! well-behaved ones, the runtime restarting and dropping its plugins at
//! random, and guests added and removed while events flow.
//!
//! It holds when: the host answers every event before the runtime's
//! request timeout (the simulator never drops it), every container
//! creation succeeds, no change refused by the grants reaches a
//! container, the granted ones do, and resident memory grows by less than
//! [`RSS_GROWTH_BOUND_KIB`]. Its own test binary, so that resident
//! memory is this test's alone. `SOAK_EVENTS` and `SOAK_SEED` override
//! the defaults; the figures are printed at the end.

#[path = "../integration/guests.rs"]
#[allow(dead_code)]
mod guests;

use std::{
    collections::BTreeMap,
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use nri_proto::api::{Container, PodSandbox};
use nri_sim::{SimConfig, Simulator};
use nri_wasm::{
    config::Config,
    dispatch::{CallObserver, CallRecord, Dispatcher},
    protocol::{self, Backoff, PluginConfig, PluginIdentity, RuntimeLink},
    runtime::{
        loader::{load_plugins, open_cache_dir, open_dir},
        CompileCache, GuestPre, WasmEngine,
    },
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 10_000;
const SEED: u64 = 20_261_201;
/// How much resident memory may grow between the warm-up and the end.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;
/// Containers per pod.
const CONTAINERS_PER_POD: usize = 4;
/// Chance, per container lifecycle, of each fault.
const RESTART_CHANCE: f64 = 0.01;
const DISCONNECT_CHANCE: f64 = 0.01;
const GUEST_CHANGE_CHANCE: f64 = 0.03;
/// How long the host may take to come back after a fault (its backoff
/// starts at 100 ms).
const RECONNECT_WITHIN: Duration = Duration::from_secs(10);
const HOST_ID: &str = "50-nri-wasm";

const WELL_BEHAVED: [&str; 2] = ["20-env-injector.wasm", "50-counter.wasm"];
const HOSTILE: [&str; 6] = [
    "70-overreach.wasm",
    "90-endless-loop.wasm",
    "91-memory-bomb.wasm",
    "92-deep-recursion.wasm",
    "93-panic.wasm",
    "94-huge-answer.wasm",
];
const CONFIG: &str = r#"
[defaults]
deadline = "20ms"
memory-limit = "16MiB"
failure-policy = "fail-open"

[plugins.env-injector]
config = "env SOAK=granted"
grants = { env = ["SOAK"] }

[plugins.counter]
grants = { env = ["COUNT"] }

# Room and time to build its 4 MB answer: the host's answer cap refuses
# it.
[plugins.huge-answer]
memory-limit = "64MiB"
deadline = "1s"
"#;

/// What the run did, printed at the end.
#[derive(Debug, Default)]
struct Figures {
    events: usize,
    lifecycles: usize,
    restarts: usize,
    disconnects: usize,
    guest_changes: usize,
    /// Guest calls by outcome: `answered`, or the kind of error.
    guest_calls: BTreeMap<&'static str, u64>,
}

/// Counts guest calls by outcome, across every guest set of the run.
#[derive(Default)]
struct Outcomes(Mutex<BTreeMap<&'static str, u64>>);

impl CallObserver for Outcomes {
    fn call(&self, record: &CallRecord<'_>) {
        let kind = record.outcome.map_or_else(|e| e.kind(), |_| "answered");
        *self.0.lock().unwrap().entry(kind).or_default() += 1;
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every soak guest, loaded once; the run hands subsets of them to the
/// dispatcher.
fn load_guests(config: &Config) -> Vec<GuestPre> {
    let files: Vec<&str> = WELL_BEHAVED.iter().chain(&HOSTILE).copied().collect();
    let dir = guests::plugin_dir(&files, None);
    let engine = WasmEngine::new().unwrap();
    let cache_dir = open_cache_dir(&guests::compile_cache()).unwrap();
    let cache = CompileCache::new(engine.engine(), Some(cache_dir));
    let report = load_plugins(
        &engine,
        &cache,
        &open_dir(dir.path()).unwrap(),
        dir.path(),
        |id| config.guest(&id.name).sandbox(),
    )
    .unwrap();
    assert!(report.refused.is_empty(), "refused: {:?}", report.refused);
    assert_eq!(report.guests.len(), files.len());
    report.guests
}

/// A random subset of the guests, always with env-injector (so that a
/// granted change is always expected), each other guest in with even odds.
fn pick(guests: &[GuestPre], rng: &mut StdRng) -> Vec<GuestPre> {
    guests
        .iter()
        .filter(|g| g.id().name == "env-injector" || rng.random_bool(0.5))
        .cloned()
        .collect()
}

/// Nothing a guest without grants asked for is on the container.
fn assert_no_refused_change(container: &Container) {
    let env_names: Vec<&str> = container
        .env
        .iter()
        .map(|e| e.split('=').next().unwrap_or(""))
        .collect();
    assert!(
        env_names
            .iter()
            .all(|n| ["PATH", "SOAK", "COUNT"].contains(n)),
        "an env var no grant allows reached {}: {:?}",
        container.id,
        container.env
    );
    assert!(container.hooks.is_none(), "a hook reached {}", container.id);
    assert!(
        container.mounts.iter().all(|m| m.destination != "/host"),
        "the overreaching mount reached {}",
        container.id
    );
    let linux = container.linux.as_ref();
    assert!(
        linux.is_none_or(|l| l.devices.is_empty()),
        "a device reached {}",
        container.id
    );
    let memory_limit = linux
        .and_then(|l| l.resources.as_ref())
        .and_then(|r| r.memory.as_ref())
        .and_then(|m| m.limit.as_ref())
        .map(|l| l.value);
    assert_ne!(
        memory_limit,
        Some(1),
        "the 1-byte memory limit reached {}",
        container.id
    );
}

struct Soak {
    sim: Simulator,
    dispatcher: Arc<Dispatcher>,
    guests: Vec<GuestPre>,
    config: Config,
    rng: StdRng,
    figures: Figures,
}

impl Soak {
    async fn connected(&self) {
        assert!(
            self.sim.wait_for_plugin(HOST_ID, RECONNECT_WITHIN).await,
            "the host did not come back within {RECONNECT_WITHIN:?}"
        );
    }

    /// Maybe a fault: a runtime restart, a runtime dropping its plugins,
    /// or a change of the guest set. The host must be back before the
    /// next lifecycle, so that every event after a fault reaches it.
    async fn maybe_fault(&mut self) {
        if self.rng.random_bool(RESTART_CHANCE) {
            self.sim.restart().await.unwrap();
            self.figures.restarts += 1;
            self.connected().await;
        }
        if self.rng.random_bool(DISCONNECT_CHANCE) {
            self.sim.disconnect_plugins().await;
            self.figures.disconnects += 1;
            self.connected().await;
        }
        if self.rng.random_bool(GUEST_CHANGE_CHANCE) {
            let guests = pick(&self.guests, &mut self.rng);
            self.dispatcher.replace_guests(guests, &self.config, &[]);
            self.figures.guest_changes += 1;
        }
    }

    async fn lifecycle(&mut self, pod: &str, n: usize) {
        let id = format!("{pod}-c{n}");
        let template = Container {
            id: id.clone(),
            pod_sandbox_id: pod.into(),
            name: format!("c{n}"),
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        };
        let created = self
            .sim
            .create_container(template)
            .await
            .unwrap_or_else(|e| panic!("creating {id}: {e}"));
        assert_no_refused_change(&created);
        assert!(
            created.env.iter().any(|e| e == "SOAK=granted"),
            "the granted change is missing from {id}"
        );
        self.sim.start_container(&id).await.unwrap();
        self.sim.stop_container(&id).await.unwrap();
        self.sim.remove_container(&id).await.unwrap();
        self.figures.lifecycles += 1;
    }

    async fn pod(&mut self, n: usize) {
        let id = format!("p{n}");
        let pod = PodSandbox {
            id: id.clone(),
            name: id.clone(),
            uid: format!("{id}-uid"),
            namespace: "soak".into(),
            ..Default::default()
        };
        self.sim.run_pod_sandbox(pod).await.unwrap();
        for c in 0..CONTAINERS_PER_POD {
            self.maybe_fault().await;
            self.lifecycle(&id, c).await;
        }
        self.sim.stop_pod_sandbox(&id).await.unwrap();
        self.sim.remove_pod_sandbox(&id).await.unwrap();
    }

    fn events(&self) -> usize {
        self.sim.calls().len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_holds_under_faults_hostile_guests_and_guest_changes() {
    let target_events = env_or("SOAK_EVENTS", EVENTS);
    let seed = env_or("SOAK_SEED", SEED);
    let config = Config::parse(CONFIG).unwrap();
    let guests = load_guests(&config);
    let outcomes = Arc::new(Outcomes::default());
    let dispatcher = Arc::new(Dispatcher::with_observers(
        guests.clone(),
        &config,
        vec![outcomes.clone()],
    ));
    let dir = tempfile::TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let host = tokio::spawn(protocol::run_plugin(
        PluginConfig {
            socket: sim.socket().to_path_buf(),
            identity: PluginIdentity::new("nri-wasm", "50").unwrap(),
            backoff: Backoff::default(),
        },
        dispatcher.clone(),
        RuntimeLink::default(),
        stop.clone(),
    ));
    let mut soak = Soak {
        sim,
        dispatcher,
        guests,
        config,
        rng: StdRng::seed_from_u64(seed),
        figures: Figures::default(),
    };
    soak.connected().await;

    // Warm-up: every guest instantiated and faulted at least once.
    for n in 0..10 {
        soak.pod(n).await;
    }
    let rss_before = rss_kib();
    let started = Instant::now();
    let warm_events = soak.events();
    let mut pods = 10;
    while soak.events() - warm_events < target_events {
        soak.pod(pods).await;
        pods += 1;
    }
    let rss_after = rss_kib();
    soak.figures.events = soak.events() - warm_events;
    soak.figures.guest_calls = outcomes.0.lock().unwrap().clone();

    // Straight to the process's stderr, past the test harness's capture:
    // the figures are printed on every run, passing or not.
    writeln!(
        std::io::stderr(),
        "soak (seed {seed}): {:?} in {:.1} s; RSS {rss_before} KiB after warm-up, {rss_after} KiB at the end ({:+} KiB)",
        soak.figures,
        started.elapsed().as_secs_f64(),
        rss_after as i64 - rss_before as i64,
    )
    .unwrap();
    assert!(
        soak.sim.dropped().is_empty(),
        "the runtime dropped the host: {:?}",
        soak.sim.dropped()
    );
    assert!(soak.figures.events >= target_events);
    assert!(
        soak.figures.restarts + soak.figures.disconnects > 0 && soak.figures.guest_changes > 0,
        "the run injected no faults: {:?}",
        soak.figures
    );
    let hostile = [
        "refused",
        "timeout",
        "memory_limit",
        "stack_overflow",
        "trap",
        "answer_too_large",
        "disabled",
    ];
    for kind in std::iter::once("answered").chain(hostile) {
        assert!(
            soak.figures.guest_calls.contains_key(kind),
            "no guest call ended {kind}: {:?}",
            soak.figures.guest_calls
        );
    }
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_BOUND_KIB,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    stop.cancel();
    host.await.unwrap();
}
