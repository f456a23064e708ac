//! What observers (metrics, the `test` and `demo` verbs) are told about
//! each guest call.

use std::time::Duration;

use nri_proto::api::{ContainerAdjustment, ContainerEviction, ContainerUpdate};

use super::SlotError;
use crate::runtime::GuestId;

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
}

/// Told about every guest call of a dispatcher. Called on the thread that
/// runs the guests, so it must be quick.
pub trait CallObserver: Send + Sync {
    /// One guest call ended.
    fn call(&self, record: &CallRecord<'_>);
}
