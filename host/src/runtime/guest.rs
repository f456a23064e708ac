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
    component::{Component, InstancePre},
    Store, Trap,
};

use crate::untrusted::{GuestText, MAX_MESSAGE};

use super::{
    bindings::types as wit,
    cache::ContentDigest,
    engine::{WasmEngine, EPOCH_TICK},
    exports::{ExportIndices, Exports},
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

/// The package of the interfaces the host defines (`log`, and those a
/// guest exports); any other import is WASI's.
const HOST_PACKAGE: &str = "nri:plugin/";

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
    declared_reads: Option<String>,
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
        let imports_wasi = component
            .component_type()
            .imports(engine.engine())
            .any(|(name, _)| !name.starts_with(HOST_PACKAGE));
        let exports = ExportIndices::find(&pre, imports_wasi);
        let present = exports.present();
        if present.handled().is_empty() {
            return Err(if present.lifecycle {
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
            declared_reads: None,
        })
    }

    /// With what the guest declares it reads (the text of its component's
    /// reads section, if it has one).
    pub fn with_declared_reads(self, declared_reads: Option<String>) -> Self {
        GuestPre {
            declared_reads,
            ..self
        }
    }

    /// What the guest declares it reads, as its component says it.
    pub fn declared_reads(&self) -> Option<&str> {
        self.declared_reads.as_deref()
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
        self.exports.present().handled()
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
        self.exports.present().names()
    }

    /// Whether it imports WASI, and so is called as a future that can wait
    /// in the host and be cut off at its deadline there.
    pub fn imports_wasi(&self) -> bool {
        self.exports.is_async()
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
        let instance = match self.exports.is_async() {
            true => within(deadline, self.pre.instantiate_async(&mut store)).await,
            false => self.pre.instantiate(&mut store),
        };
        let instance = instance
            .map_err(|err| classify(err, &mut store, limits))
            .map_err(|fault| match fault {
                GuestFault::Trap(msg) => GuestFault::Instantiate(msg),
                other => other,
            })?;
        let exports = self
            .exports
            .load(&mut store, &instance)
            .map_err(|err| GuestFault::Instantiate(format!("{err:#}")))?;
        Ok(GuestInstance {
            store,
            exports,
            limits: self.limits,
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

/// Runs one export call of `$instance` with `$deadline`: `$call` on the
/// interface `$iface` (as `$i`, with the store as `$store`), or `$default`
/// if the guest does not export it; `$then` maps the result. The store's
/// epoch deadline is set; a guest called as a future is also cut off at
/// the deadline while it waits in the host; a failure is classified.
macro_rules! guest_call {
    ($instance:ident, $deadline:expr, $iface:ident, $default:expr, |$i:ident, $store:ident| $call:expr) => {
        guest_call!(
            $instance,
            $deadline,
            $iface,
            $default,
            |$i, $store| $call,
            then | r | r
        )
    };
    ($instance:ident, $deadline:expr, $iface:ident, $default:expr, |$i:ident, $store:ident| $call:expr, then $then:expr) => {{
        let deadline: Duration = $deadline;
        let limits = GuestLimits {
            deadline,
            ..$instance.limits
        };
        $instance.store.set_epoch_deadline(ticks(deadline));
        $instance.store.data_mut().take_memory_denied();
        let $store = &mut $instance.store;
        let result: wasmtime::Result<Result<_, String>> = match &$instance.exports {
            Exports::Direct(e) => match &e.$iface {
                Some($i) => ($then)($call),
                None => Ok(Ok($default)),
            },
            Exports::Async(e) => match &e.$iface {
                Some($i) => ($then)(within(deadline, async { $call.await }).await),
                None => Ok(Ok($default)),
            },
        };
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
        guest_call!(self, deadline, lifecycle, None, |l, store| l.call_configure(store, config, runtime),
            then |r: wasmtime::Result<Result<wit::Events, String>>| r.map(|r| r.map(Some)))
    }

    /// Tells the guest every pod and container.
    pub async fn synchronize(
        &mut self,
        deadline: Duration,
        pods: &[wit::PodSandbox],
        containers: &[wit::Container],
    ) -> CallResult<Vec<wit::ContainerUpdate>> {
        guest_call!(self, deadline, lifecycle, Vec::new(), |l, store| l
            .call_synchronize(store, pods, containers))
    }

    /// Delivers an event that needs no answer.
    pub async fn notify(
        &mut self,
        deadline: Duration,
        notification: GuestNotification<'_>,
    ) -> CallResult<()> {
        use GuestNotification::{Container, Pod, UpdatePod};
        match notification {
            Pod(Event::RUN_POD_SANDBOX, pod) => {
                guest_call!(self, deadline, pod_events, (), |p, store| p
                    .call_run_pod_sandbox(store, pod))
            }
            Pod(Event::POST_UPDATE_POD_SANDBOX, pod) => {
                guest_call!(self, deadline, pod_events, (), |p, store| p
                    .call_post_update_pod_sandbox(store, pod))
            }
            Pod(Event::STOP_POD_SANDBOX, pod) => {
                guest_call!(self, deadline, pod_events, (), |p, store| p
                    .call_stop_pod_sandbox(store, pod))
            }
            Pod(Event::REMOVE_POD_SANDBOX, pod) => {
                guest_call!(self, deadline, pod_events, (), |p, store| p
                    .call_remove_pod_sandbox(store, pod))
            }
            UpdatePod(pod, overhead, resources) => {
                guest_call!(self, deadline, pod_events, (), |p, store| {
                    p.call_update_pod_sandbox(store, pod, overhead, resources)
                })
            }
            Container(Event::POST_CREATE_CONTAINER, pod, c) => {
                guest_call!(self, deadline, container_events, (), |e, store| e
                    .call_post_create_container(store, pod, c))
            }
            Container(Event::START_CONTAINER, pod, c) => {
                guest_call!(self, deadline, container_events, (), |e, store| e
                    .call_start_container(store, pod, c))
            }
            Container(Event::POST_START_CONTAINER, pod, c) => {
                guest_call!(self, deadline, container_events, (), |e, store| e
                    .call_post_start_container(store, pod, c))
            }
            Container(Event::POST_UPDATE_CONTAINER, pod, c) => {
                guest_call!(self, deadline, container_events, (), |e, store| e
                    .call_post_update_container(store, pod, c))
            }
            Container(Event::REMOVE_CONTAINER, pod, c) => {
                guest_call!(self, deadline, container_events, (), |e, store| e
                    .call_remove_container(store, pod, c))
            }
            Pod(other, _) | Container(other, _, _) => {
                Ok(Err(format!("{other:?} is not an event without an answer")))
            }
        }
    }

    /// Asks the guest to adjust a container being created.
    pub async fn create_container(
        &mut self,
        deadline: Duration,
        pod: &wit::PodSandbox,
        container: &wit::Container,
    ) -> CallResult<wit::CreateReply> {
        let nothing = wit::CreateReply {
            adjust: None,
            updates: Vec::new(),
            evictions: Vec::new(),
        };
        guest_call!(self, deadline, adjuster, nothing, |a, store| a
            .call_create_container(store, pod, container))
    }

    /// Asks the guest about a container's resource update.
    pub async fn update_container(
        &mut self,
        deadline: Duration,
        pod: &wit::PodSandbox,
        container: &wit::Container,
        resources: Option<&wit::LinuxResources>,
    ) -> CallResult<wit::UpdateReply> {
        guest_call!(
            self,
            deadline,
            adjuster,
            empty_update_reply(),
            |a, store| { a.call_update_container(store, pod, container, resources) }
        )
    }

    /// Tells the guest a container is stopping.
    pub async fn stop_container(
        &mut self,
        deadline: Duration,
        pod: &wit::PodSandbox,
        container: &wit::Container,
    ) -> CallResult<wit::UpdateReply> {
        guest_call!(
            self,
            deadline,
            adjuster,
            empty_update_reply(),
            |a, store| a.call_stop_container(store, pod, container)
        )
    }

    /// Asks the guest to validate a container's merged adjustment.
    pub async fn validate(
        &mut self,
        deadline: Duration,
        request: &wit::ValidateRequest,
    ) -> CallResult<()> {
        guest_call!(self, deadline, validator, (), |v, store| v
            .call_validate_container_adjustment(store, request))
    }
}

fn empty_update_reply() -> wit::UpdateReply {
    wit::UpdateReply {
        updates: Vec::new(),
        evictions: Vec::new(),
    }
}
