//! Dispatch: what nri-wasm answers to each NRI event.
//!
//! Each event goes to the guests subscribed to it whose scope has its pod,
//! in index order. A guest sees the container as adjusted by the guests
//! before it. Its answer is admitted only whole: it must fit the host's
//! size caps and the guest's grants (every container it names must be one
//! the guest may see), and must not touch what a guest before it set (NRI's
//! ownership rules). An answer that fails any of this is that guest's
//! failure, and its failure policy decides: fail-open skips the guest,
//! fail-closed fails the event. A guest in shadow mode is called and
//! checked the same way, and nothing of its answer applies: other guests
//! see the container as if it were absent. Guests run one at a time, each call with a
//! deadline carved from the runtime's request timeout, so the runtime
//! never waits long enough to drop the host.

mod event;
mod node_view;
mod observe;
mod slot;

use std::{
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use async_trait::async_trait;
use event::EventRun;
pub use node_view::NodeView;
use nri_proto::{
    adjust::{AdjustmentMerge, UpdateMerge},
    api::{
        self, Container, ContainerUpdate, CreateContainerRequest, CreateContainerResponse, Event,
        PodSandbox, StopContainerRequest, StopContainerResponse, UpdateContainerRequest,
        UpdateContainerResponse, ValidateContainerAdjustmentRequest,
        ValidateContainerAdjustmentResponse,
    },
    events::{EventMask, NRI_VERSION},
};
pub use observe::{Answer, CallObserver, CallRecord};
use protobuf::MessageField;
pub use slot::{Budget, GuestSlot, GuestStats, SlotCall, SlotError, StartContext};

use crate::{
    config::Config,
    protocol::{HandlerError, Notification, NriHandler, RuntimeInfo},
    runtime::{bindings::types as wit, GuestId, GuestNotification, GuestPre},
};

/// Largest answer (encoded) one guest may give to one event.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Largest reply (the guests' answers together) the host sends for one
/// event: well inside ttrpc's 4 MiB message limit, which a runtime
/// enforces by refusing the whole message.
pub const MAX_REPLY_BYTES: usize = 3 << 20;

/// The share of the runtime's request timeout given to the guests of one
/// event; the rest is margin for the socket and the host itself.
const BUDGET_SHARE: f64 = 0.75;

/// Request timeout assumed until a runtime announces one (NRI's default).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers NRI events for the daemon.
pub struct Dispatcher {
    guests: RwLock<Arc<Vec<Arc<GuestSlot>>>>,
    view: Mutex<NodeView>,
    runtime: Mutex<(wit::RuntimeInfo, Duration)>,
    observers: Vec<Arc<dyn CallObserver>>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::new(Vec::new(), &Config::default())
    }
}

impl Dispatcher {
    /// A dispatcher over `guests`, with their settings from `config`.
    pub fn new(guests: Vec<GuestPre>, config: &Config) -> Self {
        Dispatcher::with_observers(guests, config, Vec::new())
    }

    /// A dispatcher whose guest calls are also reported to `observers`.
    pub fn with_observers(
        guests: Vec<GuestPre>,
        config: &Config,
        observers: Vec<Arc<dyn CallObserver>>,
    ) -> Self {
        let runtime = wit::RuntimeInfo {
            name: String::new(),
            version: String::new(),
            nri_version: NRI_VERSION.to_string(),
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
        };
        let dispatcher = Dispatcher {
            guests: RwLock::new(Arc::new(Vec::new())),
            view: Mutex::new(NodeView::default()),
            runtime: Mutex::new((runtime, DEFAULT_REQUEST_TIMEOUT)),
            observers,
        };
        dispatcher.replace_guests(guests, config, &[]);
        dispatcher
    }

    /// Replaces the guests. A guest whose code and settings are unchanged
    /// keeps its slot (instance, fault record, counters), and so does a
    /// guest named in `keep` that is not among `guests`; events already
    /// in flight finish with the guests they started with.
    pub fn replace_guests(
        &self,
        guests: Vec<GuestPre>,
        config: &Config,
        keep: &[GuestId],
    ) -> GuestChanges {
        let mut guests_now = self.guests.write().expect("never poisoned");
        let mut changes = GuestChanges::default();
        let mut slots: Vec<Arc<GuestSlot>> = guests
            .into_iter()
            .map(|pre| {
                let settings = config.guest(&pre.id().name);
                let old = guests_now.iter().find(|s| s.id() == pre.id());
                match old {
                    Some(old) if old.same_as(&pre, &settings) => old.clone(),
                    Some(_) => {
                        changes.replaced.push(pre.id().to_string());
                        Arc::new(GuestSlot::new(pre, settings))
                    }
                    None => {
                        changes.added.push(pre.id().to_string());
                        Arc::new(GuestSlot::new(pre, settings))
                    }
                }
            })
            .collect();
        for kept in guests_now.iter().filter(|old| keep.contains(old.id())) {
            if !slots.iter().any(|s| s.id() == kept.id()) {
                slots.push(kept.clone());
            }
        }
        slots.sort_by(|a, b| a.id().cmp(b.id()));
        changes.removed = guests_now
            .iter()
            .filter(|old| !slots.iter().any(|s| s.id() == old.id()))
            .map(|old| old.id().to_string())
            .collect();
        *guests_now = Arc::new(slots);
        changes
    }

    /// The guests, in call order.
    pub fn guests(&self) -> Arc<Vec<Arc<GuestSlot>>> {
        self.guests.read().expect("never poisoned").clone()
    }

    /// A snapshot of the host's view of the node.
    pub fn view(&self) -> NodeView {
        self.view.lock().expect("never poisoned").clone()
    }

    fn budget(&self) -> Budget {
        let timeout = self.runtime.lock().expect("never poisoned").1;
        Budget::new(timeout.mul_f64(BUDGET_SHARE))
    }

    fn runtime_info(&self) -> wit::RuntimeInfo {
        self.runtime.lock().expect("never poisoned").0.clone()
    }

    /// The pod of an existing container, if `guest` may see it.
    fn visible_pod_of(&self, guest: &GuestSlot, container_id: &str) -> Option<String> {
        let view = self.view.lock().expect("never poisoned");
        let pod = view.pod_of(container_id)?;
        guest.in_scope(Some(pod)).then(|| pod.id.clone())
    }

    async fn create(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        let pod = request.pod.into_option().unwrap_or_default();
        let container = request.container.into_option().unwrap_or_default();
        let run = EventRun::new(self, Event::CREATE_CONTAINER, Some(&pod), &container.id);
        let user_namespace = container
            .linux
            .as_ref()
            .is_some_and(|l| l.namespaces.iter().any(|n| n.type_ == "user"));
        let mut merge = AdjustmentMerge::new(container.clone());
        let mut updates = UpdateMerge::default();
        let mut evictions = Vec::new();
        for guest in run.called() {
            let outcome = run
                .observed(guest, async {
                    let pod_wit = guest.pod_for_guest(&pod);
                    let current = guest.container_for_guest(&merge.container);
                    let mut call = guest.begin(&run.start(), run.budget_for(guest)?).await?;
                    let deadline = call.deadline();
                    let result = call
                        .instance()
                        .create_container(deadline, &pod_wit, &current)
                        .await;
                    let reply = call.finish(result)?;
                    let answer = Answer {
                        adjust: reply.adjust.map(Into::into),
                        updates: reply.updates.into_iter().map(Into::into).collect(),
                        evictions: reply.evictions.into_iter().map(Into::into).collect(),
                        rejection: None,
                    };
                    let answer = run.admit(guest, answer, None, user_namespace).await?;
                    let id = guest.id().to_string();
                    let conflict = answer
                        .adjust
                        .as_ref()
                        .and_then(|a| merge.conflict(&id, a))
                        .or_else(|| updates.conflict(&id, &answer.updates));
                    unless_conflict(answer, conflict)
                })
                .await;
            match outcome {
                _ if guest.shadow() => run.shadowed(guest, &outcome),
                Ok(answer) => {
                    let id = guest.id().to_string();
                    if let Some(adjust) = &answer.adjust {
                        merge.apply(&id, adjust).expect("checked for conflicts");
                    }
                    updates
                        .apply(&id, &answer.updates, None)
                        .expect("checked for conflicts");
                    evictions.extend(answer.evictions);
                }
                Err(err) => run.failed(guest, &err)?,
            }
        }
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

    /// UpdateContainer and StopContainer: guests answer with updates of
    /// containers (and, for an update, evictions).
    async fn update_like(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: &Container,
        resources: Option<&api::LinuxResources>,
    ) -> Result<(Vec<ContainerUpdate>, Vec<api::ContainerEviction>), HandlerError> {
        let resources_wit = resources.map(wit::LinuxResources::from);
        // Only an update may change the event's own container: its update
        // is what the event is about.
        let own = (event == Event::UPDATE_CONTAINER).then_some(container.id.as_str());
        let run = EventRun::new(self, event, Some(pod), &container.id);
        let mut updates = UpdateMerge::default();
        let mut evictions = Vec::new();
        for guest in run.called() {
            let outcome = run
                .observed(guest, async {
                    let pod_wit = guest.pod_for_guest(pod);
                    let container_wit = guest.container_for_guest(container);
                    let mut call = guest.begin(&run.start(), run.budget_for(guest)?).await?;
                    let deadline = call.deadline();
                    let instance = call.instance();
                    let result = match event {
                        Event::UPDATE_CONTAINER => {
                            instance
                                .update_container(
                                    deadline,
                                    &pod_wit,
                                    &container_wit,
                                    resources_wit.as_ref(),
                                )
                                .await
                        }
                        _ => {
                            instance
                                .stop_container(deadline, &pod_wit, &container_wit)
                                .await
                        }
                    };
                    let reply = call.finish(result)?;
                    let answer = Answer {
                        updates: reply.updates.into_iter().map(Into::into).collect(),
                        evictions: reply.evictions.into_iter().map(Into::into).collect(),
                        ..Answer::default()
                    };
                    let answer = run.admit(guest, answer, own, false).await?;
                    let conflict = updates.conflict(&guest.id().to_string(), &answer.updates);
                    unless_conflict(answer, conflict)
                })
                .await;
            match outcome {
                _ if guest.shadow() => run.shadowed(guest, &outcome),
                Ok(answer) => {
                    updates
                        .apply(&guest.id().to_string(), &answer.updates, None)
                        .expect("checked for conflicts");
                    evictions.extend(answer.evictions);
                }
                Err(err) => run.failed(guest, &err)?,
            }
        }
        Ok((updates.updates().to_vec(), evictions))
    }

    async fn validate(
        &self,
        request: &ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        let run = EventRun::new(
            self,
            Event::VALIDATE_CONTAINER_ADJUSTMENT,
            request.pod.as_ref(),
            &request.container.id,
        );
        let mut rejection: Option<String> = None;
        // Only validators granted `validate` are asked: rejecting is a
        // power over every container a validator sees. A shadow validator
        // is asked all the same: its verdict is only recorded.
        for guest in run.called().filter(|g| g.may_validate() || g.shadow()) {
            let outcome = run
                .observed(guest, async {
                    let visible = |id: &str| self.visible_pod_of(guest, id).is_some();
                    let request_wit = guest.validation_for_guest(request, &visible);
                    let mut call = guest.begin(&run.start(), run.budget_for(guest)?).await?;
                    let deadline = call.deadline();
                    let result = call.instance().validate(deadline, &request_wit).await;
                    match call.finish(result) {
                        Ok(()) => Ok(Answer::default()),
                        Err(SlotError::Failed(reason)) => Ok(Answer {
                            rejection: Some(reason.to_string()),
                            ..Answer::default()
                        }),
                        Err(other) => Err(other),
                    }
                })
                .await;
            let reason = match outcome {
                _ if guest.shadow() => {
                    run.shadowed(guest, &outcome);
                    None
                }
                Ok(answer) => answer.rejection,
                // A fail-closed validator that failed rejects the container.
                Err(err) => run.failed(guest, &err).err().map(|e| e.0),
            };
            if let (None, Some(reason)) = (&rejection, reason) {
                rejection = Some(format!("{}: {reason}", guest.id()));
            }
        }
        Ok(ValidateContainerAdjustmentResponse {
            reject: rejection.is_some(),
            reason: rejection.unwrap_or_default(),
            ..Default::default()
        })
    }

    async fn notify_guests(&self, notification: &Notification) -> Result<(), HandlerError> {
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
        let object = container
            .map(|c| c.id.clone())
            .or_else(|| notification.pod().map(|p| p.id.clone()))
            .unwrap_or_default();
        let run = EventRun::new(self, event, notification.pod(), &object);
        for guest in run.called() {
            let outcome = run
                .observed(guest, async {
                    let pod = guest.pod_for_guest(pod);
                    let container = container.map(|c| guest.container_for_guest(c));
                    let message = match (&container, event) {
                        (_, Event::UPDATE_POD_SANDBOX) => GuestNotification::UpdatePod(
                            &pod,
                            overhead.as_ref(),
                            resources.as_ref(),
                        ),
                        (Some(container), _) => {
                            GuestNotification::Container(event, &pod, container)
                        }
                        (None, _) => GuestNotification::Pod(event, &pod),
                    };
                    let mut call = guest.begin(&run.start(), run.budget_for(guest)?).await?;
                    let deadline = call.deadline();
                    let result = call.instance().notify(deadline, message).await;
                    call.finish(result)?;
                    Ok(Answer::default())
                })
                .await;
            if let Err(err) = outcome {
                run.failed(guest, &err)?;
            }
        }
        Ok(())
    }

    /// Starts every guest afresh, configured and synchronized with the
    /// node; their updates are admitted like any other answer's: updates
    /// of containers the guest may see, within its grants. A guest that
    /// fails here never fails Synchronize.
    async fn synchronize_guests(&self) -> Result<Vec<ContainerUpdate>, HandlerError> {
        let run = EventRun::new(self, Event::UNKNOWN, None, "");
        let mut updates = UpdateMerge::default();
        for guest in run.guests() {
            let outcome = run
                .observed(guest, async {
                    // A shadow guest skipped here starts afresh at its next
                    // event, as any guest that fails to resync does.
                    let budget = run
                        .budget_for(guest)
                        .inspect_err(|_| guest.discard_instance())?;
                    let updates_wit = guest.resync(&run.start(), budget).await?;
                    let answer = Answer {
                        updates: updates_wit.into_iter().map(Into::into).collect(),
                        ..Answer::default()
                    };
                    let answer = run.admit(guest, answer, None, false).await?;
                    let conflict = updates.conflict(&guest.id().to_string(), &answer.updates);
                    unless_conflict(answer, conflict)
                })
                .await;
            match outcome {
                _ if guest.shadow() => run.shadowed(guest, &outcome),
                Ok(answer) => updates
                    .apply(&guest.id().to_string(), &answer.updates, None)
                    .expect("checked for conflicts"),
                Err(err) => run.failed_to_start(guest, &err),
            }
        }
        Ok(updates.updates().to_vec())
    }
}

/// An answer that sets nothing a guest before it set; else that guest's
/// conflict, and none of the answer applies.
fn unless_conflict(
    answer: Answer,
    conflict: Option<nri_proto::adjust::Conflict>,
) -> Result<Answer, SlotError> {
    match conflict {
        Some(conflict) => Err(SlotError::conflict(conflict, answer)),
        None => Ok(answer),
    }
}

/// What [`Dispatcher::replace_guests`] changed, by guest id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestChanges {
    /// Guests that were not there before.
    pub added: Vec<String>,
    /// Guests whose code or settings changed: they start afresh.
    pub replaced: Vec<String>,
    /// Guests that are gone.
    pub removed: Vec<String>,
}

impl GuestChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty()
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
        warn_if_deadlines_exceed_budget(&self.guests(), timeout);
        *self.runtime.lock().expect("never poisoned") = (info, timeout);
        // Every event the runtime knows: guests loaded later must not wait
        // for a re-registration to see their events.
        Ok(nri_proto::events::ALL_EVENTS.into_iter().collect())
    }

    async fn synchronize(
        &self,
        pods: Vec<PodSandbox>,
        containers: Vec<Container>,
    ) -> Result<Vec<ContainerUpdate>, HandlerError> {
        self.view
            .lock()
            .expect("never poisoned")
            .synchronize(pods, containers);
        self.synchronize_guests().await
    }

    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        self.create(request).await
    }

    async fn update_container(
        &self,
        request: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, HandlerError> {
        let (update, evict) = self
            .update_like(
                Event::UPDATE_CONTAINER,
                &request.pod,
                &request.container,
                request.linux_resources.as_ref(),
            )
            .await?;
        Ok(UpdateContainerResponse {
            update,
            evict,
            ..Default::default()
        })
    }

    async fn stop_container(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse, HandlerError> {
        // A stop's reply carries no evictions.
        let (update, _evictions) = self
            .update_like(
                Event::STOP_CONTAINER,
                &request.pod,
                &request.container,
                None,
            )
            .await?;
        Ok(StopContainerResponse {
            update,
            ..Default::default()
        })
    }

    async fn validate_container_adjustment(
        &self,
        request: ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        self.validate(&request).await
    }

    async fn notify(&self, notification: Notification) -> Result<(), HandlerError> {
        self.view
            .lock()
            .expect("never poisoned")
            .apply(&notification);
        self.notify_guests(&notification).await
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
