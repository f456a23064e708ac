//! `nri-wasm check PLUGIN.wasm`: is the file a component of the
//! `nri:plugin` world, what does it export and import, which events would
//! it get, and with which limits and grants. Exits non-zero, with a
//! one-line reason, when the file cannot be a guest.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;

use crate::{
    config::{Config, Mode},
    grants::Scope,
    oci::{pull::PullRequest, reference::SCHEME, OciReference, PluginSource, Puller},
    plugins::{open_trusted_cache, reads_verdict, STORE_DIR},
    runtime::{
        loader::{load_bytes, load_file, open_dir, parse_file_name},
        sections::READS_SECTION,
        CompileCache, GuestId, GuestPre, WasmEngine,
    },
};

/// Check a plugin file or registry reference: component validity,
/// exports, imports, events, and what the configuration grants it.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugin file (`NN-name.wasm`), or a registry reference
    /// (`oci://HOST/REPO:TAG@sha256:...`), pulled as the daemon pulls it
    /// (with the configuration's section for it, if one names it).
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
    if settings.mode == Mode::Shadow {
        println!("  mode:       shadow: answers checked and recorded, never applied");
    }
    for warning in settings.warnings() {
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
    let (guest, config) = load_component(plugin, config, cache_dir)?;
    let warnings = reads_verdict(&guest, &config)
        .map_err(|reason| anyhow!("{}: {reason}", plugin.display()))?;
    for warning in warnings {
        eprintln!("warning: {}: {warning}", plugin.display());
    }
    Ok((guest, config))
}

/// Loads one plugin file or reference as [`load_single`] does, without
/// judging its declared reads, which are the business of the node that
/// runs it.
pub(super) fn load_component(
    plugin: &Path,
    config: Option<&Path>,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(GuestPre, Config)> {
    let config = match config {
        Some(file) => Config::load(file)?,
        None => Config::default(),
    };
    let engine = WasmEngine::new()?;
    let cache_dir = cache_dir
        .map(PathBuf::from)
        .or_else(super::default_cache_dir);
    let trusted = cache_dir.as_deref().and_then(open_trusted_cache);
    let store = cache_dir
        .filter(|_| trusted.is_some())
        .map(|d| d.join(STORE_DIR));
    let cache = CompileCache::new(engine.engine(), trusted);
    let guest = match plugin.to_str().filter(|p| p.starts_with(SCHEME)) {
        Some(reference) => load_reference(&engine, &cache, store, reference, &config),
        None => load_plugin_file(&engine, &cache, plugin, &config),
    }
    .map_err(|reason| anyhow!("{}: {reason}", plugin.display()))?;
    Ok((guest, config))
}

/// Loads the plugin file `plugin`.
fn load_plugin_file(
    engine: &WasmEngine,
    cache: &CompileCache,
    plugin: &Path,
    config: &Config,
) -> Result<GuestPre, String> {
    let file = plugin
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or("not a file name")?
        .to_string();
    let id = match parse_file_name(&file) {
        Ok(Some(id)) => id,
        Ok(None) => return Err("not a plugin file: its name ends in .wasm".into()),
        Err(rule) => return Err(rule),
    };
    let dir = plugin
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = open_dir(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let sandbox = config.guest(&id.name).sandbox();
    load_file(engine, cache, &dir, &file, id, sandbox)
}

/// Pulls registry reference `text` into the store in `store` and loads
/// it, with the settings of the section whose source it is, if any: its
/// name, index, access and verify key.
fn load_reference(
    engine: &WasmEngine,
    cache: &CompileCache,
    store: Option<PathBuf>,
    text: &str,
    config: &Config,
) -> Result<GuestPre, String> {
    let reference: OciReference = text.parse()?;
    // The section of the same repository gives name, key and access.
    let section = config
        .sources()
        .find(|(_, s)| s.reference.name() == reference.name());
    let source = PluginSource {
        reference,
        ..match section {
            Some((_, source)) => source.clone(),
            None => PluginSource {
                reference: text.parse()?,
                index: None,
                access: Default::default(),
                verify_key: None,
                require_signature: config.require_signature(),
            },
        }
    };
    let request = PullRequest {
        source: &source,
        running: None,
    };
    let pulled = Puller::new(store)
        .pull_all(&[request])
        .pop()
        .expect("one pull per request")
        .map_err(|e| e.to_string())?;
    let digest = pulled.manifest;
    let pushed = pulled.plugin_id.clone();
    let id = match (section, pushed) {
        (Some((name, _)), pushed) => GuestId {
            index: source.index.clone().or(pushed.map(|p| p.index)).ok_or(
                "the artifact carries no plugin index, and its section gives no `index`",
            )?,
            name: name.to_string(),
        },
        (None, Some(pushed)) => pushed,
        (None, None) => {
            return Err(format!(
                "manifest sha256:{digest}: the artifact does not say which plugin it is; check it with a configuration whose section takes it from this repository"
            ))
        }
    };
    let signed = match (pulled.signed, section.is_some()) {
        (true, _) => "signature verified with the section's key",
        (false, true) => "its section names no verify key: signature not checked",
        (false, false) => "no section takes it from this repository: signature not checked, settings are the defaults",
    };
    eprintln!("{text}: manifest sha256:{digest}; {signed}");
    let sandbox = config.guest(&id.name).sandbox();
    load_bytes(engine, cache, &pulled.component, id, sandbox)
        .map_err(|e| format!("manifest sha256:{digest}: {e}"))
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
