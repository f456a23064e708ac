//! Compiled guests on disk, so that a restart compiles nothing: the file of
//! a guest is keyed by the SHA-256 of its bytes and by the engine's
//! compatibility hash (wasmtime version, target, settings), so a different
//! engine never loads another's code.
//!
//! The cache directory is reached only through a cap-std handle.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::{component::Component, Engine};

/// The SHA-256 of a plugin file: names its compiled code in the cache and
/// tells a changed plugin from an unchanged one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentDigest([u8; 32]);

impl ContentDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentDigest(Sha256::digest(bytes).into())
    }
}

impl std::str::FromStr for ContentDigest {
    type Err = String;

    /// Reads `sha256:` and 64 hex digits, as `sha256sum` prints them.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid digest {text:?}: write \"sha256:\" and 64 hex digits");
        let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut digest = [0; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).expect("ASCII hex digits");
            *byte = u8::from_str_radix(pair, 16).expect("hex digits");
        }
        Ok(ContentDigest(digest))
    }
}

impl std::fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Compiles components, or loads them compiled from the cache directory.
pub struct CompileCache {
    dir: Option<Dir>,
    /// Components of the latest load, so a reload compiles only what
    /// changed even without a cache directory.
    memory: Mutex<HashMap<ContentDigest, Component>>,
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
            memory: Mutex::default(),
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

    /// The component of `bytes` (whose digest is `digest`): from the cache
    /// if it has it, else compiled and stored. A cache that cannot be read
    /// or written costs a compilation, never the guest.
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: ContentDigest,
    ) -> Result<Component, CompileError> {
        if let Some(component) = self.memory.lock().expect("never poisoned").get(&digest) {
            return Ok(component.clone());
        }
        let component = self.load_or_compile(engine, bytes, digest)?;
        self.memory
            .lock()
            .expect("never poisoned")
            .insert(digest, component.clone());
        Ok(component)
    }

    /// Forgets the components in memory but those of `digests`.
    pub fn keep_only(&self, digests: &[ContentDigest]) {
        self.memory
            .lock()
            .expect("never poisoned")
            .retain(|digest, _| digests.contains(digest));
    }

    fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: ContentDigest,
    ) -> Result<Component, CompileError> {
        let key = format!("{digest}-{}.cwasm", self.compat);
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
