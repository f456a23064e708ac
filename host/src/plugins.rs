//! The plugin directory and configuration as the daemon serves them:
//! loaded at start, then watched, so guests are added, replaced and
//! removed while the daemon runs. Events in flight finish with the guests
//! they started with; a reload that fails (a bad configuration, an
//! unreadable directory) changes nothing; a plugin file refused on reload
//! leaves the version already running in place. Plugins a section takes
//! from a registry load beside the directory's; a pull that fails keeps
//! the running version and is tried again with backoff.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    dispatch::{Dispatcher, GuestChanges},
    grants::reads::{self, Verdict},
    metrics::Metrics,
    oci::{PluginSource, Pulled, Puller},
    protocol::Backoff,
    runtime::{
        loader::{
            check_trusted_dir, load_bytes, load_plugins, open_cache_dir, open_dir, untrusted,
            LoadReport, Refusal,
        },
        CompileCache, ContentDigest, GuestId, GuestPre, WasmEngine,
    },
};

/// Name of the configuration file looked for in the plugin directory.
pub const CONFIG_FILE: &str = "nri-wasm.toml";

/// Changes closer together than this are taken in one reload (a copy in
/// several writes, an editor's save, a ConfigMap's symlink swap).
pub const SETTLE_TIME: Duration = Duration::from_millis(300);

/// Where guests come from.
pub struct PluginSet {
    dir: PathBuf,
    config: Option<PathBuf>,
    engine: WasmEngine,
    cache: CompileCache,
    puller: Puller,
    /// Whether the last load had a registry pull to try again.
    pull_failed: Mutex<bool>,
}

/// One load: the configuration and what the directory gave with it.
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The guests and the refused files.
    pub report: LoadReport,
}

impl PluginSet {
    /// The plugins of `dir`, configured by `config` (by default the
    /// `nri-wasm.toml` in `dir`, if there is one), compiled code cached in
    /// `cache_dir`.
    pub fn new(
        dir: &Path,
        config: Option<&Path>,
        cache_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let engine = WasmEngine::new()?;
        let trusted = cache_dir.and_then(open_trusted_cache);
        // Pulled plugins are kept beside the compiled code, under the same
        // trust rules; without a trusted cache there is nowhere to keep them.
        let store = cache_dir
            .filter(|_| trusted.is_some())
            .map(|d| d.join(STORE_DIR));
        let cache = CompileCache::new(engine.engine(), trusted);
        Ok(PluginSet {
            dir: dir.to_path_buf(),
            config: config.map(Path::to_path_buf),
            engine,
            cache,
            puller: Puller::new(store),
            pull_failed: Mutex::new(false),
        })
    }

    /// The plugin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compile cache.
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// The configuration file in effect, if any.
    pub fn config_file(&self) -> Option<PathBuf> {
        config_file(&self.dir, self.config.as_deref())
    }

    /// Reads the configuration and loads every plugin. Fails only when
    /// nothing can be loaded: a configuration that is invalid or not to be
    /// trusted, a directory that cannot be read or trusted, or a section
    /// that misses its plugin by a slip of spelling (it would leave that
    /// plugin without its grants, and give them to none).
    pub fn load(&self) -> anyhow::Result<Loaded> {
        let config = match self.config_file() {
            Some(file) => load_trusted_config(&file)?,
            None => Config::default(),
        };
        let dir = open_dir(&self.dir)
            .with_context(|| format!("cannot open plugin directory {}", self.dir.display()))?;
        let mut report = load_plugins(&self.engine, &self.cache, &dir, &self.dir, |id| {
            config.guest(&id.name).sandbox()
        })
        .with_context(|| format!("cannot load plugin directory {}", self.dir.display()))?;
        self.load_sources(&config, &mut report);
        refuse_unsigned_files(&mut report, &config, &self.dir);
        judge_reads(&mut report, &config, &self.dir);
        report.guests.sort_by(|a, b| a.id().cmp(b.id()));
        let digests: Vec<ContentDigest> = report.guests.iter().map(GuestPre::digest).collect();
        self.cache.keep_only(&digests);
        for refusal in &report.refused {
            tracing::error!(file = %refusal.file.display(), reason = %refusal.reason, "plugin refused");
        }
        let present: Vec<&str> = report
            .guests
            .iter()
            .map(|g| g.id())
            .chain(report.refused.iter().filter_map(|r| r.id.as_ref()))
            .map(|id| id.name.as_str())
            .collect();
        for name in config.named_guests() {
            if !present.contains(&name) {
                if let Some(meant) = meant(name, &present) {
                    anyhow::bail!(
                        "the configuration's section [plugins.{name}] names no plugin of {}; \
                         did you mean [plugins.{meant}]? (a plugin's section is named after \
                         its file NN-name.wasm)",
                        self.dir.display()
                    );
                }
                tracing::warn!(guest = name, dir = %self.dir.display(), "the configuration names a guest that is not loaded");
            }
            for warning in config.guest(name).grants.warnings() {
                tracing::warn!(guest = name, "{warning}");
            }
        }
        Ok(Loaded { config, report })
    }

    /// Pulls and loads the plugins sections take from registries.
    fn load_sources(&self, config: &Config, report: &mut LoadReport) {
        let sources: Vec<(&str, &PluginSource)> = config.sources().collect();
        let pulls = self
            .puller
            .pull_all(&sources.iter().map(|(_, s)| *s).collect::<Vec<_>>());
        let mut failed = false;
        for ((name, source), pulled) in sources.into_iter().zip(pulls) {
            let taken = report
                .guests
                .iter()
                .map(GuestPre::id)
                .chain(report.refused.iter().filter_map(|r| r.id.as_ref()))
                .find(|id| id.name == name)
                .cloned();
            let loaded = pulled.and_then(|pulled| {
                failed |= pulled.stale.is_some();
                self.load_pulled(config, name, source, &pulled, taken)
            });
            match loaded {
                Ok(guest) => report.guests.push(guest),
                Err(reason) => {
                    failed = true;
                    report.refused.push(Refusal {
                        file: PathBuf::from(source.reference.to_string()),
                        id: None,
                        reason,
                    });
                }
            }
        }
        *self.pull_failed.lock().expect("never poisoned") = failed;
    }

    fn load_pulled(
        &self,
        config: &Config,
        name: &str,
        source: &PluginSource,
        pulled: &Pulled,
        taken: Option<GuestId>,
    ) -> Result<GuestPre, String> {
        let digest = pulled.manifest;
        if let Some(reason) = &pulled.stale {
            tracing::warn!(source = %source.reference, manifest = %format!("sha256:{digest}"), error = %reason, "the registry cannot be reached; running what it gave before");
        }
        let index = source
            .index
            .clone()
            .or_else(|| pulled.plugin_id.as_ref().map(|id| id.index.clone()))
            .ok_or_else(|| format!("manifest sha256:{digest}: the artifact carries no plugin index; give the section an `index = \"NN\"`"))?;
        let id = GuestId {
            index,
            name: name.to_string(),
        };
        if let Some(other) = taken {
            return Err(format!(
                "name {name:?} is already taken by {other} of the plugin directory"
            ));
        }
        let sandbox = config.guest(name).sandbox();
        let guest = load_bytes(&self.engine, &self.cache, &pulled.component, id, sandbox)
            .map_err(|e| format!("manifest sha256:{digest}: {e}"))?;
        tracing::info!(guest = %guest.id(), source = %source.reference, manifest = %format!("sha256:{digest}"), signed = pulled.signed, "registry plugin ready");
        Ok(guest)
    }

    /// Whether the last load left a registry pull to try again.
    pub fn pull_failed(&self) -> bool {
        *self.pull_failed.lock().expect("never poisoned")
    }

    /// Loads the plugins into a new dispatcher that reports to `metrics`.
    pub fn start(&self, metrics: Option<Arc<Metrics>>) -> anyhow::Result<Dispatcher> {
        let loaded = self.load()?;
        for guest in &loaded.report.guests {
            tracing::info!(guest = %guest.id(), interfaces = ?guest.interfaces(), events = %guest.handled_events(), "guest loaded");
        }
        tracing::info!(
            guests = loaded.report.guests.len(),
            refused = loaded.report.refused.len(),
            compiled = self.cache.compiled(),
            from_cache = self.cache.loaded(),
            "plugins loaded"
        );
        let observers = metrics.iter().map(|m| m.clone() as _).collect();
        if let Some(metrics) = &metrics {
            metrics.loaded(loaded.report.guests.len(), loaded.report.refused.len());
        }
        Ok(Dispatcher::with_observers(
            loaded.report.guests,
            &loaded.config,
            observers,
        ))
    }

    /// Loads again and applies the result to `dispatcher`. Returns what
    /// changed and how many files were refused.
    pub fn reload(&self, dispatcher: &Dispatcher) -> anyhow::Result<(GuestChanges, usize)> {
        let Loaded { config, report } = self.load()?;
        // A file refused now keeps the version of it already running; so
        // does a registry plugin its section still names that did not load.
        let mut keep: Vec<_> = report.refused.iter().filter_map(|r| r.id.clone()).collect();
        let loaded: Vec<&str> = report.guests.iter().map(|g| g.id().name.as_str()).collect();
        keep.extend(
            dispatcher
                .guests()
                .iter()
                .map(|slot| slot.id().clone())
                .filter(|id| {
                    config.guest(&id.name).source.is_some() && !loaded.contains(&id.name.as_str())
                }),
        );
        let changes = dispatcher.replace_guests(report.guests, &config, &keep);
        Ok((changes, report.refused.len()))
    }

    /// Watches the plugin directory and the configuration file and
    /// reloads on change until `stop`; pulls that failed are tried again
    /// with backoff, and registry tags are resolved again every
    /// `resolve_interval`, if given.
    pub async fn watch(
        self: Arc<Self>,
        dispatcher: Arc<Dispatcher>,
        metrics: Option<Arc<Metrics>>,
        resolve_interval: Option<Duration>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let (changed, mut changes) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    changed.send(()).ok();
                }
            })
            .context("cannot watch for plugin changes")?;
        self.watch_paths(&mut watcher)?;
        let mut retry = Backoff::new(PULL_RETRY_FIRST, PULL_RETRY_MAX);
        let mut resolve = resolve_interval
            .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        loop {
            let retry_in = self.pull_failed().then(|| retry.next_delay());
            tokio::select! {
                Some(()) = changes.recv() => {
                    if !settle(&mut changes, &stop).await {
                        return Ok(());
                    }
                }
                () = sleep_or_never(retry_in) => {
                    tracing::info!(attempt = retry.attempts(), "pulling the registry plugins that failed again");
                }
                _ = tick_or_never(resolve.as_mut()) => {
                    tracing::debug!("resolving registry tags again");
                    self.puller.forget_tags();
                }
                () = stop.cancelled() => return Ok(()),
            }
            let plugins = self.clone();
            let target = dispatcher.clone();
            let result = tokio::task::spawn_blocking(move || plugins.reload(&target))
                .await
                .context("reload task failed")?;
            let guests = dispatcher.guests().len();
            report_reload(&result, guests, metrics.as_deref());
            if !self.pull_failed() {
                retry.reset();
            }
        }
    }

    fn watch_paths(&self, watcher: &mut RecommendedWatcher) -> anyhow::Result<()> {
        watcher
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", self.dir.display()))?;
        // The directory of the file, not the file: editors and ConfigMap
        // updates replace it by a rename, which ends a watch on the file.
        let config_dir = self
            .config
            .as_deref()
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty() && *d != self.dir);
        if let Some(dir) = config_dir {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("cannot watch {}", dir.display()))?;
        }
        tracing::info!(dir = %self.dir.display(), config = ?self.config_file(), "watching for plugin and configuration changes");
        Ok(())
    }
}

/// The directory of the cache that holds pulled plugins.
pub const STORE_DIR: &str = "oci";

/// With `[defaults] require-signature = true`, the files of the plugin
/// directory, which carry no signature, are refused.
fn refuse_unsigned_files(report: &mut LoadReport, config: &Config, dir: &Path) {
    for guest in std::mem::take(&mut report.guests) {
        let settings = config.guest(&guest.id().name);
        if settings.require_signature && settings.source.is_none() {
            report.refused.push(Refusal {
                file: dir.join(format!("{}.wasm", guest.id())),
                id: Some(guest.id().clone()),
                reason: "is a file of the plugin directory, which carries no signature; [defaults] require-signature = true admits only signed registry plugins".into(),
            });
        } else {
            report.guests.push(guest);
        }
    }
}

/// The configuration file of plugin directory `dir`: `explicit` if given,
/// else its `nri-wasm.toml` if it has one.
pub fn config_file(dir: &Path, explicit: Option<&Path>) -> Option<PathBuf> {
    let beside = dir.join(CONFIG_FILE);
    match explicit {
        Some(file) => Some(file.to_path_buf()),
        None if beside.is_file() => Some(beside),
        None => None,
    }
}

/// First delay before a failed registry pull is tried again; it doubles
/// up to [`PULL_RETRY_MAX`].
const PULL_RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest delay between attempts to pull.
const PULL_RETRY_MAX: Duration = Duration::from_secs(300);

async fn sleep_or_never(delay: Option<Duration>) {
    match delay {
        Some(delay) => tokio::time::sleep(delay).await,
        None => std::future::pending().await,
    }
}

async fn tick_or_never(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => drop(interval.tick().await),
        None => std::future::pending().await,
    }
}

/// Waits until no change came for [`SETTLE_TIME`]. False when stopped.
async fn settle(changes: &mut mpsc::UnboundedReceiver<()>, stop: &CancellationToken) -> bool {
    loop {
        tokio::select! {
            Some(()) = changes.recv() => {}
            () = tokio::time::sleep(SETTLE_TIME) => return true,
            () = stop.cancelled() => return false,
        }
    }
}

fn report_reload(
    result: &anyhow::Result<(GuestChanges, usize)>,
    guests: usize,
    metrics: Option<&Metrics>,
) {
    match result {
        Ok((changes, _)) if changes.is_empty() => {
            tracing::debug!("plugins reloaded; nothing changed");
        }
        Ok((changes, _)) => tracing::info!(
            added = ?changes.added, replaced = ?changes.replaced, removed = ?changes.removed,
            guests, "plugins reloaded"
        ),
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "reload failed; the guests loaded before keep running");
        }
    }
    if let Some(metrics) = metrics {
        metrics.reloaded(result.is_ok());
        if let Ok((_, refused)) = result {
            metrics.loaded(guests, *refused);
        }
    }
}

fn load_trusted_config(file: &Path) -> anyhow::Result<Config> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file)
        .with_context(|| format!("cannot read configuration file {}", file.display()))?;
    if let Some(reason) = untrusted(meta.mode(), meta.uid()) {
        anyhow::bail!("configuration file {} {reason}", file.display());
    }
    Ok(Config::load(file)?)
}

/// The compile cache holds machine code the daemon runs: a directory
/// others can write to is not used.
/// The plugin of `present` that `name` was meant to name: the same but for
/// `_` and `-` or case, or at most two edits away.
fn meant<'a>(name: &str, present: &[&'a str]) -> Option<&'a str> {
    let plain = |s: &str| s.to_lowercase().replace('_', "-");
    present
        .iter()
        .map(|p| (strsim::levenshtein(&plain(name), &plain(p)), *p))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, p)| p)
}

/// Judges each loaded guest's declared reads against its read grants: a
/// guest blind to what it reads is refused (or runs, logged, where its
/// section says `missing-reads = "warn"`).
fn judge_reads(report: &mut LoadReport, config: &Config, dir: &Path) {
    for guest in std::mem::take(&mut report.guests) {
        match reads_verdict(&guest, config) {
            Ok(warnings) => {
                for warning in warnings {
                    tracing::warn!(guest = %guest.id(), "{warning}");
                }
                report.guests.push(guest);
            }
            Err(reason) => report.refused.push(Refusal {
                file: origin(config, dir, guest.id()),
                id: Some(guest.id().clone()),
                reason,
            }),
        }
    }
}

/// Where guest `id` came from, for people to read: its registry
/// reference, or its file.
fn origin(config: &Config, dir: &Path, id: &GuestId) -> PathBuf {
    match config.guest(&id.name).source {
        Some(source) => PathBuf::from(source.reference.to_string()),
        None => dir.join(format!("{id}.wasm")),
    }
}

/// What `guest`'s declared reads make of it under `config`: the lines to
/// log, or why it is refused.
pub fn reads_verdict(guest: &GuestPre, config: &Config) -> Result<Vec<String>, String> {
    let settings = config.guest(&guest.id().name);
    match reads::judge(
        guest.declared_reads(),
        &settings.read,
        settings.missing_reads,
    ) {
        Verdict::Sees => Ok(Vec::new()),
        Verdict::Warn(lines) => Ok(lines),
        Verdict::Refuse(reason) => Err(reason),
    }
}

/// The compile cache directory at `path`, created if needed, unless it
/// cannot be opened or others can write it (logged either way).
pub fn open_trusted_cache(path: &Path) -> Option<cap_std::fs::Dir> {
    let dir = open_cache_dir(path)
        .map_err(|err| tracing::warn!(dir = %path.display(), error = %err, "no compile cache; guests are compiled at every start"))
        .ok()?;
    match check_trusted_dir(&dir) {
        Ok(()) => Some(dir),
        Err(reason) => {
            tracing::error!(dir = %path.display(), reason, "compile cache not used: its directory is not to be trusted");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_section_is_taken_for_the_plugin_it_misspells() {
        let present = ["team-env", "ulimit-adjuster"];
        assert_eq!(meant("team_env", &present), Some("team-env"));
        assert_eq!(meant("ulimit-adjustr", &present), Some("ulimit-adjuster"));
        assert_eq!(meant("Team-Env", &present), Some("team-env"));
        assert_eq!(meant("hook-injector", &present), None);
    }

    #[test]
    fn a_compile_cache_others_can_write_is_not_used() {
        let dir = tempfile::TempDir::new().unwrap();
        let cache = dir.path().join("cache");
        let mode = |m| std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(m));
        std::fs::create_dir(&cache).unwrap();
        mode(0o755).unwrap();
        assert!(open_trusted_cache(&cache).is_some());
        mode(0o777).unwrap();
        assert!(open_trusted_cache(&cache).is_none());
    }
}
