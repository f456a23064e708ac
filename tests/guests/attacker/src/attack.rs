//! The attack, as its configuration describes it, and how each part
//! becomes an answer in the WIT types.

use std::time::Duration;

use nri_wasm_sdk::{
    log, ContainerAdjustment, ContainerUpdate, Hook, Hooks, Level, LinuxContainerAdjustment,
    LinuxDevice, LinuxDeviceCgroup, LinuxMemory, LinuxNamespace, LinuxPids, LinuxResources,
    LinuxScheduler, LinuxSchedulerFlags, LinuxSchedulerPolicy, Mount, PosixRlimit, ValidateRequest,
};
use serde::Deserialize;

/// Where in its life the guest is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Where {
    Configure,
    Synchronize,
    Create,
    Update,
    Stop,
    Validate,
}

/// Text, given whole or as a piece repeated (for huge strings).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Text {
    Plain(String),
    Repeat { repeat: String, times: usize },
}

impl Text {
    pub fn text(&self) -> String {
        match self {
            Text::Plain(text) => text.clone(),
            Text::Repeat { repeat, times } => repeat.repeat(*times),
        }
    }
}

/// The whole attack.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Attack {
    /// Wait this long in a WASI timer before answering.
    pub sleep_ms: Option<u64>,
    /// Where to do what the prelude does (wait, log, fail); everywhere if
    /// empty.
    pub at: Vec<Where>,
    /// Write this log line.
    pub log: Option<Text>,
    /// Answer with this error.
    pub error: Option<Text>,
    /// The adjustment of a container being created.
    pub create: Adjust,
    /// Updates of containers, in CreateContainer, UpdateContainer and
    /// StopContainer.
    pub updates: Vec<Update>,
    /// Containers to evict, likewise.
    pub evictions: Vec<String>,
    /// Asks for each eviction this many times (for huge answers).
    pub eviction_copies: usize,
    /// Updates in the answer to Synchronize.
    pub sync: Vec<Update>,
    /// As a validator, reject with this reason.
    pub reject: Option<Text>,
    /// As a validator, reject with what it was shown (annotation keys,
    /// mount destinations, owners, updated containers).
    pub reveal: bool,
}

impl Attack {
    /// Waits, logs and fails as configured, where configured.
    pub fn prelude(&self, at: Where) -> Result<(), String> {
        if !self.at.is_empty() && !self.at.contains(&at) {
            return Ok(());
        }
        if let Some(ms) = self.sleep_ms {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if let Some(line) = &self.log {
            log(Level::Warn, &line.text());
        }
        match &self.error {
            Some(error) => Err(error.text()),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adjust {
    pub env: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub mounts: Vec<MountSpec>,
    pub hooks: Vec<HookSpec>,
    pub devices: Vec<DeviceSpec>,
    pub namespaces: Vec<(String, String)>,
    pub sysctl: Vec<(String, String)>,
    pub unified: Vec<(String, String)>,
    pub memory_limit: Option<i64>,
    pub rlimits: Vec<(String, u64, u64)>,
    pub args: Vec<String>,
    /// Adds the device rule `a *:* rwm`: every device.
    pub all_devices: bool,
    /// Adds the device rule `deny a *:* rwm`: no device at all.
    pub deny_all_devices: bool,
    /// Also sets this many variables `APP_0`, `APP_1`, ...
    pub env_many: usize,
    /// Also sets each variable to a value of this many bytes (for large
    /// replies).
    pub env_sized: Vec<(String, usize)>,
    /// Scheduler attributes: policy (`fifo`, `batch`, ...), nice, priority.
    pub scheduler: Option<(String, i32, i32)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MountSpec {
    pub destination: String,
    pub source: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookSpec {
    /// `prestart`, `createRuntime`, `createContainer`, `startContainer`,
    /// `poststart` or `poststop`.
    pub stage: String,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSpec {
    pub path: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub major: i64,
    pub minor: i64,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// An update of a container's resources.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Update {
    /// The container; in Synchronize, `*` updates every container given.
    pub container_id: String,
    pub memory_limit: Option<i64>,
    pub pids: Option<i64>,
    pub unified: Vec<(String, String)>,
    /// Adds the device rule `a *:* rwm`: every device.
    pub all_devices: bool,
    /// Answers this update this many times (for huge answers).
    pub copies: usize,
}

/// The device rule that allows every device, as a rule without a type.
fn every_device() -> LinuxDeviceCgroup {
    LinuxDeviceCgroup {
        allow: true,
        type_: String::new(),
        major: None,
        minor: None,
        access: "rwm".into(),
    }
}

fn resources() -> LinuxResources {
    LinuxResources {
        memory: None,
        cpu: None,
        hugepage_limits: Vec::new(),
        blockio_class: None,
        rdt_class: None,
        unified: Vec::new(),
        devices: Vec::new(),
        pids: None,
    }
}

fn memory(limit: i64) -> LinuxMemory {
    LinuxMemory {
        limit: Some(limit),
        reservation: None,
        swap: None,
        kernel: None,
        kernel_tcp: None,
        swappiness: None,
        disable_oom_killer: None,
        use_hierarchy: None,
    }
}

impl Update {
    pub fn build(&self) -> ContainerUpdate {
        let mut r = resources();
        r.memory = self.memory_limit.map(memory);
        r.pids = self.pids.map(|limit| LinuxPids { limit });
        r.unified = self.unified.clone();
        if self.all_devices {
            r.devices.push(every_device());
        }
        ContainerUpdate {
            container_id: self.container_id.clone(),
            resources: Some(r),
            ignore_failure: false,
        }
    }
}

impl Adjust {
    pub fn build(&self) -> ContainerAdjustment {
        let mut resources = resources();
        resources.memory = self.memory_limit.map(memory);
        resources.unified = self.unified.clone();
        if self.all_devices {
            resources.devices.push(every_device());
        }
        if self.deny_all_devices {
            resources.devices.push(LinuxDeviceCgroup {
                allow: false,
                ..every_device()
            });
        }
        let has_resources = resources.memory.is_some()
            || !resources.unified.is_empty()
            || !resources.devices.is_empty();
        let linux = LinuxContainerAdjustment {
            devices: self.devices.iter().map(DeviceSpec::build).collect(),
            resources: has_resources.then_some(resources),
            cgroups_path: String::new(),
            oom_score_adj: None,
            io_priority: None,
            seccomp_policy: None,
            namespaces: self
                .namespaces
                .iter()
                .map(|(type_, path)| LinuxNamespace {
                    type_: type_.clone(),
                    path: path.clone(),
                })
                .collect(),
            sysctl: self.sysctl.clone(),
            net_devices: Vec::new(),
            scheduler: self.scheduler.as_ref().map(scheduler),
            rdt: None,
            memory_policy: None,
        };
        let many = (0..self.env_many).map(|i| (format!("APP_{i}"), "1".to_string()));
        let sized = self
            .env_sized
            .iter()
            .map(|(name, len)| (name.clone(), "v".repeat(*len)));
        ContainerAdjustment {
            annotations: self.annotations.clone(),
            mounts: self.mounts.iter().map(MountSpec::build).collect(),
            env: self.env.iter().cloned().chain(many).chain(sized).collect(),
            hooks: (!self.hooks.is_empty()).then(|| hooks(&self.hooks)),
            linux: Some(linux),
            rlimits: self
                .rlimits
                .iter()
                .map(|(type_, soft, hard)| PosixRlimit {
                    type_: type_.clone(),
                    soft: *soft,
                    hard: *hard,
                })
                .collect(),
            cdi_devices: Vec::new(),
            args: self.args.clone(),
        }
    }
}

fn scheduler((policy, nice, priority): &(String, i32, i32)) -> LinuxScheduler {
    let policy = match policy.as_str() {
        "other" => LinuxSchedulerPolicy::Other,
        "batch" => LinuxSchedulerPolicy::Batch,
        "idle" => LinuxSchedulerPolicy::Idle,
        "fifo" => LinuxSchedulerPolicy::Fifo,
        "rr" => LinuxSchedulerPolicy::Rr,
        "deadline" => LinuxSchedulerPolicy::Deadline,
        _ => LinuxSchedulerPolicy::None,
    };
    LinuxScheduler {
        policy,
        nice: *nice,
        priority: *priority,
        flags: LinuxSchedulerFlags::empty(),
        runtime: 0,
        deadline: 0,
        period: 0,
    }
}

impl MountSpec {
    fn build(&self) -> Mount {
        Mount {
            destination: self.destination.clone(),
            type_: self.type_.clone(),
            source: self.source.clone(),
            options: self.options.clone(),
        }
    }
}

impl DeviceSpec {
    fn build(&self) -> LinuxDevice {
        LinuxDevice {
            path: self.path.clone(),
            type_: self.type_.clone(),
            major: self.major,
            minor: self.minor,
            file_mode: self.file_mode,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

fn hooks(specs: &[HookSpec]) -> Hooks {
    let mut hooks = Hooks {
        prestart: Vec::new(),
        create_runtime: Vec::new(),
        create_container: Vec::new(),
        start_container: Vec::new(),
        poststart: Vec::new(),
        poststop: Vec::new(),
    };
    for spec in specs {
        let hook = Hook {
            path: spec.path.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            timeout: spec.timeout,
        };
        let list = match spec.stage.as_str() {
            "createRuntime" => &mut hooks.create_runtime,
            "createContainer" => &mut hooks.create_container,
            "startContainer" => &mut hooks.start_container,
            "poststart" => &mut hooks.poststart,
            "poststop" => &mut hooks.poststop,
            _ => &mut hooks.prestart,
        };
        list.push(hook);
    }
    hooks
}

/// What a validator was shown, as one line: the keys a read grant might
/// hide, wherever in the request they are.
pub fn revealed(request: &ValidateRequest) -> String {
    let mut seen = Vec::new();
    for (key, _) in &request.container.annotations {
        seen.push(format!("annotation {key}"));
    }
    if let Some(adjust) = &request.adjust {
        for (key, _) in &adjust.annotations {
            seen.push(format!("adjusted annotation {key}"));
        }
        for mount in &adjust.mounts {
            seen.push(format!("adjusted mount {}", mount.destination));
        }
        for (key, value) in &adjust.env {
            seen.push(format!("adjusted env {key}={value}"));
        }
    }
    for owners in &request.owners {
        for owner in &owners.compound {
            seen.push(format!(
                "owner of {} {:?} {} is {}",
                owners.container_id, owner.field, owner.key, owner.owner
            ));
        }
    }
    for update in &request.updates {
        seen.push(format!("update of {}", update.container_id));
    }
    format!("seen: {}", seen.join("; "))
}
