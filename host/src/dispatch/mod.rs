//! Dispatch: what nri-wasm answers to each NRI event.
//!
//! Each event goes to the guests subscribed to it, in index order. A guest
//! sees the container as adjusted by the guests before it; the answers are
//! merged into the one reply of the host with NRI's ownership rules (two
//! guests setting one field fail the event, naming both; hooks
//! accumulate). Guest calls run off the async runtime, one guest at a time,
//! each with a deadline carved from the runtime's request timeout, so the
//! runtime never waits long enough to drop the host. A guest that fails is
//! skipped or fails the event, as its failure policy says.

mod node_view;
mod slot;

use std::{
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use async_trait::async_trait;
pub use node_view::NodeView;
use nri_proto::{
    adjust::{AdjustmentMerge, UpdateMerge},
    api::{
        self, Container, ContainerUpdate, CreateContainerRequest, CreateContainerResponse, Event,
        PodSandbox, StopContainerRequest, StopContainerResponse, UpdateContainerRequest,
        UpdateContainerResponse, ValidateContainerAdjustmentRequest,
        ValidateContainerAdjustmentResponse,
    },
    events::{event_name, EventMask, NRI_VERSION},
};
use protobuf::{Message, MessageField};
pub use slot::{Budget, GuestSlot, GuestStats, SlotError, StartContext};

use crate::{
    config::{Config, FailurePolicy},
    grants::UpdateContext,
    protocol::{HandlerError, Notification, NriHandler, RuntimeInfo},
    runtime::{bindings::types as wit, GuestFault, GuestNotification, GuestPre},
};

/// Largest answer (encoded) one guest may give to one event.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The share of the runtime's request timeout given to the guests of one
/// event; the rest is margin for the socket and the host itself.
const BUDGET_SHARE: f64 = 0.75;

/// Request timeout assumed until a runtime announces one (NRI's default).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers NRI events for the daemon.
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    guests: RwLock<Arc<Vec<Arc<GuestSlot>>>>,
    view: Mutex<NodeView>,
    runtime: Mutex<(wit::RuntimeInfo, Duration)>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::new(Vec::new(), &Config::default())
    }
}

impl Dispatcher {
    /// A dispatcher over `guests`, with their settings from `config`.
    pub fn new(guests: Vec<GuestPre>, config: &Config) -> Self {
        let runtime = wit::RuntimeInfo {
            name: String::new(),
            version: String::new(),
            nri_version: NRI_VERSION.to_string(),
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
        };
        let dispatcher = Dispatcher {
            inner: Arc::new(Inner {
                guests: RwLock::new(Arc::new(Vec::new())),
                view: Mutex::new(NodeView::default()),
                runtime: Mutex::new((runtime, DEFAULT_REQUEST_TIMEOUT)),
            }),
        };
        dispatcher.set_guests(guests, config);
        dispatcher
    }

    /// Replaces the guests.
    pub fn set_guests(&self, guests: Vec<GuestPre>, config: &Config) {
        let slots = guests
            .into_iter()
            .map(|pre| {
                let settings = config.guest(&pre.id().name);
                Arc::new(GuestSlot::new(pre, settings))
            })
            .collect();
        *self.inner.guests.write().expect("never poisoned") = Arc::new(slots);
    }

    /// The guests, in call order.
    pub fn guests(&self) -> Arc<Vec<Arc<GuestSlot>>> {
        self.inner.guests()
    }

    /// A snapshot of the host's view of the node.
    pub fn view(&self) -> NodeView {
        self.inner.view.lock().expect("never poisoned").clone()
    }

    /// Runs `f` with the dispatcher's state on a blocking thread: guest
    /// code never runs on the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, HandlerError> + Send + 'static,
    ) -> Result<T, HandlerError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| HandlerError(format!("dispatch task failed: {e}")))?
    }
}

impl Inner {
    fn guests(&self) -> Arc<Vec<Arc<GuestSlot>>> {
        self.guests.read().expect("never poisoned").clone()
    }

    fn subscribed(&self, event: Event) -> Vec<Arc<GuestSlot>> {
        self.guests()
            .iter()
            .filter(|g| g.subscribed(event))
            .cloned()
            .collect()
    }

    fn budget(&self) -> Budget {
        let timeout = self.runtime.lock().expect("never poisoned").1;
        Budget::new(timeout.mul_f64(BUDGET_SHARE))
    }

    fn runtime_info(&self) -> wit::RuntimeInfo {
        self.runtime.lock().expect("never poisoned").0.clone()
    }

    fn view_snapshot(&self) -> (Vec<PodSandbox>, Vec<Container>) {
        let view = self.view.lock().expect("never poisoned");
        (
            view.pods().cloned().collect(),
            view.containers().cloned().collect(),
        )
    }

    fn pod_of(&self, container_id: &str) -> Option<String> {
        let view = self.view.lock().expect("never poisoned");
        view.container(container_id)
            .map(|c| c.pod_sandbox_id.clone())
    }

    /// Runs `step` for every guest subscribed to `event` whose scope has
    /// `pod`, in order. A guest that fails is skipped or fails the event,
    /// by its policy.
    fn each_guest(
        &self,
        event: Event,
        pod: Option<&PodSandbox>,
        object: &str,
        mut step: impl FnMut(&GuestSlot, &StartContext<'_>, &Budget) -> Result<(), Step>,
    ) -> Result<(), HandlerError> {
        let runtime = self.runtime_info();
        let view = || self.view_snapshot();
        let start = StartContext {
            runtime: &runtime,
            view: &view,
        };
        let budget = self.budget();
        for guest in self.subscribed(event).iter().filter(|g| g.in_scope(pod)) {
            match step(guest, &start, &budget) {
                Ok(()) => {}
                Err(Step::Guest(err)) => guest_failed(guest, event, object, &err)?,
                Err(Step::Event(err)) => return Err(err),
            }
        }
        Ok(())
    }

    fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        let pod = request.pod.into_option().unwrap_or_default();
        let container = request.container.into_option().unwrap_or_default();
        let mut merge = AdjustmentMerge::new(container.clone());
        let mut updates = UpdateMerge::default();
        let mut evictions = Vec::new();
        let pod_of = |id: &str| self.pod_of(id);
        let context = UpdateContext {
            container_id: &container.id,
            pod_id: &pod.id,
            pod_of: &pod_of,
        };
        self.each_guest(
            Event::CREATE_CONTAINER,
            Some(&pod),
            &container.id,
            |guest, start, budget| {
                let pod_wit = guest.pod_for_guest(&pod);
                let current = guest.container_for_guest(&merge.container);
                let reply = guest.call(start, budget, |g, d| {
                    g.create_container(d, &pod_wit, &current)
                })?;
                {
                    let id = guest.id().to_string();
                    let adjust: api::ContainerAdjustment =
                        reply.adjust.map(Into::into).unwrap_or_default();
                    let update: Vec<ContainerUpdate> =
                        reply.updates.into_iter().map(Into::into).collect();
                    let evict: Vec<api::ContainerEviction> =
                        reply.evictions.into_iter().map(Into::into).collect();
                    check_size(
                        guest,
                        adjust.compute_size() as usize + sizes(&update) + sizes(&evict),
                    )?;
                    guest.check_grants(Some(&adjust), &update, &evict, &context, &container.id)?;
                    merge
                        .apply(&id, &adjust)
                        .map_err(|c| HandlerError(c.to_string()))?;
                    updates
                        .apply(&id, &update, Some(&container.id))
                        .map_err(|e| HandlerError(e.to_string()))?;
                    evictions.extend(evict);
                }
                Ok(())
            },
        )?;
        // Recorded as adjusted, and only now: a guest rebuilt during this
        // event is synchronized without it, and then sees it created.
        self.view
            .lock()
            .expect("never poisoned")
            .container_created(&merge.container);
        let adjusted = merge.merged != api::ContainerAdjustment::default();
        Ok(CreateContainerResponse {
            adjust: if adjusted {
                MessageField::some(merge.merged)
            } else {
                MessageField::none()
            },
            update: updates.updates().to_vec(),
            evict: evictions,
            ..Default::default()
        })
    }

    fn update_like(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: &Container,
        resources: Option<&api::LinuxResources>,
    ) -> Result<(Vec<ContainerUpdate>, Vec<api::ContainerEviction>), HandlerError> {
        let resources_wit = resources.map(wit::LinuxResources::from);
        let mut updates = UpdateMerge::default();
        let mut evictions = Vec::new();
        let pod_of = |id: &str| self.pod_of(id);
        let context = UpdateContext {
            container_id: &container.id,
            pod_id: &pod.id,
            pod_of: &pod_of,
        };
        self.each_guest(event, Some(pod), &container.id, |guest, start, budget| {
            let pod_wit = guest.pod_for_guest(pod);
            let container_wit = guest.container_for_guest(container);
            let reply = guest.call(start, budget, |g, d| match event {
                Event::UPDATE_CONTAINER => {
                    g.update_container(d, &pod_wit, &container_wit, resources_wit.as_ref())
                }
                _ => g.stop_container(d, &pod_wit, &container_wit),
            })?;
            {
                let id = guest.id().to_string();
                let update: Vec<ContainerUpdate> =
                    reply.updates.into_iter().map(Into::into).collect();
                let evict: Vec<api::ContainerEviction> =
                    reply.evictions.into_iter().map(Into::into).collect();
                check_size(guest, sizes(&update) + sizes(&evict))?;
                guest.check_grants(None, &update, &evict, &context, &container.id)?;
                updates
                    .apply(&id, &update, None)
                    .map_err(|e| HandlerError(e.to_string()))?;
                evictions.extend(evict);
            }
            Ok(())
        })?;
        Ok((updates.updates().to_vec(), evictions))
    }

    fn validate(
        &self,
        request: &ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        let mut rejection: Option<String> = None;
        let result = self.each_guest(
            Event::VALIDATE_CONTAINER_ADJUSTMENT,
            request.pod.as_ref(),
            &request.container.id,
            |guest, start, budget| {
                if rejection.is_some() {
                    return Ok(());
                }
                let request_wit = guest.validation_for_guest(request);
                match guest.call(start, budget, |g, d| g.validate(d, &request_wit)) {
                    Ok(()) => Ok(()),
                    Err(SlotError::Failed(reason)) => {
                        rejection = Some(format!("{}: {reason}", guest.id()));
                        Ok(())
                    }
                    Err(other) => Err(other.into()),
                }
            },
        );
        if let Err(err) = result {
            // A fail-closed validator that faulted rejects the container.
            rejection.get_or_insert(err.0);
        }
        Ok(ValidateContainerAdjustmentResponse {
            reject: rejection.is_some(),
            reason: rejection.unwrap_or_default(),
            ..Default::default()
        })
    }

    fn notify(&self, notification: &Notification) -> Result<(), HandlerError> {
        let event = notification.event();
        let empty = PodSandbox::new();
        let pod = notification.pod().unwrap_or(&empty);
        let container = notification.container();
        let (overhead, resources) = match notification {
            Notification::UpdatePodSandbox(r) => (
                r.overhead_linux_resources
                    .as_ref()
                    .map(wit::LinuxResources::from),
                r.linux_resources.as_ref().map(wit::LinuxResources::from),
            ),
            _ => (None, None),
        };
        let object = notification
            .container()
            .map(|c| c.id.clone())
            .or_else(|| notification.pod().map(|p| p.id.clone()))
            .unwrap_or_default();
        self.each_guest(
            event,
            notification.pod(),
            &object,
            |guest, start, budget| {
                let pod = guest.pod_for_guest(pod);
                let container = container.map(|c| guest.container_for_guest(c));
                let message = match (&container, event) {
                    (_, Event::UPDATE_POD_SANDBOX) => {
                        GuestNotification::UpdatePod(&pod, overhead.as_ref(), resources.as_ref())
                    }
                    (Some(container), _) => GuestNotification::Container(event, &pod, container),
                    (None, _) => GuestNotification::Pod(event, &pod),
                };
                Ok(guest.call(start, budget, |g, d| g.notify(d, message))?)
            },
        )
    }

    fn synchronize(&self) -> Result<Vec<ContainerUpdate>, HandlerError> {
        let mut updates = UpdateMerge::default();
        let runtime = self.runtime_info();
        let view = || self.view_snapshot();
        let start = StartContext {
            runtime: &runtime,
            view: &view,
        };
        let budget = self.budget();
        for guest in self.guests().iter() {
            match guest.resync(&start, &budget) {
                Ok(update) => {
                    let update: Vec<ContainerUpdate> = update.into_iter().map(Into::into).collect();
                    updates
                        .apply(&guest.id().to_string(), &update, None)
                        .map_err(|e| HandlerError(e.to_string()))?;
                }
                Err(err) => guest_failed(guest, Event::UNKNOWN, "synchronize", &err)?,
            }
        }
        Ok(updates.updates().to_vec())
    }
}

/// Why one guest's step of an event stopped.
enum Step {
    /// The guest failed: its failure policy decides.
    Guest(SlotError),
    /// The event fails, whatever the guest's policy (a conflict between
    /// guests, an answer too large).
    Event(HandlerError),
}

impl From<SlotError> for Step {
    fn from(err: SlotError) -> Self {
        Step::Guest(err)
    }
}

impl From<HandlerError> for Step {
    fn from(err: HandlerError) -> Self {
        Step::Event(err)
    }
}

fn sizes<M: Message>(items: &[M]) -> usize {
    items.iter().map(|m| m.compute_size() as usize).sum()
}

/// A guest's answer beyond [`MAX_ANSWER_BYTES`] is a fault of that guest.
fn check_size(guest: &GuestSlot, size: usize) -> Result<(), Step> {
    if size > MAX_ANSWER_BYTES {
        let fault = GuestFault::AnswerTooLarge {
            size,
            max: MAX_ANSWER_BYTES,
        };
        return Err(Step::Guest(guest.refuse_answer(fault)));
    }
    Ok(())
}

/// Logs a guest's failure; with fail-closed, the event fails too.
fn guest_failed(
    guest: &GuestSlot,
    event: Event,
    object: &str,
    err: &SlotError,
) -> Result<(), HandlerError> {
    let what = if event == Event::UNKNOWN {
        "Synchronize"
    } else {
        event_name(event)
    };
    let message = format!("guest {} {err} ({what} of {object})", guest.id());
    match guest.failure_policy() {
        FailurePolicy::FailOpen => {
            tracing::warn!(guest = %guest.id(), event = what, object, error = %err, "guest failed; skipped (fail-open)");
            Ok(())
        }
        FailurePolicy::FailClosed => {
            tracing::error!(guest = %guest.id(), event = what, object, error = %err, "guest failed; failing the event (fail-closed)");
            Err(HandlerError(message))
        }
    }
}

#[async_trait]
impl NriHandler for Dispatcher {
    async fn configure(&self, runtime: &RuntimeInfo) -> Result<EventMask, HandlerError> {
        let info = wit::RuntimeInfo {
            name: runtime.name.clone(),
            version: runtime.version.clone(),
            nri_version: runtime.nri_version.to_string(),
            request_timeout_ms: runtime.request_timeout.as_millis() as u64,
        };
        let timeout = if runtime.request_timeout.is_zero() {
            DEFAULT_REQUEST_TIMEOUT
        } else {
            runtime.request_timeout
        };
        warn_if_deadlines_exceed_budget(&self.inner.guests(), timeout);
        *self.inner.runtime.lock().expect("never poisoned") = (info, timeout);
        // Every event the runtime knows: guests loaded later must not wait
        // for a re-registration to see their events.
        Ok(nri_proto::events::ALL_EVENTS.into_iter().collect())
    }

    async fn synchronize(
        &self,
        pods: Vec<PodSandbox>,
        containers: Vec<Container>,
    ) -> Result<Vec<ContainerUpdate>, HandlerError> {
        self.inner
            .view
            .lock()
            .expect("never poisoned")
            .synchronize(pods, containers);
        self.blocking(|inner| inner.synchronize()).await
    }

    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        self.blocking(move |inner| inner.create_container(request))
            .await
    }

    async fn update_container(
        &self,
        request: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, HandlerError> {
        self.blocking(move |inner| {
            let (update, evict) = inner.update_like(
                Event::UPDATE_CONTAINER,
                &request.pod,
                &request.container,
                request.linux_resources.as_ref(),
            )?;
            Ok(UpdateContainerResponse {
                update,
                evict,
                ..Default::default()
            })
        })
        .await
    }

    async fn stop_container(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse, HandlerError> {
        self.blocking(move |inner| {
            let (update, _evictions) = inner.update_like(
                Event::STOP_CONTAINER,
                &request.pod,
                &request.container,
                None,
            )?;
            Ok(StopContainerResponse {
                update,
                ..Default::default()
            })
        })
        .await
    }

    async fn validate_container_adjustment(
        &self,
        request: ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        self.blocking(move |inner| inner.validate(&request)).await
    }

    async fn notify(&self, notification: Notification) -> Result<(), HandlerError> {
        self.inner
            .view
            .lock()
            .expect("never poisoned")
            .apply(&notification);
        self.blocking(move |inner| inner.notify(&notification))
            .await
    }
}

fn warn_if_deadlines_exceed_budget(guests: &[Arc<GuestSlot>], timeout: Duration) {
    let budget = timeout.mul_f64(BUDGET_SHARE);
    let sum: Duration = guests.iter().map(|g| g.pre().limits().deadline).sum();
    if sum > budget {
        tracing::warn!(
            deadlines = ?sum, ?budget, request_timeout = ?timeout,
            "guest deadlines add up to more than the time budget of one event; guests late in the order may be skipped"
        );
    }
}
