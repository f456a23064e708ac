//! What kind of runtime to simulate.

use std::{path::PathBuf, time::Duration};

use nri_proto::events::{Version, NRI_VERSION};

use crate::validator::DefaultValidator;

/// The simulated runtime: its identity, NRI version and timeouts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Socket to listen on.
    pub socket: PathBuf,
    /// Runtime name sent in Configure.
    pub runtime_name: String,
    /// Runtime version sent in Configure.
    pub runtime_version: String,
    /// The NRI version the runtime is built with. Decides which events
    /// exist and which travel as StateChange.
    pub nri_version: Version,
    /// Whether Configure carries the NRI version (NRI v0.12 and later).
    pub announce_nri_version: bool,
    /// How long a plugin may take to register after connecting.
    pub registration_timeout: Duration,
    /// How long a plugin may take to answer any request.
    pub request_timeout: Duration,
    /// Pods plus containers per Synchronize page. Real runtimes page by
    /// message size (the ttrpc 4 MiB limit); a count makes paging easy to
    /// provoke in tests.
    pub sync_page_size: usize,
    /// NRI's built-in default validator, if enabled (NRI v0.12 and later).
    pub default_validator: Option<DefaultValidator>,
}

impl SimConfig {
    /// containerd v2.3.4 with NRI v0.12.0 and its default timeouts.
    pub fn containerd_2_3(socket: PathBuf) -> SimConfig {
        SimConfig {
            socket,
            runtime_name: "containerd".into(),
            runtime_version: "v2.3.4".into(),
            nri_version: NRI_VERSION,
            announce_nri_version: true,
            registration_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            sync_page_size: 1000,
            default_validator: None,
        }
    }

    /// containerd v2.0.11 with NRI v0.8.0: no validation, no pod update
    /// events, most lifecycle events as StateChange, no NRI version sent.
    pub fn containerd_2_0(socket: PathBuf) -> SimConfig {
        SimConfig {
            runtime_version: "v2.0.11".into(),
            nri_version: Version::new(0, 8, 0),
            announce_nri_version: false,
            ..SimConfig::containerd_2_3(socket)
        }
    }

    /// CRI-O 1.36.3 with NRI v0.11.0: every v0.11 event, lifecycle events
    /// as StateChange, a version without `v`, no NRI version sent.
    pub fn crio_1_36(socket: PathBuf) -> SimConfig {
        SimConfig {
            runtime_name: "cri-o".into(),
            runtime_version: "1.36.3".into(),
            nri_version: Version::new(0, 11, 0),
            announce_nri_version: false,
            ..SimConfig::containerd_2_3(socket)
        }
    }
}
