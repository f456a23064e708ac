//! The boundary between the NRI protocol and what nri-wasm does with
//! events: the protocol layer turns every RPC (dedicated or delivered
//! through the deprecated StateChange) into one call of [`NriHandler`].

use std::time::Duration;

use async_trait::async_trait;
use nri_proto::{
    api::{
        Container, CreateContainerRequest, CreateContainerResponse, Event, PodSandbox,
        PostCreateContainerRequest, PostStartContainerRequest, PostUpdateContainerRequest,
        PostUpdatePodSandboxRequest, RemoveContainerRequest, RemovePodSandboxRequest,
        RunPodSandboxRequest, StartContainerRequest, StateChangeEvent, StopContainerRequest,
        StopContainerResponse, StopPodSandboxRequest, UpdateContainerRequest,
        UpdateContainerResponse, UpdatePodSandboxRequest, ValidateContainerAdjustmentRequest,
        ValidateContainerAdjustmentResponse,
    },
    events::{EventMask, NriVersionSource, Version},
};

/// What the runtime said about itself in Configure.
#[derive(Clone, Debug)]
pub struct RuntimeInfo {
    /// Runtime name, for example `containerd` or `cri-o`.
    pub name: String,
    /// Runtime version as the runtime prints it.
    pub version: String,
    /// The runtime's NRI version.
    pub nri_version: Version,
    /// Whether the NRI version was announced or inferred.
    pub nri_version_source: NriVersionSource,
    /// The events this runtime knows.
    pub valid_events: EventMask,
    /// How long the runtime waits for a plugin to register.
    pub registration_timeout: Duration,
    /// How long the runtime waits for any answer before dropping the plugin.
    pub request_timeout: Duration,
    /// Plugin configuration from the runtime (only for launched plugins).
    pub config: String,
}

/// An error to report to the runtime for one request. The runtime fails
/// the request it was serving (for example the CRI CreateContainer) with it
/// and keeps the plugin registered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

/// An event whose answer carries nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum Notification {
    /// A pod is being started.
    RunPodSandbox(RunPodSandboxRequest),
    /// A pod's resources are being updated.
    UpdatePodSandbox(UpdatePodSandboxRequest),
    /// A pod's resources were updated.
    PostUpdatePodSandbox(PostUpdatePodSandboxRequest),
    /// A pod is being stopped.
    StopPodSandbox(StopPodSandboxRequest),
    /// A pod was removed.
    RemovePodSandbox(RemovePodSandboxRequest),
    /// A container was created.
    PostCreateContainer(PostCreateContainerRequest),
    /// A container is being started.
    StartContainer(StartContainerRequest),
    /// A container was started.
    PostStartContainer(PostStartContainerRequest),
    /// A container's resources were updated.
    PostUpdateContainer(PostUpdateContainerRequest),
    /// A container was removed.
    RemoveContainer(RemoveContainerRequest),
}

impl Notification {
    /// The NRI event this notification is.
    pub fn event(&self) -> Event {
        match self {
            Notification::RunPodSandbox(_) => Event::RUN_POD_SANDBOX,
            Notification::UpdatePodSandbox(_) => Event::UPDATE_POD_SANDBOX,
            Notification::PostUpdatePodSandbox(_) => Event::POST_UPDATE_POD_SANDBOX,
            Notification::StopPodSandbox(_) => Event::STOP_POD_SANDBOX,
            Notification::RemovePodSandbox(_) => Event::REMOVE_POD_SANDBOX,
            Notification::PostCreateContainer(_) => Event::POST_CREATE_CONTAINER,
            Notification::StartContainer(_) => Event::START_CONTAINER,
            Notification::PostStartContainer(_) => Event::POST_START_CONTAINER,
            Notification::PostUpdateContainer(_) => Event::POST_UPDATE_CONTAINER,
            Notification::RemoveContainer(_) => Event::REMOVE_CONTAINER,
        }
    }

    /// The pod the event concerns.
    pub fn pod(&self) -> Option<&PodSandbox> {
        match self {
            Notification::RunPodSandbox(r) => r.pod.as_ref(),
            Notification::UpdatePodSandbox(r) => r.pod.as_ref(),
            Notification::PostUpdatePodSandbox(r) => r.pod.as_ref(),
            Notification::StopPodSandbox(r) => r.pod.as_ref(),
            Notification::RemovePodSandbox(r) => r.pod.as_ref(),
            Notification::PostCreateContainer(r) => r.pod.as_ref(),
            Notification::StartContainer(r) => r.pod.as_ref(),
            Notification::PostStartContainer(r) => r.pod.as_ref(),
            Notification::PostUpdateContainer(r) => r.pod.as_ref(),
            Notification::RemoveContainer(r) => r.pod.as_ref(),
        }
    }

    /// The container the event concerns, unless it is a pod event.
    pub fn container(&self) -> Option<&Container> {
        match self {
            Notification::PostCreateContainer(r) => r.container.as_ref(),
            Notification::StartContainer(r) => r.container.as_ref(),
            Notification::PostStartContainer(r) => r.container.as_ref(),
            Notification::PostUpdateContainer(r) => r.container.as_ref(),
            Notification::RemoveContainer(r) => r.container.as_ref(),
            _ => None,
        }
    }

    /// The notification a runtime on NRI before v0.12 means by a
    /// StateChange, or `None` for an event StateChange never carries.
    pub fn from_state_change(change: StateChangeEvent) -> Option<Notification> {
        let pod = change.pod;
        let container = change.container;
        let notification = match change.event.enum_value_or_default() {
            Event::RUN_POD_SANDBOX => Notification::RunPodSandbox(RunPodSandboxRequest {
                pod,
                ..Default::default()
            }),
            Event::POST_UPDATE_POD_SANDBOX => {
                Notification::PostUpdatePodSandbox(PostUpdatePodSandboxRequest {
                    pod,
                    ..Default::default()
                })
            }
            Event::STOP_POD_SANDBOX => Notification::StopPodSandbox(StopPodSandboxRequest {
                pod,
                ..Default::default()
            }),
            Event::REMOVE_POD_SANDBOX => Notification::RemovePodSandbox(RemovePodSandboxRequest {
                pod,
                ..Default::default()
            }),
            Event::POST_CREATE_CONTAINER => {
                Notification::PostCreateContainer(PostCreateContainerRequest {
                    pod,
                    container,
                    ..Default::default()
                })
            }
            Event::START_CONTAINER => Notification::StartContainer(StartContainerRequest {
                pod,
                container,
                ..Default::default()
            }),
            Event::POST_START_CONTAINER => {
                Notification::PostStartContainer(PostStartContainerRequest {
                    pod,
                    container,
                    ..Default::default()
                })
            }
            Event::POST_UPDATE_CONTAINER => {
                Notification::PostUpdateContainer(PostUpdateContainerRequest {
                    pod,
                    container,
                    ..Default::default()
                })
            }
            Event::REMOVE_CONTAINER => Notification::RemoveContainer(RemoveContainerRequest {
                pod,
                container,
                ..Default::default()
            }),
            _ => return None,
        };
        Some(notification)
    }
}

/// What nri-wasm does with NRI events. One call per runtime request, in the
/// order the runtime sends them; calls for different requests may overlap.
/// The calls run on the connection's own thread ([`run_plugin`](super::run_plugin)):
/// they must not block it for longer than a guest's deadline.
#[async_trait]
pub trait NriHandler: Send + Sync + 'static {
    /// The runtime (re)connected. Returns the events wanted; the protocol
    /// layer subscribes to those of them the runtime knows.
    async fn configure(&self, runtime: &RuntimeInfo) -> Result<EventMask, HandlerError>;

    /// The runtime's current pods and containers, all pages joined. Returns
    /// updates to existing containers.
    async fn synchronize(
        &self,
        pods: Vec<PodSandbox>,
        containers: Vec<Container>,
    ) -> Result<Vec<nri_proto::api::ContainerUpdate>, HandlerError>;

    /// A container is being created; the answer may adjust it.
    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError>;

    /// A container's resources are being updated.
    async fn update_container(
        &self,
        request: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, HandlerError>;

    /// A container is being stopped.
    async fn stop_container(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse, HandlerError>;

    /// The merged adjustment of a container awaits validation.
    async fn validate_container_adjustment(
        &self,
        request: ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError>;

    /// Any other event.
    async fn notify(&self, notification: Notification) -> Result<(), HandlerError>;

    /// The runtime announced that it is shutting down.
    async fn shutdown(&self) {}
}
