//! What observers (metrics, the `test` and `demo` verbs) are told about
//! each guest call.

use std::time::Duration;

use nri_proto::api::{ContainerAdjustment, ContainerEviction, ContainerUpdate};

use super::SlotError;
use crate::{grants::suggest::Reach, runtime::GuestId};

/// One guest's answer to one event, in the runtime's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    /// Its changes to the container being created.
    pub adjust: Option<ContainerAdjustment>,
    /// Its updates to containers.
    pub updates: Vec<ContainerUpdate>,
    /// Containers it asks to evict.
    pub evictions: Vec<ContainerEviction>,
    /// A validator's reason to reject the container.
    pub rejection: Option<String>,
}

/// One guest's part in one event.
#[derive(Debug)]
pub struct CallRecord<'a> {
    /// The guest.
    pub guest: &'a GuestId,
    /// The NRI event (`CreateContainer`, ..., `Synchronize`).
    pub event: &'static str,
    /// The container or pod id the event is about.
    pub object: &'a str,
    /// Time from asking the guest to having its checked answer.
    pub elapsed: Duration,
    /// Whether a new instance replaced one lost to a fault.
    pub restarted: bool,
    /// Its answer, or why there is none.
    pub outcome: Result<&'a Answer, &'a SlotError>,
    /// Whether the guest runs in shadow mode: nothing of its answer was
    /// applied.
    pub shadow: bool,
    /// Which containers its updates and evictions name.
    pub reach: Reach,
}

impl CallRecord<'_> {
    /// The answer the guest gave, taken, refused or in conflict.
    pub fn answer(&self) -> Option<&Answer> {
        match self.outcome {
            Ok(answer) => Some(answer),
            Err(SlotError::Refused(_, answer) | SlotError::Conflict(_, answer)) => Some(answer),
            Err(_) => None,
        }
    }
}

/// Told about every guest call of a dispatcher. Called on the thread that
/// runs the guests, so it must be quick.
pub trait CallObserver: Send + Sync {
    /// One guest call ended.
    fn call(&self, record: &CallRecord<'_>);
}
