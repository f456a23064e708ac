//! The command-line verbs, one per file.

#[cfg(feature = "authoring")]
mod annotate;
#[cfg(feature = "authoring")]
mod build;
mod check;
mod demo;
mod grants;
#[cfg(feature = "authoring")]
mod new;
mod push;
mod report;
mod run;
mod test;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{observe::LogFormat, plugins::config_file};

/// Where guests come from: the plugin directory and the configuration
/// file.
#[derive(Debug, Args)]
pub struct GuestSource {
    /// Directory of `NN-name.wasm` guests.
    #[arg(
        long,
        env = "NRI_WASM_PLUGINS",
        default_value = "/etc/nri-wasm/plugins"
    )]
    pub(crate) plugins: PathBuf,
    /// Configuration file [default: nri-wasm.toml in the plugin directory,
    /// if there is one].
    #[arg(long, env = "NRI_WASM_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

impl GuestSource {
    /// The configuration file in effect, if any.
    fn config_file(&self) -> Option<PathBuf> {
        config_file(&self.plugins, self.config.as_deref())
    }
}

/// The compile cache of `check` and `test` when none is given: the
/// daemon's own (`/var/cache/nri-wasm`) for root, so that checking a
/// plugin warms the daemon's start; else the user's.
fn default_cache_dir() -> Option<PathBuf> {
    match crate::runtime::loader::daemon_uid() {
        Some(0) => Some(PathBuf::from("/var/cache/nri-wasm")),
        _ => user_cache_dir(),
    }
}

/// `nri-wasm` in the user's cache directory (`$XDG_CACHE_HOME`, else
/// `~/.cache`).
fn user_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|dir| dir.join("nri-wasm"))
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
    Test(test::TestArgs),
    Demo(demo::DemoArgs),
    Grants(grants::GrantsArgs),
    Push(push::PushArgs),
    #[cfg(feature = "authoring")]
    New(new::NewArgs),
    #[cfg(feature = "authoring")]
    Build(build::BuildArgs),
    #[cfg(feature = "authoring")]
    Annotate(annotate::AnnotateArgs),
}

impl Cli {
    /// The log filter when NRI_WASM_LOG sets none: the demo shows the
    /// guests' own lines and problems only; its story is on stdout.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Demo(_) => "warn,guest=info",
            _ => "info",
        }
    }

    /// Runs the chosen verb to completion.
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            match self.command {
                Command::Run(args) => run::run(args).await,
                Command::Check(args) => check::check(args).await,
                Command::Test(args) => test::test(args).await,
                Command::Demo(args) => demo::demo(args).await,
                Command::Grants(args) => grants::grants(args).await,
                Command::Push(args) => push::push(args).await,
                #[cfg(feature = "authoring")]
                Command::New(args) => new::new(args),
                #[cfg(feature = "authoring")]
                Command::Build(args) => build::build(args),
                #[cfg(feature = "authoring")]
                Command::Annotate(args) => annotate::annotate(args),
            }
        })
    }
}
