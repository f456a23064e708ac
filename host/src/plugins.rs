//! The plugin directory and configuration as the daemon serves them:
//! loaded at start, then watched, so guests are added, replaced and
//! removed while the daemon runs. Events in flight finish with the guests
//! they started with; a reload that fails (a bad configuration, an
//! unreadable directory) changes nothing; a plugin file refused on reload
//! leaves the version already running in place. Plugins a section takes
//! from a registry load beside the directory's; when the registry cannot
//! be reached, the version running is loaded again from the store if the
//! section still admits it, and the pull is tried again with backoff. A
//! plugin refused by its checks runs in no version.

use std::{
    collections::BTreeMap,
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
    dispatch::{CallObserver, Dispatcher, GuestChanges},
    grants::reads::{self, Verdict},
    metrics::Metrics,
    oci::{pull::PullRequest, PluginSource, PullError, Pulled, Puller},
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
    /// The repository and manifest each running registry guest was
    /// pulled from.
    manifests: Mutex<BTreeMap<GuestId, (String, ContentDigest)>>,
}

/// One load: the configuration and what the directory gave with it.
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The guests and the refused files.
    pub report: LoadReport,
    /// The registry guests of `report` and where they came from.
    pub pulled: Vec<PulledGuest>,
}

/// A registry guest of a load.
pub struct PulledGuest {
    /// The guest.
    pub id: GuestId,
    /// The manifest it was pulled from.
    pub manifest: ContentDigest,
    /// The tag that named it, recorded once it runs.
    tag: Option<String>,
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
            manifests: Mutex::new(BTreeMap::new()),
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
        judge_files(&mut report, &config, &self.dir);
        let mut pulled = self.load_sources(&config, &mut report);
        judge_reads(&mut report, &config, &self.dir);
        report.guests.sort_by(|a, b| a.id().cmp(b.id()));
        let digests: Vec<ContentDigest> = report.guests.iter().map(GuestPre::digest).collect();
        self.cache.keep_only(&digests);
        pulled.retain(|p| report.guests.iter().any(|g| *g.id() == p.id));
        for refusal in &report.refused {
            tracing::error!(file = %refusal.file.display(), reason = %refusal.reason, "plugin refused");
        }
        self.check_sections(&config, &report)?;
        // Only what will run moves a tag: a restart with the registry down
        // falls back to it.
        for guest in &pulled {
            if let Some(tag) = &guest.tag {
                self.puller.record(tag, guest.manifest);
            }
        }
        Ok(Loaded {
            config,
            report,
            pulled,
        })
    }

    /// Warns of sections that name nothing loaded and of risky grants;
    /// fails on a section that misses a plugin by a slip of spelling.
    fn check_sections(&self, config: &Config, report: &LoadReport) -> anyhow::Result<()> {
        // A registry section names its plugin whether or not it loaded.
        let present: Vec<&str> = report
            .guests
            .iter()
            .map(|g| g.id())
            .chain(report.refused.iter().filter_map(|r| r.id.as_ref()))
            .map(|id| id.name.as_str())
            .chain(config.sources().map(|(name, _)| name))
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
            for warning in config.guest(name).warnings() {
                tracing::warn!(guest = name, "{warning}");
            }
        }
        for (name, source) in config.sources() {
            if source.reference.digest().is_none() && config.guest(name).digest.is_none() {
                tracing::warn!(guest = name, source = %source.reference, "a registry plugin pinned by no digest runs whatever its tag names; add @sha256:... to the reference");
            }
        }
        Ok(())
    }

    /// Pulls and loads the plugins sections take from registries; returns
    /// the manifest each loaded one came from.
    fn load_sources(&self, config: &Config, report: &mut LoadReport) -> Vec<PulledGuest> {
        let sources: Vec<(&str, &PluginSource)> = config.sources().collect();
        let requests: Vec<PullRequest<'_>> = sources
            .iter()
            .map(|(name, source)| PullRequest {
                source,
                running: self.running_manifest(name, source),
            })
            .collect();
        let pulls = self.puller.pull_all(&requests);
        let mut failed = false;
        let mut manifests = Vec::new();
        for ((name, source), pulled) in sources.into_iter().zip(pulls) {
            let loaded = pulled.and_then(|pulled| {
                failed |= pulled.stale.is_some();
                let guest = self.load_pulled(config, name, source, &pulled)?;
                Ok((guest, pulled))
            });
            match loaded {
                Ok((guest, pulled)) => {
                    manifests.push(PulledGuest {
                        id: guest.id().clone(),
                        manifest: pulled.manifest,
                        tag: pulled.tag().map(str::to_string),
                    });
                    report.guests.push(guest);
                }
                Err(error) => {
                    failed |= error.is_transient();
                    report.refused.push(Refusal {
                        file: PathBuf::from(source.reference.to_string()),
                        id: None,
                        reason: error.to_string(),
                    });
                }
            }
        }
        *self.pull_failed.lock().expect("never poisoned") = failed;
        manifests
    }

    /// The manifest the guest of section `name` runs now, if it came from
    /// the repository `source` names.
    fn running_manifest(&self, name: &str, source: &PluginSource) -> Option<ContentDigest> {
        let manifests = self.manifests.lock().expect("never poisoned");
        manifests
            .iter()
            .find(|(id, (repository, _))| id.name == name && *repository == source.reference.name())
            .map(|(_, (_, digest))| *digest)
    }

    /// Records the repository and manifest of the registry guests now
    /// `running`: those just `pulled`, else (kept) what they were.
    fn note_running(&self, config: &Config, running: &[GuestId], pulled: &[PulledGuest]) {
        let mut manifests = self.manifests.lock().expect("never poisoned");
        let before = std::mem::take(&mut *manifests);
        for id in running {
            let Some(source) = config.guest(&id.name).source else {
                continue;
            };
            let now = pulled
                .iter()
                .find(|p| p.id == *id)
                .map(|p| (source.reference.name(), p.manifest));
            if let Some(entry) = now.or_else(|| before.get(id).cloned()) {
                manifests.insert(id.clone(), entry);
            }
        }
    }

    /// The manifest each running registry guest was pulled from: guest id
    /// and `sha256:` digest.
    pub fn running_manifests(&self) -> Vec<(String, String)> {
        let manifests = self.manifests.lock().expect("never poisoned");
        manifests
            .iter()
            .map(|(id, (_, digest))| (id.to_string(), format!("sha256:{digest}")))
            .collect()
    }

    fn load_pulled(
        &self,
        config: &Config,
        name: &str,
        source: &PluginSource,
        pulled: &Pulled,
    ) -> Result<GuestPre, PullError> {
        let digest = pulled.manifest;
        if let Some(reason) = &pulled.stale {
            tracing::warn!(source = %source.reference, manifest = %format!("sha256:{digest}"), error = %reason, "the registry cannot be reached; running what it gave before");
        }
        let refuse =
            |reason: String| PullError::Refused(format!("manifest sha256:{digest}: {reason}"));
        // The call order is the operator's to set; an artifact's own index
        // counts only for one the operator pinned or had signed.
        let vouched = source.reference.digest() == Some(digest) || pulled.signed;
        let index = source
            .index
            .clone()
            .or_else(|| pulled.plugin_id.as_ref().filter(|_| vouched).map(|id| id.index.clone()))
            .ok_or_else(|| refuse("give the section an `index = \"NN\"`: the artifact is neither pinned nor signed, or carries no plugin index".into()))?;
        let id = GuestId {
            index,
            name: name.to_string(),
        };
        let sandbox = config.guest(name).sandbox();
        let guest = load_bytes(&self.engine, &self.cache, &pulled.component, id, sandbox)
            .map_err(refuse)?;
        tracing::info!(guest = %guest.id(), source = %source.reference, manifest = %format!("sha256:{digest}"), signed = pulled.signed, "registry plugin ready");
        Ok(guest)
    }

    /// Whether the last load left a registry pull to try again.
    pub fn pull_failed(&self) -> bool {
        *self.pull_failed.lock().expect("never poisoned")
    }

    /// Loads the plugins into a new dispatcher that reports its calls to
    /// `metrics` and `observers`.
    pub fn start(
        &self,
        metrics: Option<Arc<Metrics>>,
        observers: Vec<Arc<dyn CallObserver>>,
    ) -> anyhow::Result<Dispatcher> {
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
        let mut observers = observers;
        observers.extend(metrics.iter().map(|m| m.clone() as _));
        let running: Vec<GuestId> = loaded
            .report
            .guests
            .iter()
            .map(|g| g.id().clone())
            .collect();
        self.note_running(&loaded.config, &running, &loaded.pulled);
        if let Some(metrics) = &metrics {
            metrics.loaded(loaded.report.guests.len(), loaded.report.refused.len());
            metrics.registry_guests(&self.running_manifests());
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
        let Loaded {
            config,
            report,
            pulled,
        } = self.load()?;
        // A file refused now keeps the version of it already running,
        // unless its section takes the plugin from a registry or only
        // signed plugins may run. A registry plugin that cannot be pulled
        // is loaded again from the store where its section still admits
        // it (see `oci::pull`); one refused by its checks is not kept.
        let keep: Vec<_> = report
            .refused
            .iter()
            .filter_map(|r| r.id.clone())
            .filter(|id| {
                let settings = config.guest(&id.name);
                settings.source.is_none() && !settings.require_signature
            })
            .collect();
        let refused = report.refused.len();
        let changes = dispatcher.replace_guests(report.guests, &config, &keep);
        let running: Vec<GuestId> = dispatcher.guests().iter().map(|s| s.id().clone()).collect();
        self.note_running(&config, &running, &pulled);
        Ok((changes, refused))
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
        let mut resolve = resolve_interval.map(|every| {
            let start = tokio::time::Instant::now() + every;
            let mut interval = tokio::time::interval_at(start, every);
            // After a slow reload, one resolution, not a burst.
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        // Set after each load that left a pull to try again, so that
        // other wake-ups do not advance the backoff.
        let mut retry_at = self.retry_after(&mut retry);
        loop {
            tokio::select! {
                Some(()) = changes.recv() => {
                    if !settle(&mut changes, &stop).await {
                        return Ok(());
                    }
                }
                () = sleep_until_or_never(retry_at) => {
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
            if let Some(metrics) = &metrics {
                metrics.registry_guests(&self.running_manifests());
            }
            retry_at = self.retry_after(&mut retry);
        }
    }

    /// When to pull again after the load just done, if it left a pull to
    /// try again; else the backoff starts over.
    fn retry_after(&self, retry: &mut Backoff) -> Option<tokio::time::Instant> {
        if !self.pull_failed() {
            retry.reset();
            return None;
        }
        Some(tokio::time::Instant::now() + retry.next_delay())
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

/// Judges the files of the plugin directory against their sections: a
/// section with a `source` owns its name, so a file of that name is not
/// loaded; under `[defaults] require-signature = true` no file is, since
/// files carry no signature. Neither keeps a running version on reload
/// (see [`PluginSet::reload`]).
fn judge_files(report: &mut LoadReport, config: &Config, dir: &Path) {
    for guest in std::mem::take(&mut report.guests) {
        let settings = config.guest(&guest.id().name);
        let reason = match (&settings.source, settings.require_signature) {
            (Some(source), _) => format!("its section [plugins.{}] takes the plugin from {}; the file is not loaded", guest.id().name, source.reference),
            (None, true) => "is a file of the plugin directory, which carries no signature; [defaults] require-signature = true admits only signed registry plugins".into(),
            (None, false) => {
                report.guests.push(guest);
                continue;
            }
        };
        report.refused.push(Refusal {
            file: dir.join(format!("{}.wasm", guest.id())),
            id: Some(guest.id().clone()),
            reason,
        });
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

async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
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
