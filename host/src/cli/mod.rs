//! The command-line verbs, one per file.

mod check;
mod demo;
mod run;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::{
    config::Config,
    dispatch::Dispatcher,
    observe::LogFormat,
    runtime::{
        loader::{load_plugins, open_cache_dir, open_dir},
        CompileCache, WasmEngine,
    },
};

/// Where guests come from: the plugin directory, the configuration file
/// and the compile cache.
#[derive(Debug, Args)]
pub struct GuestSource {
    /// Directory of `NN-name.wasm` guests.
    #[arg(long, default_value = "/etc/nri-wasm/plugins")]
    pub(crate) plugins: PathBuf,
    /// Configuration file [default: nri-wasm.toml in the plugin directory,
    /// if there is one].
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Directory for compiled guests, so restarts compile nothing.
    #[arg(long, default_value = "/var/cache/nri-wasm")]
    pub(crate) cache_dir: PathBuf,
}

/// Name of the configuration file looked for in the plugin directory.
pub const CONFIG_FILE: &str = "nri-wasm.toml";

impl GuestSource {
    fn config(&self) -> anyhow::Result<Config> {
        let beside = self.plugins.join(CONFIG_FILE);
        match &self.config {
            Some(file) => Ok(Config::load(file)?),
            None if beside.is_file() => Ok(Config::load(&beside)?),
            None => Ok(Config::default()),
        }
    }
}

/// Loads the guests of `source` into a dispatcher. Files that cannot be
/// guests are reported and skipped; the rest load.
pub fn load_guests(source: &GuestSource) -> anyhow::Result<Dispatcher> {
    let config = source.config()?;
    let engine = WasmEngine::new()?;
    let plugins = open_dir(&source.plugins)
        .with_context(|| format!("cannot open plugin directory {}", source.plugins.display()))?;
    let cache_dir = open_cache_dir(&source.cache_dir)
        .map_err(|err| tracing::warn!(dir = %source.cache_dir.display(), error = %err, "no compile cache; guests are compiled at every start"))
        .ok();
    let cache = CompileCache::new(engine.engine(), cache_dir);
    let report = load_plugins(&engine, &cache, &plugins, &source.plugins, |id| {
        config.guest(&id.name).sandbox()
    })
    .with_context(|| format!("cannot list plugin directory {}", source.plugins.display()))?;
    for refusal in &report.refused {
        tracing::error!(file = %refusal.file.display(), reason = %refusal.reason, "plugin refused");
    }
    for guest in &report.guests {
        tracing::info!(guest = %guest.id(), interfaces = ?guest.interfaces(), events = %guest.handled_events(), "guest loaded");
    }
    warn_unknown_sections(&config, &report.guests, &source.plugins);
    tracing::info!(
        guests = report.guests.len(),
        refused = report.refused.len(),
        compiled = cache.compiled(),
        from_cache = cache.loaded(),
        "plugins loaded"
    );
    Ok(Dispatcher::new(report.guests, &config))
}

fn warn_unknown_sections(config: &Config, guests: &[crate::runtime::GuestPre], dir: &Path) {
    for name in config.named_guests() {
        if !guests.iter().any(|g| g.id().name == name) {
            tracing::warn!(guest = name, dir = %dir.display(), "the configuration names a guest that is not loaded");
        }
    }
}

/// A WebAssembly plugin runtime for NRI, the Node Resource Interface of
/// containerd and CRI-O.
#[derive(Debug, Parser)]
#[command(name = "nri-wasm", version, about, long_about = None)]
pub struct Cli {
    /// Log line format (the filter is read from NRI_WASM_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunArgs),
    Check(check::CheckArgs),
    Demo(demo::DemoArgs),
}

impl Cli {
    /// Runs the chosen verb to completion.
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            match self.command {
                Command::Run(args) => run::run(args).await,
                Command::Check(args) => check::check(args).await,
                Command::Demo(args) => demo::demo(args).await,
            }
        })
    }
}
