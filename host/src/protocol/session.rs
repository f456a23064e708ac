//! One connection to the runtime, from dial to hang-up: the trunk, the
//! Plugin service on connection 1, the Runtime client on connection 2, and
//! registration.

use std::{path::Path, sync::Arc, time::Duration};

use nri_proto::{
    api::RegisterPluginRequest,
    api_ttrpc::{create_plugin, RuntimeClient},
    events::NRI_VERSION,
    mux::{ttrpc_listener, ConnId, Mux, ReadRule, SentFrame, TrunkEnd},
};
use tokio::{net::UnixStream, sync::watch};
use ttrpc::r#async::transport::Socket;

use super::{
    service::{Handshake, PluginService},
    NriHandler, PluginIdentity, RuntimeLink,
};

/// Registration timeout assumed before the runtime announces its own
/// (NRI's default).
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection to the runtime could not be used or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The socket could not be dialled.
    #[error("cannot connect to NRI socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Plugin service could not be started on the trunk.
    #[error("cannot serve the Plugin service: {0}")]
    Serve(#[source] ttrpc::Error),
    /// The runtime refused or did not answer RegisterPlugin.
    #[error("runtime refused registration of {plugin}: {source}")]
    Register {
        /// `NN-name` of the plugin.
        plugin: String,
        /// The runtime's answer.
        #[source]
        source: ttrpc::Error,
    },
}

/// How a session that had registered ended.
#[derive(Debug)]
pub struct SessionEnd {
    /// How the trunk ended.
    pub trunk: Arc<TrunkEnd>,
    /// The last frame sent on it.
    pub last_sent: Option<SentFrame>,
    /// How far the handshake had come.
    pub handshake: Handshake,
}

/// Dials `socket`, registers as `identity`, and serves the runtime until
/// the trunk ends or `stop` fires.
pub async fn run_session(
    socket: &Path,
    identity: &PluginIdentity,
    handler: Arc<dyn NriHandler>,
    link: &RuntimeLink,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<SessionEnd, SessionError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| SessionError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    let (mux, conns) = Mux::start(
        stream,
        &[ConnId::PLUGIN_SERVICE, ConnId::RUNTIME_SERVICE],
        ReadRule::Stream,
    );
    let [plugin_conn, runtime_conn]: [_; 2] = conns.try_into().ok().expect("two conns");

    let (handshake_tx, handshake) = watch::channel(Handshake::Registering);
    let service = Arc::new(PluginService::new(handler, handshake_tx));
    let mut server = ttrpc::r#async::Server::new()
        .add_listener(ttrpc_listener(plugin_conn))
        .register_service(create_plugin(service));
    server.start().await.map_err(SessionError::Serve)?;

    let result = register(identity, runtime_conn, link, &mux).await;
    let end = match result {
        Ok(()) => {
            tracing::info!(plugin = %identity, socket = %socket.display(), "registered with runtime");
            let trunk = tokio::select! {
                trunk = mux.ended() => trunk,
                () = stop.cancelled() => {
                    mux.close();
                    mux.ended().await
                }
            };
            Ok(SessionEnd {
                trunk,
                last_sent: mux.last_sent(),
                handshake: handshake.borrow().clone(),
            })
        }
        Err(err) => {
            mux.close();
            Err(err)
        }
    };
    link.disconnect();
    server.shutdown().await.ok();
    end
}

async fn register(
    identity: &PluginIdentity,
    runtime_conn: nri_proto::mux::MuxConn,
    link: &RuntimeLink,
    mux: &Mux,
) -> Result<(), SessionError> {
    let client = RuntimeClient::new(ttrpc::r#async::Client::new(Socket::new(runtime_conn)));
    let request = RegisterPluginRequest {
        plugin_name: identity.name.clone(),
        plugin_idx: identity.index.clone(),
        NRI_version: NRI_VERSION.to_string(),
        ..Default::default()
    };
    let ctx = ttrpc::context::with_duration(DEFAULT_REGISTRATION_TIMEOUT);
    let registered = tokio::select! {
        result = client.register_plugin(ctx, &request) => result,
        trunk = mux.ended() => Err(ttrpc::Error::Others(format!("connection lost: {trunk}"))),
    };
    registered.map_err(|source| SessionError::Register {
        plugin: identity.to_string(),
        source,
    })?;
    link.connect(client);
    Ok(())
}
