//! Plugins from OCI registries: references, the artifact layouts, the
//! registry client, cosign signatures, and the content-addressed store
//! that keeps what was pulled so a node restarts without its registry.

pub mod artifact;
pub mod credentials;
mod error;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod signature;
pub mod store;

pub use error::PullError;
pub use pull::{PluginSource, Pulled, Puller};
pub use reference::OciReference;

use std::path::Path;

use crate::runtime::loader::untrusted;

/// Largest key or CA file read.
const MAX_TRUSTED_FILE: u64 = 1 << 20;

/// Reads a file the daemon trusts with what it lets run (a verify key, a
/// registry CA): opened once, and refused if others can write it.
pub fn read_trusted(file: &Path, what: &str) -> Result<Vec<u8>, String> {
    use std::{io::Read, os::unix::fs::MetadataExt};
    let cannot = |e: std::io::Error| format!("cannot read {what} {}: {e}", file.display());
    let handle = std::fs::File::open(file).map_err(cannot)?;
    let meta = handle.metadata().map_err(cannot)?;
    if let Some(reason) = untrusted(meta.mode(), meta.uid()) {
        return Err(format!("{what} {} {reason}", file.display()));
    }
    let mut bytes = Vec::new();
    handle
        .take(MAX_TRUSTED_FILE)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    Ok(bytes)
}
