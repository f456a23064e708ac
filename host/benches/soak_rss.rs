//! Host memory over 10,000 container lifecycles through the runtime
//! simulator, with hostile guests (panic, memory bomb, endless loop)
//! beside a well-behaved one. Prints resident memory after a warm-up and
//! at the end; `cargo bench -p nri-wasm --bench soak_rss`.

mod common;

use std::sync::Arc;

use nri_proto::api::{Container, PodSandbox};
use nri_sim::{SimConfig, Simulator};
use nri_wasm::{
    config::Config,
    dispatch::Dispatcher,
    protocol::{self, Backoff, PluginConfig, PluginIdentity, RuntimeLink},
    runtime::{
        loader::{load_plugins, open_dir},
        CompileCache, WasmEngine,
    },
};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// Lifecycles measured; `SOAK_LIFECYCLES` overrides.
const LIFECYCLES: usize = 10_000;
const WARM_UP: usize = 100;
const GUESTS: [&str; 4] = [
    "50-counter.wasm",
    "91-memory-bomb.wasm",
    "93-panic.wasm",
    "90-endless-loop.wasm",
];
const CONFIG: &str = "[defaults]\ndeadline = \"20ms\"\nmemory-limit = \"16MiB\"\n";

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn dispatcher(tests: &std::path::Path) -> Dispatcher {
    let dir = TempDir::new().unwrap().keep();
    for guest in GUESTS {
        std::fs::copy(tests.join(guest), dir.join(guest)).unwrap();
    }
    let config = Config::parse(CONFIG).unwrap();
    let engine = WasmEngine::new().unwrap();
    let cache = CompileCache::new(engine.engine(), None);
    let report = load_plugins(&engine, &cache, &open_dir(&dir).unwrap(), &dir, |id| {
        config.guest(&id.name).sandbox()
    })
    .unwrap();
    Dispatcher::new(report.guests, &config)
}

async fn lifecycle(sim: &Simulator, n: usize) {
    let id = format!("c{n}");
    let container = Container {
        id: id.clone(),
        pod_sandbox_id: "p".into(),
        name: id.clone(),
        ..Default::default()
    };
    sim.create_container(container).await.unwrap();
    sim.start_container(&id).await.unwrap();
    sim.stop_container(&id).await.unwrap();
    sim.remove_container(&id).await.unwrap();
}

#[tokio::main]
async fn main() {
    let (_, tests) = common::build_guests();
    let dispatcher = Arc::new(dispatcher(&tests));
    let dir = TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(protocol::run_plugin(
        PluginConfig {
            socket: sim.socket().to_path_buf(),
            identity: PluginIdentity::new("nri-wasm", "50").unwrap(),
            backoff: Backoff::default(),
        },
        dispatcher.clone(),
        RuntimeLink::default(),
        stop.clone(),
    ));
    assert!(
        sim.wait_for_plugin("50-nri-wasm", std::time::Duration::from_secs(5))
            .await
    );
    sim.run_pod_sandbox(PodSandbox {
        id: "p".into(),
        name: "p".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    for n in 0..WARM_UP {
        lifecycle(&sim, n).await;
    }
    let lifecycles = std::env::var("SOAK_LIFECYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LIFECYCLES);
    let before = rss_kib();
    let started = std::time::Instant::now();
    for n in WARM_UP..WARM_UP + lifecycles {
        lifecycle(&sim, n).await;
    }
    let after = rss_kib();
    let faults: u64 = dispatcher.guests().iter().map(|g| g.stats().faults).sum();
    assert!(
        sim.dropped().is_empty(),
        "the runtime dropped the host: {:?}",
        sim.dropped()
    );
    println!(
        "{lifecycles} container lifecycles ({} events) in {:.1} s with {} guest faults: RSS {} KiB after warm-up, {} KiB at the end ({:+} KiB)",
        lifecycles * 5,
        started.elapsed().as_secs_f64(),
        faults,
        before,
        after,
        after as i64 - before as i64
    );
    stop.cancel();
}
