//! The example plugins of every language, side by side: file size, load
//! time with a cold and a warm compile cache, instantiation, and the cost
//! of one call of the event each handles (CreateContainer for adjusters,
//! ValidateContainerAdjustment for validators, RunPodSandbox for
//! observers), with its grants and redaction as configured in
//! guest-examples/nri-wasm.toml. `cargo bench -p nri-wasm --bench
//! languages`.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use nri_proto::api::{self, Event};
use nri_wasm::{
    config::Config,
    dispatch::{Budget, GuestSlot, NodeView, StartContext},
    runtime::{
        bindings::types as wit,
        loader::{load_file, open_cache_dir, open_dir, parse_file_name},
        CompileCache, GuestNotification, GuestPre, WasmEngine,
    },
};
use tempfile::TempDir;

const COLD_RUNS: usize = 3;
const WARM_RUNS: usize = 5;
const INSTANCES: usize = 50;
const CALLS: usize = 2000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every example, built from source.
fn build() -> PathBuf {
    let root = root();
    let out = root.join("target/bench-plugins/languages");
    nri_wasm_guest_build::ensure_target().unwrap();
    nri_wasm_guest_build::build_examples(
        &root.join("guest-examples"),
        &root.join("wit"),
        &root.join("target/guests"),
        &out,
    )
    .unwrap();
    out
}

/// The language an example is written in: its directory under
/// guest-examples/, Rust for the Cargo workspace.
fn language(name: &str) -> String {
    let examples = root().join("guest-examples");
    std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|lang| lang.join(name).join("plugin.toml").is_file())
        .map_or("rust".into(), |lang| {
            lang.file_name().unwrap().to_string_lossy().into_owned()
        })
}

fn load(
    engine: &WasmEngine,
    dir: &Path,
    file: &str,
    cache: &Path,
    config: &Config,
) -> (GuestPre, Duration, u64) {
    let id = parse_file_name(file).unwrap().unwrap();
    let cache = CompileCache::new(engine.engine(), Some(open_cache_dir(cache).unwrap()));
    let plugins = open_dir(dir).unwrap();
    let started = Instant::now();
    let guest = load_file(
        engine,
        &cache,
        &plugins,
        file,
        id.clone(),
        config.guest(&id.name).sandbox(),
    )
    .unwrap();
    (guest, started.elapsed(), cache.compiled())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The sample event's pod and container.
fn sample() -> (api::PodSandbox, api::Container) {
    let text = std::fs::read_to_string(root().join("guest-examples/events/create-container.json"))
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let request: api::CreateContainerRequest =
        protobuf_json_mapping::parse_from_str(&value["request"].to_string()).unwrap();
    (request.pod.unwrap(), request.container.unwrap())
}

/// Time per call of the event the guest handles, over [`CALLS`] calls.
fn per_call(guest: GuestPre, config: &Config) -> (&'static str, Duration) {
    let settings = config.guest(&guest.id().name);
    let events = guest.handled_events();
    let slot = GuestSlot::new(guest, settings);
    let runtime = wit::RuntimeInfo {
        name: "bench".into(),
        version: "0".into(),
        nri_version: "v0.12.0".into(),
        request_timeout_ms: 2000,
    };
    let node = Mutex::new(NodeView::default());
    let start = StartContext {
        runtime: &runtime,
        node: &node,
    };
    let events_loop = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (pod, container) = sample();
    let pod_wit = slot.pod_for_guest(&pod);
    let container_wit = slot.container_for_guest(&container);
    let validation = slot.validation_for_guest(
        &api::ValidateContainerAdjustmentRequest {
            pod: Some(pod.clone()).into(),
            container: Some(container.clone()).into(),
            ..Default::default()
        },
        &|_| true,
    );
    let call = |_: usize| {
        events_loop.block_on(async {
            let budget = Budget::new(Duration::from_secs(2));
            let mut call = slot.begin(&start, &budget).await?;
            let deadline = call.deadline();
            let instance = call.instance();
            if events.contains(Event::CREATE_CONTAINER) {
                let result = instance
                    .create_container(deadline, &pod_wit, &container_wit)
                    .await;
                call.finish(result).map(drop)
            } else if events.contains(Event::VALIDATE_CONTAINER_ADJUSTMENT) {
                let result = instance.validate(deadline, &validation).await;
                call.finish(result).or_else(|e| match e {
                    nri_wasm::dispatch::SlotError::Failed(_) => Ok(()),
                    other => Err(other),
                })
            } else {
                let pod_event = GuestNotification::Pod(Event::RUN_POD_SANDBOX, &pod_wit);
                let result = instance.notify(deadline, pod_event).await;
                call.finish(result)
            }
        })
    };
    call(0).unwrap();
    let started = Instant::now();
    for n in 0..CALLS {
        call(n).unwrap();
    }
    let event = if events.contains(Event::CREATE_CONTAINER) {
        "CreateContainer"
    } else if events.contains(Event::VALIDATE_CONTAINER_ADJUSTMENT) {
        "Validate"
    } else {
        "RunPodSandbox"
    };
    (event, started.elapsed() / CALLS as u32)
}

fn instantiate(guest: &GuestPre) -> Duration {
    let events_loop = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let samples = (0..INSTANCES)
        .map(|_| {
            let started = Instant::now();
            drop(
                events_loop
                    .block_on(guest.instantiate(guest.limits().deadline))
                    .unwrap(),
            );
            started.elapsed()
        })
        .collect();
    median(samples)
}

fn main() {
    let dir = build();
    let config = Config::load(&root().join("guest-examples/nri-wasm.toml")).unwrap();
    let engine = WasmEngine::new().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".wasm"))
        .collect();
    files.sort();
    println!("| plugin | language | size (KB) | load, cold cache (ms) | load, warm cache (ms) | instantiate (µs) | event | per call (µs) |");
    println!("|---|---|---:|---:|---:|---:|---|---:|");
    for file in files {
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        let mut loaded = None;
        for _ in 0..COLD_RUNS {
            let cache = TempDir::new().unwrap();
            let (_, time, compiled) = load(&engine, &dir, &file, cache.path(), &config);
            assert_eq!(compiled, 1);
            cold.push(time);
            for _ in 0..WARM_RUNS {
                let (guest, time, compiled) = load(&engine, &dir, &file, cache.path(), &config);
                assert_eq!(compiled, 0);
                warm.push(time);
                loaded = Some(guest);
            }
        }
        let guest = loaded.unwrap();
        let id = guest.id().clone();
        let size = std::fs::metadata(dir.join(&file)).unwrap().len();
        let instantiation = instantiate(&guest);
        let (event, cost) = per_call(guest, &config);
        println!(
            "| {id} | {} | {:.0} | {:.1} | {:.2} | {:.0} | {event} | {:.1} |",
            language(&id.name),
            size as f64 / 1024.0,
            median(cold).as_secs_f64() * 1e3,
            median(warm).as_secs_f64() * 1e3,
            instantiation.as_secs_f64() * 1e6,
            cost.as_secs_f64() * 1e6,
        );
    }
}
