//! Start-up with 20 guests: loading the plugin directory with a cold
//! compile cache against a warm one. Prints medians of 5 runs and their
//! ratio; `cargo bench -p nri-wasm --bench startup`.

mod common;

use std::time::Instant;

use nri_wasm::runtime::{
    loader::{load_plugins, open_cache_dir, open_dir},
    CompileCache, SandboxSpec, WasmEngine,
};
use tempfile::TempDir;

const GUESTS: usize = 20;
const RUNS: usize = 5;

/// The example plugins, repeated with an extra custom section each until
/// there are [`GUESTS`] distinct components.
fn plugin_dir(examples: &std::path::Path) -> TempDir {
    let dir = TempDir::new().unwrap();
    let mut sources: Vec<_> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    sources.sort();
    for n in 0..GUESTS {
        let mut bytes = std::fs::read(&sources[n % sources.len()]).unwrap();
        bytes.extend_from_slice(&[0, 3, 1, b'n', n as u8]);
        std::fs::write(
            dir.path().join(format!("{:02}-guest{n}.wasm", 10 + n)),
            bytes,
        )
        .unwrap();
    }
    dir
}

fn load(plugins: &std::path::Path, cache: &std::path::Path) -> (std::time::Duration, u64) {
    let started = Instant::now();
    let engine = WasmEngine::new().unwrap();
    let cache = CompileCache::new(engine.engine(), Some(open_cache_dir(cache).unwrap()));
    let dir = open_dir(plugins).unwrap();
    let report = load_plugins(&engine, &cache, &dir, plugins, |_| SandboxSpec::default()).unwrap();
    assert_eq!(report.guests.len(), GUESTS, "{:?}", report.refused);
    (started.elapsed(), cache.compiled())
}

fn main() {
    let (examples, _) = common::build_guests();
    let plugins = plugin_dir(&examples);
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let cache = TempDir::new().unwrap();
        let (time, compiled) = load(plugins.path(), cache.path());
        assert_eq!(compiled, GUESTS as u64);
        cold.push(time);
        let (time, compiled) = load(plugins.path(), cache.path());
        assert_eq!(compiled, 0, "a warm start compiles nothing");
        warm.push(time);
    }
    let (cold, warm) = (median_ms(cold), median_ms(warm));
    println!("start-up, {GUESTS} guests, median of {RUNS}: cold {cold:.1} ms, warm {warm:.1} ms, warm/cold {:.3}", warm / cold);
}

/// The median of some durations, in milliseconds.
fn median_ms(mut samples: Vec<std::time::Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}
