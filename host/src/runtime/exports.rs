//! The interfaces a guest exports: found once per component, loaded per
//! instance, in one of two calling conventions. A guest that imports only
//! the host's own interfaces never waits in the host, so it is called
//! directly, in the caller's poll, at no cost beyond the call. A guest that
//! imports WASI may wait in the host (a timer, a poll), where no epoch
//! deadline reaches it, so it is called as a future that yields there and
//! is cut off at its deadline.

use nri_proto::{api::Event, events::EventMask};
use wasmtime::{
    component::{Instance, InstancePre},
    Store,
};

use super::{
    bindings::{self as direct, calls_async as futures},
    sandbox::GuestState,
};

/// Defines, for a bindings module, the indices of the interfaces a
/// component exports and their handles in one instance.
macro_rules! export_set {
    ($indices:ident, $handles:ident, $m:ident) => {
        #[derive(Clone, Default)]
        pub(super) struct $indices {
            lifecycle: Option<$m::lifecycle::GuestIndices>,
            pod_events: Option<$m::pod_events::GuestIndices>,
            container_events: Option<$m::container_events::GuestIndices>,
            adjuster: Option<$m::adjuster::GuestIndices>,
            validator: Option<$m::validator::GuestIndices>,
        }

        /// Export handles of one instance.
        pub(super) struct $handles {
            pub lifecycle: Option<$m::lifecycle::Guest>,
            pub pod_events: Option<$m::pod_events::Guest>,
            pub container_events: Option<$m::container_events::Guest>,
            pub adjuster: Option<$m::adjuster::Guest>,
            pub validator: Option<$m::validator::Guest>,
        }

        impl $indices {
            fn find(pre: &InstancePre<GuestState>) -> Self {
                $indices {
                    lifecycle: $m::lifecycle::GuestIndices::new(pre).ok(),
                    pod_events: $m::pod_events::GuestIndices::new(pre).ok(),
                    container_events: $m::container_events::GuestIndices::new(pre).ok(),
                    adjuster: $m::adjuster::GuestIndices::new(pre).ok(),
                    validator: $m::validator::GuestIndices::new(pre).ok(),
                }
            }

            fn present(&self) -> Present {
                Present {
                    lifecycle: self.lifecycle.is_some(),
                    pod_events: self.pod_events.is_some(),
                    container_events: self.container_events.is_some(),
                    adjuster: self.adjuster.is_some(),
                    validator: self.validator.is_some(),
                }
            }

            fn load(
                &self,
                store: &mut Store<GuestState>,
                instance: &Instance,
            ) -> wasmtime::Result<$handles> {
                Ok($handles {
                    lifecycle: self
                        .lifecycle
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                    pod_events: self
                        .pod_events
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                    container_events: self
                        .container_events
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                    adjuster: self
                        .adjuster
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                    validator: self
                        .validator
                        .as_ref()
                        .map(|i| i.load(&mut *store, instance))
                        .transpose()?,
                })
            }
        }
    };
}

export_set!(DirectIndices, DirectExports, direct);
export_set!(AsyncIndices, AsyncExports, futures);

/// The interfaces a component exports, and how its calls are made.
#[derive(Clone)]
pub(super) enum ExportIndices {
    /// Called directly.
    Direct(DirectIndices),
    /// Called as futures.
    Async(AsyncIndices),
}

/// Export handles of one instance.
pub(super) enum Exports {
    /// Called directly.
    Direct(DirectExports),
    /// Called as futures.
    Async(AsyncExports),
}

impl ExportIndices {
    /// The exports of `pre`, called as futures if `waits_in_host`.
    pub fn find(pre: &InstancePre<GuestState>, waits_in_host: bool) -> Self {
        if waits_in_host {
            ExportIndices::Async(AsyncIndices::find(pre))
        } else {
            ExportIndices::Direct(DirectIndices::find(pre))
        }
    }

    /// Whether calls are futures.
    pub fn is_async(&self) -> bool {
        matches!(self, ExportIndices::Async(_))
    }

    /// Which interfaces are there.
    pub fn present(&self) -> Present {
        match self {
            ExportIndices::Direct(i) => i.present(),
            ExportIndices::Async(i) => i.present(),
        }
    }

    /// The handles of `instance`.
    pub fn load(
        &self,
        store: &mut Store<GuestState>,
        instance: &Instance,
    ) -> wasmtime::Result<Exports> {
        Ok(match self {
            ExportIndices::Direct(i) => Exports::Direct(i.load(store, instance)?),
            ExportIndices::Async(i) => Exports::Async(i.load(store, instance)?),
        })
    }
}

/// Which of the interfaces a component exports.
pub(super) struct Present {
    pub lifecycle: bool,
    pod_events: bool,
    container_events: bool,
    adjuster: bool,
    validator: bool,
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

impl Present {
    /// The events these interfaces deliver.
    pub fn handled(&self) -> EventMask {
        let mut events = Vec::new();
        if self.pod_events {
            events.extend(POD_EVENTS);
        }
        if self.container_events {
            events.extend(CONTAINER_EVENTS);
        }
        if self.adjuster {
            events.extend(ADJUSTER_EVENTS);
        }
        if self.validator {
            events.push(Event::VALIDATE_CONTAINER_ADJUSTMENT);
        }
        events.into_iter().collect()
    }

    /// Their names.
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("lifecycle", self.lifecycle),
            ("pod-events", self.pod_events),
            ("container-events", self.container_events),
            ("adjuster", self.adjuster),
            ("validator", self.validator),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| name)
        .collect()
    }
}
