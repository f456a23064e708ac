//! Dispatch: what nri-wasm answers to each NRI event.
//!
//! Each event goes to the guests subscribed to it, in index order. A guest
//! sees the container as adjusted by the guests before it; the answers are
//! merged into the one reply of the host with NRI's ownership rules (two
//! guests setting one field fail the event, naming both; hooks
//! accumulate). Guest calls run off the async runtime (on the NRI
//! connection's thread, between its polls), one guest at a time, each
//! with a deadline carved from the runtime's request timeout, so the
//! runtime never waits long enough to drop the host. A guest that fails is
//! skipped or fails the event, as its failure policy says.

mod node_view;
mod observe;
mod slot;

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
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
pub use observe::{Answer, CallObserver, CallRecord};
use protobuf::{Message, MessageField};
pub use slot::{Budget, GuestSlot, GuestStats, SlotError, StartContext};

use crate::{
    config::{Config, FailurePolicy},
    grants::UpdateContext,
    lane::Blocking,
    protocol::{HandlerError, Notification, NriHandler, RuntimeInfo},
    runtime::{bindings::types as wit, GuestFault, GuestId, GuestNotification, GuestPre},
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
            inner: Arc::new(Inner {
                guests: RwLock::new(Arc::new(Vec::new())),
                view: Mutex::new(NodeView::default()),
                runtime: Mutex::new((runtime, DEFAULT_REQUEST_TIMEOUT)),
                observers,
            }),
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
        let mut guests_now = self.inner.guests.write().expect("never poisoned");
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
        self.inner.guests()
    }

    /// A snapshot of the host's view of the node.
    pub fn view(&self) -> NodeView {
        self.inner.view.lock().expect("never poisoned").clone()
    }

    /// Runs `f` with the dispatcher's state and the guests of this moment
    /// as blocking work (see [`lane`](crate::lane)): guests that reach
    /// WASI are called outside the async runtime, others right in the
    /// handler's poll.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner, &[Arc<GuestSlot>]) -> Result<T, HandlerError> + Send + 'static,
    ) -> Result<T, HandlerError> {
        let inner = self.inner.clone();
        let guests = inner.guests();
        let kind = if guests.iter().any(|g| g.pre().imports_wasi()) {
            Blocking::EntersRuntime
        } else {
            Blocking::Plain
        };
        crate::lane::run_blocking(kind, move || f(&inner, &guests))
            .await
            .map_err(|e| HandlerError(format!("dispatch failed: {e}")))?
    }
}

/// What an event is about, for [`Inner::each_guest`].
struct Subject<'a> {
    event: Event,
    /// Guests whose scope does not have the pod are not asked.
    pod: Option<&'a PodSandbox>,
    /// The container's or pod's id, for logs and metrics.
    object: &'a str,
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

impl Inner {
    fn guests(&self) -> Arc<Vec<Arc<GuestSlot>>> {
        self.guests.read().expect("never poisoned").clone()
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

    /// Asks every one of `guests` subscribed to the event whose scope has
    /// its pod, in order, and hands each answer to `take`, which folds it
    /// into `state` (what `ask` sees of the guests before). A guest that
    /// fails is skipped or fails the event, by its policy; `take` fails the
    /// event when answers cannot be merged.
    fn each_guest<S>(
        &self,
        guests: &[Arc<GuestSlot>],
        subject: Subject<'_>,
        state: &mut S,
        mut ask: impl FnMut(&S, &GuestSlot, &StartContext<'_>, &Budget) -> Result<Answer, SlotError>,
        mut take: impl FnMut(&mut S, &GuestSlot, Answer) -> Result<(), HandlerError>,
    ) -> Result<(), HandlerError> {
        let runtime = self.runtime_info();
        let view = || self.view_snapshot();
        let start = StartContext {
            runtime: &runtime,
            view: &view,
        };
        let budget = self.budget();
        let Subject { event, pod, object } = subject;
        let called = guests
            .iter()
            .filter(|g| g.subscribed(event) && g.in_scope(pod));
        for guest in called {
            let outcome = self.observed(guest, event_name(event), object, || {
                ask(state, guest, &start, &budget)
            });
            match outcome {
                Ok(answer) => take(state, guest, answer)?,
                Err(err) => guest_failed(guest, event, object, &err)?,
            }
        }
        Ok(())
    }

    /// Runs one guest's part of an event and reports it to the observers.
    fn observed(
        &self,
        guest: &GuestSlot,
        event: &'static str,
        object: &str,
        ask: impl FnOnce() -> Result<Answer, SlotError>,
    ) -> Result<Answer, SlotError> {
        if self.observers.is_empty() {
            return ask();
        }
        let instances = guest.instances();
        let started = Instant::now();
        let outcome = ask();
        let record = CallRecord {
            guest: guest.id(),
            event,
            object,
            elapsed: started.elapsed(),
            restarted: instances > 0 && guest.instances() > instances,
            outcome: outcome.as_ref(),
        };
        for observer in &self.observers {
            observer.call(&record);
        }
        outcome
    }

    fn create_container(
        &self,
        guests: &[Arc<GuestSlot>],
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        let pod = request.pod.into_option().unwrap_or_default();
        let container = request.container.into_option().unwrap_or_default();
        let pod_of = |id: &str| self.pod_of(id);
        let context = UpdateContext {
            container_id: &container.id,
            pod_id: &pod.id,
            pod_of: &pod_of,
        };
        let mut answers = (
            AdjustmentMerge::new(container.clone()),
            UpdateMerge::default(),
            Vec::new(),
        );
        self.each_guest(
            guests,
            Subject {
                event: Event::CREATE_CONTAINER,
                pod: Some(&pod),
                object: &container.id,
            },
            &mut answers,
            |(merge, _, _), guest, start, budget| {
                let pod_wit = guest.pod_for_guest(&pod);
                let current = guest.container_for_guest(&merge.container);
                let reply = guest.call(start, budget, |g, d| {
                    g.create_container(d, &pod_wit, &current)
                })?;
                let answer = Answer {
                    adjust: reply.adjust.map(Into::into),
                    updates: reply.updates.into_iter().map(Into::into).collect(),
                    evictions: reply.evictions.into_iter().map(Into::into).collect(),
                    rejection: None,
                };
                check_answer(guest, answer, &context)
            },
            |(merge, updates, evictions), guest, answer| {
                let id = guest.id().to_string();
                if let Some(adjust) = &answer.adjust {
                    *merge = std::mem::take(merge)
                        .apply(&id, adjust)
                        .map_err(|c| HandlerError(c.to_string()))?;
                }
                updates
                    .apply(&id, &answer.updates, Some(&container.id))
                    .map_err(|e| HandlerError(e.to_string()))?;
                evictions.extend(answer.evictions);
                Ok(())
            },
        )?;
        let (merge, updates, evictions) = answers;
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
        guests: &[Arc<GuestSlot>],
        event: Event,
        pod: &PodSandbox,
        container: &Container,
        resources: Option<&api::LinuxResources>,
    ) -> Result<(Vec<ContainerUpdate>, Vec<api::ContainerEviction>), HandlerError> {
        let resources_wit = resources.map(wit::LinuxResources::from);
        let pod_of = |id: &str| self.pod_of(id);
        let context = UpdateContext {
            container_id: &container.id,
            pod_id: &pod.id,
            pod_of: &pod_of,
        };
        let mut answers = (UpdateMerge::default(), Vec::new());
        self.each_guest(
            guests,
            Subject {
                event,
                pod: Some(pod),
                object: &container.id,
            },
            &mut answers,
            |_, guest, start, budget| {
                let pod_wit = guest.pod_for_guest(pod);
                let container_wit = guest.container_for_guest(container);
                let reply = guest.call(start, budget, |g, d| match event {
                    Event::UPDATE_CONTAINER => {
                        g.update_container(d, &pod_wit, &container_wit, resources_wit.as_ref())
                    }
                    _ => g.stop_container(d, &pod_wit, &container_wit),
                })?;
                let answer = Answer {
                    updates: reply.updates.into_iter().map(Into::into).collect(),
                    evictions: reply.evictions.into_iter().map(Into::into).collect(),
                    ..Answer::default()
                };
                check_answer(guest, answer, &context)
            },
            |(updates, evictions), guest, answer| {
                updates
                    .apply(&guest.id().to_string(), &answer.updates, None)
                    .map_err(|e| HandlerError(e.to_string()))?;
                evictions.extend(answer.evictions);
                Ok(())
            },
        )?;
        let (updates, evictions) = answers;
        Ok((updates.updates().to_vec(), evictions))
    }

    fn validate(
        &self,
        guests: &[Arc<GuestSlot>],
        request: &ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        let mut rejection: Option<String> = None;
        let result = self.each_guest(
            guests,
            Subject {
                event: Event::VALIDATE_CONTAINER_ADJUSTMENT,
                pod: request.pod.as_ref(),
                object: &request.container.id,
            },
            &mut rejection,
            |_, guest, start, budget| {
                let request_wit = guest.validation_for_guest(request);
                match guest.call(start, budget, |g, d| g.validate(d, &request_wit)) {
                    Ok(()) => Ok(Answer::default()),
                    Err(SlotError::Failed(reason)) => Ok(Answer {
                        rejection: Some(reason),
                        ..Answer::default()
                    }),
                    Err(other) => Err(other),
                }
            },
            |rejection, guest, answer| {
                if let (None, Some(reason)) = (&rejection, answer.rejection) {
                    *rejection = Some(format!("{}: {reason}", guest.id()));
                }
                Ok(())
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

    fn notify(
        &self,
        guests: &[Arc<GuestSlot>],
        notification: &Notification,
    ) -> Result<(), HandlerError> {
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
            guests,
            Subject {
                event,
                pod: notification.pod(),
                object: &object,
            },
            &mut (),
            |_, guest, start, budget| {
                let pod = guest.pod_for_guest(pod);
                let container = container.map(|c| guest.container_for_guest(c));
                let message = match (&container, event) {
                    (_, Event::UPDATE_POD_SANDBOX) => {
                        GuestNotification::UpdatePod(&pod, overhead.as_ref(), resources.as_ref())
                    }
                    (Some(container), _) => GuestNotification::Container(event, &pod, container),
                    (None, _) => GuestNotification::Pod(event, &pod),
                };
                guest.call(start, budget, |g, d| g.notify(d, message))?;
                Ok(Answer::default())
            },
            |_, _, _| Ok(()),
        )
    }

    fn synchronize(&self, guests: &[Arc<GuestSlot>]) -> Result<Vec<ContainerUpdate>, HandlerError> {
        let mut updates = UpdateMerge::default();
        let runtime = self.runtime_info();
        let view = || self.view_snapshot();
        let start = StartContext {
            runtime: &runtime,
            view: &view,
        };
        let budget = self.budget();
        for guest in guests {
            let outcome = self.observed(guest, "Synchronize", "", || {
                let updates = guest.resync(&start, &budget)?;
                Ok(Answer {
                    updates: updates.into_iter().map(Into::into).collect(),
                    ..Answer::default()
                })
            });
            match outcome {
                Ok(answer) => updates
                    .apply(&guest.id().to_string(), &answer.updates, None)
                    .map_err(|e| HandlerError(e.to_string()))?,
                Err(err) => guest_failed(guest, Event::UNKNOWN, "synchronize", &err)?,
            }
        }
        Ok(updates.updates().to_vec())
    }
}

fn sizes<M: Message>(items: &[M]) -> usize {
    items.iter().map(|m| m.compute_size() as usize).sum()
}

/// Takes an answer the host can hold and the guest's grants allow.
fn check_answer(
    guest: &GuestSlot,
    answer: Answer,
    context: &UpdateContext<'_>,
) -> Result<Answer, SlotError> {
    check_size(guest, &answer)?;
    guest.check_grants(
        answer.adjust.as_ref(),
        &answer.updates,
        &answer.evictions,
        context,
    )?;
    Ok(answer)
}

/// A guest's answer beyond [`MAX_ANSWER_BYTES`] is a fault of that guest.
fn check_size(guest: &GuestSlot, answer: &Answer) -> Result<(), SlotError> {
    let size = answer
        .adjust
        .as_ref()
        .map_or(0, |a| a.compute_size() as usize)
        + sizes(&answer.updates)
        + sizes(&answer.evictions);
    if size > MAX_ANSWER_BYTES {
        let fault = GuestFault::AnswerTooLarge {
            size,
            max: MAX_ANSWER_BYTES,
        };
        return Err(guest.refuse_answer(fault));
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
        self.blocking(|inner, guests| inner.synchronize(guests))
            .await
    }

    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        self.blocking(move |inner, guests| inner.create_container(guests, request))
            .await
    }

    async fn update_container(
        &self,
        request: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, HandlerError> {
        self.blocking(move |inner, guests| {
            let (update, evict) = inner.update_like(
                guests,
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
        self.blocking(move |inner, guests| {
            let (update, _evictions) = inner.update_like(
                guests,
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
        self.blocking(move |inner, guests| inner.validate(guests, &request))
            .await
    }

    async fn notify(&self, notification: Notification) -> Result<(), HandlerError> {
        self.inner
            .view
            .lock()
            .expect("never poisoned")
            .apply(&notification);
        self.blocking(move |inner, guests| inner.notify(guests, &notification))
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
