//! Start-up with 20 and 50 guests: loading the plugin directory with a
//! cold compile cache against a warm one, and the resident memory each
//! guest adds once instantiated and configured. Prints medians of 3 runs and their ratio;
//! `cargo bench -p nri-wasm --bench startup`.

mod common;

use std::time::Instant;

use nri_wasm::runtime::{
    bindings::types as wit,
    loader::{load_plugins, open_cache_dir, open_dir},
    CompileCache, GuestPre, SandboxSpec, WasmEngine,
};
use tempfile::TempDir;

const RUNS: usize = 3;

/// The example plugins, repeated with an extra custom section each until
/// there are `guests` distinct components.
fn plugin_dir(examples: &std::path::Path, guests: usize) -> TempDir {
    let dir = TempDir::new().unwrap();
    let mut sources: Vec<_> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    sources.sort();
    for n in 0..guests {
        let mut bytes = std::fs::read(&sources[n % sources.len()]).unwrap();
        bytes.extend_from_slice(&[0, 3, 1, b'n', n as u8]);
        std::fs::write(dir.path().join(format!("{:02}-guest{n}.wasm", n)), bytes).unwrap();
    }
    dir
}

fn load(
    plugins: &std::path::Path,
    cache: &std::path::Path,
    guests: usize,
) -> (std::time::Duration, u64, Vec<GuestPre>) {
    let started = Instant::now();
    let engine = WasmEngine::new().unwrap();
    let cache = CompileCache::new(engine.engine(), Some(open_cache_dir(cache).unwrap()));
    let dir = open_dir(plugins).unwrap();
    let report = load_plugins(&engine, &cache, &dir, plugins, |_| SandboxSpec::default()).unwrap();
    assert_eq!(report.guests.len(), guests, "{:?}", report.refused);
    (started.elapsed(), cache.compiled(), report.guests)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let (examples, _) = common::build_guests();
    println!("| guests | cold (ms) | warm (ms) | compiled, warm | warm / cold | RSS per instance (KiB) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for guests in [20, 50] {
        let plugins = plugin_dir(&examples, guests);
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        let mut loaded = Vec::new();
        for _ in 0..RUNS {
            let cache = TempDir::new().unwrap();
            let (time, compiled, _) = load(plugins.path(), cache.path(), guests);
            assert_eq!(compiled, guests as u64);
            cold.push(time);
            let (time, compiled, pres) = load(plugins.path(), cache.path(), guests);
            assert_eq!(compiled, 0, "a warm start compiles nothing");
            warm.push(time);
            loaded = pres;
        }
        let runtime = wit::RuntimeInfo {
            name: "bench".into(),
            version: "0".into(),
            nri_version: "v0.12.0".into(),
            request_timeout_ms: 2000,
        };
        let events = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let before = rss_kib();
        let instances: Vec<_> = loaded
            .iter()
            .map(|g| {
                events.block_on(async {
                    let mut instance = g.instantiate(g.limits().deadline).await.unwrap();
                    let deadline = std::time::Duration::from_secs(1);
                    instance
                        .configure(deadline, "", &runtime)
                        .await
                        .unwrap()
                        .ok();
                    instance
                })
            })
            .collect();
        let per_instance = (rss_kib() - before) / guests as u64;
        drop(instances);
        let (cold, warm) = (median_ms(cold), median_ms(warm));
        println!(
            "| {guests} | {cold:.0} | {warm:.1} | 0 | {:.3} | {per_instance} |",
            warm / cold
        );
    }
}

/// The median of some durations, in milliseconds.
fn median_ms(mut samples: Vec<std::time::Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}
