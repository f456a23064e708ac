//! ulimit-adjuster: sets POSIX rlimits of containers from pod annotations,
//! in the format of NRI's ulimit-adjuster sample:
//!
//! ```yaml
//! # annotation ulimits.noderesource.dev/container.<container name>
//! - type: RLIMIT_NOFILE
//!   soft: 1024
//!   hard: 4096
//! - type: nproc        # RLIMIT_ prefix and case are optional
//!   soft: 500
//!   hard: 600
//! ```
//!
//! The older key prefix `ulimits.nri.containerd.io` is read too.

use nri_wasm_sdk::{
    export, log, log_enabled, Adjuster, Adjustment, Container, Level, Plugin, PodExt, PodSandbox,
    RuntimeInfo,
};
use serde::Deserialize;

mod block;

const KEYS: [&str; 2] = ["ulimits.noderesource.dev", "ulimits.nri.containerd.io"];
const PREFIX: &str = "RLIMIT_";
/// The rlimits of Linux (setrlimit(2)).
const KNOWN: [&str; 16] = [
    "AS",
    "CORE",
    "CPU",
    "DATA",
    "FSIZE",
    "LOCKS",
    "MEMLOCK",
    "MSGQUEUE",
    "NICE",
    "NOFILE",
    "NPROC",
    "RSS",
    "RTPRIO",
    "RTTIME",
    "SIGPENDING",
    "STACK",
];

/// One rlimit of an annotation.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Ulimit {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub soft: u64,
    #[serde(default)]
    pub hard: u64,
}

/// The annotation for container `name`, if the pod has one.
pub fn annotation<'a>(pod: &'a PodSandbox, name: &str) -> Option<&'a str> {
    KEYS.iter()
        .find_map(|key| pod.annotation(&format!("{key}/container.{name}")))
}

/// Whether `kind` names a Linux rlimit (any case, `RLIMIT_` optional).
fn is_known(kind: &str) -> bool {
    let upper = kind.to_ascii_uppercase();
    KNOWN.contains(&upper.strip_prefix(PREFIX).unwrap_or(&upper))
}

/// Parses an annotation into `(RLIMIT_NAME, soft, hard)` entries.
pub fn parse(value: &str) -> Result<Vec<(String, u64, u64)>, String> {
    let ulimits: Vec<Ulimit> = match block::read(value) {
        Some(ulimits) => ulimits,
        None => {
            serde_norway::from_str(value).map_err(|e| format!("invalid ulimit annotation: {e}"))?
        }
    };
    ulimits
        .into_iter()
        .map(|u| {
            if !is_known(&u.kind) {
                return Err(format!("unknown rlimit type {:?}", u.kind));
            }
            let upper = u.kind.to_ascii_uppercase();
            let bare = upper.strip_prefix(PREFIX).unwrap_or(&upper);
            if u.soft > u.hard {
                return Err(format!(
                    "{PREFIX}{bare}: soft limit {} above hard limit {}",
                    u.soft, u.hard
                ));
            }
            Ok((format!("{PREFIX}{bare}"), u.soft, u.hard))
        })
        .collect()
}

pub struct UlimitAdjuster;

impl Plugin for UlimitAdjuster {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(UlimitAdjuster)
    }
}

impl Adjuster for UlimitAdjuster {
    fn create_container(
        &mut self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<Adjustment, String> {
        let Some(value) = annotation(pod, &container.name) else {
            return Ok(Adjustment::new());
        };
        let ulimits =
            parse(value).map_err(|e| format!("pod {}/{}: {e}", pod.namespace, pod.name))?;
        if log_enabled(Level::Debug) {
            log(
                Level::Debug,
                &format!("container {}: rlimits {ulimits:?}", container.name),
            );
        }
        Ok(ulimits
            .iter()
            .fold(Adjustment::new(), |a, (kind, soft, hard)| {
                a.set_rlimit(kind, *soft, *hard)
            }))
    }
}

export!(UlimitAdjuster: adjuster);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nri_ulimit_annotations() {
        let value = "- type: RLIMIT_NOFILE\n  soft: 1000\n  hard: 2000\n- type: nproc\n  soft: 500\n  hard: 600\n";
        assert_eq!(
            parse(value).unwrap(),
            [
                ("RLIMIT_NOFILE".to_string(), 1000, 2000),
                ("RLIMIT_NPROC".to_string(), 500, 600)
            ]
        );
    }

    #[test]
    fn refuses_bad_limits() {
        assert_eq!(
            parse("- type: files\n  soft: 1\n  hard: 2\n").unwrap_err(),
            "unknown rlimit type \"files\""
        );
        assert_eq!(
            parse("- type: nofile\n  soft: 3\n  hard: 2\n").unwrap_err(),
            "RLIMIT_NOFILE: soft limit 3 above hard limit 2"
        );
        assert!(parse("type: nofile")
            .unwrap_err()
            .starts_with("invalid ulimit annotation"));
    }
}
