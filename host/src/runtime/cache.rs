//! Compiled guests on disk, so that a restart compiles nothing: the file of
//! a guest is keyed by the SHA-256 of its bytes and by the engine's
//! compatibility hash (wasmtime version, target, settings), so a different
//! engine never loads another's code.
//!
//! The cache directory is reached only through a cap-std handle.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::atomic::{AtomicU64, Ordering},
};

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::{component::Component, Engine};

/// Compiles components, or loads them compiled from the cache directory.
pub struct CompileCache {
    dir: Option<Dir>,
    compat: String,
    compiled: AtomicU64,
    loaded: AtomicU64,
}

/// Why a component could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct CompileError(wasmtime::Error);

impl CompileCache {
    /// A cache in `dir`; with `None`, every load compiles.
    pub fn new(engine: &Engine, dir: Option<Dir>) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir,
            compat: format!("{:016x}", hasher.finish()),
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
        }
    }

    /// How many components were compiled since start.
    pub fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }

    /// How many components were loaded precompiled from the cache.
    pub fn loaded(&self) -> u64 {
        self.loaded.load(Ordering::Relaxed)
    }

    /// The component of `bytes`: from the cache if it has it, else
    /// compiled and stored. A cache that cannot be read or written costs a
    /// compilation, never the guest.
    pub fn component(&self, engine: &Engine, bytes: &[u8]) -> Result<Component, CompileError> {
        let key = format!("{}-{}.cwasm", hex(&Sha256::digest(bytes)), self.compat);
        if let Some(component) = self
            .dir
            .as_ref()
            .and_then(|dir| self.load(engine, dir, &key))
        {
            self.loaded.fetch_add(1, Ordering::Relaxed);
            return Ok(component);
        }
        let compiled = engine.precompile_component(bytes).map_err(CompileError)?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(dir) = &self.dir {
            store(dir, &key, &compiled);
        }
        deserialize(engine, &compiled).map_err(CompileError)
    }

    fn load(&self, engine: &Engine, dir: &Dir, key: &str) -> Option<Component> {
        let bytes = dir.read(key).ok()?;
        match deserialize(engine, &bytes) {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(file = key, error = %err, "ignoring unusable compile cache entry");
                dir.remove_file(key).ok();
                None
            }
        }
    }
}

/// Writes through a temporary name and renames, so a reader never sees a
/// partial file.
fn store(dir: &Dir, key: &str, bytes: &[u8]) {
    let temp = format!(".{key}.{}.tmp", std::process::id());
    let result = dir
        .write(&temp, bytes)
        .and_then(|()| dir.rename(&temp, dir, key));
    if let Err(err) = result {
        dir.remove_file(&temp).ok();
        tracing::warn!(file = key, error = %err, "cannot write compile cache entry");
    }
}

/// Loads compiled code.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime runs these bytes as machine code, so they must be
    // its own output. They are: either `precompile_component` just made
    // them, or we wrote them to the cache directory, which the operator
    // gives to the daemon alone (root-owned, like the plugin directory),
    // under a name that carries the engine's compatibility hash. wasmtime
    // still checks the header and refuses code of another engine version.
    unsafe { Component::deserialize(engine, bytes) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
