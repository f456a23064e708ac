//! `nri-wasm check PLUGIN.wasm`: is the file a component of the
//! `nri:plugin` world, what does it export and import, which events would
//! it get, and with which limits and grants. Exits non-zero, with a
//! one-line reason, when the file cannot be a guest.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Args;

use crate::{
    config::Config,
    grants::Scope,
    plugins::{open_trusted_cache, reads_verdict},
    runtime::{
        loader::{load_file, open_dir, parse_file_name},
        sections::READS_SECTION,
        CompileCache, GuestPre, WasmEngine,
    },
};

/// Check a plugin file: component validity, exports, imports, events,
/// and what the configuration grants it.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugin file (`NN-name.wasm`).
    plugin: PathBuf,
    /// Configuration file with the plugin's grants and limits.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for compiled guests, so that a second run compiles
    /// nothing [default: /var/cache/nri-wasm for root, else
    /// ~/.cache/nri-wasm].
    #[arg(long, env = "NRI_WASM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

pub(super) async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let (guest, config) = load_single(
        &args.plugin,
        args.config.as_deref(),
        args.cache_dir.as_deref(),
    )?;
    let id = guest.id().clone();
    let settings = config.guest(&id.name);
    println!("{}: a component of nri:plugin@0.1.0", args.plugin.display());
    println!("  guest:      {id}");
    println!("  exports:    {}", guest.interfaces().join(", "));
    println!("  imports:    {}", guest.imports().join(", "));
    println!("  events:     {}", guest.handled_events());
    println!(
        "  limits:     {} bytes of memory, {:?} per call",
        settings.limits.memory, settings.limits.deadline
    );
    println!("  on failure: {:?}", settings.failure_policy);
    for warning in settings.grants.warnings() {
        println!("  warning:    {warning}");
    }
    match guest.declared_reads() {
        Some(declared) if declared.trim().is_empty() => {
            println!("  declares it reads: nothing its read grants hide")
        }
        Some(declared) => print_granted("declares it reads", declared),
        None => println!("  declares it reads: nothing (no {READS_SECTION} section)"),
    }
    for (what, table) in [
        ("grants", toml::to_string(&settings.grants)),
        ("read", toml::to_string(&settings.read)),
        ("wasi", toml::to_string(&settings.wasi.unwrap_or_default())),
    ] {
        print_granted(what, &table?);
    }
    match settings.scope == Scope::default() {
        true => println!("  scope: all pods"),
        false => print_granted("scope", &toml::to_string(&settings.scope)?),
    }
    Ok(())
}

/// Loads one plugin file, outside any plugin directory, with its settings
/// from `config`, compiled code cached in `cache_dir`, as the daemon would:
/// refused if its declared reads are not granted (what its grants hide from
/// it goes to stderr). The error is one line naming the file.
pub(super) fn load_single(
    plugin: &Path,
    config: Option<&Path>,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(GuestPre, Config)> {
    let config = match config {
        Some(file) => Config::load(file)?,
        None => Config::default(),
    };
    let file = plugin
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| anyhow!("{}: not a file name", plugin.display()))?
        .to_string();
    let id = match parse_file_name(&file) {
        Ok(Some(id)) => id,
        Ok(None) => bail!(
            "{}: not a plugin file: its name ends in .wasm",
            plugin.display()
        ),
        Err(rule) => bail!("{}: {rule}", plugin.display()),
    };
    let dir = plugin
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = open_dir(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let engine = WasmEngine::new()?;
    let cache_dir = cache_dir
        .map(PathBuf::from)
        .or_else(super::default_cache_dir);
    let cache = CompileCache::new(
        engine.engine(),
        cache_dir.as_deref().and_then(open_trusted_cache),
    );
    let sandbox = config.guest(&id.name).sandbox();
    let guest = load_file(&engine, &cache, &dir, &file, id, sandbox)
        .map_err(|reason| anyhow!("{}: {reason}", plugin.display()))?;
    let warnings = reads_verdict(&guest, &config)
        .map_err(|reason| anyhow!("{}: {reason}", plugin.display()))?;
    for warning in warnings {
        eprintln!("warning: {}: {warning}", plugin.display());
    }
    Ok((guest, config))
}

/// The entries of a grant table that grant something (deny is the default).
fn print_granted(what: &str, table: &str) {
    let entries: Vec<&str> = table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.ends_with("= []") && !l.ends_with("= false") && !l.ends_with("= \"none\""))
        .filter(|l| !l.ends_with("= {}"))
        .collect();
    // Table headers with nothing granted under them go too.
    let is_header = |l: &str| l.starts_with('[');
    let granted: Vec<&str> = entries
        .iter()
        .enumerate()
        .filter(|(i, l)| !is_header(l) || entries.get(i + 1).is_some_and(|next| !is_header(next)))
        .map(|(_, l)| *l)
        .collect();
    if granted.is_empty() {
        println!("  {what}: nothing");
    } else {
        println!("  {what}:");
        for line in granted {
            println!("    {line}");
        }
    }
}
