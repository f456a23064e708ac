//! Accepting plugins: the socket, the Runtime service on connection 2, and
//! the handshake (RegisterPlugin, Configure, Synchronize) that ends with
//! the plugin in the sorted plugin list.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use nri_proto::{
    api::{self, ConfigureRequest, SynchronizeRequest},
    api_ttrpc::{create_runtime, PluginClient, Runtime},
    events::{valid_events, EventMask},
    identity::check_identity,
    mux::{ttrpc_listener, ConnId, Mux, MuxConn, ReadRule},
};
use tokio::{
    net::UnixListener,
    sync::{mpsc, Mutex as AsyncMutex},
    task::JoinHandle,
};
use ttrpc::r#async::{transport::Socket, TtrpcContext};

use crate::{
    plugin::{CallError, PluginConn},
    Dropped, Shared,
};

/// Binds the socket (replacing a stale one) and accepts plugins until the
/// returned task is aborted.
pub(crate) fn listen(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    let path = &shared.config.socket;
    std::fs::remove_file(path).ok();
    let listener = UnixListener::bind(path)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(accept(shared.clone(), stream));
                }
                Err(err) => tracing::warn!(error = %err, "accept failed"),
            }
        }
    }))
}

/// RegisterPlugin as the runtime receives it.
struct Registration {
    name: String,
    index: String,
}

/// The Runtime service of one plugin connection.
struct RuntimeService {
    shared: Arc<Shared>,
    registrations: AsyncMutex<Option<mpsc::Sender<Registration>>>,
}

#[async_trait]
impl Runtime for RuntimeService {
    async fn register_plugin(
        &self,
        _ctx: &TtrpcContext,
        req: api::RegisterPluginRequest,
    ) -> ttrpc::Result<api::Empty> {
        check_identity(&req.plugin_name, &req.plugin_idx)
            .map_err(|e| invalid_argument(e.to_string()))?;
        let sender = self.registrations.lock().await.take();
        let Some(sender) = sender else {
            return Err(invalid_argument("plugin already registered".into()));
        };
        sender
            .send(Registration {
                name: req.plugin_name,
                index: req.plugin_idx,
            })
            .await
            .map_err(|_| invalid_argument("registration window closed".into()))?;
        Ok(api::Empty::default())
    }

    async fn update_containers(
        &self,
        _ctx: &TtrpcContext,
        req: api::UpdateContainersRequest,
    ) -> ttrpc::Result<api::UpdateContainersResponse> {
        let failed = self
            .shared
            .state
            .lock()
            .expect("never poisoned")
            .apply_updates(&req.update);
        let mut unsolicited = self.shared.unsolicited.lock().expect("never poisoned");
        unsolicited.updates.extend(req.update);
        unsolicited.evictions.extend(req.evict);
        Ok(api::UpdateContainersResponse {
            failed,
            ..Default::default()
        })
    }
}

fn invalid_argument(message: String) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(ttrpc::Code::INVALID_ARGUMENT, message))
}

async fn accept(shared: Arc<Shared>, stream: tokio::net::UnixStream) {
    let (mux, conns) = Mux::start(
        stream,
        &[ConnId::PLUGIN_SERVICE, ConnId::RUNTIME_SERVICE],
        ReadRule::Go,
    );
    let [plugin_conn, runtime_conn]: [MuxConn; 2] = conns.try_into().ok().expect("two conns");
    match handshake(shared.clone(), &mux, plugin_conn, runtime_conn).await {
        Ok(plugin) => {
            tracing::info!(plugin = %plugin.id(), events = %plugin.events, "plugin synchronized");
            shared.registered.send_modify(|n| *n += 1);
        }
        Err(reason) => {
            tracing::warn!(%reason, "plugin refused");
            mux.close();
        }
    }
}

async fn handshake(
    shared: Arc<Shared>,
    mux: &Mux,
    plugin_conn: MuxConn,
    runtime_conn: MuxConn,
) -> Result<Arc<PluginConn>, String> {
    let (reg_tx, mut reg_rx) = mpsc::channel(1);
    let service = Arc::new(RuntimeService {
        shared: shared.clone(),
        registrations: AsyncMutex::new(Some(reg_tx)),
    });
    let mut server = ttrpc::r#async::Server::new()
        .add_listener(ttrpc_listener(runtime_conn))
        .register_service(create_runtime(service));
    server.start().await.map_err(|e| e.to_string())?;
    // The server lives as long as the trunk.
    let trunk = mux.clone();
    tokio::spawn(async move {
        trunk.ended().await;
        server.shutdown().await.ok();
    });

    let config = &shared.config;
    let registration = tokio::time::timeout(config.registration_timeout, reg_rx.recv())
        .await
        .map_err(|_| format!("no RegisterPlugin within {:?}", config.registration_timeout))?
        .ok_or("connection closed before RegisterPlugin")?;
    let client = PluginClient::new(ttrpc::r#async::Client::new(Socket::new(plugin_conn)));
    let id = format!("{}-{}", registration.index, registration.name);
    let probe = PluginConn::new(
        registration.name.clone(),
        registration.index.clone(),
        EventMask::NONE,
        client.clone(),
        mux.clone(),
    );

    let events = configure(&shared, &probe)
        .await
        .map_err(|e| format!("{id}: {e}"))?;
    let plugin = Arc::new(PluginConn::new(
        registration.name,
        registration.index,
        events,
        client,
        mux.clone(),
    ));
    // Synchronize under the event lock, so no event slips in between the
    // snapshot and the plugin joining the list.
    let mut plugins = shared.plugins.lock().await;
    synchronize(&shared, &plugin)
        .await
        .map_err(|e| format!("{id}: {e}"))?;
    let pos = plugins.partition_point(|p| p.index <= plugin.index);
    plugins.insert(pos, plugin.clone());
    drop(plugins);
    watch_for_disconnect(shared, plugin.clone());
    Ok(plugin)
}

async fn configure(shared: &Shared, plugin: &PluginConn) -> Result<EventMask, String> {
    let config = &shared.config;
    let request = ConfigureRequest {
        config: String::new(),
        runtime_name: config.runtime_name.clone(),
        runtime_version: config.runtime_version.clone(),
        registration_timeout: millis(config.registration_timeout),
        request_timeout: millis(config.request_timeout),
        NRI_version: if config.announce_nri_version {
            config.nri_version.to_string()
        } else {
            String::new()
        },
        ..Default::default()
    };
    let ctx = ttrpc::context::with_duration(config.request_timeout);
    shared.record_call(plugin, "Configure");
    let reply = plugin
        .call(
            config.request_timeout,
            plugin.client.configure(ctx, &request),
        )
        .await
        .map_err(|e| format!("Configure failed: {}", describe(&e)))?;
    let valid = valid_events(config.nri_version);
    let events = EventMask(reply.events);
    if events.is_empty() {
        return Ok(valid);
    }
    let invalid = events.outside(valid);
    if !invalid.is_empty() {
        return Err(format!("invalid plugin events: {:#x}", invalid.0));
    }
    Ok(events)
}

async fn synchronize(shared: &Shared, plugin: &PluginConn) -> Result<(), String> {
    let config = &shared.config;
    let (pods, containers) = {
        let state = shared.state.lock().expect("never poisoned");
        (state.pods(), state.containers())
    };
    let pages = pages(pods, containers, config.sync_page_size.max(1));
    let last = pages.len() - 1;
    // One timeout covers every page, as in NRI.
    let deadline = tokio::time::Instant::now() + config.request_timeout;
    for (i, (pods, containers)) in pages.into_iter().enumerate() {
        let more = i < last;
        let request = SynchronizeRequest {
            pods,
            containers,
            more,
            ..Default::default()
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ctx = ttrpc::context::with_duration(left);
        shared.record_call(plugin, "Synchronize");
        let reply = plugin
            .call(left, plugin.client.synchronize(ctx, &request))
            .await
            .map_err(|e| format!("Synchronize failed: {}", describe(&e)))?;
        if more && (!reply.more || !reply.update.is_empty()) {
            return Err("plugin does not handle split sync requests".into());
        }
        if !more {
            shared
                .state
                .lock()
                .expect("never poisoned")
                .apply_updates(&reply.update);
        }
    }
    Ok(())
}

type Page = (Vec<api::PodSandbox>, Vec<api::Container>);

/// Splits the state into pages of at most `size` objects, pods first.
fn pages(pods: Vec<api::PodSandbox>, containers: Vec<api::Container>, size: usize) -> Vec<Page> {
    let mut pages = vec![(Vec::new(), Vec::new())];
    let mut room = size;
    for pod in pods {
        if room == 0 {
            pages.push((Vec::new(), Vec::new()));
            room = size;
        }
        pages.last_mut().expect("never empty").0.push(pod);
        room -= 1;
    }
    for container in containers {
        if room == 0 {
            pages.push((Vec::new(), Vec::new()));
            room = size;
        }
        pages.last_mut().expect("never empty").1.push(container);
        room -= 1;
    }
    pages
}

fn millis(d: Duration) -> i64 {
    d.as_millis().try_into().unwrap_or(i64::MAX)
}

pub(crate) fn describe(err: &CallError) -> &str {
    match err {
        CallError::Failed(m) | CallError::Fatal(m) => m,
    }
}

/// Marks the plugin closed when its connection ends; it is swept from the
/// list at the next event, as NRI does.
fn watch_for_disconnect(shared: Arc<Shared>, plugin: Arc<PluginConn>) {
    tokio::spawn(async move {
        let end = plugin.mux.ended().await;
        if !plugin.is_closed() {
            plugin.close();
            tracing::info!(plugin = %plugin.id(), %end, "plugin disconnected");
            shared
                .dropped
                .lock()
                .expect("never poisoned")
                .push(Dropped {
                    plugin: plugin.id(),
                    reason: format!("disconnected: {end}"),
                });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: &str) -> api::PodSandbox {
        api::PodSandbox {
            id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn pages_hold_at_most_size_objects() {
        let containers = (0..3)
            .map(|i| api::Container {
                id: format!("c{i}"),
                ..Default::default()
            })
            .collect();
        let split = pages(vec![pod("a"), pod("b")], containers, 2);
        let shape: Vec<(usize, usize)> = split.iter().map(|(p, c)| (p.len(), c.len())).collect();
        assert_eq!(shape, [(2, 0), (0, 2), (0, 1)]);
        assert_eq!(pages(Vec::new(), Vec::new(), 5).len(), 1);
    }
}
