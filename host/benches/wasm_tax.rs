//! The wasm tax: the job of the ulimit-adjuster plugin (find the pod's
//! rlimit annotation for the container, parse it, answer the rlimits),
//! done by its own parsing code compiled natively into this program,
//! against the same code as a Wasm guest: the guest call alone (lowering
//! the pod and container, running the guest, lifting its answer), and the
//! guest's whole part of a CreateContainer in the dispatcher (redaction,
//! conversion, call, grant check, merge), driven as the NRI connection's
//! thread drives it. Alternating rounds, mean per
//! call, ratios to native; `cargo bench -p nri-wasm --bench wasm_tax`.

mod common;

use std::{
    hint::black_box,
    sync::Mutex,
    time::{Duration, Instant},
};

use nri_proto::api::{self, ContainerAdjustment, CreateContainerRequest, POSIXRlimit};
use nri_wasm::{
    config::Config,
    dispatch::{Budget, Dispatcher, GuestSlot, NodeView, StartContext},
    protocol::NriHandler,
    runtime::{
        bindings::types as wit,
        loader::{load_plugins, open_dir},
        CompileCache, GuestPre, WasmEngine,
    },
};
use tempfile::TempDir;

const ROUNDS: usize = 10;
const CALLS: usize = 2_000;
const PLUGIN: &str = "30-ulimit-adjuster.wasm";
const CONFIG: &str = "[plugins.ulimit-adjuster]\n\
    read = { annotations = [\"ulimits.noderesource.dev/*\"] }\n\
    grants = { rlimits = { RLIMIT_NOFILE = 1048576, RLIMIT_NPROC = 4096 } }\n";
const ANNOTATION: &str = "ulimits.noderesource.dev/container.app";

fn request() -> CreateContainerRequest {
    let mut pod = api::PodSandbox {
        id: "bench".into(),
        name: "bench".into(),
        namespace: "default".into(),
        uid: "3f1c3c52-7a3e-4c39-9b8e-0b8d6f3b1a77".into(),
        ..Default::default()
    };
    pod.labels.insert("app".into(), "bench".into());
    pod.annotations.insert(
        ANNOTATION.into(),
        "- type: RLIMIT_NOFILE\n  soft: 1024\n  hard: 4096\n- type: nproc\n  soft: 500\n  hard: 600\n"
            .into(),
    );
    let container = api::Container {
        id: "c0".into(),
        pod_sandbox_id: "bench".into(),
        name: "app".into(),
        args: vec!["/bin/app".into(), "--serve".into()],
        env: vec!["PATH=/usr/bin:/bin".into(), "HOME=/root".into()],
        ..Default::default()
    };
    CreateContainerRequest {
        pod: Some(pod).into(),
        container: Some(container).into(),
        ..Default::default()
    }
}

/// The plugin's job done natively: the same parser, the same answer.
fn native(request: &CreateContainerRequest) -> ContainerAdjustment {
    let key = format!(
        "ulimits.noderesource.dev/container.{}",
        request.container.name
    );
    let mut adjust = ContainerAdjustment::default();
    if let Some(value) = request.pod.annotations.get(&key) {
        let ulimits = ulimit_adjuster::parse(value).expect("a valid annotation");
        adjust.rlimits = ulimits
            .into_iter()
            .map(|(kind, soft, hard)| POSIXRlimit {
                type_: kind,
                soft,
                hard,
                ..Default::default()
            })
            .collect();
    }
    adjust
}

fn load(examples: &std::path::Path, config: &Config) -> (TempDir, GuestPre) {
    let dir = TempDir::new().unwrap();
    std::fs::copy(examples.join(PLUGIN), dir.path().join(PLUGIN)).unwrap();
    let engine = WasmEngine::new().unwrap();
    let cache = CompileCache::new(engine.engine(), None);
    let mut report = load_plugins(
        &engine,
        &cache,
        &open_dir(dir.path()).unwrap(),
        dir.path(),
        |id| config.guest(&id.name).sandbox(),
    )
    .unwrap();
    assert_eq!(report.guests.len(), 1, "{:?}", report.refused);
    (dir, report.guests.remove(0))
}

/// Mean time of `f` over [`CALLS`] calls.
fn mean(mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..CALLS {
        f();
    }
    started.elapsed() / CALLS as u32
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let (examples, _) = common::build_guests();
    let config = Config::parse(CONFIG).unwrap();
    let request = request();
    let expected = native(&request);
    assert_eq!(expected.rlimits.len(), 2);

    let (_dir, pre) = load(&examples, &config);
    let slot = GuestSlot::new(pre.clone(), config.guest(&pre.id().name));
    let runtime_info = wit::RuntimeInfo {
        name: "bench".into(),
        version: "0".into(),
        nri_version: "v0.12.0".into(),
        request_timeout_ms: 2000,
    };
    let node = Mutex::new(NodeView::default());
    let start = StartContext {
        runtime: &runtime_info,
        node: &node,
    };
    let pod_wit = slot.pod_for_guest(&request.pod);
    let container_wit = slot.container_for_guest(&request.container);
    // As the NRI connection runs guests: on its single-threaded runtime.
    let events = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let guest_call = || {
        let reply = events
            .block_on(async {
                let budget = Budget::new(Duration::from_secs(2));
                let mut call = slot.begin(&start, &budget).await?;
                let deadline = call.deadline();
                let result = call
                    .instance()
                    .create_container(deadline, &pod_wit, &container_wit)
                    .await;
                call.finish(result)
            })
            .unwrap();
        assert_eq!(reply.adjust.map(|a| a.rlimits.len()), Some(2));
    };

    let dispatcher = Dispatcher::new(vec![pre], &config);
    let dispatch = || {
        let reply = events
            .block_on(dispatcher.create_container(request.clone()))
            .unwrap();
        assert_eq!(*reply.adjust, expected);
    };
    let empty = Dispatcher::new(Vec::new(), &config);
    let dispatch_empty = || {
        black_box(
            events
                .block_on(empty.create_container(request.clone()))
                .unwrap(),
        );
    };

    let mut totals = [Duration::ZERO; 4];
    for _ in 0..ROUNDS {
        totals[0] += mean(|| {
            black_box(native(black_box(&request)));
        });
        totals[1] += mean(guest_call);
        totals[2] += mean(dispatch);
        totals[3] += mean(dispatch_empty);
    }
    let [native_t, call_t, dispatch_t, empty_t] = totals.map(|t| t / ROUNDS as u32);
    println!("{ROUNDS} rounds of {CALLS} calls each; mean per call\n");
    println!("| path | µs per CreateContainer | / native |");
    println!("|---|---:|---:|");
    let row = |what: &str, t: Duration| {
        println!(
            "| {what} | {:.2} | {:.2} |",
            micros(t),
            t.as_secs_f64() / native_t.as_secs_f64()
        );
    };
    row("native: the plugin's parser in the host", native_t);
    row("wasm: guest call (lower, run, lift)", call_t);
    row(
        "wasm: the guest's part of the dispatcher (redact, convert, call, grant check, merge)",
        dispatch_t,
    );
    row("dispatcher with no guest (for reference)", empty_t);
}
