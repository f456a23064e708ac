//! `nri-wasm run`: the daemon. Loads the guests, registers with the
//! runtime's NRI socket, serves the status endpoint, applies plugin and
//! configuration changes, until SIGINT or SIGTERM.
//!
//! Each setting is taken from, in order: its command-line flag, its
//! environment variable, the `[daemon]` section of the configuration
//! file, the built-in default.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::GuestSource;
use crate::{
    config::{Config, DaemonSettings},
    dispatch::CallObserver,
    metrics::Metrics,
    plugins::PluginSet,
    protocol::{self, Backoff, PluginConfig, PluginIdentity, RuntimeLink},
    shadow::Recorder,
    status::{self, Status},
};

/// Run the daemon: register with the container runtime as an NRI plugin
/// and serve its events to the Wasm guests.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runtime's NRI socket [default: /var/run/nri/nri.sock].
    #[arg(long, env = "NRI_PLUGIN_SOCKET")]
    socket: Option<PathBuf>,
    #[command(flatten)]
    guests: GuestSource,
    /// Directory for compiled guests, so restarts compile nothing
    /// [default: /var/cache/nri-wasm].
    #[arg(long, env = "NRI_WASM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Plugin name to register under [default: nri-wasm].
    #[arg(long, env = "NRI_WASM_NAME")]
    name: Option<String>,
    /// Plugin index to register under: two digits; the runtime calls
    /// plugins in index order [default: 50].
    #[arg(long, env = "NRI_WASM_INDEX")]
    index: Option<String>,
    /// Address of the /metrics, /healthz and /readyz endpoint, or "off"
    /// [default: 127.0.0.1:9465].
    #[arg(long, env = "NRI_WASM_STATUS_ADDRESS")]
    status_address: Option<String>,
    /// Do not apply changes to the plugin directory or configuration
    /// while running.
    #[arg(long, env = "NRI_WASM_NO_RELOAD")]
    no_reload: bool,
    /// Append a record of each answer of a shadow guest (`mode =
    /// "shadow"`) to this file, one JSON object per line, for `nri-wasm
    /// grants suggest`.
    #[arg(long, env = "NRI_WASM_RECORD", value_name = "FILE")]
    record: Option<PathBuf>,
}

/// The daemon's settings after precedence is applied.
struct Settings {
    socket: PathBuf,
    cache_dir: PathBuf,
    identity: PluginIdentity,
    status: Option<SocketAddr>,
    reload: bool,
}

impl Settings {
    fn resolve(args: &RunArgs, file: &DaemonSettings) -> anyhow::Result<Self> {
        let socket = args
            .socket
            .clone()
            .or_else(|| file.socket.clone())
            .unwrap_or_else(|| protocol::DEFAULT_SOCKET.into());
        check_socket_path(&socket)?;
        let name = pick(&args.name, &file.name, "nri-wasm");
        let index = pick(&args.index, &file.index, "50");
        let address = pick(
            &args.status_address,
            &file.status_address,
            status::DEFAULT_ADDRESS,
        );
        let status = match address.as_str() {
            "off" => None,
            text => Some(text.parse().with_context(|| {
                format!("invalid status address {text:?}: write IP:PORT, or \"off\"")
            })?),
        };
        Ok(Settings {
            socket,
            cache_dir: args
                .cache_dir
                .clone()
                .or_else(|| file.cache_dir.clone())
                .unwrap_or_else(|| "/var/cache/nri-wasm".into()),
            identity: PluginIdentity::new(&name, &index)?,
            status,
            reload: !args.no_reload && file.reload.unwrap_or(true),
        })
    }
}

fn pick(flag: &Option<String>, file: &Option<String>, default: &str) -> String {
    flag.clone()
        .or_else(|| file.clone())
        .unwrap_or_else(|| default.to_string())
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let daemon = match args.guests.config_file() {
        Some(file) => Config::load(&file)?.daemon().clone(),
        None => DaemonSettings::default(),
    };
    let settings = Settings::resolve(&args, &daemon)?;
    let metrics = Arc::new(Metrics::new());
    let plugins = Arc::new(PluginSet::new(
        &args.guests.plugins,
        args.guests.config.as_deref(),
        Some(&settings.cache_dir),
    )?);
    let mut observers: Vec<Arc<dyn CallObserver>> = Vec::new();
    if let Some(file) = &args.record {
        observers.push(Arc::new(Recorder::create(file)?));
    }
    let dispatcher = Arc::new(plugins.start(Some(metrics.clone()), observers)?);
    let link = RuntimeLink::default();
    let stop = CancellationToken::new();
    if let Some(address) = settings.status {
        if !address.ip().is_loopback() {
            tracing::warn!(%address, "the status endpoint listens beyond loopback, as configured");
        }
        let listener = status::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} for /metrics"))?;
        let status = Status {
            metrics: metrics.clone(),
            link: link.clone(),
        };
        tokio::spawn(status::serve(listener, status, stop.clone()));
    }
    if settings.reload {
        let watch = plugins.watch(
            dispatcher.clone(),
            Some(metrics),
            daemon.resolve_interval,
            stop.clone(),
        );
        tokio::spawn(async move {
            if let Err(err) = watch.await {
                tracing::error!(error = %format!("{err:#}"), "plugin changes are not applied while running");
            }
        });
    }
    tokio::spawn(stop_on_signal(stop.clone()));
    let config = PluginConfig {
        socket: settings.socket,
        identity: settings.identity,
        backoff: Backoff::default(),
    };
    protocol::run_plugin(config, dispatcher, link, stop).await;
    Ok(())
}

/// A number in NRI_PLUGIN_SOCKET is the descriptor a runtime hands to a
/// plugin it launched itself; nri-wasm runs as an external plugin only.
fn check_socket_path(socket: &std::path::Path) -> anyhow::Result<()> {
    let text = socket.to_string_lossy();
    if text.parse::<u32>().is_ok() {
        bail!(
            "socket {text:?} is a file descriptor (runtime-launched plugin); \
             nri-wasm runs as an external plugin: give the path of the NRI socket"
        );
    }
    Ok(())
}

async fn stop_on_signal(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler");
    let interrupt = tokio::signal::ctrl_c();
    match term.as_mut() {
        Ok(term) => tokio::select! {
            _ = term.recv() => {}
            _ = interrupt => {}
        },
        Err(_) => {
            interrupt.await.ok();
        }
    }
    tracing::info!("stopping");
    stop.cancel();
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        run: RunArgs,
    }

    fn settings(args: &[&str], file: &str) -> Settings {
        let args = Command::parse_from(std::iter::once("nri-wasm").chain(args.iter().copied()));
        let file: DaemonSettings = toml::from_str(file).unwrap();
        Settings::resolve(&args.run, &file).unwrap()
    }

    #[test]
    fn the_status_endpoint_listens_on_loopback_unless_told_otherwise() {
        let default = settings(&[], "");
        assert!(default.status.unwrap().ip().is_loopback());
        let told = settings(&[], "status-address = \"0.0.0.0:9465\"");
        assert_eq!(told.status, Some("0.0.0.0:9465".parse().unwrap()));
        let flag = settings(
            &["--status-address", "off"],
            "status-address = \"0.0.0.0:9465\"",
        );
        assert_eq!(flag.status, None);
    }
}
