//! Building answers: what to change in a container being created, and
//! updates to existing containers. The helpers write NRI's removal markers
//! (a key prefixed with `-`) so plugins never have to.

use crate::{
    ContainerAdjustment, ContainerEviction, ContainerUpdate, CreateReply, Hook, Hooks,
    LinuxContainerAdjustment, LinuxCpu, LinuxDevice, LinuxMemory, LinuxResources, Mount,
    PosixRlimit, UpdateReply,
};

const REMOVAL: &str = "-";

/// Which OCI hook list a hook goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookStage {
    /// `prestart` (deprecated by OCI, still run by runc).
    Prestart,
    /// `createRuntime`.
    CreateRuntime,
    /// `createContainer`.
    CreateContainer,
    /// `startContainer`.
    StartContainer,
    /// `poststart`.
    Poststart,
    /// `poststop`.
    Poststop,
}

/// Changes to a container being created, plus updates to others.
#[derive(Clone, Debug, Default)]
pub struct Adjustment {
    adjust: Option<ContainerAdjustment>,
    updates: Updates,
}

impl Adjustment {
    /// No change.
    pub fn new() -> Self {
        Adjustment::default()
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.adjust.is_none() && self.updates.is_empty()
    }

    /// The raw adjustment, for fields without a helper.
    pub fn raw(&mut self) -> &mut ContainerAdjustment {
        self.adjust.get_or_insert_with(empty_adjustment)
    }

    fn linux(&mut self) -> &mut LinuxContainerAdjustment {
        self.raw().linux.get_or_insert_with(empty_linux_adjustment)
    }

    fn resources(&mut self) -> &mut LinuxResources {
        self.linux().resources.get_or_insert_with(empty_resources)
    }

    /// Sets an environment variable.
    pub fn add_env(mut self, name: &str, value: &str) -> Self {
        self.raw().env.push((name.to_string(), value.to_string()));
        self
    }

    /// Removes an environment variable.
    pub fn remove_env(mut self, name: &str) -> Self {
        self.raw()
            .env
            .push((format!("{REMOVAL}{name}"), String::new()));
        self
    }

    /// Sets an annotation.
    pub fn add_annotation(mut self, key: &str, value: &str) -> Self {
        self.raw()
            .annotations
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Removes an annotation.
    pub fn remove_annotation(mut self, key: &str) -> Self {
        self.raw()
            .annotations
            .push((format!("{REMOVAL}{key}"), String::new()));
        self
    }

    /// Adds a mount (replacing one at the same destination).
    pub fn add_mount(mut self, mount: Mount) -> Self {
        self.raw().mounts.push(mount);
        self
    }

    /// Removes the mount at `destination`.
    pub fn remove_mount(mut self, destination: &str) -> Self {
        self.raw().mounts.push(Mount {
            destination: format!("{REMOVAL}{destination}"),
            type_: String::new(),
            source: String::new(),
            options: Vec::new(),
        });
        self
    }

    /// Adds a device node (replacing one at the same path).
    pub fn add_device(mut self, device: LinuxDevice) -> Self {
        self.linux().devices.push(device);
        self
    }

    /// Removes the device at `path`.
    pub fn remove_device(mut self, path: &str) -> Self {
        self.linux().devices.push(LinuxDevice {
            path: format!("{REMOVAL}{path}"),
            type_: String::new(),
            major: 0,
            minor: 0,
            file_mode: None,
            uid: None,
            gid: None,
        });
        self
    }

    /// Adds an OCI hook.
    pub fn add_hook(mut self, stage: HookStage, hook: Hook) -> Self {
        let hooks = self.raw().hooks.get_or_insert_with(empty_hooks);
        let list = match stage {
            HookStage::Prestart => &mut hooks.prestart,
            HookStage::CreateRuntime => &mut hooks.create_runtime,
            HookStage::CreateContainer => &mut hooks.create_container,
            HookStage::StartContainer => &mut hooks.start_container,
            HookStage::Poststart => &mut hooks.poststart,
            HookStage::Poststop => &mut hooks.poststop,
        };
        list.push(hook);
        self
    }

    /// Sets a POSIX rlimit (`RLIMIT_NOFILE`, ...).
    pub fn set_rlimit(mut self, kind: &str, soft: u64, hard: u64) -> Self {
        self.raw().rlimits.push(PosixRlimit {
            type_: kind.to_string(),
            soft,
            hard,
        });
        self
    }

    /// Sets the memory limit in bytes.
    pub fn set_memory_limit(mut self, bytes: i64) -> Self {
        self.resources()
            .memory
            .get_or_insert_with(empty_memory)
            .limit = Some(bytes);
        self
    }

    /// Sets the CPU shares.
    pub fn set_cpu_shares(mut self, shares: u64) -> Self {
        self.resources().cpu.get_or_insert_with(empty_cpu).shares = Some(shares);
        self
    }

    /// Replaces the container's arguments.
    pub fn set_args(mut self, args: Vec<String>) -> Self {
        self.raw().args = args;
        self
    }

    /// Also updates another, existing container.
    pub fn update(mut self, update: ContainerUpdate) -> Self {
        self.updates = self.updates.update(update);
        self
    }

    /// Also asks for another container's eviction.
    pub fn evict(mut self, container_id: &str, reason: &str) -> Self {
        self.updates = self.updates.evict(container_id, reason);
        self
    }

    /// The answer as the host receives it.
    pub fn into_reply(self) -> CreateReply {
        CreateReply {
            adjust: self.adjust,
            updates: self.updates.updates,
            evictions: self.updates.evictions,
        }
    }
}

/// Updates to existing containers and evictions.
#[derive(Clone, Debug, Default)]
pub struct Updates {
    updates: Vec<ContainerUpdate>,
    evictions: Vec<ContainerEviction>,
}

impl Updates {
    /// None.
    pub fn new() -> Self {
        Updates::default()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.evictions.is_empty()
    }

    /// Adds an update.
    pub fn update(mut self, update: ContainerUpdate) -> Self {
        self.updates.push(update);
        self
    }

    /// Adds an eviction.
    pub fn evict(mut self, container_id: &str, reason: &str) -> Self {
        self.evictions.push(ContainerEviction {
            container_id: container_id.to_string(),
            reason: reason.to_string(),
        });
        self
    }

    /// The answer as the host receives it.
    pub fn into_reply(self) -> UpdateReply {
        UpdateReply {
            updates: self.updates,
            evictions: self.evictions,
        }
    }
}

/// Resources with nothing set, to fill in.
pub(crate) fn empty_resources() -> LinuxResources {
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

fn empty_adjustment() -> ContainerAdjustment {
    ContainerAdjustment {
        annotations: Vec::new(),
        mounts: Vec::new(),
        env: Vec::new(),
        hooks: None,
        linux: None,
        rlimits: Vec::new(),
        cdi_devices: Vec::new(),
        args: Vec::new(),
    }
}

fn empty_linux_adjustment() -> LinuxContainerAdjustment {
    LinuxContainerAdjustment {
        devices: Vec::new(),
        resources: None,
        cgroups_path: String::new(),
        oom_score_adj: None,
        io_priority: None,
        seccomp_policy: None,
        namespaces: Vec::new(),
        sysctl: Vec::new(),
        net_devices: Vec::new(),
        scheduler: None,
        rdt: None,
        memory_policy: None,
    }
}

fn empty_hooks() -> Hooks {
    Hooks {
        prestart: Vec::new(),
        create_runtime: Vec::new(),
        create_container: Vec::new(),
        start_container: Vec::new(),
        poststart: Vec::new(),
        poststop: Vec::new(),
    }
}

fn empty_memory() -> LinuxMemory {
    LinuxMemory {
        limit: None,
        reservation: None,
        swap: None,
        kernel: None,
        kernel_tcp: None,
        swappiness: None,
        disable_oom_killer: None,
        use_hierarchy: None,
    }
}

fn empty_cpu() -> LinuxCpu {
    LinuxCpu {
        shares: None,
        quota: None,
        period: None,
        realtime_runtime: None,
        realtime_period: None,
        cpus: String::new(),
        mems: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_are_marked() {
        let reply = Adjustment::new()
            .add_env("A", "1")
            .remove_env("B")
            .remove_annotation("x")
            .remove_mount("/data")
            .set_memory_limit(1 << 20)
            .into_reply();
        let adjust = reply.adjust.unwrap();
        assert_eq!(
            adjust.env,
            [("A".into(), "1".into()), ("-B".into(), String::new())]
        );
        assert_eq!(adjust.annotations[0].0, "-x");
        assert_eq!(adjust.mounts[0].destination, "-/data");
        let memory = adjust.linux.unwrap().resources.unwrap().memory.unwrap();
        assert_eq!(memory.limit, Some(1 << 20));
    }

    #[test]
    fn no_change_is_no_adjustment() {
        assert!(Adjustment::new().is_empty());
        assert!(Adjustment::new().into_reply().adjust.is_none());
    }
}
