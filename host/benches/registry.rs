//! From a configuration change to the new guest ready to serve, for a
//! plugin from a registry (Distribution on loopback): with the store cold
//! (pulled, verified, compiled), cold but with the compiled code cached,
//! and warm (verified from the store); against the baseline of the same
//! component as a file of the plugin directory, compiled code cached.
//! Each figure is one `PluginSet::load`, what a reload runs once changes
//! settle; median of 5. `cargo bench -p nri-wasm --bench registry`.

mod common;

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nri_wasm::{
    oci::{
        artifact::publication,
        registry::{Access, Registry},
        OciReference,
    },
    plugins::PluginSet,
    runtime::ContentDigest,
};
use tempfile::TempDir;

const RUNS: usize = 5;
const SECTION: &str = "config = \"env INJECTED=1\"\ngrants = { env = [\"INJECTED\"] }\n";

fn main() {
    let (examples, _) = common::build_guests();
    let component = std::fs::read(examples.join("20-env-injector.wasm")).unwrap();
    let storage = TempDir::new().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = storage.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}/data\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.path().display()
        ),
    )
    .unwrap();
    let mut registry = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry runs");
    let reference = format!("oci://127.0.0.1:{port}/plugins/env-injector:v1");
    let pinned = push(&reference, &component);

    let files = TempDir::new().unwrap();
    std::fs::copy(
        examples.join("20-env-injector.wasm"),
        files.path().join("20-env-injector.wasm"),
    )
    .unwrap();
    std::fs::write(
        files.path().join("nri-wasm.toml"),
        format!("[plugins.env-injector]\n{SECTION}"),
    )
    .unwrap();
    let empty = TempDir::new().unwrap();
    std::fs::write(
        empty.path().join("nri-wasm.toml"),
        format!("[plugins.env-injector]\nsource = \"{pinned}\"\nindex = \"20\"\n{SECTION}"),
    )
    .unwrap();

    let compiled = TempDir::new().unwrap();
    let file = median(|| load(files.path(), compiled.path()));
    let cold = median(|| load(empty.path(), TempDir::new().unwrap().path()));
    let cold_store = median(|| {
        let cache = TempDir::new().unwrap();
        copy_compiled(compiled.path(), cache.path());
        load(empty.path(), cache.path())
    });
    let warm = median(|| load(empty.path(), compiled.path()));
    registry.kill().ok();
    registry.wait().ok();

    println!("| source | load (ms) | / file |");
    println!("|---|---:|---:|");
    let row = |what: &str, d: Duration| {
        println!(
            "| {what} | {:.1} | {:.2} |",
            ms(d),
            d.as_secs_f64() / file.as_secs_f64()
        );
    };
    row("plugin file, compiled code cached (baseline)", file);
    row("registry, store warm", warm);
    row("registry, store cold, compiled code cached", cold_store);
    row("registry, store and compile cache cold", cold);
}

/// Pushes `component` in the CNCF layout; returns the pinned reference.
fn push(reference: &str, component: &[u8]) -> String {
    let reference: OciReference = reference.parse().unwrap();
    let published = publication(component, vec![], vec![], BTreeMap::new());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let registry = loop {
            let client = Registry::connect(&reference, &Access::default()).unwrap();
            match client
                .push_blob(&reference.client_reference(), &published.config)
                .await
            {
                Ok(()) => break client,
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        let at = reference.client_reference();
        registry.push_blob(&at, component).await.unwrap();
        registry
            .push_manifest(&at, &published.manifest)
            .await
            .unwrap();
    });
    reference.pinned(ContentDigest::of(&published.manifest))
}

/// One load of `plugins`, caches in `cache`, as a reload runs it.
fn load(plugins: &Path, cache: &Path) -> Duration {
    let started = Instant::now();
    let set = PluginSet::new(plugins, None, Some(cache)).unwrap();
    let loaded = set.load().unwrap();
    assert_eq!(loaded.report.guests.len(), 1, "{:?}", loaded.report.refused);
    started.elapsed()
}

/// The compiled code of `from`, without its store.
fn copy_compiled(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn median(mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
