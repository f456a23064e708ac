//! End to end: the runtime simulator sends CreateContainer over its unix
//! socket, through the multiplexer and ttrpc, to a plugin, and waits for
//! the answer. The floor is a bare plugin that answers at once (same
//! socket, multiplexer, ttrpc and protocol layer, no dispatcher); then
//! nri-wasm with 0, 1, 10 and 50 Rust guests. Prints p50 and p99 of each
//! and their ratio to the floor's p50, and the throughput with 10 guests.
//! nri-wasm runs as the daemon does (its connection on a thread of its
//! own that also calls the guests, with its metrics); the simulator runs
//! on a thread of its own, as a container runtime would in another
//! process.
//!
//! All cases are connected at once and measured in alternating rounds, so
//! that a change in the machine's load during the run falls on every case
//! alike; the ratios are of samples pooled over the rounds.
//! `cargo bench -p nri-wasm --bench e2e`.

mod common;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use nri_proto::{
    api::{
        Container, ContainerUpdate, CreateContainerRequest, CreateContainerResponse, PodSandbox,
        StopContainerRequest, StopContainerResponse, UpdateContainerRequest,
        UpdateContainerResponse, ValidateContainerAdjustmentRequest,
        ValidateContainerAdjustmentResponse,
    },
    events::{EventMask, ALL_EVENTS},
};
use nri_sim::{SimConfig, Simulator};
use nri_wasm::{
    config::Config,
    dispatch::{CallObserver, Dispatcher},
    metrics::Metrics,
    protocol::{
        self, Backoff, HandlerError, Notification, NriHandler, PluginConfig, PluginIdentity,
        RuntimeInfo, RuntimeLink,
    },
    runtime::{
        loader::{load_plugins, open_dir},
        CompileCache, WasmEngine,
    },
};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const WARM_UP: usize = 200;
/// Rounds, each measuring every case in turn.
const ROUNDS: usize = 15;
/// Sequential requests per case and round.
const REQUESTS: usize = 400;
const THROUGHPUT_FOR: Duration = Duration::from_secs(3);
const IN_FLIGHT: usize = 8;

/// A plugin that answers everything at once with nothing.
struct Echo;

#[async_trait]
impl NriHandler for Echo {
    async fn configure(&self, _: &RuntimeInfo) -> Result<EventMask, HandlerError> {
        Ok(ALL_EVENTS.into_iter().collect())
    }
    async fn synchronize(
        &self,
        _: Vec<PodSandbox>,
        _: Vec<Container>,
    ) -> Result<Vec<ContainerUpdate>, HandlerError> {
        Ok(Vec::new())
    }
    async fn create_container(
        &self,
        _: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        Ok(CreateContainerResponse::default())
    }
    async fn update_container(
        &self,
        _: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, HandlerError> {
        Ok(UpdateContainerResponse::default())
    }
    async fn stop_container(
        &self,
        _: StopContainerRequest,
    ) -> Result<StopContainerResponse, HandlerError> {
        Ok(StopContainerResponse::default())
    }
    async fn validate_container_adjustment(
        &self,
        _: ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        Ok(ValidateContainerAdjustmentResponse::default())
    }
    async fn notify(&self, _: Notification) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// `n` env-injector guests, each setting a variable of its own, or one
/// ulimit-adjuster, on the one engine of the process (as in the daemon:
/// one engine, one epoch ticker).
fn guests(engine: &WasmEngine, examples: &Path, n: usize) -> (TempDir, Dispatcher) {
    let dir = TempDir::new().unwrap();
    let mut config = String::new();
    if n == 1 {
        std::fs::copy(
            examples.join("30-ulimit-adjuster.wasm"),
            dir.path().join("30-ulimit-adjuster.wasm"),
        )
        .unwrap();
        config.push_str("[plugins.ulimit-adjuster]\nread = { annotations = [\"ulimits.noderesource.dev/*\"] }\ngrants = { rlimits = { RLIMIT_NOFILE = 1048576 } }\n");
    } else {
        for i in 0..n {
            std::fs::copy(
                examples.join("20-env-injector.wasm"),
                dir.path().join(format!("{:02}-env{i}.wasm", i % 100)),
            )
            .unwrap();
            config.push_str(&format!(
                "[plugins.env{i}]\nconfig = \"env E{i}=1\"\ngrants = {{ env = [\"E{i}\"] }}\n"
            ));
        }
    }
    let config = Config::parse(&config).unwrap();
    let cache = CompileCache::new(engine.engine(), None);
    let plugins = open_dir(dir.path()).unwrap();
    let report = load_plugins(engine, &cache, &plugins, dir.path(), |id| {
        config.guest(&id.name).sandbox()
    })
    .unwrap();
    assert_eq!(report.guests.len(), n, "{:?}", report.refused);
    // As the daemon runs it: with its metrics.
    let metrics: Arc<dyn CallObserver> = Arc::new(Metrics::new());
    (
        dir,
        Dispatcher::with_observers(report.guests, &config, vec![metrics]),
    )
}

fn request(n: usize) -> CreateContainerRequest {
    let mut pod = PodSandbox {
        id: "bench".into(),
        name: "bench".into(),
        namespace: "default".into(),
        ..Default::default()
    };
    pod.annotations.insert(
        "ulimits.noderesource.dev/container.app".into(),
        "- type: RLIMIT_NOFILE\n  soft: 1024\n  hard: 4096\n".into(),
    );
    let container = Container {
        id: format!("c{n}"),
        pod_sandbox_id: "bench".into(),
        name: "app".into(),
        env: vec!["PATH=/usr/bin:/bin".into()],
        ..Default::default()
    };
    CreateContainerRequest {
        pod: Some(pod).into(),
        container: Some(container).into(),
        ..Default::default()
    }
}

struct Case {
    sim: Simulator,
    stop: CancellationToken,
    _dir: TempDir,
}

async fn start(handler: Arc<dyn NriHandler>) -> Case {
    let dir = TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let identity = PluginIdentity::new("nri-wasm", "50").unwrap();
    host_runtime().spawn(protocol::run_plugin(
        PluginConfig {
            socket: sim.socket().to_path_buf(),
            identity,
            backoff: Backoff::default(),
        },
        handler,
        RuntimeLink::default(),
        stop.clone(),
    ));
    assert!(
        sim.wait_for_plugin("50-nri-wasm", Duration::from_secs(10))
            .await
    );
    Case {
        sim,
        stop,
        _dir: dir,
    }
}

async fn create(plugin: &nri_sim::PluginConn, n: usize) -> Duration {
    let ctx = ttrpc::context::with_duration(Duration::from_secs(2));
    let request = request(n);
    let started = Instant::now();
    plugin
        .client()
        .create_container(ctx, &request)
        .await
        .unwrap();
    started.elapsed()
}

/// One case under measurement: its connection and the round trips timed.
struct Measured {
    what: String,
    case: Case,
    plugin: Arc<nri_sim::PluginConn>,
    samples: Vec<Duration>,
}

impl Measured {
    async fn new(what: String, case: Case) -> Self {
        let plugin = case.sim.plugins().await.remove(0);
        for n in 0..WARM_UP {
            create(&plugin, n).await;
        }
        Measured {
            what,
            case,
            plugin,
            samples: Vec::with_capacity(ROUNDS * REQUESTS),
        }
    }

    async fn round(&mut self, round: usize) {
        for n in 0..REQUESTS {
            let n = WARM_UP + round * REQUESTS + n;
            self.samples.push(create(&self.plugin, n).await);
        }
    }

    /// p50 and p99 of the samples of every round.
    fn percentiles(&mut self) -> (Duration, Duration) {
        self.samples.sort();
        let len = self.samples.len();
        (self.samples[len / 2], self.samples[len * 99 / 100])
    }
}

/// CreateContainer answers per second with [`IN_FLIGHT`] requests
/// outstanding.
async fn throughput(case: &Case) -> f64 {
    let plugin = case.sim.plugins().await.remove(0);
    let deadline = Instant::now() + THROUGHPUT_FOR;
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|t| {
            let plugin = plugin.clone();
            tokio::spawn(async move {
                let mut done = 0usize;
                while Instant::now() < deadline {
                    let ctx = ttrpc::context::with_duration(Duration::from_secs(2));
                    plugin
                        .client()
                        .create_container(ctx, &request(t * 1_000_000 + done))
                        .await
                        .unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / THROUGHPUT_FOR.as_secs_f64()
}

async fn stop(case: Case) {
    case.stop.cancel();
    case.sim.stop().await;
}

/// The plugin's runtime, apart from the simulator's as a runtime process
/// would be, and as the daemon builds it: multi-threaded, a worker per
/// core.
fn host_runtime() -> &'static tokio::runtime::Runtime {
    static HOST: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let (examples, _) = common::build_guests();
    // The simulator, like a container runtime, on threads of its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // NRI_WASM_BENCH_GUESTS=1 (or 0,10) runs only those cases beside
        // the floor (for a profiler).
        let counts: Vec<usize> = match std::env::var("NRI_WASM_BENCH_GUESTS") {
            Ok(list) => list
                .split(',')
                .map(|n| n.trim().parse().expect("numbers of guests"))
                .collect(),
            Err(_) => vec![0, 1, 10, 50],
        };
        let engine = WasmEngine::new().unwrap();
        let mut dirs = Vec::new();
        let floor = start(Arc::new(Echo)).await;
        let mut cases = vec![Measured::new("floor: bare ttrpc answer".into(), floor).await];
        for &n in &counts {
            let (dir, dispatcher) = guests(&engine, &examples, n);
            dirs.push(dir);
            let what = match n {
                0 => "nri-wasm, no guest".to_string(),
                1 => "nri-wasm, 1 guest (ulimit-adjuster)".to_string(),
                n => format!("nri-wasm, {n} guests (env-injector)"),
            };
            cases.push(Measured::new(what, start(Arc::new(dispatcher)).await).await);
        }
        for round in 0..ROUNDS {
            for case in &mut cases {
                case.round(round).await;
            }
        }
        println!("{ROUNDS} rounds of {REQUESTS} sequential CreateContainer per case\n");
        println!("| plugin | p50 (µs) | p99 (µs) | p50 / floor p50 |");
        println!("|---|---:|---:|---:|");
        let (floor_p50, _) = cases[0].percentiles();
        for case in &mut cases {
            let (p50, p99) = case.percentiles();
            println!(
                "| {} | {:.0} | {:.0} | {:.2} |",
                case.what,
                micros(p50),
                micros(p99),
                p50.as_secs_f64() / floor_p50.as_secs_f64()
            );
        }
        for (case, n) in cases.iter().skip(1).zip(&counts) {
            if *n == 10 {
                let rate = throughput(&case.case).await;
                println!("\nthroughput, 10 guests, {IN_FLIGHT} requests in flight: {rate:.0} CreateContainer/s");
            }
        }
        for case in cases {
            stop(case.case).await;
        }
    });
}
