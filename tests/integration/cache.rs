//! The compile cache: a second start with a warm cache loads every guest
//! without compiling any.

use nri_wasm::runtime::{
    loader::{load_plugins, open_cache_dir, open_dir},
    CompileCache, SandboxSpec, WasmEngine,
};
use tempfile::TempDir;

use crate::guests::plugin_dir;

/// `bytes` with a custom section appended: the same guest, other bytes,
/// so a different cache key.
fn variant(bytes: &[u8], n: u8) -> Vec<u8> {
    let name = b"nri-wasm-test";
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push((1 + name.len() + 1) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(n);
    out
}

fn load(plugins: &std::path::Path, cache: &std::path::Path) -> (usize, u64, u64) {
    let engine = WasmEngine::new().unwrap();
    let cache = CompileCache::new(engine.engine(), Some(open_cache_dir(cache).unwrap()));
    let dir = open_dir(plugins).unwrap();
    let report = load_plugins(&engine, &cache, &dir, plugins, |_| SandboxSpec::default()).unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    (report.guests.len(), cache.compiled(), cache.loaded())
}

#[test]
fn a_warm_start_of_twenty_guests_compiles_nothing() {
    let source = plugin_dir(&["50-counter.wasm"], None);
    let bytes = std::fs::read(source.path().join("50-counter.wasm")).unwrap();
    let plugins = TempDir::new().unwrap();
    for n in 0..20u8 {
        std::fs::write(
            plugins
                .path()
                .join(format!("{:02}-counter{n}.wasm", 10 + n)),
            variant(&bytes, n),
        )
        .unwrap();
    }
    let cache = TempDir::new().unwrap();
    assert_eq!(
        load(plugins.path(), cache.path()),
        (20, 20, 0),
        "cold: every guest compiled"
    );
    assert_eq!(
        load(plugins.path(), cache.path()),
        (20, 0, 20),
        "warm: every guest from the cache"
    );
}

#[test]
fn a_damaged_cache_entry_costs_a_compilation_not_the_guest() {
    let plugins = plugin_dir(&["50-counter.wasm"], None);
    let cache = TempDir::new().unwrap();
    assert_eq!(load(plugins.path(), cache.path()), (1, 1, 0));
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not compiled code").unwrap();
    }
    assert_eq!(load(plugins.path(), cache.path()), (1, 1, 0));
    assert_eq!(load(plugins.path(), cache.path()), (1, 0, 1));
}
