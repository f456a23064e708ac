//! One registered plugin, seen from the runtime: its identity, its
//! subscription, the client of its Plugin service, and the rule that a
//! plugin which times out or breaks the connection is dropped.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use nri_proto::{api::Event, api_ttrpc::PluginClient, events::EventMask, mux::Mux};

/// A registered plugin.
pub struct PluginConn {
    /// Plugin name.
    pub name: String,
    /// Two-digit index.
    pub index: String,
    /// Subscribed events.
    pub events: EventMask,
    pub(crate) client: PluginClient,
    pub(crate) mux: Mux,
    closed: AtomicBool,
}

/// What happened to one request to a plugin.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The plugin answered with an error: the request fails.
    Failed(String),
    /// The plugin timed out or its connection broke: it is dropped and the
    /// request goes on without it.
    Fatal(String),
}

impl PluginConn {
    pub(crate) fn new(
        name: String,
        index: String,
        events: EventMask,
        client: PluginClient,
        mux: Mux,
    ) -> Self {
        PluginConn {
            name,
            index,
            events,
            client,
            mux,
            closed: AtomicBool::new(false),
        }
    }

    /// `NN-name`, as NRI names plugins.
    pub fn id(&self) -> String {
        format!("{}-{}", self.index, self.name)
    }

    /// The client of the plugin's Plugin service, for calls outside the
    /// simulator's lifecycle (benchmarks of a bare round trip).
    pub fn client(&self) -> &PluginClient {
        &self.client
    }

    /// Whether the plugin subscribed to `event`.
    pub fn handles(&self, event: Event) -> bool {
        self.events.contains(event)
    }

    /// Whether the plugin was dropped or went away.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Drops the plugin: closes its connection.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.mux.close();
    }

    /// Runs one request with the runtime's request timeout.
    pub(crate) async fn call<T>(
        &self,
        timeout: Duration,
        request: impl Future<Output = ttrpc::Result<T>>,
    ) -> Result<T, CallError> {
        if self.is_closed() {
            return Err(CallError::Fatal("plugin is closed".into()));
        }
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            result = tokio::time::timeout(timeout, request) => result,
            end = self.mux.ended() => return Err(CallError::Fatal(format!("connection lost: {end}"))),
        };
        // The ttrpc client enforces the same deadline and may report it
        // first, as an error of its own.
        let late = started.elapsed() >= timeout;
        match result {
            Err(_) => Err(CallError::Fatal(format!("no answer within {timeout:?}"))),
            Ok(Err(_)) if late => Err(CallError::Fatal(format!("no answer within {timeout:?}"))),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(ttrpc::Error::RpcStatus(status)))
                if status.code() == ttrpc::Code::DEADLINE_EXCEEDED =>
            {
                Err(CallError::Fatal(format!(
                    "deadline exceeded: {}",
                    status.message
                )))
            }
            Ok(Err(ttrpc::Error::RpcStatus(status))) => Err(CallError::Failed(status.message)),
            Ok(Err(other)) => Err(CallError::Fatal(other.to_string())),
        }
    }
}
