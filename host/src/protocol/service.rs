//! The Plugin service nri-wasm serves to the runtime on mux connection 1:
//! decodes each RPC into a call of the [`NriHandler`], joins the pages of
//! Synchronize, answers the deprecated StateChange, and computes the event
//! subscription from the runtime's NRI version.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use nri_proto::{
    api::{self, Container, PodSandbox},
    api_ttrpc,
    events::{runtime_nri_version, valid_events, EventMask},
};
use tokio::sync::watch;
use ttrpc::r#async::TtrpcContext;

use super::handler::{HandlerError, Notification, NriHandler, RuntimeInfo};

/// Progress of one registration, as seen from the Plugin service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Handshake {
    /// Waiting for Configure.
    #[default]
    Registering,
    /// Configured with this subscription, waiting for Synchronize.
    Configured(EventMask),
    /// Synchronized: events flow.
    Synchronized,
}

/// The Plugin service of one connection to the runtime.
pub struct PluginService {
    handler: Arc<dyn NriHandler>,
    sync_pages: Mutex<SyncPages>,
    handshake: watch::Sender<Handshake>,
}

/// Pods and containers of the Synchronize pages received so far.
#[derive(Default)]
struct SyncPages {
    pods: Vec<PodSandbox>,
    containers: Vec<Container>,
}

impl PluginService {
    /// A service forwarding to `handler`, reporting progress on `handshake`.
    pub fn new(handler: Arc<dyn NriHandler>, handshake: watch::Sender<Handshake>) -> Self {
        PluginService {
            handler,
            sync_pages: Mutex::new(SyncPages::default()),
            handshake,
        }
    }

    async fn notify(&self, notification: Notification) -> ttrpc::Result<()> {
        tracing::debug!(event = ?notification.event(), "event");
        self.handler.notify(notification).await.map_err(to_status)
    }
}

fn to_status(err: HandlerError) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(ttrpc::Code::UNKNOWN, err.0))
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// The subscription to send: what the handler wants of what the runtime
/// knows. NRI reads a mask of 0 as "every event", so an empty wish is sent
/// as the runtime's full set rather than as 0.
fn subscription(wanted: EventMask, valid: EventMask) -> EventMask {
    let mask = wanted.intersect(valid);
    if mask.is_empty() {
        valid
    } else {
        mask
    }
}

#[async_trait]
impl api_ttrpc::Plugin for PluginService {
    async fn configure(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConfigureRequest,
    ) -> ttrpc::Result<api::ConfigureResponse> {
        let (nri_version, source) =
            runtime_nri_version(&req.NRI_version, &req.runtime_name, &req.runtime_version);
        let info = RuntimeInfo {
            valid_events: valid_events(nri_version),
            nri_version,
            nri_version_source: source,
            name: req.runtime_name,
            version: req.runtime_version,
            registration_timeout: millis(req.registration_timeout),
            request_timeout: millis(req.request_timeout),
            config: req.config,
        };
        let wanted = self.handler.configure(&info).await.map_err(to_status)?;
        let events = subscription(wanted, info.valid_events);
        let unavailable = wanted.outside(info.valid_events);
        if !unavailable.is_empty() {
            tracing::info!(
                runtime = %info.name, nri_version = %info.nri_version, events = %unavailable,
                "runtime does not know these events; not subscribing to them"
            );
        }
        tracing::info!(
            runtime = %info.name, runtime_version = %info.version,
            nri_version = %info.nri_version, nri_version_source = ?info.nri_version_source,
            request_timeout = ?info.request_timeout, %events,
            "configured by runtime"
        );
        self.handshake.send_replace(Handshake::Configured(events));
        Ok(api::ConfigureResponse {
            events: events.0,
            ..Default::default()
        })
    }

    async fn synchronize(
        &self,
        _ctx: &TtrpcContext,
        req: api::SynchronizeRequest,
    ) -> ttrpc::Result<api::SynchronizeResponse> {
        let pages = {
            let mut pages = self.sync_pages.lock().expect("never poisoned");
            pages.pods.extend(req.pods);
            pages.containers.extend(req.containers);
            if req.more {
                // An intermediate page must be acknowledged with `more` and
                // no updates, or the runtime drops the plugin.
                return Ok(api::SynchronizeResponse {
                    more: true,
                    ..Default::default()
                });
            }
            std::mem::take(&mut *pages)
        };
        tracing::info!(
            pods = pages.pods.len(),
            containers = pages.containers.len(),
            "synchronizing with runtime"
        );
        let update = self
            .handler
            .synchronize(pages.pods, pages.containers)
            .await
            .map_err(to_status)?;
        self.handshake.send_replace(Handshake::Synchronized);
        Ok(api::SynchronizeResponse {
            update,
            ..Default::default()
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: api::Empty) -> ttrpc::Result<api::Empty> {
        tracing::info!("runtime is shutting down");
        self.handler.shutdown().await;
        Ok(api::Empty::default())
    }

    async fn run_pod_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::RunPodSandboxRequest,
    ) -> ttrpc::Result<api::RunPodSandboxResponse> {
        self.notify(Notification::RunPodSandbox(req)).await?;
        Ok(Default::default())
    }

    async fn update_pod_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::UpdatePodSandboxRequest,
    ) -> ttrpc::Result<api::UpdatePodSandboxResponse> {
        self.notify(Notification::UpdatePodSandbox(req)).await?;
        Ok(Default::default())
    }

    async fn post_update_pod_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::PostUpdatePodSandboxRequest,
    ) -> ttrpc::Result<api::PostUpdatePodSandboxResponse> {
        self.notify(Notification::PostUpdatePodSandbox(req)).await?;
        Ok(Default::default())
    }

    async fn stop_pod_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::StopPodSandboxRequest,
    ) -> ttrpc::Result<api::StopPodSandboxResponse> {
        self.notify(Notification::StopPodSandbox(req)).await?;
        Ok(Default::default())
    }

    async fn remove_pod_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: api::RemovePodSandboxRequest,
    ) -> ttrpc::Result<api::RemovePodSandboxResponse> {
        self.notify(Notification::RemovePodSandbox(req)).await?;
        Ok(Default::default())
    }

    async fn create_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateContainerRequest,
    ) -> ttrpc::Result<api::CreateContainerResponse> {
        tracing::debug!(event = "CreateContainer", "event");
        self.handler.create_container(req).await.map_err(to_status)
    }

    async fn post_create_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::PostCreateContainerRequest,
    ) -> ttrpc::Result<api::PostCreateContainerResponse> {
        self.notify(Notification::PostCreateContainer(req)).await?;
        Ok(Default::default())
    }

    async fn start_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartContainerRequest,
    ) -> ttrpc::Result<api::StartContainerResponse> {
        self.notify(Notification::StartContainer(req)).await?;
        Ok(Default::default())
    }

    async fn post_start_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::PostStartContainerRequest,
    ) -> ttrpc::Result<api::PostStartContainerResponse> {
        self.notify(Notification::PostStartContainer(req)).await?;
        Ok(Default::default())
    }

    async fn update_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::UpdateContainerRequest,
    ) -> ttrpc::Result<api::UpdateContainerResponse> {
        tracing::debug!(event = "UpdateContainer", "event");
        self.handler.update_container(req).await.map_err(to_status)
    }

    async fn post_update_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::PostUpdateContainerRequest,
    ) -> ttrpc::Result<api::PostUpdateContainerResponse> {
        self.notify(Notification::PostUpdateContainer(req)).await?;
        Ok(Default::default())
    }

    async fn stop_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::StopContainerRequest,
    ) -> ttrpc::Result<api::StopContainerResponse> {
        tracing::debug!(event = "StopContainer", "event");
        self.handler.stop_container(req).await.map_err(to_status)
    }

    async fn remove_container(
        &self,
        _ctx: &TtrpcContext,
        req: api::RemoveContainerRequest,
    ) -> ttrpc::Result<api::RemoveContainerResponse> {
        self.notify(Notification::RemoveContainer(req)).await?;
        Ok(Default::default())
    }

    async fn state_change(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateChangeEvent,
    ) -> ttrpc::Result<api::Empty> {
        let event = req.event;
        match Notification::from_state_change(req) {
            Some(notification) => self.notify(notification).await?,
            None => {
                return Err(to_status(HandlerError(format!(
                    "StateChange cannot carry event {event:?}; it has an RPC of its own"
                ))))
            }
        }
        Ok(api::Empty::default())
    }

    async fn validate_container_adjustment(
        &self,
        _ctx: &TtrpcContext,
        req: api::ValidateContainerAdjustmentRequest,
    ) -> ttrpc::Result<api::ValidateContainerAdjustmentResponse> {
        tracing::debug!(event = "ValidateContainerAdjustment", "event");
        self.handler
            .validate_container_adjustment(req)
            .await
            .map_err(to_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nri_proto::api::Event;

    #[test]
    fn subscription_keeps_what_the_runtime_knows() {
        let v08 = EventMask(0x7ff);
        let validate = EventMask::of(Event::VALIDATE_CONTAINER_ADJUSTMENT);
        let create = EventMask::of(Event::CREATE_CONTAINER);
        assert_eq!(subscription(create.union(validate), v08), create);
        assert_eq!(subscription(EventMask(0x3fff), v08), v08);
        // Nothing left: the full set, never the 0 that NRI reads as "all".
        assert_eq!(subscription(validate, v08), v08);
    }

    #[test]
    fn state_change_maps_to_the_dedicated_event() {
        let mut change = api::StateChangeEvent::new();
        change.event = Event::POST_START_CONTAINER.into();
        change.container = Some(api::Container {
            id: "c1".into(),
            ..Default::default()
        })
        .into();
        let n = Notification::from_state_change(change).unwrap();
        assert_eq!(n.event(), Event::POST_START_CONTAINER);
        assert_eq!(n.container().unwrap().id, "c1");

        let mut create = api::StateChangeEvent::new();
        create.event = Event::CREATE_CONTAINER.into();
        assert_eq!(Notification::from_state_change(create), None);
    }
}
