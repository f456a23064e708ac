//! Dispatch: what nri-wasm answers to each NRI event.
//!
//! The dispatcher is the [`NriHandler`] of the daemon. It keeps the
//! [`NodeView`] current from every event; it answers with the merged
//! changes of the Wasm guests, and with no change while none is loaded.

mod node_view;

use std::sync::Mutex;

use async_trait::async_trait;
pub use node_view::NodeView;
use nri_proto::{
    api::{
        Container, ContainerUpdate, CreateContainerRequest, CreateContainerResponse, PodSandbox,
        StopContainerRequest, StopContainerResponse, UpdateContainerRequest,
        UpdateContainerResponse, ValidateContainerAdjustmentRequest,
        ValidateContainerAdjustmentResponse,
    },
    events::{EventMask, ALL_EVENTS},
};

use crate::protocol::{HandlerError, Notification, NriHandler, RuntimeInfo};

/// Answers NRI events for the daemon.
#[derive(Default)]
pub struct Dispatcher {
    view: Mutex<NodeView>,
}

impl Dispatcher {
    /// A snapshot of the host's view of the node.
    pub fn view(&self) -> NodeView {
        self.view.lock().expect("never poisoned").clone()
    }

    fn with_view<T>(&self, f: impl FnOnce(&mut NodeView) -> T) -> T {
        f(&mut self.view.lock().expect("never poisoned"))
    }
}

#[async_trait]
impl NriHandler for Dispatcher {
    async fn configure(&self, _runtime: &RuntimeInfo) -> Result<EventMask, HandlerError> {
        // Every event the runtime knows: guests loaded later must not wait
        // for a re-registration to see their events.
        Ok(ALL_EVENTS.into_iter().collect())
    }

    async fn synchronize(
        &self,
        pods: Vec<PodSandbox>,
        containers: Vec<Container>,
    ) -> Result<Vec<ContainerUpdate>, HandlerError> {
        self.with_view(|view| view.synchronize(pods, containers));
        Ok(Vec::new())
    }

    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        if let Some(container) = request.container.as_ref() {
            self.with_view(|view| view.container_created(container));
        }
        Ok(CreateContainerResponse::default())
    }

    async fn update_container(
        &self,
        _request: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, HandlerError> {
        Ok(UpdateContainerResponse::default())
    }

    async fn stop_container(
        &self,
        _request: StopContainerRequest,
    ) -> Result<StopContainerResponse, HandlerError> {
        Ok(StopContainerResponse::default())
    }

    async fn validate_container_adjustment(
        &self,
        _request: ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        Ok(ValidateContainerAdjustmentResponse::default())
    }

    async fn notify(&self, notification: Notification) -> Result<(), HandlerError> {
        self.with_view(|view| view.apply(&notification));
        Ok(())
    }
}
