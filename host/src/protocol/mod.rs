//! The NRI plugin side: nri-wasm registers with the runtime as one
//! external plugin, serves its events to an [`NriHandler`], and stays
//! registered across runtime restarts.
//!
//! ```text
//! runtime --unix socket--> mux --conn 1--> PluginService --> NriHandler
//!         <--conn 2-- RuntimeClient (RegisterPlugin, UpdateContainers)
//! ```

mod backoff;
mod handler;
mod service;
mod session;

use std::{
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
};

pub use backoff::Backoff;
pub use handler::{HandlerError, Notification, NriHandler, RuntimeInfo};
pub use nri_proto::identity::IdentityError;
use nri_proto::{
    api::{UpdateContainersRequest, UpdateContainersResponse},
    api_ttrpc::RuntimeClient,
    identity::check_identity,
    mux::{MuxError, SentFrame, TrunkEnd},
};
pub use service::Handshake;
pub use session::{SessionEnd, SessionError};
use tokio_util::sync::CancellationToken;

/// The socket runtimes listen on for external plugins.
pub const DEFAULT_SOCKET: &str = "/var/run/nri/nri.sock";

/// The name and index nri-wasm registers under (`NN-name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginIdentity {
    /// Plugin name: `[A-Za-z0-9_.+-]+`.
    pub name: String,
    /// Exactly two ASCII digits; the runtime calls plugins in index order.
    pub index: String,
}

impl PluginIdentity {
    /// Checks `name` and `index` by NRI's rules.
    pub fn new(name: &str, index: &str) -> Result<Self, IdentityError> {
        check_identity(name, index)?;
        Ok(PluginIdentity {
            name: name.to_string(),
            index: index.to_string(),
        })
    }
}

impl fmt::Display for PluginIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.index, self.name)
    }
}

/// The runtime's side of the current connection, for requests nri-wasm
/// starts itself (unsolicited container updates). Empty while disconnected.
#[derive(Clone, Default)]
pub struct RuntimeLink {
    client: Arc<Mutex<Option<RuntimeClient>>>,
    drops: Arc<Mutex<RuntimeDrops>>,
}

/// How often the runtime closed a registered connection, and what it had
/// been sent last when it did so most recently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeDrops {
    /// Connections the runtime closed after registration.
    pub count: u64,
    /// The last frame sent before the latest of them.
    pub last_sent: Option<SentFrame>,
}

/// Why an unsolicited update did not reach the runtime.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// No runtime connection right now.
    #[error("not connected to the runtime")]
    NotConnected,
    /// The runtime answered with an error.
    #[error("UpdateContainers failed: {0}")]
    Rpc(#[from] ttrpc::Error),
}

impl RuntimeLink {
    fn connect(&self, client: RuntimeClient) {
        *self.client.lock().expect("never poisoned") = Some(client);
    }

    fn disconnect(&self) {
        self.client.lock().expect("never poisoned").take();
    }

    fn record_drop(&self, last_sent: Option<SentFrame>) {
        let mut drops = self.drops.lock().expect("never poisoned");
        drops.count += 1;
        drops.last_sent = last_sent;
    }

    /// The runtime's drops of this plugin so far.
    pub fn drops(&self) -> RuntimeDrops {
        *self.drops.lock().expect("never poisoned")
    }

    /// Whether a runtime connection is registered.
    pub fn is_connected(&self) -> bool {
        self.client.lock().expect("never poisoned").is_some()
    }

    /// Asks the runtime to update or evict containers; returns the updates
    /// it could not apply.
    pub async fn update_containers(
        &self,
        request: UpdateContainersRequest,
        timeout: std::time::Duration,
    ) -> Result<UpdateContainersResponse, UpdateError> {
        let client = self
            .client
            .lock()
            .expect("never poisoned")
            .clone()
            .ok_or(UpdateError::NotConnected)?;
        let ctx = ttrpc::context::with_duration(timeout);
        Ok(client.update_containers(ctx, &request).await?)
    }
}

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct PluginConfig {
    /// The runtime's NRI socket.
    pub socket: PathBuf,
    /// Name and index to register under.
    pub identity: PluginIdentity,
    /// Delays between connection attempts.
    pub backoff: Backoff,
}

/// Connects to the runtime and keeps connecting: after the runtime goes
/// away (a restart, a protocol error, a dropped plugin) nri-wasm dials
/// again with bounded, jittered backoff, registers and is synchronized
/// anew. Returns when `stop` fires.
///
/// The connection runs on a thread of its own, on a single-threaded
/// runtime that also runs the guests, in the handler's task (called
/// directly, or, for guests that import WASI, as futures that yield while
/// they wait in the host): an event goes from the socket through the
/// multiplexer, ttrpc, the handler and the guests and back without
/// crossing a thread. While a guest computes, the connection waits; NRI
/// sends a plugin one request at a time.
pub async fn run_plugin(
    config: PluginConfig,
    handler: Arc<dyn NriHandler>,
    link: RuntimeLink,
    stop: CancellationToken,
) {
    let (done, finished) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("nri-connection".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a single-threaded runtime for the NRI connection");
            runtime.block_on(keep_connected(config, handler, link, stop));
            done.send(()).ok();
        });
    match thread {
        Ok(_) if finished.await.is_err() => {
            tracing::error!("the NRI connection thread ended without stopping");
        }
        Ok(_) => {}
        Err(err) => tracing::error!(error = %err, "cannot start the NRI connection thread"),
    }
}

async fn keep_connected(
    config: PluginConfig,
    handler: Arc<dyn NriHandler>,
    link: RuntimeLink,
    stop: CancellationToken,
) {
    let mut backoff = config.backoff.clone();
    while !stop.is_cancelled() {
        let result = session::run_session(
            &config.socket,
            &config.identity,
            handler.clone(),
            &link,
            &stop,
        )
        .await;
        match result {
            Ok(_) if stop.is_cancelled() => break,
            Ok(end) => {
                backoff.reset();
                if dropped_by_runtime(&end.trunk) {
                    link.record_drop(end.last_sent);
                }
                log_session_end(&end);
            }
            Err(err @ SessionError::Connect { .. }) if backoff.attempts() > 0 => {
                tracing::debug!(error = %err, "runtime still unreachable");
            }
            Err(err) => tracing::warn!(error = %err, "no connection to runtime"),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => {}
        }
    }
    tracing::info!("disconnected from runtime");
}

/// Whether the runtime ended the trunk: it closed the socket, or closed it
/// with our data unread (the reset a reader that refused a frame leaves).
fn dropped_by_runtime(trunk: &TrunkEnd) -> bool {
    match trunk {
        TrunkEnd::Closed => true,
        TrunkEnd::Failed(MuxError::Io(err)) => matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        TrunkEnd::Failed(_) => false,
    }
}

fn log_session_end(end: &SessionEnd) {
    match &*end.trunk {
        // A runtime drops a plugin without saying why; the size of what
        // was sent last (queued last, on either connection) is a hint
        // towards a reply it could not take.
        trunk if dropped_by_runtime(trunk) => tracing::warn!(
            error = %trunk,
            handshake = ?end.handshake,
            last_frame_bytes = end.last_sent.map(|f| f.len),
            last_message_bytes = end.last_sent.map(|f| f.message),
            last_conn = end.last_sent.map(|f| f.conn.0),
            "runtime closed the connection; reconnecting"
        ),
        trunk => tracing::error!(
            handshake = ?end.handshake, error = %trunk,
            "connection to runtime failed; reconnecting"
        ),
    }
}
