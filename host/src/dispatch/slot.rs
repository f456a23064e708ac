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
    adjust::Conflict,
    api::{self, Event},
    events::EventMask,
};

use super::NodeView;
use crate::{
    config::{FailurePolicy, GuestSettings, Mode},
    grants::{self, Family, Refusal, Targets},
    runtime::{
        bindings::types as wit,
        convert::{self, events_from_wit},
        CallResult, GuestFault, GuestId, GuestInstance, GuestPre,
    },
    untrusted::{GuestText, TokenBucket, MAX_MESSAGE, MAX_VALUE},
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
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SlotError {
    /// The guest answered with an error of its own.
    #[error("answered with an error: {0}")]
    Failed(GuestText),
    /// The guest faulted; its instance was discarded.
    #[error("{0}")]
    Fault(#[from] GuestFault),
    /// The guest is disabled after repeated faults.
    #[error("is disabled for {0:?} after repeated faults")]
    Disabled(Duration),
    /// The guest's answer exceeds its grants; none of it is applied. The
    /// refused answer comes along, for those who show it.
    #[error("answered beyond its grants: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<Refusal>, Box<super::Answer>),
    /// The event's time budget was spent before this guest's turn.
    #[error("was skipped: the event's time budget inside the runtime's request timeout is spent")]
    NoTime,
    /// The guest's answer sets what a guest before it set; none of it is
    /// applied.
    #[error("conflicts with an earlier guest: {0}")]
    Conflict(Conflict, Box<super::Answer>),
    /// The guest's answer does not fit in what is left of the reply to the
    /// runtime; none of it is applied.
    #[error("answered with {size} bytes, more than the {room} left in the reply to the runtime")]
    ReplyFull {
        /// Size of the answer.
        size: usize,
        /// Room left.
        room: usize,
    },
}

impl SlotError {
    /// A conflict of `answer`, with the guest's key made safe to show.
    pub fn conflict(mut conflict: Conflict, answer: super::Answer) -> Self {
        conflict.key = conflict
            .key
            .map(|k| GuestText::new(&k, MAX_VALUE).to_string());
        SlotError::Conflict(conflict, Box::new(answer))
    }

    /// A short name of the kind of error, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SlotError::Failed(_) => "guest_error",
            SlotError::Fault(fault) => fault.kind(),
            SlotError::Disabled(_) => "disabled",
            SlotError::Refused(..) => "refused",
            SlotError::NoTime => "no_time",
            SlotError::Conflict(..) => "conflict",
            SlotError::ReplyFull { .. } => "reply_full",
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

    /// The time left.
    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The deadline for a call that wants `want`: no more than is left.
    fn grant(&self, want: Duration) -> Result<Duration, SlotError> {
        let left = self.left();
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
    pub node: &'a Mutex<NodeView>,
}

#[derive(Default)]
struct SlotState {
    /// Events the guest asked for in configure.
    wanted: Option<EventMask>,
    /// Faults within the last [`FAULT_WINDOW`].
    recent_faults: VecDeque<Instant>,
    /// Times disabled since the last quiet window.
    disables: u32,
    last_fault_at: Option<Instant>,
    disabled_until: Option<Instant>,
    stats: GuestStats,
    /// Whether the log was told that its validator is not called.
    told_not_validating: bool,
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
///
/// Its instance serves one call at a time: a call holds the instance's
/// lock, with the instance taken out of it, and puts it back only when the
/// call ends with an answer or the guest's own error. A call that faults,
/// or whose future is dropped halfway, leaves no instance behind, so the
/// next call starts a fresh one.
pub struct GuestSlot {
    pre: GuestPre,
    settings: GuestSettings,
    instance: tokio::sync::Mutex<Option<GuestInstance>>,
    state: Mutex<SlotState>,
    /// Lines the host writes about this guest (its failures, refusals).
    notes: Mutex<TokenBucket>,
}

/// Lines per second the host writes about one guest, on average.
pub const NOTES_PER_SECOND: f64 = 20.0;
/// Lines the host writes about one guest in a burst.
pub const NOTES_BURST: f64 = 100.0;

/// One call of a guest under way: the instance, lent out of its slot, and
/// the call's deadline. [`SlotCall::finish`] settles the call.
pub struct SlotCall<'s> {
    slot: &'s GuestSlot,
    home: tokio::sync::MutexGuard<'s, Option<GuestInstance>>,
    instance: GuestInstance,
    deadline: Duration,
}

impl SlotCall<'_> {
    /// The instance to call.
    pub fn instance(&mut self) -> &mut GuestInstance {
        &mut self.instance
    }

    /// The deadline of this call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Settles the call: the instance goes back unless the guest faulted.
    pub fn finish<T>(self, result: CallResult<T>) -> Result<T, SlotError> {
        let SlotCall {
            slot,
            mut home,
            instance,
            ..
        } = self;
        if result.is_ok() {
            *home = Some(instance);
        }
        slot.settle(result)
    }
}

impl GuestSlot {
    /// A slot for `pre`; its instance is created on first use.
    pub fn new(pre: GuestPre, settings: GuestSettings) -> Self {
        GuestSlot {
            pre,
            settings,
            instance: tokio::sync::Mutex::new(None),
            state: Mutex::new(SlotState::default()),
            notes: Mutex::new(TokenBucket::new(NOTES_PER_SECOND, NOTES_BURST)),
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

    /// Whether the guest's instance is free to call: `None` while a call
    /// holds it; else whether one is running (none: a call starts it).
    pub fn instance_idle(&self) -> Option<bool> {
        self.instance.try_lock().ok().map(|i| i.is_some())
    }

    /// Drops the guest's instance, if no call holds it: the next call
    /// starts a fresh one.
    pub fn discard_instance(&self) {
        if let Ok(mut instance) = self.instance.try_lock() {
            instance.take();
        }
    }

    /// The longest a call of the guest may take.
    pub fn deadline(&self) -> Duration {
        self.settings.limits.deadline
    }

    /// Whether the guest runs in shadow mode: called and checked, nothing
    /// of it applied.
    pub fn shadow(&self) -> bool {
        self.settings.mode == Mode::Shadow
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
        self.books().stats.instances
    }

    fn books(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().expect("never poisoned")
    }

    /// Whether the host may write a line about the guest now (a failure,
    /// a refusal); if so, how many were suppressed before it.
    pub fn note(&self) -> Option<u64> {
        let mut notes = self.notes.lock().expect("never poisoned");
        notes.take(Instant::now()).then(|| notes.take_suppressed())
    }

    /// Whether the guest is called for `pod` at all.
    pub fn in_scope(&self, pod: Option<&api::PodSandbox>) -> bool {
        grants::in_scope(&self.settings.scope, pod)
    }

    /// Whether the guest may reject containers: a validator is only
    /// called with the `validate` grant.
    pub fn may_validate(&self) -> bool {
        self.settings.grants.validate
    }

    /// The pod as this guest may read it.
    pub fn pod_for_guest(&self, pod: &api::PodSandbox) -> wit::PodSandbox {
        convert::pod_to_wit(pod, &self.settings.read)
    }

    /// The container as this guest may read it.
    pub fn container_for_guest(&self, container: &api::Container) -> wit::Container {
        convert::container_to_wit(container, &self.settings.read)
    }

    /// A validation request as this guest may read it; `visible` tells
    /// whether the guest's scope has a container, for the updates and
    /// owners of other containers.
    pub fn validation_for_guest(
        &self,
        request: &api::ValidateContainerAdjustmentRequest,
        visible: &dyn Fn(&str) -> bool,
    ) -> wit::ValidateRequest {
        convert::validate_request_to_wit(request, &self.settings.read, visible)
    }

    /// The pods in scope and their containers, as this guest may read them.
    fn visible_node(&self, node: &NodeView) -> (Vec<wit::PodSandbox>, Vec<wit::Container>) {
        let pods = node
            .pods()
            .filter(|p| self.in_scope(Some(p)))
            .map(|p| self.pod_for_guest(p))
            .collect();
        let containers = node
            .containers()
            .filter(|c| node.pod_of(&c.id).is_some_and(|p| self.in_scope(Some(p))))
            .map(|c| self.container_for_guest(c))
            .collect();
        (pods, containers)
    }

    /// Checks an answer against the guest's grants; a refusal is counted
    /// and refuses the whole answer.
    pub fn check_grants(
        &self,
        answer: super::Answer,
        targets: &Targets<'_>,
    ) -> Result<super::Answer, SlotError> {
        let refusals = grants::check_answer(
            &self.settings.grants,
            answer.adjust.as_ref(),
            &answer.updates,
            &answer.evictions,
            targets,
        );
        if refusals.is_empty() {
            return Ok(answer);
        }
        let mut state = self.books();
        for refusal in &refusals {
            *state.stats.refusals.entry(refusal.family).or_default() += 1;
        }
        Err(SlotError::Refused(refusals, Box::new(answer)))
    }

    /// What happened to the guest so far.
    pub fn stats(&self) -> GuestStats {
        self.books().stats.clone()
    }

    /// The events the guest handles: those it exports an interface for,
    /// narrowed to what it asked for in configure, once it was asked.
    pub fn events(&self) -> EventMask {
        let state = self.books();
        state.wanted.unwrap_or_else(|| self.pre.handled_events())
    }

    /// Whether the guest handles `event`.
    pub fn subscribed(&self, event: Event) -> bool {
        self.events().contains(event)
    }

    /// Begins a call: waits for the instance (one call at a time), starts
    /// one first if there is none, and takes the call's deadline from the
    /// budget.
    pub async fn begin(
        &self,
        start: &StartContext<'_>,
        budget: &Budget,
    ) -> Result<SlotCall<'_>, SlotError> {
        let mut home = self.instance.lock().await;
        self.check_enabled()?;
        let instance = match home.take() {
            Some(instance) => instance,
            None => self.start(start, budget).await?.0,
        };
        let deadline = match budget.grant(self.settings.limits.deadline) {
            Ok(deadline) => deadline,
            Err(no_time) => {
                *home = Some(instance);
                return Err(no_time);
            }
        };
        Ok(SlotCall {
            slot: self,
            home,
            instance,
            deadline,
        })
    }

    /// Treats an answer the host cannot take (too large) as a fault of the
    /// guest: its instance is discarded and the fault counted.
    pub async fn refuse_answer(&self, fault: GuestFault) -> SlotError {
        self.instance.lock().await.take();
        match self.settle::<()>(Err(fault)) {
            Err(err) => err,
            Ok(()) => unreachable!("settling a fault is an error"),
        }
    }

    /// Brings the guest up to date with the runtime and the node: starts
    /// a fresh instance, configures it and synchronizes it. Returns its
    /// updates to existing containers.
    pub async fn resync(
        &self,
        start: &StartContext<'_>,
        budget: &Budget,
    ) -> Result<Vec<wit::ContainerUpdate>, SlotError> {
        let mut home = self.instance.lock().await;
        self.check_enabled()?;
        home.take();
        let (instance, updates) = self.start(start, budget).await?;
        *home = Some(instance);
        Ok(updates)
    }

    fn check_enabled(&self) -> Result<(), SlotError> {
        let mut state = self.books();
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

    /// A fresh instance, configured and synchronized, and its updates. The
    /// three steps share one deadline: starting is one call to the budget.
    async fn start(
        &self,
        start: &StartContext<'_>,
        budget: &Budget,
    ) -> Result<(GuestInstance, Vec<wit::ContainerUpdate>), SlotError> {
        let limit = self.settings.limits.deadline;
        let steps = Budget::new(budget.grant(limit)?);
        self.books().stats.instances += 1;
        let mut instance = match self.pre.instantiate(steps.grant(limit)?).await {
            Ok(instance) => instance,
            Err(fault) => return self.settle(Err(fault)),
        };
        let wanted = instance
            .configure(steps.grant(limit)?, &self.settings.config, start.runtime)
            .await;
        let wanted = self.settle(wanted)?;
        let handled = self.pre.handled_events();
        let wanted = wanted.map_or(handled, |w| events_from_wit(w).intersect(handled));
        let validates = wanted.contains(Event::VALIDATE_CONTAINER_ADJUSTMENT);
        if validates && !self.may_validate() && !self.shadow() {
            let mut state = self.books();
            if !state.told_not_validating {
                state.told_not_validating = true;
                tracing::warn!(guest = %self.id(), "guest validates containers but has no `validate = true` grant; it is not asked to");
            }
        }
        self.books().wanted = Some(wanted);

        let (pods, containers) = self.visible_node(&start.node.lock().expect("never poisoned"));
        let updates = instance
            .synchronize(steps.grant(limit)?, &pods, &containers)
            .await;
        let updates = self.settle(updates)?;
        Ok((instance, updates))
    }

    /// Turns a call's result into the slot's answer, keeping the books on
    /// faults.
    fn settle<T>(&self, result: CallResult<T>) -> Result<T, SlotError> {
        let mut state = self.books();
        match result {
            Ok(Ok(answer)) => {
                state.stats.calls += 1;
                Ok(answer)
            }
            Ok(Err(message)) => {
                state.stats.calls += 1;
                Err(SlotError::Failed(GuestText::new(&message, MAX_MESSAGE)))
            }
            Err(fault) => {
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
