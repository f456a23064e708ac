//! One guest: compiled and linked ([`GuestPre`]), and running
//! ([`GuestInstance`], its own long-lived store). Every call has a deadline
//! (epoch interruption) and runs under the guest's memory cap.
//!
//! A call ends in one of three ways: an answer; the guest's own error (a
//! value, the instance lives on); or a [`GuestFault`] (trap, deadline,
//! memory cap), after which the instance must be discarded.

use std::{fmt, time::Duration};

use nri_proto::{api::Event, events::EventMask};
use wasmtime::{
    component::{Component, Instance, InstancePre},
    Store, Trap,
};

use crate::untrusted::{GuestText, MAX_MESSAGE};

use super::{
    bindings::{adjuster, container_events, lifecycle, pod_events, types as wit, validator},
    cache::ContentDigest,
    engine::{WasmEngine, EPOCH_TICK},
    sandbox::{GuestState, WasiAccess},
};

/// A guest's place and name: `NN-name`, from its file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestId {
    /// Two digits: guests are called in ascending index order.
    pub index: String,
    /// The name.
    pub name: String,
}

impl fmt::Display for GuestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.index, self.name)
    }
}

/// Limits of one guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestLimits {
    /// Bytes of linear memory.
    pub memory: usize,
    /// Longest a single call may run.
    pub deadline: Duration,
}

/// How a guest is sandboxed: its limits and, if granted, WASI access.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Memory cap and call deadline.
    pub limits: GuestLimits,
    /// WASI, for guests that need it; none by default.
    pub wasi: Option<WasiAccess>,
    /// The content the operator pinned: a file of any other content is
    /// refused.
    pub pinned: Option<ContentDigest>,
}

impl Default for GuestLimits {
    /// 64 MiB of memory and 100 ms per call.
    fn default() -> Self {
        GuestLimits {
            memory: 64 << 20,
            deadline: Duration::from_millis(100),
        }
    }
}

/// A guest was unusable; the instance is discarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuestFault {
    /// The call ran past its deadline.
    #[error("ran past its deadline of {0:?}")]
    Timeout(Duration),
    /// The guest needed more memory than its cap.
    #[error("hit its memory cap of {0} bytes")]
    MemoryLimit(usize),
    /// The guest recursed too deeply.
    #[error("overflowed its stack")]
    StackOverflow,
    /// Any other trap (a panic, an unreachable, a bad access).
    #[error("trapped: {0}")]
    Trap(String),
    /// The instance could not be created.
    #[error("cannot be instantiated: {0}")]
    Instantiate(String),
    /// Its answer was larger than the host accepts.
    #[error("answered with {size} bytes, more than the {max} accepted")]
    AnswerTooLarge {
        /// Size of the answer.
        size: usize,
        /// The cap.
        max: usize,
    },
}

impl GuestFault {
    /// A short name of the kind of fault, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GuestFault::Timeout(_) => "timeout",
            GuestFault::MemoryLimit(_) => "memory_limit",
            GuestFault::StackOverflow => "stack_overflow",
            GuestFault::Trap(_) => "trap",
            GuestFault::Instantiate(_) => "instantiate",
            GuestFault::AnswerTooLarge { .. } => "answer_too_large",
        }
    }
}

/// The result of a call: the guest's answer or its own error message,
/// unless it faulted.
pub type CallResult<T> = Result<Result<T, String>, GuestFault>;

/// Why a component cannot be a guest.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// It imports something the host does not give.
    #[error("{0:#}")]
    Imports(wasmtime::Error),
    /// It exports none of the interfaces of `nri:plugin`.
    #[error("exports none of the nri:plugin@0.1.0 interfaces (lifecycle, pod-events, container-events, adjuster, validator)")]
    NoExports,
    /// It exports only `lifecycle`, so it would never be called.
    #[error("exports only nri:plugin/lifecycle; it needs pod-events, container-events, adjuster or validator to receive events")]
    OnlyLifecycle,
}

/// The interfaces a component exports.
#[derive(Clone, Default)]
struct ExportIndices {
    lifecycle: Option<lifecycle::GuestIndices>,
    pod_events: Option<pod_events::GuestIndices>,
    container_events: Option<container_events::GuestIndices>,
    adjuster: Option<adjuster::GuestIndices>,
    validator: Option<validator::GuestIndices>,
}

// Events each interface delivers.
const POD_EVENTS: [Event; 5] = [
    Event::RUN_POD_SANDBOX,
    Event::UPDATE_POD_SANDBOX,
    Event::POST_UPDATE_POD_SANDBOX,
    Event::STOP_POD_SANDBOX,
    Event::REMOVE_POD_SANDBOX,
];
const CONTAINER_EVENTS: [Event; 5] = [
    Event::POST_CREATE_CONTAINER,
    Event::START_CONTAINER,
    Event::POST_START_CONTAINER,
    Event::POST_UPDATE_CONTAINER,
    Event::REMOVE_CONTAINER,
];
const ADJUSTER_EVENTS: [Event; 3] = [
    Event::CREATE_CONTAINER,
    Event::UPDATE_CONTAINER,
    Event::STOP_CONTAINER,
];

impl ExportIndices {
    fn find(pre: &InstancePre<GuestState>) -> Self {
        ExportIndices {
            lifecycle: lifecycle::GuestIndices::new(pre).ok(),
            pod_events: pod_events::GuestIndices::new(pre).ok(),
            container_events: container_events::GuestIndices::new(pre).ok(),
            adjuster: adjuster::GuestIndices::new(pre).ok(),
            validator: validator::GuestIndices::new(pre).ok(),
        }
    }

    fn handled(&self) -> EventMask {
        let mut events = Vec::new();
        if self.pod_events.is_some() {
            events.extend(POD_EVENTS);
        }
        if self.container_events.is_some() {
            events.extend(CONTAINER_EVENTS);
        }
        if self.adjuster.is_some() {
            events.extend(ADJUSTER_EVENTS);
        }
        if self.validator.is_some() {
            events.push(Event::VALIDATE_CONTAINER_ADJUSTMENT);
        }
        events.into_iter().collect()
    }

    fn names(&self) -> Vec<&'static str> {
        [
            ("lifecycle", self.lifecycle.is_some()),
            ("pod-events", self.pod_events.is_some()),
            ("container-events", self.container_events.is_some()),
            ("adjuster", self.adjuster.is_some()),
            ("validator", self.validator.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| name)
        .collect()
    }
}

/// A guest compiled and linked, ready to instantiate.
#[derive(Clone)]
pub struct GuestPre {
    id: GuestId,
    engine: WasmEngine,
    pre: InstancePre<GuestState>,
    digest: ContentDigest,
    exports: ExportIndices,
    limits: GuestLimits,
    wasi: WasiAccess,
}

impl GuestPre {
    /// Links `component` against the host's imports and finds its exports.
    pub fn new(
        engine: &WasmEngine,
        id: GuestId,
        component: &Component,
        digest: ContentDigest,
        sandbox: SandboxSpec,
    ) -> Result<Self, LinkError> {
        let pre = engine
            .linker()
            .instantiate_pre(component)
            .map_err(LinkError::Imports)?;
        let exports = ExportIndices::find(&pre);
        if exports.handled().is_empty() {
            return Err(if exports.lifecycle.is_some() {
                LinkError::OnlyLifecycle
            } else {
                LinkError::NoExports
            });
        }
        Ok(GuestPre {
            id,
            engine: engine.clone(),
            pre,
            digest,
            exports,
            limits: sandbox.limits,
            wasi: sandbox.wasi.unwrap_or_default(),
        })
    }

    /// `NN-name`.
    pub fn id(&self) -> &GuestId {
        &self.id
    }

    /// The SHA-256 of its plugin file.
    pub fn digest(&self) -> ContentDigest {
        self.digest
    }

    /// The guest's limits.
    pub fn limits(&self) -> GuestLimits {
        self.limits
    }

    /// The events its exports can handle.
    pub fn handled_events(&self) -> EventMask {
        self.exports.handled()
    }

    /// The names of what it imports.
    pub fn imports(&self) -> Vec<String> {
        let component_type = self.pre.component().component_type();
        component_type
            .imports(self.engine.engine())
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The `nri:plugin` interfaces it exports.
    pub fn interfaces(&self) -> Vec<&'static str> {
        self.exports.names()
    }

    /// Creates a fresh instance in a store of its own. Instantiation runs
    /// guest code (start functions), so it has a deadline too.
    pub async fn instantiate(&self, deadline: Duration) -> Result<GuestInstance, GuestFault> {
        let wasi = self.wasi.context().map_err(|err| {
            GuestFault::Instantiate(format!("cannot set up its WASI access: {err:#}"))
        })?;
        let state = GuestState::new(self.id.to_string(), self.limits.memory, wasi);
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|state| state);
        store.set_epoch_deadline(ticks(deadline));
        store.epoch_deadline_trap();
        let limits = GuestLimits {
            deadline,
            ..self.limits
        };
        let instance = within(deadline, self.pre.instantiate_async(&mut store))
            .await
            .map_err(|err| classify(err, &mut store, limits))
            .map_err(|fault| match fault {
                GuestFault::Trap(msg) => GuestFault::Instantiate(msg),
                other => other,
            })?;
        let exports = Exports::load(&self.exports, &mut store, &instance)
            .map_err(|err| GuestFault::Instantiate(format!("{err:#}")))?;
        Ok(GuestInstance {
            store,
            exports,
            limits: self.limits,
        })
    }
}

/// Export handles of one instance.
struct Exports {
    lifecycle: Option<lifecycle::Guest>,
    pod_events: Option<pod_events::Guest>,
    container_events: Option<container_events::Guest>,
    adjuster: Option<adjuster::Guest>,
    validator: Option<validator::Guest>,
}

impl Exports {
    fn load(
        indices: &ExportIndices,
        store: &mut Store<GuestState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self> {
        Ok(Exports {
            lifecycle: indices
                .lifecycle
                .as_ref()
                .map(|i| i.load(&mut *store, instance))
                .transpose()?,
            pod_events: indices
                .pod_events
                .as_ref()
                .map(|i| i.load(&mut *store, instance))
                .transpose()?,
            container_events: indices
                .container_events
                .as_ref()
                .map(|i| i.load(&mut *store, instance))
                .transpose()?,
            adjuster: indices
                .adjuster
                .as_ref()
                .map(|i| i.load(&mut *store, instance))
                .transpose()?,
            validator: indices
                .validator
                .as_ref()
                .map(|i| i.load(&mut *store, instance))
                .transpose()?,
        })
    }
}

fn ticks(deadline: Duration) -> u64 {
    (deadline.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1
}

/// A guest call ran out of time while the host was waiting for it (in a
/// WASI timer or poll), where the epoch deadline cannot reach it.
#[derive(Debug, thiserror::Error)]
#[error("the call's deadline passed while the host waited on the guest's behalf")]
struct DeadlinePassed;

/// Runs a guest call with a hard deadline. Guest code is stopped by the
/// epoch deadline; time a guest spends in the host (waiting on a WASI
/// timer, say) is cut off here: the call's future is dropped, and with it
/// the guest's fiber, so the instance must be discarded.
async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    // One tick beyond the epoch deadline, so that guest code running out
    // of time is reported by the epoch, as a trap, the same on every path.
    match tokio::time::timeout(deadline + EPOCH_TICK, call).await {
        Ok(result) => result,
        Err(_) => Err(DeadlinePassed.into()),
    }
}

fn classify(
    err: wasmtime::Error,
    store: &mut Store<GuestState>,
    limits: GuestLimits,
) -> GuestFault {
    let memory_denied = store.data_mut().take_memory_denied();
    if err.is::<DeadlinePassed>() {
        return GuestFault::Timeout(limits.deadline);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => GuestFault::Timeout(limits.deadline),
        Some(Trap::StackOverflow) => GuestFault::StackOverflow,
        _ if memory_denied => GuestFault::MemoryLimit(limits.memory),
        // A trap's message carries the guest's own function names.
        _ => GuestFault::Trap(GuestText::new(&format!("{err:#}"), MAX_MESSAGE).to_string()),
    }
}

/// A running guest: one store, kept across events so the guest keeps its
/// state, serving one call at a time. After a [`GuestFault`] it must not be
/// called again; a call whose future is dropped before it ends leaves it
/// unusable too.
pub struct GuestInstance {
    store: Store<GuestState>,
    exports: Exports,
    limits: GuestLimits,
}

/// A notification for the event interfaces.
pub enum GuestNotification<'a> {
    /// A pod event.
    Pod(Event, &'a wit::PodSandbox),
    /// UpdatePodSandbox, with the pod's overhead and new resources.
    UpdatePod(
        &'a wit::PodSandbox,
        Option<&'a wit::LinuxResources>,
        Option<&'a wit::LinuxResources>,
    ),
    /// A container event.
    Container(Event, &'a wit::PodSandbox, &'a wit::Container),
}

/// Runs `$call` (a future over `$store`) as one guest call of `$instance`
/// with `$deadline`: the store's epoch deadline is set, the call is cut
/// off at the deadline, and its failure is classified.
macro_rules! guest_call {
    ($instance:ident, $deadline:expr, |$exports:ident, $store:ident| $call:expr) => {{
        let deadline: Duration = $deadline;
        let limits = GuestLimits {
            deadline,
            ..$instance.limits
        };
        $instance.store.set_epoch_deadline(ticks(deadline));
        $instance.store.data_mut().take_memory_denied();
        let $exports = &$instance.exports;
        let $store = &mut $instance.store;
        let result: wasmtime::Result<Result<_, String>> = within(deadline, async { $call }).await;
        result.map_err(|err| classify(err, &mut $instance.store, limits))
    }};
}

impl GuestInstance {
    /// Starts the guest: its configuration and the runtime. Returns the
    /// events it wants (all it handles, if it does not export lifecycle).
    pub async fn configure(
        &mut self,
        deadline: Duration,
        config: &str,
        runtime: &wit::RuntimeInfo,
    ) -> CallResult<Option<wit::Events>> {
        guest_call!(self, deadline, |e, store| match &e.lifecycle {
            Some(l) => Ok(l.call_configure(store, config, runtime).await?.map(Some)),
            None => Ok(Ok(None)),
        })
    }

    /// Tells the guest every pod and container.
    pub async fn synchronize(
        &mut self,
        deadline: Duration,
        pods: &[wit::PodSandbox],
        containers: &[wit::Container],
    ) -> CallResult<Vec<wit::ContainerUpdate>> {
        guest_call!(self, deadline, |e, store| match &e.lifecycle {
            Some(l) => l.call_synchronize(store, pods, containers).await,
            None => Ok(Ok(Vec::new())),
        })
    }

    /// Delivers an event that needs no answer.
    pub async fn notify(
        &mut self,
        deadline: Duration,
        notification: GuestNotification<'_>,
    ) -> CallResult<()> {
        guest_call!(self, deadline, |e, store| match notification {
            GuestNotification::Pod(event, pod) => match &e.pod_events {
                None => Ok(Ok(())),
                Some(p) => match event {
                    Event::RUN_POD_SANDBOX => p.call_run_pod_sandbox(store, pod).await,
                    Event::POST_UPDATE_POD_SANDBOX => {
                        p.call_post_update_pod_sandbox(store, pod).await
                    }
                    Event::STOP_POD_SANDBOX => p.call_stop_pod_sandbox(store, pod).await,
                    Event::REMOVE_POD_SANDBOX => p.call_remove_pod_sandbox(store, pod).await,
                    other => Ok(Err(format!("{other:?} is not a pod event"))),
                },
            },
            GuestNotification::UpdatePod(pod, overhead, resources) => match &e.pod_events {
                None => Ok(Ok(())),
                Some(p) => {
                    p.call_update_pod_sandbox(store, pod, overhead, resources)
                        .await
                }
            },
            GuestNotification::Container(event, pod, container) => match &e.container_events {
                None => Ok(Ok(())),
                Some(c) => match event {
                    Event::POST_CREATE_CONTAINER => {
                        c.call_post_create_container(store, pod, container).await
                    }
                    Event::START_CONTAINER => c.call_start_container(store, pod, container).await,
                    Event::POST_START_CONTAINER => {
                        c.call_post_start_container(store, pod, container).await
                    }
                    Event::POST_UPDATE_CONTAINER => {
                        c.call_post_update_container(store, pod, container).await
                    }
                    Event::REMOVE_CONTAINER => {
                        c.call_remove_container(store, pod, container).await
                    }
                    other => Ok(Err(format!("{other:?} is not a container event"))),
                },
            },
        })
    }

    /// Asks the guest to adjust a container being created.
    pub async fn create_container(
        &mut self,
        deadline: Duration,
        pod: &wit::PodSandbox,
        container: &wit::Container,
    ) -> CallResult<wit::CreateReply> {
        guest_call!(self, deadline, |e, store| match &e.adjuster {
            Some(a) => a.call_create_container(store, pod, container).await,
            None => Ok(Ok(wit::CreateReply {
                adjust: None,
                updates: Vec::new(),
                evictions: Vec::new(),
            })),
        })
    }

    /// Asks the guest about a container's resource update.
    pub async fn update_container(
        &mut self,
        deadline: Duration,
        pod: &wit::PodSandbox,
        container: &wit::Container,
        resources: Option<&wit::LinuxResources>,
    ) -> CallResult<wit::UpdateReply> {
        guest_call!(self, deadline, |e, store| match &e.adjuster {
            Some(a) => {
                a.call_update_container(store, pod, container, resources)
                    .await
            }
            None => Ok(Ok(empty_update_reply())),
        })
    }

    /// Tells the guest a container is stopping.
    pub async fn stop_container(
        &mut self,
        deadline: Duration,
        pod: &wit::PodSandbox,
        container: &wit::Container,
    ) -> CallResult<wit::UpdateReply> {
        guest_call!(self, deadline, |e, store| match &e.adjuster {
            Some(a) => a.call_stop_container(store, pod, container).await,
            None => Ok(Ok(empty_update_reply())),
        })
    }

    /// Asks the guest to validate a container's merged adjustment.
    pub async fn validate(
        &mut self,
        deadline: Duration,
        request: &wit::ValidateRequest,
    ) -> CallResult<()> {
        guest_call!(self, deadline, |e, store| match &e.validator {
            Some(v) => v.call_validate_container_adjustment(store, request).await,
            None => Ok(Ok(())),
        })
    }
}

fn empty_update_reply() -> wit::UpdateReply {
    wit::UpdateReply {
        updates: Vec::new(),
        evictions: Vec::new(),
    }
}
