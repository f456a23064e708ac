//! Loading guests from the plugin directory: every `NN-name.wasm` file
//! (NN the guest's two-digit index, as NRI names plugins) is read through a
//! cap-std handle, compiled or taken from the compile cache, and linked. A
//! file that cannot be a guest is refused with its name and the reason;
//! the others load.
//!
//! Plugins run with what the operator grants them, so whoever can write
//! a plugin file or the directory can grant themselves that: a directory
//! or file writable by anyone but its owner, or owned by anyone but root
//! or the daemon's user, is refused.

use std::{
    collections::BTreeMap,
    fmt,
    io::Read,
    path::{Path, PathBuf},
};

use cap_std::fs::Dir;
use nri_proto::identity::check_identity;

use super::{
    cache::{CompileCache, ContentDigest},
    guest::{GuestId, GuestPre, SandboxSpec},
    sections::{custom_section, READS_SECTION},
    WasmEngine,
};

/// Largest plugin file accepted. The biggest toolchains (Python, JS
/// engines) produce about 20 MB.
pub const MAX_PLUGIN_FILE: u64 = 64 << 20;

/// A file of the plugin directory that was not loaded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The file, as a path for people to read.
    pub file: PathBuf,
    /// The guest the file would be, if its name is a guest's.
    pub id: Option<GuestId>,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// What a load produced.
#[derive(Default)]
pub struct LoadReport {
    /// The guests, in index order (then name).
    pub guests: Vec<GuestPre>,
    /// The files that were refused.
    pub refused: Vec<Refusal>,
}

/// Opens a directory the daemon reads plugins from or caches compiled
/// code in. This is the one place ambient authority is used; everything
/// after goes through the returned handle.
pub fn open_dir(path: &Path) -> std::io::Result<Dir> {
    Dir::open_ambient_dir(path, cap_std::ambient_authority())
}

/// Creates (if needed) and opens the compile cache directory.
pub fn open_cache_dir(path: &Path) -> std::io::Result<Dir> {
    std::fs::create_dir_all(path)?;
    open_dir(path)
}

/// The guest id a plugin file name stands for, if it is a plugin file.
/// `Ok(None)` for files that are not `.wasm` at all.
pub fn parse_file_name(file: &str) -> Result<Option<GuestId>, String> {
    let Some(stem) = file.strip_suffix(".wasm") else {
        return Ok(None);
    };
    let (index, name) = stem
        .split_once('-')
        .ok_or_else(|| "not named NN-name.wasm (NN: two-digit index)".to_string())?;
    check_identity(name, index).map_err(|e| format!("not named NN-name.wasm: {e}"))?;
    Ok(Some(GuestId {
        index: index.to_string(),
        name: name.to_string(),
    }))
}

/// Why a file or directory is not trusted to hold plugins or their
/// configuration: writable by others than its owner, or owned by someone
/// other than root or the daemon's user. `mode` and `uid` are its
/// permission bits and owner.
pub fn untrusted(mode: u32, uid: u32) -> Option<String> {
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and everyone",
            (true, false) => "its group",
            _ => "everyone",
        };
        return Some(format!(
            "is writable by {who} (mode {:04o}); only its owner may write it",
            mode & 0o7777
        ));
    }
    let daemon = daemon_uid();
    if uid != 0 && Some(uid) != daemon {
        let daemon = daemon.map_or("unknown".to_string(), |u| u.to_string());
        return Some(format!(
            "is owned by uid {uid}, neither root nor the daemon's user (uid {daemon})"
        ));
    }
    None
}

/// The daemon's effective user: the owner of its /proc entry.
pub fn daemon_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    static UID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UID.get_or_init(|| std::fs::metadata("/proc/self").ok().map(|m| m.uid()))
}

/// Checks the directory behind `dir` as [`untrusted`] does.
pub fn check_trusted_dir(dir: &Dir) -> Result<(), String> {
    use cap_std::fs::MetadataExt;
    let meta = dir
        .dir_metadata()
        .map_err(|e| format!("cannot read its permissions: {e}"))?;
    untrusted(meta.mode(), meta.uid()).map_or(Ok(()), Err)
}

/// Loads every plugin of `dir` (shown to people as `path`), each with the
/// sandbox `sandbox` gives it. A directory not to be trusted loads
/// nothing.
pub fn load_plugins(
    engine: &WasmEngine,
    cache: &CompileCache,
    dir: &Dir,
    path: &Path,
    sandbox: impl Fn(&GuestId) -> SandboxSpec,
) -> std::io::Result<LoadReport> {
    check_trusted_dir(dir).map_err(|reason| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("plugin directory {} {reason}", path.display()),
        )
    })?;
    let mut files = BTreeMap::new();
    for entry in dir.entries()? {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string() {
            files.insert(name, ());
        }
    }
    let mut report = LoadReport::default();
    let mut names: BTreeMap<String, GuestId> = BTreeMap::new();
    for file in files.into_keys() {
        let id = match parse_file_name(&file) {
            Ok(Some(id)) => id,
            Ok(None) => continue,
            Err(reason) => {
                report.refused.push(Refusal {
                    file: path.join(&file),
                    id: None,
                    reason,
                });
                continue;
            }
        };
        let refuse = |reason: String| Refusal {
            file: path.join(&file),
            id: Some(id.clone()),
            reason: one_line(&reason),
        };
        if let Some(other) = names.get(&id.name) {
            report.refused.push(refuse(format!(
                "name {:?} is already taken by {other}",
                id.name
            )));
            continue;
        }
        let loaded = check_trusted_file(dir, &file)
            .and_then(|()| load_one(engine, cache, dir, &file, id.clone(), sandbox(&id)));
        match loaded {
            Ok(guest) => {
                names.insert(id.name.clone(), id);
                report.guests.push(guest);
            }
            Err(reason) => report.refused.push(refuse(reason)),
        }
    }
    report.guests.sort_by(|a, b| a.id().cmp(b.id()));
    Ok(report)
}

/// Loads one plugin file of `dir`. The error says why it cannot be a
/// guest.
pub fn load_file(
    engine: &WasmEngine,
    cache: &CompileCache,
    dir: &Dir,
    file: &str,
    id: GuestId,
    sandbox: SandboxSpec,
) -> Result<GuestPre, String> {
    load_one(engine, cache, dir, file, id, sandbox).map_err(|reason| one_line(&reason))
}

fn check_trusted_file(dir: &Dir, file: &str) -> Result<(), String> {
    use cap_std::fs::MetadataExt;
    let meta = dir
        .metadata(file)
        .map_err(|e| format!("cannot read its permissions: {e}"))?;
    untrusted(meta.mode(), meta.uid()).map_or(Ok(()), Err)
}

fn load_one(
    engine: &WasmEngine,
    cache: &CompileCache,
    dir: &Dir,
    file: &str,
    id: GuestId,
    sandbox: SandboxSpec,
) -> Result<GuestPre, String> {
    let bytes = read_capped(dir, file).map_err(|e| format!("cannot read: {e}"))?;
    load_bytes(engine, cache, &bytes, id, sandbox)
}

/// Loads a component from its bytes. The error says why it cannot be a
/// guest.
pub fn load_bytes(
    engine: &WasmEngine,
    cache: &CompileCache,
    bytes: &[u8],
    id: GuestId,
    sandbox: SandboxSpec,
) -> Result<GuestPre, String> {
    if is_core_module(bytes) {
        return Err("is a core Wasm module, not a component; build it as a component (for example with `wasm-tools component new`)".into());
    }
    let digest = ContentDigest::of(bytes);
    if let Some(pinned) = sandbox.pinned.filter(|p| *p != digest) {
        return Err(format!(
            "has content sha256:{digest}, not the sha256:{pinned} its configuration pins"
        ));
    }
    let declared_reads = match custom_section(bytes, READS_SECTION) {
        None => None,
        Some(text) => Some(String::from_utf8(text.to_vec()).map_err(|_| {
            format!("its declared reads (custom section {READS_SECTION}) are not UTF-8")
        })?),
    };
    let compiled_before = cache.compiled();
    let started = std::time::Instant::now();
    let component = cache
        .component(engine.engine(), bytes, digest)
        .map_err(|e| format!("is not a valid Wasm component: {e}"))?;
    if cache.compiled() > compiled_before {
        tracing::info!(guest = %id, bytes = bytes.len(), elapsed = ?started.elapsed(), "compiled the guest: it was not in the compile cache");
    }
    let pre = GuestPre::new(engine, id, &component, digest, sandbox);
    pre.map(|pre| pre.with_declared_reads(declared_reads))
        .map_err(|e| format!("does not fit the nri:plugin world: {e}"))
}

/// A reason on one line: wasmtime's causes can span several.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn read_capped(dir: &Dir, file: &str) -> std::io::Result<Vec<u8>> {
    let handle = dir.open(file)?;
    let size = handle.metadata()?.len();
    if size > MAX_PLUGIN_FILE {
        return Err(std::io::Error::other(format!(
            "{size} bytes, more than the {MAX_PLUGIN_FILE} accepted"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    handle.take(MAX_PLUGIN_FILE + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Core modules and components share the magic; the version word tells
/// them apart (1 for modules, 0x0001000d for components).
pub(crate) fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_file_names() {
        let id = parse_file_name("10-logger.wasm").unwrap().unwrap();
        assert_eq!(id.to_string(), "10-logger");
        assert_eq!(parse_file_name("nri-wasm.toml"), Ok(None));
        let cases = [
            ("logger.wasm", "not named NN-name.wasm (NN: two-digit index)"),
            ("1-logger.wasm", "not named NN-name.wasm: invalid plugin index \"1\": must be exactly two digits, 00 to 99"),
            ("10-a b.wasm", "not named NN-name.wasm: invalid plugin name \"a b\": use letters, digits and _ . + - only"),
        ];
        for (file, want) in cases {
            assert_eq!(parse_file_name(file).unwrap_err(), want, "{file}");
        }
    }

    #[test]
    fn files_writable_by_others_or_owned_by_strangers_are_untrusted() {
        let me = daemon_uid().unwrap();
        assert_eq!(untrusted(0o100644, 0), None);
        assert_eq!(untrusted(0o040755, me), None);
        assert_eq!(
            untrusted(0o100664, 0).unwrap(),
            "is writable by its group (mode 0664); only its owner may write it"
        );
        assert_eq!(
            untrusted(0o041777, 0).unwrap(),
            "is writable by its group and everyone (mode 1777); only its owner may write it"
        );
        if me != 0 {
            let stranger = me + 1;
            assert_eq!(
                untrusted(0o100644, stranger).unwrap(),
                format!(
                    "is owned by uid {stranger}, neither root nor the daemon's user (uid {me})"
                )
            );
        }
    }

    #[test]
    fn core_modules_are_told_apart_from_components() {
        assert!(is_core_module(b"\0asm\x01\0\0\0"));
        assert!(!is_core_module(b"\0asm\x0d\0\x01\0"));
    }
}
