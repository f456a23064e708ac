//! NRI events, the subscription mask, and which events a runtime knows
//! given its NRI version.
//!
//! A runtime refuses a plugin whose mask has a bit it does not know
//! ("invalid plugin events"), so a plugin must compute its mask from the
//! runtime's version: Configure carries it since NRI v0.12; for older
//! runtimes it is inferred from the runtime's name and version.

use std::fmt;

use crate::api::Event;

/// The events a plugin can subscribe to, in wire order.
pub const ALL_EVENTS: [Event; 14] = [
    Event::RUN_POD_SANDBOX,
    Event::STOP_POD_SANDBOX,
    Event::REMOVE_POD_SANDBOX,
    Event::CREATE_CONTAINER,
    Event::POST_CREATE_CONTAINER,
    Event::START_CONTAINER,
    Event::POST_START_CONTAINER,
    Event::UPDATE_CONTAINER,
    Event::POST_UPDATE_CONTAINER,
    Event::STOP_CONTAINER,
    Event::REMOVE_CONTAINER,
    Event::UPDATE_POD_SANDBOX,
    Event::POST_UPDATE_POD_SANDBOX,
    Event::VALIDATE_CONTAINER_ADJUSTMENT,
];

/// The RPC name of an event, as NRI logs it.
pub fn event_name(event: Event) -> &'static str {
    match event {
        Event::UNKNOWN => "Unknown",
        Event::RUN_POD_SANDBOX => "RunPodSandbox",
        Event::STOP_POD_SANDBOX => "StopPodSandbox",
        Event::REMOVE_POD_SANDBOX => "RemovePodSandbox",
        Event::CREATE_CONTAINER => "CreateContainer",
        Event::POST_CREATE_CONTAINER => "PostCreateContainer",
        Event::START_CONTAINER => "StartContainer",
        Event::POST_START_CONTAINER => "PostStartContainer",
        Event::UPDATE_CONTAINER => "UpdateContainer",
        Event::POST_UPDATE_CONTAINER => "PostUpdateContainer",
        Event::STOP_CONTAINER => "StopContainer",
        Event::REMOVE_CONTAINER => "RemoveContainer",
        Event::UPDATE_POD_SANDBOX => "UpdatePodSandbox",
        Event::POST_UPDATE_POD_SANDBOX => "PostUpdatePodSandbox",
        Event::VALIDATE_CONTAINER_ADJUSTMENT => "ValidateContainerAdjustment",
        Event::LAST => "Last",
    }
}

/// A set of events: bit `1 << (event - 1)` per event, as on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventMask(pub i32);

impl EventMask {
    /// No events.
    pub const NONE: EventMask = EventMask(0);

    /// The mask with just `event`.
    pub fn of(event: Event) -> EventMask {
        match event {
            Event::UNKNOWN | Event::LAST => EventMask::NONE,
            event => EventMask(1 << (event as i32 - 1)),
        }
    }

    /// Every event of an NRI protocol whose `Event::LAST` has value `last`.
    pub fn valid_below(last: i32) -> EventMask {
        EventMask((1 << (last - 1)) - 1)
    }

    /// Whether `event` is in the set.
    pub fn contains(self, event: Event) -> bool {
        let bit = EventMask::of(event).0;
        bit != 0 && self.0 & bit == bit
    }

    /// The events in both sets.
    pub fn intersect(self, other: EventMask) -> EventMask {
        EventMask(self.0 & other.0)
    }

    /// The events in either set.
    pub fn union(self, other: EventMask) -> EventMask {
        EventMask(self.0 | other.0)
    }

    /// The bits of `self` outside `valid`.
    pub fn outside(self, valid: EventMask) -> EventMask {
        EventMask(self.0 & !valid.0)
    }

    /// Whether no event is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The events of the set, in wire order.
    pub fn events(self) -> impl Iterator<Item = Event> {
        ALL_EVENTS.into_iter().filter(move |&e| self.contains(e))
    }
}

impl FromIterator<Event> for EventMask {
    fn from_iter<I: IntoIterator<Item = Event>>(iter: I) -> Self {
        iter.into_iter()
            .fold(EventMask::NONE, |mask, e| mask.union(EventMask::of(e)))
    }
}

impl fmt::Display for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.events().map(event_name).collect();
        write!(f, "{:#x} ({})", self.0, names.join(","))
    }
}

/// A release version `major.minor.patch`, as runtimes and NRI print them:
/// with or without a leading `v`, pre-release and build suffixes ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl Version {
    /// A version from its parts.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Parses `v2.3.4`, `1.36.3`, `v0.12.0-rc.1`, `2.1.0+unknown`; a missing
    /// patch counts as 0. Returns `None` for anything else.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let mut number = |required: bool| match parts.next() {
            Some(p) => p.parse::<u32>().ok(),
            None if !required => Some(0),
            None => None,
        };
        let version = Version::new(number(true)?, number(true)?, number(false)?);
        parts.next().is_none().then_some(version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The first NRI version with UpdatePodSandbox, PostUpdatePodSandbox and
/// ValidateContainerAdjustment (Event::LAST = 15; before it, 12).
pub const NRI_WITH_VALIDATION: Version = Version::new(0, 10, 0);
/// The first NRI version with a dedicated RPC for every event; runtimes on
/// older versions deliver most lifecycle events through StateChange.
pub const NRI_WITH_DEDICATED_RPCS: Version = Version::new(0, 12, 0);
/// The NRI version this crate implements.
pub const NRI_VERSION: Version = Version::new(0, 12, 0);

/// The events a runtime on `nri` knows.
pub fn valid_events(nri: Version) -> EventMask {
    if nri >= NRI_WITH_VALIDATION {
        EventMask::valid_below(Event::LAST as i32)
    } else {
        EventMask::valid_below(Event::UPDATE_POD_SANDBOX as i32)
    }
}

/// Where the NRI version of a runtime was learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NriVersionSource {
    /// Sent in Configure (NRI v0.12 and later).
    Announced,
    /// Inferred from the runtime's name and version.
    Inferred,
    /// Neither worked; the oldest protocol is assumed.
    Assumed(String),
}

/// Works out the NRI version of a runtime from what Configure carried.
///
/// Runtimes before NRI v0.12 send no NRI version; for them the version is
/// the one their release vendored: containerd 2.2.0 ships v0.10, 2.2.1 and
/// later v0.11; CRI-O 1.34 ships v0.10, 1.35 and later v0.11. Anything older,
/// or unknown, is taken as v0.8, whose events every runtime knows.
pub fn runtime_nri_version(
    announced: &str,
    runtime_name: &str,
    runtime_version: &str,
) -> (Version, NriVersionSource) {
    if let Some(version) = Version::parse(announced) {
        return (version, NriVersionSource::Announced);
    }
    const FALLBACK: Version = Version::new(0, 8, 0);
    let Some(runtime) = Version::parse(runtime_version) else {
        return (
            FALLBACK,
            NriVersionSource::Assumed(format!(
                "runtime version {runtime_version:?} of {runtime_name:?} is not a version"
            )),
        );
    };
    let table: &[(Version, Version)] = match runtime_name {
        "containerd" => &[
            (Version::new(2, 2, 1), Version::new(0, 11, 0)),
            (Version::new(2, 2, 0), Version::new(0, 10, 0)),
        ],
        "cri-o" | "crio" | "CRI-O" => &[
            (Version::new(1, 35, 0), Version::new(0, 11, 0)),
            (Version::new(1, 34, 0), Version::new(0, 10, 0)),
        ],
        other => {
            return (
                FALLBACK,
                NriVersionSource::Assumed(format!("unknown runtime {other:?}")),
            )
        }
    };
    let nri = table
        .iter()
        .find(|(since, _)| runtime >= *since)
        .map_or(FALLBACK, |&(_, nri)| nri);
    (nri, NriVersionSource::Inferred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_bits_match_the_wire() {
        assert_eq!(EventMask::of(Event::RUN_POD_SANDBOX).0, 0x1);
        assert_eq!(EventMask::of(Event::CREATE_CONTAINER).0, 0x8);
        assert_eq!(
            EventMask::of(Event::VALIDATE_CONTAINER_ADJUSTMENT).0,
            0x2000
        );
        assert_eq!(valid_events(Version::new(0, 12, 0)).0, 0x3fff);
        assert_eq!(valid_events(Version::new(0, 8, 0)).0, 0x7ff);
        let all: EventMask = ALL_EVENTS.into_iter().collect();
        assert_eq!(all, valid_events(NRI_VERSION));
        assert_eq!(
            EventMask(0x3fff).outside(EventMask(0x7ff)).to_string(),
            "0x3800 (UpdatePodSandbox,PostUpdatePodSandbox,ValidateContainerAdjustment)"
        );
    }

    #[test]
    fn versions_parse_as_runtimes_print_them() {
        let cases = [
            ("v2.3.4", Some(Version::new(2, 3, 4))),
            ("1.36.3", Some(Version::new(1, 36, 3))),
            ("v0.12.0-rc.1", Some(Version::new(0, 12, 0))),
            ("2.1.0+unknown", Some(Version::new(2, 1, 0))),
            ("v1.7", Some(Version::new(1, 7, 0))),
            ("", None),
            ("main", None),
            ("1.2.3.4", None),
        ];
        for (text, want) in cases {
            assert_eq!(Version::parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn runtime_nri_version_is_inferred_like_nri_does() {
        let cases = [
            ("v0.12.0", "containerd", "v2.3.4", "v0.12.0", 0x3fff),
            ("", "containerd", "v2.0.11", "v0.8.0", 0x7ff),
            ("", "containerd", "v1.7.34", "v0.8.0", 0x7ff),
            ("", "containerd", "v2.2.0", "v0.10.0", 0x3fff),
            ("", "containerd", "v2.2.3", "v0.11.0", 0x3fff),
            ("", "cri-o", "1.36.3", "v0.11.0", 0x3fff),
            ("", "cri-o", "1.34.1", "v0.10.0", 0x3fff),
            ("", "cri-o", "1.33.0", "v0.8.0", 0x7ff),
            ("", "podman", "5.0.0", "v0.8.0", 0x7ff),
        ];
        for (announced, name, version, want, mask) in cases {
            let (nri, _) = runtime_nri_version(announced, name, version);
            assert_eq!(nri.to_string(), want, "{name} {version}");
            assert_eq!(valid_events(nri).0, mask, "{name} {version}");
        }
        assert_eq!(
            runtime_nri_version("", "podman", "5.0.0").1,
            NriVersionSource::Assumed("unknown runtime \"podman\"".into())
        );
    }
}
