//! One event on its way through the guests: who is called, with which
//! budget, how each answer is admitted, and what a guest's failure does
//! to the event.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use nri_proto::{
    api::{Event, PodSandbox},
    events::event_name,
};
use protobuf::Message;

use super::{
    Answer, Budget, CallRecord, Dispatcher, GuestSlot, SlotError, StartContext, MAX_ANSWER_BYTES,
    MAX_REPLY_BYTES,
};
use crate::{
    config::FailurePolicy,
    grants::{
        suggest::{families_of, Reach},
        Targets, UpdateScope,
    },
    protocol::HandlerError,
    runtime::{bindings::types as wit, GuestFault},
    shadow,
};

/// The state of one event shared by its guests' calls.
pub(super) struct EventRun<'a> {
    dispatcher: &'a Dispatcher,
    /// The guests of this moment: a reload during the event changes
    /// nothing of it.
    guests: Arc<Vec<Arc<GuestSlot>>>,
    event: Event,
    pod: Option<&'a PodSandbox>,
    object: &'a str,
    runtime: wit::RuntimeInfo,
    budget: Budget,
    /// Bytes of the reply not yet taken by admitted answers.
    room: AtomicUsize,
}

impl<'a> EventRun<'a> {
    /// `event` about `pod` and `object` (a container or pod id);
    /// `Event::UNKNOWN` stands for Synchronize.
    pub fn new(
        dispatcher: &'a Dispatcher,
        event: Event,
        pod: Option<&'a PodSandbox>,
        object: &'a str,
    ) -> Self {
        EventRun {
            dispatcher,
            guests: dispatcher.guests(),
            event,
            pod,
            object,
            runtime: dispatcher.runtime_info(),
            budget: dispatcher.budget(),
            room: AtomicUsize::new(MAX_REPLY_BYTES),
        }
    }

    fn name(&self) -> &'static str {
        match self.event {
            Event::UNKNOWN => "Synchronize",
            event => event_name(event),
        }
    }

    /// Every guest, in call order.
    pub fn guests(&self) -> impl Iterator<Item = &GuestSlot> {
        self.guests.iter().map(|g| &**g)
    }

    /// The guests subscribed to the event whose scope has its pod.
    pub fn called(&self) -> impl Iterator<Item = &GuestSlot> {
        self.guests().filter(|g| self.calls(g))
    }

    /// What a guest started during this event is brought up to date with.
    pub fn start(&self) -> StartContext<'_> {
        StartContext {
            runtime: &self.runtime,
            node: &self.dispatcher.view,
        }
    }

    /// The time left for `guest`'s call. A shadow guest is called only
    /// with time to spare, and never waits: its instance must be idle, and
    /// what is left must cover its own call and those of the enforcing
    /// guests after it (each twice its deadline if it has to start first),
    /// so that it never leaves them without time.
    pub fn budget_for(&self, guest: &GuestSlot) -> Result<&Budget, SlotError> {
        if !guest.shadow() {
            return Ok(&self.budget);
        }
        if guest.instance_idle().is_none() {
            return Err(SlotError::NoTime);
        }
        let after: Duration = self
            .guests()
            .skip_while(|g| !std::ptr::eq(*g, guest))
            .skip(1)
            .filter(|g| !g.shadow() && self.calls(g))
            .map(worst_call)
            .sum();
        if self.budget.left() < after + worst_call(guest) {
            return Err(SlotError::NoTime);
        }
        Ok(&self.budget)
    }

    /// Whether the event calls `guest` (Synchronize calls every guest).
    fn calls(&self, guest: &GuestSlot) -> bool {
        self.event == Event::UNKNOWN || (guest.subscribed(self.event) && guest.in_scope(self.pod))
    }

    /// Runs one guest's part of the event and reports it to the observers.
    pub async fn observed(
        &self,
        guest: &GuestSlot,
        part: impl Future<Output = Result<Answer, SlotError>>,
    ) -> Result<Answer, SlotError> {
        let observers = &self.dispatcher.observers;
        if observers.is_empty() {
            return part.await;
        }
        let instances = guest.instances();
        let started = Instant::now();
        let outcome = part.await;
        let mut record = CallRecord {
            guest: guest.id(),
            event: self.name(),
            object: self.object,
            elapsed: started.elapsed(),
            restarted: instances > 0 && guest.instances() > instances,
            outcome: outcome.as_ref(),
            shadow: guest.shadow(),
            reach: Reach::default(),
        };
        if let Some(answer) = record.answer() {
            record.reach = self.reach(guest, answer);
        }
        for observer in observers {
            observer.call(&record);
        }
        outcome
    }

    /// Which containers an answer's updates and evictions name, beyond
    /// the one an UpdateContainer is about.
    fn reach(&self, guest: &GuestSlot, answer: &Answer) -> Reach {
        let own = (self.event == Event::UPDATE_CONTAINER).then_some(self.object);
        let pod = self
            .pod
            .filter(|_| self.event != Event::UNKNOWN)
            .map(|p| p.id.as_str());
        let mut reach = Reach::default();
        let updated = answer
            .updates
            .iter()
            .map(|u| u.container_id.as_str())
            .filter(|id| Some(*id) != own);
        for id in updated {
            reach.scope = match self.dispatcher.visible_pod_of(guest, id) {
                None => {
                    reach.unseen.push(id.to_string());
                    continue;
                }
                Some(target) if Some(target.as_str()) == pod => UpdateScope::SamePod,
                Some(_) => UpdateScope::Any,
            }
            .max(reach.scope);
        }
        let evicted = answer.evictions.iter().map(|e| &e.container_id);
        reach.unseen.extend(
            evicted
                .filter(|id| self.dispatcher.visible_pod_of(guest, id).is_none())
                .cloned(),
        );
        reach
    }

    /// Takes an answer the host can hold and the guest's grants allow:
    /// within the size of one answer and the room left in the reply, and
    /// naming only containers the guest may see. `own` is the container
    /// whose update the event is about, if the guest may change it;
    /// `user_namespace` whether the container being created runs in one.
    pub async fn admit(
        &self,
        guest: &GuestSlot,
        answer: Answer,
        own: Option<&str>,
        user_namespace: bool,
    ) -> Result<Answer, SlotError> {
        let size = answer.size();
        if size > MAX_ANSWER_BYTES {
            let fault = GuestFault::AnswerTooLarge {
                size,
                max: MAX_ANSWER_BYTES,
            };
            return Err(guest.refuse_answer(fault).await);
        }
        let visible_pod_of = |id: &str| self.dispatcher.visible_pod_of(guest, id);
        let targets = Targets {
            own,
            pod_id: self
                .pod
                .filter(|_| self.event != Event::UNKNOWN)
                .map(|p| p.id.as_str()),
            visible_pod_of: &visible_pod_of,
            user_namespace,
        };
        let answer = guest.check_grants(answer, &targets)?;
        if guest.shadow() {
            // Never sent: it takes no room in the reply.
            return Ok(answer);
        }
        self.room
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |room| {
                room.checked_sub(size)
            })
            .map_err(|room| SlotError::ReplyFull { size, room })?;
        Ok(answer)
    }

    /// Settles a shadow guest's call: nothing of it is applied, whatever
    /// it answered, and its failures fail nothing. What it would have
    /// changed, and what would have been refused, goes to the log.
    pub fn shadowed(&self, guest: &GuestSlot, outcome: &Result<Answer, SlotError>) {
        let answer = match outcome {
            Ok(answer) => answer,
            Err(SlotError::Refused(_, answer) | SlotError::Conflict(_, answer)) => answer,
            Err(err) => return self.note_failure(guest, err, "shadow mode: nothing applied"),
        };
        if guest.note().is_none() {
            return;
        }
        let (what, object) = (self.name(), self.object);
        let reach = self.reach(guest, answer);
        let changes = families_of(shadow::observed(answer, &reach, what));
        let refused: Vec<String> = match outcome {
            Err(SlotError::Refused(refusals, _)) => {
                refusals.iter().map(|r| r.field.clone()).collect()
            }
            _ => Vec::new(),
        };
        let rejection = answer.rejection.as_deref().map(quoted);
        tracing::info!(
            guest = %guest.id(), event = what, object, would_change = ?changes,
            would_refuse = ?refused, would_reject = ?rejection,
            "shadow guest answered; nothing applied"
        );
    }

    /// Logs a guest's failure; with fail-closed, the event fails too.
    pub fn failed(&self, guest: &GuestSlot, err: &SlotError) -> Result<(), HandlerError> {
        if guest.shadow() {
            self.note_failure(guest, err, "shadow mode: nothing applied");
            return Ok(());
        }
        match guest.failure_policy() {
            FailurePolicy::FailOpen => {
                self.note_failure(guest, err, "skipped (fail-open)");
                Ok(())
            }
            FailurePolicy::FailClosed => {
                self.note_failure(guest, err, "failing the event (fail-closed)");
                Err(HandlerError(format!(
                    "guest {} {err} ({} of {})",
                    guest.id(),
                    self.name(),
                    self.object
                )))
            }
        }
    }

    /// Logs a guest's failure at Synchronize, which goes on without it
    /// whatever its policy: failing Synchronize would keep the host from
    /// registering, leaving the node without any guest. The guest starts
    /// afresh at its next event, where its policy applies.
    pub fn failed_to_start(&self, guest: &GuestSlot, err: &SlotError) {
        self.note_failure(guest, err, "it starts afresh at its next event");
    }

    /// Writes a guest's failure and each refused field to the log, unless
    /// the guest has used up its share of lines. Guest text goes quoted.
    fn note_failure(&self, guest: &GuestSlot, err: &SlotError, then: &str) {
        let Some(suppressed) = guest.note() else {
            return;
        };
        let (what, object) = (self.name(), self.object);
        if suppressed > 0 {
            tracing::warn!(guest = %guest.id(), lines = suppressed, "lines about the guest suppressed (rate limit)");
        }
        if let SlotError::Refused(refusals, _) = err {
            for refusal in refusals {
                tracing::warn!(
                    guest = %guest.id(), event = what, object, family = %refusal.family,
                    field = %refusal.field, value = %quoted(&refusal.value), grant = %refusal.grant,
                    "refused a change beyond the guest's grants"
                );
            }
        }
        let error = quoted(&err.to_string());
        match guest.failure_policy() {
            FailurePolicy::FailClosed if then.starts_with("failing") => {
                tracing::error!(guest = %guest.id(), event = what, object, %error, "guest failed; {then}")
            }
            _ => {
                tracing::warn!(guest = %guest.id(), event = what, object, %error, "guest failed; {then}")
            }
        }
    }
}

/// The longest a call of `guest` may take: twice its deadline when it has
/// to start (instantiate, configure, synchronize) first.
fn worst_call(guest: &GuestSlot) -> Duration {
    match guest.instance_idle() {
        Some(true) => guest.deadline(),
        _ => guest.deadline() * 2,
    }
}

/// Text in quotes, for a log field: guest text is escaped (quotes too), so
/// it cannot end the field and forge another.
fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

impl Answer {
    /// Its encoded size, as it would travel to the runtime.
    pub fn size(&self) -> usize {
        fn sizes<M: Message>(items: &[M]) -> usize {
            items.iter().map(|m| m.compute_size() as usize).sum()
        }
        self.adjust
            .as_ref()
            .map_or(0, |a| a.compute_size() as usize)
            + sizes(&self.updates)
            + sizes(&self.evictions)
            + self.rejection.as_ref().map_or(0, String::len)
    }
}
