//! `nri-wasm run`: the daemon. Loads the guests, registers with the
//! runtime's NRI socket and serves until SIGINT or SIGTERM.

use std::{path::PathBuf, sync::Arc};

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{load_guests, GuestSource};
use crate::protocol::{self, Backoff, PluginConfig, PluginIdentity, RuntimeLink};

/// Run the daemon: register with the container runtime as an NRI plugin
/// and serve its events to the Wasm guests.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runtime's NRI socket.
    #[arg(long, env = "NRI_PLUGIN_SOCKET", default_value = protocol::DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(flatten)]
    guests: GuestSource,
    /// Plugin name to register under.
    #[arg(long, default_value = "nri-wasm")]
    name: String,
    /// Plugin index to register under (two digits; the runtime calls
    /// plugins in index order).
    #[arg(long, default_value = "50")]
    index: String,
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let identity = PluginIdentity::new(&args.name, &args.index)?;
    check_socket_path(&args.socket)?;
    let dispatcher = load_guests(&args.guests)?;
    let config = PluginConfig {
        socket: args.socket,
        identity,
        backoff: Backoff::default(),
    };
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    protocol::run_plugin(config, Arc::new(dispatcher), RuntimeLink::default(), stop).await;
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
