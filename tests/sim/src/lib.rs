//! nri-sim: the runtime side of NRI, for tests and demos.
//!
//! A [`Simulator`] listens on a unix socket like containerd's NRI does,
//! accepts external plugins (registration and request timeouts, name and
//! index checks, event masks checked against its NRI version, Synchronize
//! in pages), and drives them through pod and container lifecycles: events
//! go to subscribed plugins in index order, adjustments are merged with
//! NRI's ownership rules and applied to its in-memory containers,
//! validators see the merged result, and a plugin that misses the request
//! timeout is dropped. Runtimes before NRI v0.12 are simulated too: their
//! lifecycle events travel as StateChange.
//!
//! It has no scripted answers: what a test sees is what its plugins did.

mod config;
mod lifecycle;
pub mod oci;
mod plugin;
mod server;
mod state;
pub mod validator;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

pub use config::SimConfig;
use nri_proto::api::{Container, ContainerEviction, ContainerUpdate, PodSandbox};
pub use plugin::PluginConn;
use state::NodeState;
use tokio::task::JoinHandle;
pub use validator::DefaultValidator;

/// Why a simulated runtime request failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// A plugin answered the request with an error.
    #[error("plugin {plugin} failed {event}: {message}")]
    Plugin {
        /// `NN-name` of the plugin.
        plugin: String,
        /// The RPC.
        event: String,
        /// Its error message.
        message: String,
    },
    /// Two plugins changed the same field.
    #[error("{0}")]
    Conflict(String),
    /// A validator rejected the adjustment.
    #[error("validator {plugin} rejected the adjustment: {reason}")]
    Rejected {
        /// `NN-name` of the validator.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// No pod with that id.
    #[error("no pod {0}")]
    UnknownPod(String),
    /// No container with that id.
    #[error("no container {0}")]
    UnknownContainer(String),
}

/// A plugin the runtime dropped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// `NN-name` of the plugin.
    pub plugin: String,
    /// Why it was dropped.
    pub reason: String,
}

/// What plugins sent on their own through UpdateContainers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unsolicited {
    /// Updates, in arrival order.
    pub updates: Vec<ContainerUpdate>,
    /// Evictions, in arrival order (NRI only counts these).
    pub evictions: Vec<ContainerEviction>,
}

/// Everything the simulated runtime shares between its tasks.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    /// The registered plugins, sorted by index. Held for the whole of each
    /// event, as NRI's adaptation lock is.
    pub(crate) plugins: tokio::sync::Mutex<Vec<Arc<PluginConn>>>,
    pub(crate) state: Mutex<NodeState>,
    pub(crate) dropped: Mutex<Vec<Dropped>>,
    pub(crate) unsolicited: Mutex<Unsolicited>,
    pub(crate) registered: tokio::sync::watch::Sender<u64>,
    pub(crate) calls: Mutex<Vec<Call>>,
}

impl Shared {
    pub(crate) fn record_call(&self, plugin: &PluginConn, method: &'static str) {
        self.calls.lock().expect("never poisoned").push(Call {
            plugin: plugin.id(),
            method,
        });
    }
}

/// One request the runtime sent to a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `NN-name` of the plugin.
    pub plugin: String,
    /// The RPC method.
    pub method: &'static str,
}

/// A simulated container runtime with NRI enabled.
pub struct Simulator {
    shared: Arc<Shared>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Simulator {
    /// Starts listening on `config.socket`.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let shared = Arc::new(Shared {
            config,
            plugins: tokio::sync::Mutex::new(Vec::new()),
            state: Mutex::new(NodeState::default()),
            dropped: Mutex::new(Vec::new()),
            unsolicited: Mutex::new(Unsolicited::default()),
            registered: tokio::sync::watch::channel(0).0,
            calls: Mutex::new(Vec::new()),
        });
        let sim = Simulator {
            shared,
            listener: Mutex::new(None),
        };
        sim.listen()?;
        Ok(sim)
    }

    fn listen(&self) -> std::io::Result<()> {
        let handle = server::listen(self.shared.clone())?;
        *self.listener.lock().expect("never poisoned") = Some(handle);
        Ok(())
    }

    /// The socket plugins connect to.
    pub fn socket(&self) -> &Path {
        &self.shared.config.socket
    }

    /// Stops like a runtime going down: stops listening and disconnects
    /// every plugin. Pods and containers are kept.
    pub async fn stop(&self) {
        let listener = self.listener.lock().expect("never poisoned").take();
        if let Some(listener) = listener {
            listener.abort();
            listener.await.ok();
        }
        self.disconnect_plugins().await;
        std::fs::remove_file(&self.shared.config.socket).ok();
    }

    /// Closes every plugin's connection and goes on listening, as a
    /// runtime that drops its plugins: they must reconnect by themselves.
    pub async fn disconnect_plugins(&self) {
        let plugins = std::mem::take(&mut *self.shared.plugins.lock().await);
        for plugin in plugins {
            plugin.close();
        }
    }

    /// Stops and starts again with the same pods and containers, like a
    /// runtime restart: plugins must reconnect by themselves.
    pub async fn restart(&self) -> std::io::Result<()> {
        self.stop().await;
        self.listen()
    }

    /// The plugins registered now, in call order.
    pub async fn plugins(&self) -> Vec<Arc<PluginConn>> {
        let plugins = self.shared.plugins.lock().await;
        plugins.iter().filter(|p| !p.is_closed()).cloned().collect()
    }

    /// Waits until a plugin `NN-name` is registered and synchronized.
    /// Returns false if it is not within `timeout`.
    pub async fn wait_for_plugin(&self, id: &str, timeout: Duration) -> bool {
        let mut registered = self.shared.registered.subscribe();
        let wait = async {
            loop {
                if self.plugins().await.iter().any(|p| p.id() == id) {
                    return;
                }
                if registered.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Every request sent to a plugin so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().expect("never poisoned").clone()
    }

    /// The plugins dropped so far.
    pub fn dropped(&self) -> Vec<Dropped> {
        self.shared.dropped.lock().expect("never poisoned").clone()
    }

    /// What plugins sent through UpdateContainers.
    pub fn unsolicited(&self) -> Unsolicited {
        self.shared
            .unsolicited
            .lock()
            .expect("never poisoned")
            .clone()
    }

    /// A pod as the runtime has it now.
    pub fn pod(&self, id: &str) -> Option<PodSandbox> {
        self.shared
            .state
            .lock()
            .expect("never poisoned")
            .pod(id)
            .cloned()
    }

    /// A container as the runtime has it now, adjustments and updates
    /// applied.
    pub fn container(&self, id: &str) -> Option<Container> {
        self.shared
            .state
            .lock()
            .expect("never poisoned")
            .container(id)
            .cloned()
    }

    /// Adds pods and containers without telling any plugin, as if they
    /// existed before NRI was enabled; plugins learn them at Synchronize.
    pub fn preload(&self, pods: Vec<PodSandbox>, containers: Vec<Container>) {
        let mut state = self.shared.state.lock().expect("never poisoned");
        for pod in pods {
            state.add_pod(pod);
        }
        for container in containers {
            state.add_container(container);
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.lock().expect("never poisoned").take() {
            listener.abort();
        }
        if let Ok(plugins) = self.shared.plugins.try_lock() {
            plugins.iter().for_each(|p| p.close());
        }
        std::fs::remove_file(&self.shared.config.socket).ok();
    }
}

/// A fresh socket path inside `dir`.
pub fn socket_in(dir: &Path) -> PathBuf {
    dir.join("nri.sock")
}
