//! One guest as the dispatcher keeps it: its compiled form, its settings,
//! and its running instance, which is rebuilt after a fault and brought up
//! to date (configure, synchronize) before its next event. A guest that
//! faults again and again (three times within a minute) is disabled for a
//! while that doubles each time it happens again.

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{Duration, Instant},
};

use nri_proto::{
    api::{self, Event},
    events::EventMask,
};

use crate::{
    config::{FailurePolicy, GuestSettings},
    grants::{self, Family, Refusal, UpdateContext},
    runtime::{
        bindings::types as wit,
        convert::{self, events_from_wit},
        CallResult, GuestFault, GuestId, GuestInstance, GuestPre,
    },
};

/// Faults within [`FAULT_WINDOW`] after which a guest is disabled.
pub const FAULTS_BEFORE_DISABLE: usize = 3;
/// The window in which faults are counted. A guest that goes this long
/// without a fault starts over with the shortest disable period.
pub const FAULT_WINDOW: Duration = Duration::from_secs(60);
/// First disable period; it doubles with each further fault.
pub const FIRST_DISABLE: Duration = Duration::from_secs(10);
/// Longest disable period.
pub const MAX_DISABLE: Duration = Duration::from_secs(300);
/// A call is not started with less time than this left in the budget.
pub const MIN_CALL: Duration = Duration::from_millis(1);

/// Why a guest gave no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The guest answered with an error of its own.
    #[error("answered with an error: {0}")]
    Failed(String),
    /// The guest faulted; its instance was discarded.
    #[error("{0}")]
    Fault(#[from] GuestFault),
    /// The guest is disabled after repeated faults.
    #[error("is disabled for {0:?} after repeated faults")]
    Disabled(Duration),
    /// The guest's answer exceeds its grants; none of it is applied.
    #[error("answered beyond its grants: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<Refusal>),
    /// The event's time budget was spent before this guest's turn.
    #[error("was skipped: the event's time budget inside the runtime's request timeout is spent")]
    NoTime,
}

impl SlotError {
    /// A short name of the kind of error, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SlotError::Failed(_) => "guest_error",
            SlotError::Fault(fault) => fault.kind(),
            SlotError::Disabled(_) => "disabled",
            SlotError::Refused(_) => "refused",
            SlotError::NoTime => "no_time",
        }
    }
}

/// Time left for the guests of one event, inside the runtime's request
/// timeout.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
}

impl Budget {
    /// A budget of `total` from now.
    pub fn new(total: Duration) -> Self {
        Budget {
            deadline: Instant::now() + total,
        }
    }

    /// The deadline for a call that wants `want`: no more than is left.
    fn grant(&self, want: Duration) -> Result<Duration, SlotError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < MIN_CALL {
            return Err(SlotError::NoTime);
        }
        Ok(want.min(left))
    }
}

/// What a (re)started instance is brought up to date with.
pub struct StartContext<'a> {
    /// The runtime nri-wasm is registered with.
    pub runtime: &'a wit::RuntimeInfo,
    /// The host's view of the node, for synchronize.
    pub view: &'a dyn Fn() -> (Vec<api::PodSandbox>, Vec<api::Container>),
}

#[derive(Default)]
struct SlotState {
    instance: Option<GuestInstance>,
    /// Events the guest asked for in configure.
    wanted: Option<EventMask>,
    /// Faults within the last [`FAULT_WINDOW`].
    recent_faults: VecDeque<Instant>,
    /// Times disabled since the last quiet window.
    disables: u32,
    last_fault_at: Option<Instant>,
    disabled_until: Option<Instant>,
    stats: GuestStats,
}

/// What happened to a guest so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestStats {
    /// Calls that returned an answer or the guest's own error.
    pub calls: u64,
    /// Calls that ended in a fault.
    pub faults: u64,
    /// Instances created (the first, and one after each fault).
    pub instances: u64,
    /// The latest fault.
    pub last_fault: Option<GuestFault>,
    /// Answers refused for exceeding the grants, by grant family.
    pub refusals: std::collections::BTreeMap<Family, u64>,
}

/// A guest in the dispatcher.
pub struct GuestSlot {
    pre: GuestPre,
    settings: GuestSettings,
    state: Mutex<SlotState>,
}

impl GuestSlot {
    /// A slot for `pre`; its instance is created on first use.
    pub fn new(pre: GuestPre, settings: GuestSettings) -> Self {
        GuestSlot {
            pre,
            settings,
            state: Mutex::new(SlotState::default()),
        }
    }

    /// `NN-name`.
    pub fn id(&self) -> &GuestId {
        self.pre.id()
    }

    /// The guest's failure policy.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.settings.failure_policy
    }

    /// The compiled guest.
    pub fn pre(&self) -> &GuestPre {
        &self.pre
    }

    /// Whether `pre` with `settings` is this very guest: same id, same
    /// code, same settings.
    pub fn same_as(&self, pre: &GuestPre, settings: &GuestSettings) -> bool {
        self.pre.id() == pre.id() && self.pre.digest() == pre.digest() && &self.settings == settings
    }

    /// Instances created so far.
    pub fn instances(&self) -> u64 {
        self.state.lock().expect("never poisoned").stats.instances
    }

    /// Whether the guest is called for `pod` at all.
    pub fn in_scope(&self, pod: Option<&api::PodSandbox>) -> bool {
        grants::in_scope(&self.settings.scope, pod)
    }

    /// The pod as this guest may read it.
    pub fn pod_for_guest(&self, pod: &api::PodSandbox) -> wit::PodSandbox {
        convert::pod_to_wit(pod, &self.settings.read)
    }

    /// The container as this guest may read it.
    pub fn container_for_guest(&self, container: &api::Container) -> wit::Container {
        convert::container_to_wit(container, &self.settings.read)
    }

    /// A validation request as this guest may read it.
    pub fn validation_for_guest(
        &self,
        request: &api::ValidateContainerAdjustmentRequest,
    ) -> wit::ValidateRequest {
        convert::validate_request_to_wit(request, &self.settings.read)
    }

    /// The pods in scope and their containers, as this guest may read them.
    fn visible_node(
        &self,
        pods: Vec<api::PodSandbox>,
        containers: Vec<api::Container>,
    ) -> (Vec<wit::PodSandbox>, Vec<wit::Container>) {
        let pods: Vec<api::PodSandbox> = pods
            .into_iter()
            .filter(|p| self.in_scope(Some(p)))
            .collect();
        let containers = containers
            .iter()
            .filter(|c| pods.iter().any(|p| p.id == c.pod_sandbox_id))
            .map(|c| self.container_for_guest(c))
            .collect();
        (
            pods.iter().map(|p| self.pod_for_guest(p)).collect(),
            containers,
        )
    }

    /// Checks an answer against the guest's grants; a refusal is counted
    /// and refuses the whole answer.
    pub fn check_grants(
        &self,
        adjust: Option<&api::ContainerAdjustment>,
        updates: &[api::ContainerUpdate],
        evictions: &[api::ContainerEviction],
        context: &UpdateContext<'_>,
    ) -> Result<(), SlotError> {
        let refusals =
            grants::check_answer(&self.settings.grants, adjust, updates, evictions, context);
        if refusals.is_empty() {
            return Ok(());
        }
        let container = context.container_id;
        let mut state = self.state.lock().expect("never poisoned");
        for refusal in &refusals {
            *state.stats.refusals.entry(refusal.family).or_default() += 1;
            tracing::warn!(
                guest = %self.id(), container, family = %refusal.family, field = %refusal.field,
                value = %refusal.value, grant = %refusal.grant,
                "refused a change beyond the guest's grants"
            );
        }
        Err(SlotError::Refused(refusals))
    }

    /// What happened to the guest so far.
    pub fn stats(&self) -> GuestStats {
        self.state.lock().expect("never poisoned").stats.clone()
    }

    /// The events the guest handles: those it exports an interface for,
    /// narrowed to what it asked for in configure, once it was asked.
    pub fn events(&self) -> EventMask {
        let state = self.state.lock().expect("never poisoned");
        state.wanted.unwrap_or_else(|| self.pre.handled_events())
    }

    /// Whether the guest handles `event`.
    pub fn subscribed(&self, event: Event) -> bool {
        self.events().contains(event)
    }

    /// Calls the guest: starts its instance first if it has none, and
    /// records faults.
    pub fn call<T>(
        &self,
        start: &StartContext<'_>,
        budget: &Budget,
        f: impl FnOnce(&mut GuestInstance, Duration) -> CallResult<T>,
    ) -> Result<T, SlotError> {
        let mut state = self.state.lock().expect("never poisoned");
        self.check_enabled(&mut state)?;
        if state.instance.is_none() {
            self.start(&mut state, start, budget)?;
        }
        let deadline = budget.grant(self.settings.limits.deadline)?;
        let instance = state.instance.as_mut().expect("started above");
        let result = f(instance, deadline);
        self.settle(&mut state, result)
    }

    /// Treats an answer the host cannot take (too large) as a fault of the
    /// guest: its instance is discarded and the fault counted.
    pub fn refuse_answer(&self, fault: GuestFault) -> SlotError {
        let mut state = self.state.lock().expect("never poisoned");
        match self.settle::<()>(&mut state, Err(fault)) {
            Err(err) => err,
            Ok(()) => unreachable!("settling a fault is an error"),
        }
    }

    /// Brings the guest up to date with the runtime and the node: starts
    /// its instance if needed, configures it and synchronizes it. Returns
    /// its updates to existing containers.
    pub fn resync(
        &self,
        start: &StartContext<'_>,
        budget: &Budget,
    ) -> Result<Vec<wit::ContainerUpdate>, SlotError> {
        let mut state = self.state.lock().expect("never poisoned");
        self.check_enabled(&mut state)?;
        state.instance = None;
        self.start(&mut state, start, budget)
    }

    fn check_enabled(&self, state: &mut SlotState) -> Result<(), SlotError> {
        if let Some(until) = state.disabled_until {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(SlotError::Disabled(left));
            }
            state.disabled_until = None;
            tracing::info!(guest = %self.id(), "guest enabled again");
        }
        Ok(())
    }

    fn start(
        &self,
        state: &mut SlotState,
        start: &StartContext<'_>,
        budget: &Budget,
    ) -> Result<Vec<wit::ContainerUpdate>, SlotError> {
        state.stats.instances += 1;
        match self.pre.instantiate() {
            Ok(instance) => state.instance = Some(instance),
            Err(fault) => return self.settle(state, Err(fault)),
        }
        let deadline = budget.grant(self.settings.limits.deadline)?;
        let instance = state.instance.as_mut().expect("just set");
        let wanted = instance.configure(deadline, &self.settings.config, start.runtime);
        let wanted = self.settle(state, wanted)?;
        let handled = self.pre.handled_events();
        state.wanted = Some(wanted.map_or(handled, |w| events_from_wit(w).intersect(handled)));

        let (pods, containers) = (start.view)();
        let (pods, containers) = self.visible_node(pods, containers);
        let deadline = budget.grant(self.settings.limits.deadline)?;
        let instance = state.instance.as_mut().expect("just set");
        let updates = instance.synchronize(deadline, &pods, &containers);
        self.settle(state, updates)
    }

    /// Turns a call's result into the slot's answer, keeping the books on
    /// faults.
    fn settle<T>(&self, state: &mut SlotState, result: CallResult<T>) -> Result<T, SlotError> {
        match result {
            Ok(Ok(answer)) => {
                state.stats.calls += 1;
                Ok(answer)
            }
            Ok(Err(message)) => {
                state.stats.calls += 1;
                Err(SlotError::Failed(message))
            }
            Err(fault) => {
                state.instance = None;
                state.stats.faults += 1;
                state.stats.last_fault = Some(fault.clone());
                if let Some(period) = state.count_fault(Instant::now()) {
                    tracing::error!(guest = %self.id(), ?period, "guest disabled after repeated faults");
                }
                Err(SlotError::Fault(fault))
            }
        }
    }
}

impl SlotState {
    /// Counts a fault at `now`. Returns how long the guest is disabled,
    /// when there were too many faults lately.
    fn count_fault(&mut self, now: Instant) -> Option<Duration> {
        let quiet = self
            .last_fault_at
            .is_none_or(|last| now.duration_since(last) > FAULT_WINDOW);
        if quiet {
            self.disables = 0;
        }
        self.last_fault_at = Some(now);
        self.recent_faults
            .retain(|t| now.duration_since(*t) <= FAULT_WINDOW);
        self.recent_faults.push_back(now);
        if self.recent_faults.len() < FAULTS_BEFORE_DISABLE {
            return None;
        }
        self.recent_faults.clear();
        self.disables += 1;
        let period = disable_period(self.disables);
        self.disabled_until = Some(now + period);
        Some(period)
    }
}

/// How long the `n`th disable in a row lasts.
fn disable_period(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(16);
    FIRST_DISABLE
        .saturating_mul(1 << doublings)
        .min(MAX_DISABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disable_periods_grow_and_stay_bounded() {
        assert_eq!(disable_period(1), Duration::from_secs(10));
        assert_eq!(disable_period(2), Duration::from_secs(20));
        assert_eq!(disable_period(40), MAX_DISABLE);
    }

    #[test]
    fn three_faults_within_a_minute_disable_and_repeat_offences_double() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut state = SlotState::default();
        // Spread out: never three within the window.
        for secs in [0, 40, 80, 120] {
            assert_eq!(state.count_fault(at(secs)), None);
        }
        assert_eq!(state.count_fault(at(130)), Some(Duration::from_secs(10)));
        for secs in [141, 142, 143] {
            state.count_fault(at(secs));
        }
        assert_eq!(state.disables, 2);
        assert_eq!(
            state.disabled_until,
            Some(at(143) + Duration::from_secs(20))
        );
        // After a quiet minute the next disable is short again.
        for secs in [300, 301] {
            assert_eq!(state.count_fault(at(secs)), None);
        }
        assert_eq!(state.count_fault(at(302)), Some(Duration::from_secs(10)));
    }

    #[test]
    fn a_spent_budget_grants_nothing() {
        let budget = Budget::new(Duration::ZERO);
        assert_eq!(
            budget.grant(Duration::from_millis(5)),
            Err(SlotError::NoTime)
        );
        let budget = Budget::new(Duration::from_secs(1));
        assert_eq!(
            budget.grant(Duration::from_millis(5)),
            Ok(Duration::from_millis(5))
        );
    }
}
