//! The grant check: a pure function of (grants, answer). Every adjustable
//! field of NRI is in one of two tables below, each entry with the check
//! of its family; a test walks the protobuf descriptors and fails if a
//! field of `ContainerAdjustment` or `ContainerUpdate` has no entry, so no
//! field can be forgotten. Removals (NRI's `-` markers) need the same
//! grant as setting the entry.

use std::fmt;

use nri_proto::{
    adjust::split_marker,
    api::{ContainerAdjustment, ContainerEviction, ContainerUpdate, LinuxResources},
};

use super::{
    effective, instructions,
    model::{
        Bounds, DeviceGrant, DeviceRuleGrant, Grants, HookGrant, HookStage, MountGrant,
        NamespaceGrant, Patterns, SchedulerGrant, UpdateScope,
    },
};
use crate::untrusted::{GuestText, MAX_VALUE};

/// A grant family: one operator-visible key of `[plugins.NAME.grants]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `annotations`
    Annotations,
    /// `env`
    Env,
    /// `mounts`
    Mounts,
    /// `hooks`
    Hooks,
    /// `devices`
    Devices,
    /// `device-rules`
    DeviceRules,
    /// `cdi-devices`
    CdiDevices,
    /// `rlimits`
    Rlimits,
    /// `cpu`
    Cpu,
    /// `memory`
    Memory,
    /// `hugepages`
    Hugepages,
    /// `blockio-class`
    BlockioClass,
    /// `rdt-class`
    RdtClass,
    /// `rdt`
    Rdt,
    /// `unified`
    Unified,
    /// `pids`
    Pids,
    /// `oom-score-adj`
    OomScoreAdj,
    /// `args`
    Args,
    /// `namespaces`
    Namespaces,
    /// `seccomp`
    Seccomp,
    /// `sysctl`
    Sysctl,
    /// `net-devices`
    NetDevices,
    /// `scheduler`
    Scheduler,
    /// `io-priority`
    IoPriority,
    /// `cgroups-path`
    CgroupsPath,
    /// `memory-policy`
    MemoryPolicy,
    /// `updates`
    Updates,
    /// `evictions`
    Evictions,
}

impl Family {
    /// The key in the grants file.
    pub fn key(self) -> &'static str {
        match self {
            Family::Annotations => "annotations",
            Family::Env => "env",
            Family::Mounts => "mounts",
            Family::Hooks => "hooks",
            Family::Devices => "devices",
            Family::DeviceRules => "device-rules",
            Family::CdiDevices => "cdi-devices",
            Family::Rlimits => "rlimits",
            Family::Cpu => "cpu",
            Family::Memory => "memory",
            Family::Hugepages => "hugepages",
            Family::BlockioClass => "blockio-class",
            Family::RdtClass => "rdt-class",
            Family::Rdt => "rdt",
            Family::Unified => "unified",
            Family::Pids => "pids",
            Family::OomScoreAdj => "oom-score-adj",
            Family::Args => "args",
            Family::Namespaces => "namespaces",
            Family::Seccomp => "seccomp",
            Family::Sysctl => "sysctl",
            Family::NetDevices => "net-devices",
            Family::Scheduler => "scheduler",
            Family::IoPriority => "io-priority",
            Family::CgroupsPath => "cgroups-path",
            Family::MemoryPolicy => "memory-policy",
            Family::Updates => "updates",
            Family::Evictions => "evictions",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A change a guest asked for beyond its grants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} \"{value}\" is not granted ({family} grant: {grant})")]
pub struct Refusal {
    /// The grant family that does not allow it.
    pub family: Family,
    /// The field, as NRI names it (`env`, `linux.resources.memory.limit`).
    pub field: String,
    /// The value asked for.
    pub value: String,
    /// What the grant allows.
    pub grant: String,
}

type Check<T> = fn(&Grants, &T) -> Result<(), Refusal>;

fn refuse(
    family: Family,
    field: &str,
    value: impl fmt::Display,
    grant: impl fmt::Display,
) -> Refusal {
    Refusal {
        family,
        field: field.to_string(),
        // The value is the guest's: made safe to log and show.
        value: GuestText::new(&value.to_string(), MAX_VALUE).to_string(),
        grant: grant.to_string(),
    }
}

/// A key (possibly a removal) in its runtime form, against key patterns.
fn key_allowed(
    family: Family,
    field: &str,
    patterns: &Patterns,
    key: &str,
    form: fn(&str) -> Result<(), &'static str>,
) -> Result<(), Refusal> {
    let (name, _) = split_marker(key);
    form(name).map_err(|want| refuse(family, field, key, want))?;
    names_allowed(family, patterns, name).map_err(|grant| refuse(family, field, key, grant))
}

/// A name against name patterns, where a name some program reads as an
/// instruction is admitted only by a grant that names it; else what the
/// grant admits.
fn names_allowed(family: Family, patterns: &Patterns, name: &str) -> Result<(), String> {
    let list = instructions::of(family);
    if instructions::admits(patterns, list, name) {
        return Ok(());
    }
    Err(match instructions::find(list, name) {
        Some(i) => format!(
            "{}, which does not name it; it is an instruction: {}",
            patterns.describe(),
            i.does
        ),
        None => patterns.describe(),
    })
}

/// Any key is taken as written.
fn any_form(_: &str) -> Result<(), &'static str> {
    Ok(())
}

/// A value against optional bounds (absent: not granted).
fn bounded<T: PartialOrd + Copy + fmt::Display>(
    family: Family,
    field: &str,
    bounds: &Option<Bounds<T>>,
    value: Option<T>,
) -> Result<(), Refusal> {
    match (value, bounds) {
        (None, _) => Ok(()),
        (Some(v), Some(b)) if b.contains(v) => Ok(()),
        (Some(v), Some(b)) => Err(refuse(family, field, v, b.describe())),
        (Some(v), None) => Err(refuse(family, field, v, "none")),
    }
}

/// A switch-like grant: anything set needs it.
fn switch(
    family: Family,
    field: &str,
    granted: bool,
    set: bool,
    value: impl fmt::Display,
) -> Result<(), Refusal> {
    if set && !granted {
        Err(refuse(family, field, value, "false"))
    } else {
        Ok(())
    }
}

/// Every field of `ContainerAdjustment`, with its grant family and its
/// check. The path names the protobuf field.
pub const ADJUSTMENT_FIELDS: &[(&str, Family, Check<ContainerAdjustment>)] = &[
    ("annotations", Family::Annotations, |g, a| {
        sorted_keys(&a.annotations).into_iter().try_for_each(|k| {
            key_allowed(
                Family::Annotations,
                "annotations",
                &g.annotations,
                k,
                effective::annotation_key,
            )
        })
    }),
    ("mounts", Family::Mounts, |g, a| {
        a.mounts.iter().try_for_each(|m| check_mount(g, m))
    }),
    ("env", Family::Env, |g, a| {
        a.env
            .iter()
            .try_for_each(|kv| key_allowed(Family::Env, "env", &g.env, &kv.key, effective::env_key))
    }),
    ("hooks", Family::Hooks, |g, a| {
        let Some(h) = a.hooks.as_ref() else {
            return Ok(());
        };
        hook_stages(h).into_iter().try_for_each(|(stage, hooks)| {
            hooks.iter().try_for_each(|hook| check_hook(g, stage, hook))
        })
    }),
    ("rlimits", Family::Rlimits, |g, a| {
        a.rlimits
            .iter()
            .try_for_each(|r| match g.rlimits.get(&r.type_) {
                Some(max) if r.hard <= *max && r.soft <= r.hard => Ok(()),
                Some(max) => Err(refuse(
                    Family::Rlimits,
                    "rlimits",
                    format!("{} soft {} hard {}", r.type_, r.soft, r.hard),
                    format!("{} up to {max}", r.type_),
                )),
                None => Err(refuse(
                    Family::Rlimits,
                    "rlimits",
                    &r.type_,
                    format!("{:?}", g.rlimits.keys().collect::<Vec<_>>()),
                )),
            })
    }),
    ("CDI_devices", Family::CdiDevices, |g, a| {
        a.CDI_devices.iter().try_for_each(|d| {
            key_allowed(
                Family::CdiDevices,
                "CDI_devices",
                &g.cdi_devices,
                &d.name,
                any_form,
            )
        })
    }),
    ("args", Family::Args, |g, a| {
        switch(
            Family::Args,
            "args",
            g.args,
            !a.args.is_empty(),
            a.args.join(" "),
        )
    }),
    ("linux.devices", Family::Devices, |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        l.devices.iter().try_for_each(|d| check_device(g, d))
    }),
    // Each field of the resources is checked by RESOURCE_FIELDS.
    ("linux.resources", Family::Memory, |g, a| {
        let Some(r) = a.linux.as_ref().and_then(|l| l.resources.as_ref()) else {
            return Ok(());
        };
        check_resources(g, r)
    }),
    ("linux.cgroups_path", Family::CgroupsPath, |g, a| {
        let path = a.linux.as_ref().map_or("", |l| l.cgroups_path.as_str());
        switch(
            Family::CgroupsPath,
            "linux.cgroups_path",
            g.cgroups_path,
            !path.is_empty(),
            path,
        )
    }),
    ("linux.oom_score_adj", Family::OomScoreAdj, |g, a| {
        let value = a
            .linux
            .as_ref()
            .and_then(|l| l.oom_score_adj.as_ref())
            .map(|o| o.value);
        bounded(
            Family::OomScoreAdj,
            "linux.oom_score_adj",
            &g.oom_score_adj,
            value,
        )
    }),
    ("linux.io_priority", Family::IoPriority, |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.io_priority.is_some());
        switch(
            Family::IoPriority,
            "linux.io_priority",
            g.io_priority,
            set,
            "set",
        )
    }),
    ("linux.seccomp_policy", Family::Seccomp, |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.seccomp_policy.is_some());
        switch(
            Family::Seccomp,
            "linux.seccomp_policy",
            g.seccomp,
            set,
            "set",
        )
    }),
    ("linux.namespaces", Family::Namespaces, |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        l.namespaces.iter().try_for_each(|n| check_namespace(g, n))
    }),
    ("linux.sysctl", Family::Sysctl, |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        sorted_keys(&l.sysctl).into_iter().try_for_each(|k| {
            key_allowed(
                Family::Sysctl,
                "linux.sysctl",
                &g.sysctl,
                k,
                effective::sysctl_key,
            )
        })
    }),
    ("linux.net_devices", Family::NetDevices, |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        sorted_keys(&l.net_devices).into_iter().try_for_each(|k| {
            key_allowed(
                Family::NetDevices,
                "linux.net_devices",
                &g.net_devices,
                k,
                effective::net_device,
            )
        })
    }),
    ("linux.scheduler", Family::Scheduler, |g, a| {
        match a.linux.as_ref().and_then(|l| l.scheduler.as_ref()) {
            Some(s) => check_scheduler(g, s),
            None => Ok(()),
        }
    }),
    ("linux.rdt", Family::Rdt, |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.rdt.is_some());
        switch(Family::Rdt, "linux.rdt", g.rdt, set, "set")
    }),
    ("linux.memory_policy", Family::MemoryPolicy, |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.memory_policy.is_some());
        switch(
            Family::MemoryPolicy,
            "linux.memory_policy",
            g.memory_policy,
            set,
            "set",
        )
    }),
];

/// Every field of `LinuxResources`, in adjustments and updates alike, with
/// its grant family and its check.
pub const RESOURCE_FIELDS: &[(&str, Family, Check<LinuxResources>)] = &[
    ("memory", Family::Memory, |g, r| {
        let Some(m) = r.memory.as_ref() else {
            return Ok(());
        };
        let f =
            |o: &protobuf::MessageField<nri_proto::api::OptionalInt64>| o.as_ref().map(|v| v.value);
        bounded(
            Family::Memory,
            "linux.resources.memory.limit",
            &g.memory.limit,
            f(&m.limit),
        )?;
        bounded(
            Family::Memory,
            "linux.resources.memory.reservation",
            &g.memory.reservation,
            f(&m.reservation),
        )?;
        bounded(
            Family::Memory,
            "linux.resources.memory.swap",
            &g.memory.swap,
            f(&m.swap),
        )?;
        bounded(
            Family::Memory,
            "linux.resources.memory.kernel",
            &g.memory.kernel,
            f(&m.kernel),
        )?;
        bounded(
            Family::Memory,
            "linux.resources.memory.kernel_tcp",
            &g.memory.kernel,
            f(&m.kernel_tcp),
        )?;
        bounded(
            Family::Memory,
            "linux.resources.memory.swappiness",
            &g.memory.swappiness,
            m.swappiness.as_ref().map(|v| v.value),
        )?;
        let oom = m.disable_oom_killer.as_ref().map(|v| v.value);
        switch(
            Family::Memory,
            "linux.resources.memory.disable_oom_killer",
            g.memory.oom_kill,
            oom.is_some(),
            format!("{oom:?}"),
        )?;
        let hierarchy = m.use_hierarchy.as_ref().map(|v| v.value);
        switch(
            Family::Memory,
            "linux.resources.memory.use_hierarchy",
            g.memory.use_hierarchy,
            hierarchy.is_some(),
            format!("{hierarchy:?}"),
        )
    }),
    ("cpu", Family::Cpu, |g, r| {
        let Some(c) = r.cpu.as_ref() else {
            return Ok(());
        };
        bounded(
            Family::Cpu,
            "linux.resources.cpu.shares",
            &g.cpu.shares,
            c.shares.as_ref().map(|v| v.value),
        )?;
        bounded(
            Family::Cpu,
            "linux.resources.cpu.quota",
            &g.cpu.quota,
            c.quota.as_ref().map(|v| v.value),
        )?;
        bounded(
            Family::Cpu,
            "linux.resources.cpu.period",
            &g.cpu.period,
            c.period.as_ref().map(|v| v.value),
        )?;
        let cpuset = format!("cpus {} mems {}", c.cpus, c.mems);
        switch(
            Family::Cpu,
            "linux.resources.cpu.cpuset",
            g.cpu.cpuset,
            !c.cpus.is_empty() || !c.mems.is_empty(),
            cpuset,
        )?;
        let realtime = c.realtime_runtime.is_some() || c.realtime_period.is_some();
        switch(
            Family::Cpu,
            "linux.resources.cpu.realtime",
            g.cpu.realtime,
            realtime,
            "set",
        )
    }),
    ("hugepage_limits", Family::Hugepages, |g, r| {
        r.hugepage_limits.iter().try_for_each(|h| {
            key_allowed(
                Family::Hugepages,
                "linux.resources.hugepage_limits",
                &g.hugepages,
                &h.page_size,
                any_form,
            )
        })
    }),
    ("blockio_class", Family::BlockioClass, |g, r| {
        match r.blockio_class.as_ref() {
            Some(c) => key_allowed(
                Family::BlockioClass,
                "linux.resources.blockio_class",
                &g.blockio_class,
                &c.value,
                any_form,
            ),
            None => Ok(()),
        }
    }),
    ("rdt_class", Family::RdtClass, |g, r| {
        match r.rdt_class.as_ref() {
            Some(c) => key_allowed(
                Family::RdtClass,
                "linux.resources.rdt_class",
                &g.rdt_class,
                &c.value,
                any_form,
            ),
            None => Ok(()),
        }
    }),
    ("unified", Family::Unified, |g, r| {
        sorted_keys(&r.unified).into_iter().try_for_each(|k| {
            key_allowed(
                Family::Unified,
                "linux.resources.unified",
                &g.unified,
                k,
                effective::unified_key,
            )
        })
    }),
    ("devices", Family::DeviceRules, |g, r| {
        r.devices
            .iter()
            .try_for_each(|rule| check_device_rule(g, rule))
    }),
    ("pids", Family::Pids, |g, r| {
        bounded(
            Family::Pids,
            "linux.resources.pids",
            &g.pids,
            r.pids.as_ref().map(|p| p.limit),
        )
    }),
];

fn sorted_keys<V>(map: &std::collections::HashMap<String, V>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn check_resources(grants: &Grants, resources: &LinuxResources) -> Result<(), Refusal> {
    RESOURCE_FIELDS
        .iter()
        .try_for_each(|(_, _, check)| check(grants, resources))
}

/// The grant family of the field at `path` (`linux.resources.unified`) of
/// an adjustment or an update.
fn family_of(path: &str) -> Family {
    if let Some(resource) = path.strip_prefix("linux.resources.") {
        let field = resource.split('.').next().unwrap_or_default();
        if let Some((_, family, _)) = RESOURCE_FIELDS.iter().find(|(f, _, _)| *f == field) {
            return *family;
        }
    }
    ADJUSTMENT_FIELDS
        .iter()
        .filter(|(f, _, _)| path == *f || path.starts_with(&format!("{f}.")))
        .max_by_key(|(f, _, _)| f.len())
        .map_or(Family::Updates, |(_, family, _)| *family)
}

/// No answer may hold NUL bytes, huge strings or endless lists.
fn check_shape(message: &dyn protobuf::MessageDyn, family: Option<Family>) -> Result<(), Refusal> {
    match effective::malformed_in(message) {
        None => Ok(()),
        Some(m) => Err(refuse(
            family.unwrap_or_else(|| family_of(&m.field)),
            &m.field,
            m.found,
            m.want,
        )),
    }
}

fn check_mount(grants: &Grants, mount: &nri_proto::api::Mount) -> Result<(), Refusal> {
    let (destination, removal) = split_marker(&mount.destination);
    let refusal = |grant: &str| {
        let value = format!(
            "{} from {} ({} {})",
            mount.destination,
            mount.source,
            mount.type_,
            mount.options.join(",")
        );
        refuse(Family::Mounts, "mounts", value, grant)
    };
    if removal {
        effective::clean_absolute(destination)
            .map_err(|want| refusal(&format!("a destination that is {want}")))?;
        return match grants
            .mounts
            .iter()
            .any(|g| g.destination.matches(destination))
        {
            true => Ok(()),
            false => Err(refusal(&format!("{} grants", grants.mounts.len()))),
        };
    }
    let mount_as = effective::effective_mount(mount).map_err(|want| refusal(&want))?;
    let fits = |g: &MountGrant| {
        let sources = match (&mount_as.host_paths[..], &g.source) {
            ([], source) => source.as_ref().is_none_or(|s| s.matches(&mount.source)),
            (paths, Some(source)) => paths.iter().all(|p| source.matches(p)),
            (_, None) => false,
        };
        g.destination.matches(destination)
            && g.types.iter().any(|t| t == mount_as.kind)
            && sources
            && (g.read_write || !mount_as.writable)
            && mount_as
                .granted_options
                .iter()
                .all(|o| g.options.matches(o))
    };
    if grants.mounts.iter().any(fits) {
        return Ok(());
    }
    let made = format!(
        "a {} mount, {}{}",
        mount_as.kind,
        if mount_as.writable {
            "writable"
        } else {
            "read-only"
        },
        if mount_as.granted_options.is_empty() {
            String::new()
        } else {
            format!(", with {}", mount_as.granted_options.join(","))
        }
    );
    Err(refusal(&format!(
        "{} grants; the runtime would make it {made}",
        grants.mounts.len()
    )))
}

/// Each stage's hook list.
pub(super) fn hook_stages(
    hooks: &nri_proto::api::Hooks,
) -> [(HookStage, &Vec<nri_proto::api::Hook>); 6] {
    [
        (HookStage::Prestart, &hooks.prestart),
        (HookStage::CreateRuntime, &hooks.create_runtime),
        (HookStage::CreateContainer, &hooks.create_container),
        (HookStage::StartContainer, &hooks.start_container),
        (HookStage::Poststart, &hooks.poststart),
        (HookStage::Poststop, &hooks.poststop),
    ]
}

fn check_hook(
    grants: &Grants,
    stage: HookStage,
    hook: &nri_proto::api::Hook,
) -> Result<(), Refusal> {
    let value = format!("{stage:?} {} {:?}", hook.path, hook.args);
    let refusal = |grant: &str| refuse(Family::Hooks, "hooks", &value, grant);
    // crun looks a relative path up in its own PATH; runc in the bundle.
    effective::clean_absolute(&hook.path)
        .map_err(|want| refusal(&format!("a path that is {want}")))?;
    let mut names = Vec::new();
    for entry in &hook.env {
        let name = entry
            .split_once('=')
            .map(|(name, _)| name)
            .ok_or_else(|| refusal("env entries of the form NAME=value"))?;
        effective::env_key(name).map_err(|want| refusal(&format!("env names that are {want}")))?;
        names.push(name);
    }
    let timeout = hook.timeout.as_ref().map(|t| t.value);
    if timeout.is_some_and(|t| !(1..=effective::MAX_HOOK_TIMEOUT).contains(&t)) {
        return Err(refusal("a timeout, when given, of 1 to 3600 seconds"));
    }
    let fits = |g: &HookGrant| {
        let args = match &g.args {
            Some(args) => args.matches_each(&hook.args),
            None => hook.args.is_empty() || hook.args == [hook.path.clone()],
        };
        let timeout = match g.max_timeout {
            Some(max) => timeout.is_some_and(|t| t <= max),
            None => true,
        };
        g.path.matches(&hook.path)
            && g.stages.as_ref().is_none_or(|s| s.contains(&stage))
            && args
            && names
                .iter()
                .all(|n| names_allowed(Family::Hooks, &g.env, n).is_ok())
            && timeout
    };
    match grants.hooks.iter().any(fits) {
        true => Ok(()),
        false => Err(refusal(&format!("{} grants", grants.hooks.len()))),
    }
}

/// Scheduler attributes: ones runc and the kernel take (else the
/// container fails), of a policy the grant lists, each value within its
/// bounds (absent: 0), with only flags it lists.
fn check_scheduler(grants: &Grants, s: &nri_proto::api::LinuxScheduler) -> Result<(), Refusal> {
    let value = format!(
        "{:?} nice {} priority {} flags {:?} runtime {} deadline {} period {}",
        s.policy, s.nice, s.priority, s.flags, s.runtime, s.deadline, s.period
    );
    let refusal = |grant: &str| refuse(Family::Scheduler, "linux.scheduler", &value, grant);
    let (Some(policy), Some(flags)) = (
        effective::scheduler_policy(s),
        effective::scheduler_flags(s),
    ) else {
        return Err(refusal("a policy and flags the kernel has"));
    };
    effective::scheduler_attributes(policy, s).map_err(refusal)?;
    let Some(g) = grants.scheduler.as_ref() else {
        return Err(refusal("none"));
    };
    let fits = g.policies.contains(&policy)
        && zero_or_within(g.nice, s.nice)
        // Every policy but fifo and rr takes priority 0 only.
        && (s.priority == 0 || zero_or_within(g.priority, s.priority))
        && flags.iter().all(|f| g.flags.contains(f))
        && zero_or_within(g.runtime, s.runtime)
        && zero_or_within(g.deadline, s.deadline)
        && zero_or_within(g.period, s.period);
    match fits {
        true => Ok(()),
        false => Err(refusal(&scheduler_grant(g))),
    }
}

/// A value within bounds; without bounds, 0: the value that changes
/// nothing.
fn zero_or_within<T: PartialOrd + Copy + Default + fmt::Display>(
    b: Option<Bounds<T>>,
    v: T,
) -> bool {
    b.map_or(v == T::default(), |b| b.contains(v))
}

/// A scheduler grant, for messages.
fn scheduler_grant(g: &SchedulerGrant) -> String {
    let bounds = |b: Option<String>| b.unwrap_or_else(|| "0".into());
    format!(
        "policies {:?}, nice {}, priority {}, flags {:?}, runtime {}, deadline {}, period {}",
        g.policies,
        bounds(g.nice.map(|b| b.describe())),
        bounds(g.priority.map(|b| b.describe())),
        g.flags,
        bounds(g.runtime.map(|b| b.describe())),
        bounds(g.deadline.map(|b| b.describe())),
        bounds(g.period.map(|b| b.describe())),
    )
}

fn check_device(grants: &Grants, device: &nri_proto::api::LinuxDevice) -> Result<(), Refusal> {
    let (path, removal) = split_marker(&device.path);
    let value = format!(
        "{} ({} {}:{})",
        device.path, device.type_, device.major, device.minor
    );
    let refusal = |grant: &str| refuse(Family::Devices, "linux.devices", &value, grant);
    effective::clean_absolute(path)
        .ok()
        .filter(|()| path.starts_with("/dev/"))
        .ok_or_else(|| refusal("a clean absolute path under /dev/"))?;
    if removal {
        return match grants.devices.iter().any(|d| d.path.matches(path)) {
            true => Ok(()),
            false => Err(refusal(&format!("{} grants", grants.devices.len()))),
        };
    }
    // The runtime makes a node without a mode 0666, owned by root.
    let mode = device.file_mode.as_ref().map_or(0o666, |m| m.value);
    if mode & !0o777 != 0 {
        return Err(refusal("a file mode of permission bits only"));
    }
    let uid = device.uid.as_ref().map_or(0, |u| u.value);
    let gid = device.gid.as_ref().map_or(0, |g| g.value);
    let fits = |d: &DeviceGrant| {
        d.path.matches(path)
            && d.types.contains(&device.type_)
            && d.major.contains(&device.major)
            && d.minor.contains(&device.minor)
            && mode & !d.max_file_mode.unwrap_or(0o666) == 0
            && d.uid
                .as_ref()
                .map_or(uid == 0, |allowed| allowed.contains(&uid))
            && d.gid
                .as_ref()
                .map_or(gid == 0, |allowed| allowed.contains(&gid))
    };
    match grants.devices.iter().any(fits) {
        true => Ok(()),
        false => Err(refusal(&format!(
            "{} grants (mode {mode:o}, uid {uid}, gid {gid})",
            grants.devices.len()
        ))),
    }
}

fn check_device_rule(
    grants: &Grants,
    rule: &nri_proto::api::LinuxDeviceCgroup,
) -> Result<(), Refusal> {
    // A rule without a type is every device; without a number, any.
    let kind = if rule.type_.is_empty() {
        "a"
    } else {
        rule.type_.as_str()
    };
    let major = rule.major.as_ref().map_or(-1, |m| m.value);
    let minor = rule.minor.as_ref().map_or(-1, |m| m.value);
    let access = match (kind, rule.access.as_str()) {
        ("a", _) | (_, "") => "rwm",
        (_, access) => access,
    };
    let value = format!(
        "{} {kind} {major}:{minor} {access}",
        if rule.allow { "allow" } else { "deny" }
    );
    let fits = |g: &DeviceRuleGrant| {
        (rule.allow || g.deny)
            && g.types.iter().any(|t| t == kind)
            && (kind == "a" || (g.major.contains(&major) && g.minor.contains(&minor)))
            && access.chars().all(|c| g.access.contains(c))
    };
    match grants.device_rules.iter().any(fits) {
        true => Ok(()),
        false => Err(refuse(
            Family::DeviceRules,
            "linux.resources.devices",
            value,
            format!("{} grants", grants.device_rules.len()),
        )),
    }
}

/// The namespace types of the OCI runtime spec.
pub(super) const NAMESPACE_TYPES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

fn check_namespace(
    grants: &Grants,
    namespace: &nri_proto::api::LinuxNamespace,
) -> Result<(), Refusal> {
    let (kind, removal) = split_marker(&namespace.type_);
    let value = format!("{} {}", namespace.type_, namespace.path);
    let refusal = |grant: &str| refuse(Family::Namespaces, "linux.namespaces", &value, grant);
    if !NAMESPACE_TYPES.contains(&kind) {
        return Err(refusal("a namespace type of the OCI runtime spec"));
    }
    if !namespace.path.is_empty() {
        effective::clean_absolute(&namespace.path)
            .map_err(|want| refusal(&format!("a path that is {want}")))?;
    }
    let fits = |g: &NamespaceGrant| {
        g.types.iter().any(|t| t == kind)
            && if removal {
                // Without its own namespace the container shares the node's.
                g.host
            } else if namespace.path.is_empty() {
                true
            } else {
                g.paths.as_ref().is_some_and(|p| p.matches(&namespace.path))
            }
    };
    match grants.namespaces.iter().any(fits) {
        true => Ok(()),
        false => Err(refusal(&format!("{} grants", grants.namespaces.len()))),
    }
}

/// Which containers an answer may name, for one guest and one event.
pub struct Targets<'a> {
    /// The container whose update the event is about (UpdateContainer):
    /// changing its update needs only the resource grants.
    pub own: Option<&'a str>,
    /// The pod of the event's container, for `updates = "same-pod"`;
    /// none in Synchronize.
    pub pod_id: Option<&'a str>,
    /// The pod of an existing container the guest may see (in its scope);
    /// `None` for a container it may not see, one that does not exist, and
    /// the container being created, which is not there to update yet.
    pub visible_pod_of: &'a dyn Fn(&str) -> Option<String>,
    /// Whether the container being created runs in a user namespace: the
    /// runtime then bind-mounts the node's file at a device's path instead
    /// of making the device.
    pub user_namespace: bool,
}

/// Checks a whole answer: the adjustment of the container being created
/// (if any), updates of existing containers, and evictions. Returns every
/// field that exceeds the grants (at most one per field); any refuses the
/// whole answer.
pub fn check_answer(
    grants: &Grants,
    adjust: Option<&ContainerAdjustment>,
    updates: &[ContainerUpdate],
    evictions: &[ContainerEviction],
    targets: &Targets<'_>,
) -> Vec<Refusal> {
    let mut refusals = Refusals::default();
    if let Some(adjust) = adjust {
        refusals.push(check_shape(adjust, None));
        for (_, _, check) in ADJUSTMENT_FIELDS {
            refusals.push(check(grants, adjust));
        }
        refusals.push(check_devices_in_user_namespace(adjust, targets));
    }
    refusals.push(count(Family::Updates, "update", updates.len()));
    refusals.push(count(Family::Evictions, "evict", evictions.len()));
    for update in updates.iter().take(effective::MAX_CONTAINERS_NAMED) {
        refusals.push(check_shape(update, None));
        refusals.push(check_update_target(grants, &update.container_id, targets));
        if let Some(resources) = update.linux.as_ref().and_then(|l| l.resources.as_ref()) {
            refusals.push(check_resources(grants, resources));
        }
    }
    for eviction in evictions.iter().take(effective::MAX_CONTAINERS_NAMED) {
        refusals.push(check_shape(eviction, Some(Family::Evictions)));
        let id = &eviction.container_id;
        let check = switch(Family::Evictions, "evict", grants.evictions, true, id)
            .and_then(|()| visible_target(Family::Evictions, "evict", id, targets).map(drop));
        refusals.push(check);
    }
    refusals.0
}

/// In a user namespace a device is a bind mount of the node's file at its
/// path, whatever its type and numbers: no device grant means that.
fn check_devices_in_user_namespace(
    adjust: &ContainerAdjustment,
    targets: &Targets<'_>,
) -> Result<(), Refusal> {
    let Some(linux) = adjust.linux.as_ref() else {
        return Ok(());
    };
    let adds_user = linux.namespaces.iter().any(|n| n.type_ == "user");
    let added = linux.devices.iter().find(|d| !split_marker(&d.path).1);
    match added {
        Some(device) if targets.user_namespace || adds_user => Err(refuse(
            Family::Devices,
            "linux.devices",
            &device.path,
            "a container without a user namespace (in one, the runtime binds the node's file at the path)",
        )),
        _ => Ok(()),
    }
}

/// Most refusals reported for one answer: one is enough to refuse it,
/// and an answer of thousands of refused entries must not become
/// thousands of log lines.
pub const MAX_REFUSALS: usize = 16;

/// The refusals of one answer, at most [`MAX_REFUSALS`].
#[derive(Default)]
struct Refusals(Vec<Refusal>);

impl Refusals {
    fn push(&mut self, result: Result<(), Refusal>) {
        if let Err(refusal) = result {
            if self.0.len() < MAX_REFUSALS {
                self.0.push(refusal);
            }
        }
    }
}

/// An answer may name at most [`effective::MAX_CONTAINERS_NAMED`]
/// containers.
fn count(family: Family, field: &str, n: usize) -> Result<(), Refusal> {
    if n > effective::MAX_CONTAINERS_NAMED {
        Err(refuse(
            family,
            field,
            format!("{n} entries"),
            "at most 4096 entries",
        ))
    } else {
        Ok(())
    }
}

/// A container an answer names must be one the guest may see.
fn visible_target(
    family: Family,
    field: &str,
    id: &str,
    targets: &Targets<'_>,
) -> Result<String, Refusal> {
    (targets.visible_pod_of)(id).ok_or_else(|| {
        refuse(
            family,
            field,
            id,
            "an existing container in the guest's scope",
        )
    })
}

fn check_update_target(grants: &Grants, id: &str, targets: &Targets<'_>) -> Result<(), Refusal> {
    if targets.own == Some(id) {
        return Ok(());
    }
    let pod = visible_target(Family::Updates, "update", id, targets)?;
    let allowed = match grants.updates {
        UpdateScope::None => false,
        UpdateScope::Any => true,
        UpdateScope::SamePod => targets.pod_id == Some(pod.as_str()),
    };
    if allowed {
        Ok(())
    } else {
        Err(refuse(
            Family::Updates,
            "update",
            id,
            format!("{:?}", grants.updates),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use nri_proto::api::{self, LinuxContainerAdjustment};
    use protobuf::{reflect::MessageDescriptor, MessageFull};

    use super::*;

    /// Every leaf field path of `descriptor`, descending into the given
    /// sub-messages.
    fn field_paths(
        descriptor: &MessageDescriptor,
        prefix: &str,
        descend: &[&str],
    ) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        for field in descriptor.fields() {
            let path = format!("{prefix}{}", field.name());
            if descend.contains(&path.as_str()) {
                let protobuf::reflect::RuntimeFieldType::Singular(
                    protobuf::reflect::RuntimeType::Message(m),
                ) = field.runtime_field_type()
                else {
                    panic!("{path} is not a message");
                };
                paths.extend(field_paths(&m, &format!("{path}."), descend));
            } else {
                paths.insert(path);
            }
        }
        paths
    }

    #[test]
    fn every_adjustable_field_has_a_grant_family() {
        let covered: BTreeSet<String> = ADJUSTMENT_FIELDS
            .iter()
            .map(|(p, _, _)| p.to_string())
            .collect();
        let fields = field_paths(&api::ContainerAdjustment::descriptor(), "", &["linux"]);
        let missing: Vec<&String> = fields.difference(&covered).collect();
        assert!(
            missing.is_empty(),
            "ContainerAdjustment fields without a grant family: {missing:?}"
        );

        let covered: BTreeSet<String> = RESOURCE_FIELDS
            .iter()
            .map(|(p, _, _)| p.to_string())
            .collect();
        let fields = field_paths(&api::LinuxResources::descriptor(), "", &[]);
        let missing: Vec<&String> = fields.difference(&covered).collect();
        assert!(
            missing.is_empty(),
            "LinuxResources fields without a grant family: {missing:?}"
        );

        // ContainerUpdate: the target (updates), its resources (the
        // resource families) and ignore_failure (no power of its own).
        let fields = field_paths(&api::ContainerUpdate::descriptor(), "", &["linux"]);
        let known: BTreeSet<String> = ["container_id", "linux.resources", "ignore_failure"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            fields, known,
            "ContainerUpdate fields changed: give new ones a grant family"
        );
    }

    fn adjust_linux(f: impl FnOnce(&mut LinuxContainerAdjustment)) -> ContainerAdjustment {
        let mut a = ContainerAdjustment::new();
        f(a.linux.mut_or_insert_default());
        a
    }

    fn resources(f: impl FnOnce(&mut LinuxResources)) -> ContainerAdjustment {
        adjust_linux(|l| f(l.resources.mut_or_insert_default()))
    }

    fn grants(toml_text: &str) -> Grants {
        toml::from_str(toml_text).unwrap()
    }

    /// One case per family: the answer, a grant that allows it, and the
    /// refusal without that grant.
    fn cases() -> Vec<(
        &'static str,
        ContainerAdjustment,
        &'static str,
        &'static str,
    )> {
        let mut env = ContainerAdjustment::new();
        env.env.push(api::KeyValue {
            key: "-SECRET".into(),
            ..Default::default()
        });
        let mut annotations = ContainerAdjustment::new();
        annotations
            .annotations
            .insert("example.com/a".into(), "1".into());
        let mut mounts = ContainerAdjustment::new();
        mounts.mounts.push(api::Mount {
            destination: "/data".into(),
            source: "/srv/data".into(),
            type_: "bind".into(),
            options: vec!["rbind".into()],
            ..Default::default()
        });
        let mut hooks = ContainerAdjustment::new();
        hooks
            .hooks
            .mut_or_insert_default()
            .prestart
            .push(api::Hook {
                path: "/bin/hook".into(),
                ..Default::default()
            });
        let mut rlimits = ContainerAdjustment::new();
        rlimits.rlimits.push(api::POSIXRlimit {
            type_: "RLIMIT_NOFILE".into(),
            soft: 1024,
            hard: 4096,
            ..Default::default()
        });
        let mut cdi = ContainerAdjustment::new();
        cdi.CDI_devices.push(api::CDIDevice {
            name: "vendor.com/gpu=0".into(),
            ..Default::default()
        });
        let mut args = ContainerAdjustment::new();
        args.args = vec!["/bin/sh".into()];
        vec![
            ("env removal", env, "env = [\"SECRET\"]", "env \"-SECRET\" is not granted (env grant: [])"),
            ("annotations", annotations, "annotations = [\"example.com/*\"]", "annotations \"example.com/a\" is not granted (annotations grant: [])"),
            ("mounts", mounts, "mounts = [{ destination = [\"/data\"], source = [\"/srv/*\"], types = [\"bind\"], read-write = true }]", "mounts \"/data from /srv/data (bind rbind)\" is not granted (mounts grant: 0 grants; the runtime would make it a bind mount, writable)"),
            ("hooks", hooks, "hooks = [{ path = [\"/bin/hook\"] }]", "hooks \"Prestart /bin/hook []\" is not granted (hooks grant: 0 grants)"),
            ("rlimits", rlimits, "rlimits = { RLIMIT_NOFILE = 4096 }", "rlimits \"RLIMIT_NOFILE\" is not granted (rlimits grant: [])"),
            ("cdi", cdi, "cdi-devices = [\"vendor.com/*\"]", "CDI_devices \"vendor.com/gpu=0\" is not granted (cdi-devices grant: [])"),
            ("args", args, "args = true", "args \"/bin/sh\" is not granted (args grant: false)"),
            ("devices", adjust_linux(|l| l.devices.push(api::LinuxDevice { path: "/dev/null".into(), type_: "c".into(), major: 1, minor: 3, ..Default::default() })), "devices = [{ path = [\"/dev/null\"], types = [\"c\"], major = [1], minor = [3] }]", "linux.devices \"/dev/null (c 1:3)\" is not granted (devices grant: 0 grants (mode 666, uid 0, gid 0))"),
            ("memory limit", resources(|r| r.memory.mut_or_insert_default().limit = Some(api::OptionalInt64 { value: 1 << 30, ..Default::default() }).into()), "memory = { limit = [4194304, 68719476736] }", "linux.resources.memory.limit \"1073741824\" is not granted (memory grant: none)"),
            ("oom kill", resources(|r| r.memory.mut_or_insert_default().disable_oom_killer = Some(api::OptionalBool { value: true, ..Default::default() }).into()), "memory = { oom-kill = true }", "linux.resources.memory.disable_oom_killer \"Some(true)\" is not granted (memory grant: false)"),
            ("cpu shares", resources(|r| r.cpu.mut_or_insert_default().shares = Some(api::OptionalUInt64 { value: 512, ..Default::default() }).into()), "cpu = { shares = [2, 1024] }", "linux.resources.cpu.shares \"512\" is not granted (cpu grant: none)"),
            ("cpuset", resources(|r| r.cpu.mut_or_insert_default().cpus = "0-1".into()), "cpu = { cpuset = true }", "linux.resources.cpu.cpuset \"cpus 0-1 mems \" is not granted (cpu grant: false)"),
            ("hugepages", resources(|r| r.hugepage_limits.push(api::HugepageLimit { page_size: "2MB".into(), limit: 1, ..Default::default() })), "hugepages = [\"2MB\"]", "linux.resources.hugepage_limits \"2MB\" is not granted (hugepages grant: [])"),
            ("blockio", resources(|r| r.blockio_class = Some(api::OptionalString { value: "slow".into(), ..Default::default() }).into()), "blockio-class = [\"slow\"]", "linux.resources.blockio_class \"slow\" is not granted (blockio-class grant: [])"),
            ("rdt class", resources(|r| r.rdt_class = Some(api::OptionalString { value: "gold".into(), ..Default::default() }).into()), "rdt-class = [\"gold\"]", "linux.resources.rdt_class \"gold\" is not granted (rdt-class grant: [])"),
            ("unified", resources(|r| { r.unified.insert("memory.high".into(), "1G".into()); }), "unified = [\"memory.*\"]", "linux.resources.unified \"memory.high\" is not granted (unified grant: [])"),
            ("device rules", resources(|r| r.devices.push(api::LinuxDeviceCgroup { allow: true, type_: "c".into(), major: Some(api::OptionalInt64 { value: 1, ..Default::default() }).into(), minor: Some(api::OptionalInt64 { value: 3, ..Default::default() }).into(), access: "rw".into(), ..Default::default() })), "device-rules = [{ types = [\"c\"], major = [1], minor = [3], access = \"rw\" }]", "linux.resources.devices \"allow c 1:3 rw\" is not granted (device-rules grant: 0 grants)"),
            ("pids", resources(|r| r.pids = Some(api::LinuxPids { limit: 100, ..Default::default() }).into()), "pids = [1, 1000]", "linux.resources.pids \"100\" is not granted (pids grant: none)"),
            ("cgroups path", adjust_linux(|l| l.cgroups_path = "/x".into()), "cgroups-path = true", "linux.cgroups_path \"/x\" is not granted (cgroups-path grant: false)"),
            ("oom score", adjust_linux(|l| l.oom_score_adj = Some(api::OptionalInt { value: -999, ..Default::default() }).into()), "oom-score-adj = [-1000, 1000]", "linux.oom_score_adj \"-999\" is not granted (oom-score-adj grant: none)"),
            ("io priority", adjust_linux(|l| l.io_priority = Some(api::LinuxIOPriority::new()).into()), "io-priority = true", "linux.io_priority \"set\" is not granted (io-priority grant: false)"),
            ("seccomp", adjust_linux(|l| l.seccomp_policy = Some(api::LinuxSeccomp::new()).into()), "seccomp = true", "linux.seccomp_policy \"set\" is not granted (seccomp grant: false)"),
            ("namespaces", adjust_linux(|l| l.namespaces.push(api::LinuxNamespace { type_: "network".into(), ..Default::default() })), "namespaces = [{ types = [\"network\"] }]", "linux.namespaces \"network \" is not granted (namespaces grant: 0 grants)"),
            ("sysctl", adjust_linux(|l| { l.sysctl.insert("net.ipv4.ip_forward".into(), "1".into()); }), "sysctl = [\"net.ipv4.*\"]", "linux.sysctl \"net.ipv4.ip_forward\" is not granted (sysctl grant: [])"),
            ("net devices", adjust_linux(|l| { l.net_devices.insert("eth1".into(), api::LinuxNetDevice::new()); }), "net-devices = [\"eth*\"]", "linux.net_devices \"eth1\" is not granted (net-devices grant: [])"),
            ("scheduler", adjust_linux(|l| l.scheduler = Some(api::LinuxScheduler { policy: api::LinuxSchedulerPolicy::SCHED_BATCH.into(), nice: 10, ..Default::default() }).into()), "scheduler = { policies = [\"batch\"], nice = [0, 19] }", "linux.scheduler \"SCHED_BATCH nice 10 priority 0 flags [] runtime 0 deadline 0 period 0\" is not granted (scheduler grant: none)"),
            ("rdt", adjust_linux(|l| l.rdt = Some(api::LinuxRdt::new()).into()), "rdt = true", "linux.rdt \"set\" is not granted (rdt grant: false)"),
            ("memory policy", adjust_linux(|l| l.memory_policy = Some(api::LinuxMemoryPolicy::new()).into()), "memory-policy = true", "linux.memory_policy \"set\" is not granted (memory-policy grant: false)"),
        ]
    }

    fn messages(refusals: Vec<Refusal>) -> Vec<String> {
        refusals.iter().map(ToString::to_string).collect()
    }

    fn no_updates() -> Targets<'static> {
        Targets {
            own: None,
            pod_id: Some("p1"),
            visible_pod_of: &|_| None,
            user_namespace: false,
        }
    }

    #[test]
    fn every_family_allows_what_is_granted_and_refuses_the_rest() {
        for (name, adjust, grant, refusal) in cases() {
            let granted = check_answer(&grants(grant), Some(&adjust), &[], &[], &no_updates());
            assert_eq!(granted, [], "case {name}: granted by {grant}");
            let denied = check_answer(&Grants::default(), Some(&adjust), &[], &[], &no_updates());
            assert_eq!(messages(denied), [refusal], "case {name}");
        }
    }

    #[test]
    fn a_deny_rule_needs_a_grant_that_says_deny() {
        let deny_all = resources(|r| {
            r.devices.push(api::LinuxDeviceCgroup {
                allow: false,
                access: "rwm".into(),
                ..Default::default()
            })
        });
        let tun = grants(
            r#"device-rules = [{ types = ["c"], major = [10], minor = [200], access = "rw" }]"#,
        );
        assert_eq!(
            messages(check_answer(&tun, Some(&deny_all), &[], &[], &no_updates())),
            ["linux.resources.devices \"deny a -1:-1 rwm\" is not granted (device-rules grant: 1 grants)"]
        );
        let allow_all =
            grants(r#"device-rules = [{ types = ["a"], major = [], minor = [], access = "rwm" }]"#);
        assert!(!check_answer(&allow_all, Some(&deny_all), &[], &[], &no_updates()).is_empty());
        let deny_granted = grants(
            r#"device-rules = [{ types = ["a"], major = [], minor = [], access = "rwm", deny = true }]"#,
        );
        assert_eq!(
            check_answer(&deny_granted, Some(&deny_all), &[], &[], &no_updates()),
            []
        );
    }

    #[test]
    fn a_pattern_admits_no_name_a_program_reads_as_an_instruction() {
        let g = grants(
            r#"env = ["*_PATH", "NODE_OPTIONS"]
            annotations = ["run.oci.hooks.*", "example.com/*"]
            hooks = [{ path = ["/usr/local/bin/audit"], env = ["*"] }]"#,
        );
        let env = |key: &str| {
            let mut a = ContainerAdjustment::new();
            a.env.push(api::KeyValue {
                key: key.into(),
                value: "/tmp/x".into(),
                ..Default::default()
            });
            a
        };
        let annotation = |key: &str| {
            let mut a = ContainerAdjustment::new();
            a.annotations.insert(key.into(), "/etc/passwd".into());
            a
        };
        let hook_env = |entry: &str| {
            let mut a = ContainerAdjustment::new();
            a.hooks.mut_or_insert_default().prestart.push(api::Hook {
                path: "/usr/local/bin/audit".into(),
                env: vec![entry.into()],
                ..Default::default()
            });
            a
        };
        let refused =
            |a: ContainerAdjustment| messages(check_answer(&g, Some(&a), &[], &[], &no_updates()));
        assert_eq!(
            refused(env("LD_LIBRARY_PATH")),
            ["env \"LD_LIBRARY_PATH\" is not granted (env grant: [\"*_PATH\", \"NODE_OPTIONS\"], which does not name it; it is an instruction: the dynamic loader reads it (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT load libraries into every process))"]
        );
        for denied in [
            env("GCONV_PATH"),
            env("-GCONV_PATH"),
            annotation("run.oci.hooks.stderr"),
            hook_env("LD_PRELOAD=/tmp/x.so"),
        ] {
            assert_eq!(refused(denied.clone()).len(), 1, "{denied:?}");
        }
        for admitted in [
            env("CONFIG_PATH"),
            env("NODE_OPTIONS"),
            annotation("example.com/x"),
            hook_env("AUDIT_LEVEL=1"),
        ] {
            assert!(refused(admitted.clone()).is_empty(), "{admitted:?}");
        }
    }

    fn scheduled(
        policy: api::LinuxSchedulerPolicy,
        nice: i32,
        priority: i32,
    ) -> ContainerAdjustment {
        adjust_linux(|l| {
            l.scheduler = Some(api::LinuxScheduler {
                policy: policy.into(),
                nice,
                priority,
                ..Default::default()
            })
            .into()
        })
    }

    fn scheduler_refusal(g: &Grants, a: &ContainerAdjustment) -> Option<String> {
        let refused = check_answer(g, Some(a), &[], &[], &no_updates());
        refused.first().map(|r| r.grant.clone())
    }

    #[test]
    fn a_scheduler_grant_for_nice_levels_admits_no_real_time_policy() {
        use api::LinuxSchedulerPolicy as P;
        let nice =
            grants(r#"scheduler = { policies = ["other", "batch", "idle"], nice = [0, 19] }"#);
        assert_eq!(
            scheduler_refusal(&nice, &scheduled(P::SCHED_BATCH, 10, 0)),
            None
        );
        assert_eq!(
            scheduler_refusal(&nice, &scheduled(P::SCHED_IDLE, 0, 0)),
            None
        );
        let grant = "policies [Other, Batch, Idle], nice [0, 19], priority 0, flags [], runtime 0, deadline 0, period 0";
        for (policy, n, priority) in [
            (P::SCHED_FIFO, 0, 99),
            (P::SCHED_RR, 0, 1),
            (P::SCHED_OTHER, -5, 0),
        ] {
            let refusal = scheduler_refusal(&nice, &scheduled(policy, n, priority));
            assert_eq!(refusal.as_deref(), Some(grant), "{policy:?} {n} {priority}");
        }
        let mut flagged = scheduled(P::SCHED_BATCH, 1, 0);
        let s = flagged
            .linux
            .mut_or_insert_default()
            .scheduler
            .mut_or_insert_default();
        s.flags
            .push(api::LinuxSchedulerFlag::SCHED_FLAG_RESET_ON_FORK.into());
        assert_eq!(scheduler_refusal(&nice, &flagged).as_deref(), Some(grant));
        assert_eq!(
            scheduler_refusal(&Grants::default(), &scheduled(P::SCHED_BATCH, 1, 0)).as_deref(),
            Some("none")
        );
    }

    #[test]
    fn scheduler_attributes_runc_or_the_kernel_refuse_are_refused_under_any_grant() {
        use api::LinuxSchedulerPolicy as P;
        let wide = grants(
            r#"scheduler = { policies = ["other", "fifo", "deadline"], nice = [-20, 19], priority = [1, 99], runtime = [0, 1000000000], deadline = [0, 1000000000], period = [0, 1000000000] }"#,
        );
        assert_eq!(
            scheduler_refusal(&wide, &scheduled(P::SCHED_FIFO, 0, 10)),
            None
        );
        let cases = [
            (
                scheduled(P::SCHED_FIFO, 0, 0),
                "a priority of 1 to 99 for fifo and rr",
            ),
            (
                scheduled(P::SCHED_OTHER, 0, 5),
                "no priority but for fifo and rr",
            ),
            (
                scheduled(P::SCHED_OTHER, -21, 0),
                "a nice value of -20 to 19",
            ),
            (
                scheduled(P::SCHED_NONE, 0, 0),
                "a policy and flags the kernel has",
            ),
            (
                scheduled(P::SCHED_ISO, 0, 0),
                "a policy and flags the kernel has",
            ),
            (
                scheduled(P::SCHED_DEADLINE, 0, 0),
                "a runtime of at least 1024 ns, within its deadline, within its period",
            ),
        ];
        for (a, want) in cases {
            assert_eq!(scheduler_refusal(&wide, &a).as_deref(), Some(want), "{a:?}");
        }
        let mut deadline = scheduled(P::SCHED_DEADLINE, 0, 0);
        let s = deadline
            .linux
            .mut_or_insert_default()
            .scheduler
            .mut_or_insert_default();
        (s.runtime, s.deadline, s.period) = (10_000, 100_000, 1_000_000);
        assert_eq!(scheduler_refusal(&wide, &deadline), None);
        let mut beside = scheduled(P::SCHED_OTHER, 0, 0);
        let s = beside
            .linux
            .mut_or_insert_default()
            .scheduler
            .mut_or_insert_default();
        s.runtime = 10_000;
        assert_eq!(
            scheduler_refusal(&wide, &beside).as_deref(),
            Some("no runtime, deadline or period but for deadline")
        );
    }

    #[test]
    fn a_scheduler_grant_the_kernel_cannot_meet_is_a_load_error() {
        for (text, want) in [
            ("scheduler = true", "not by a switch"),
            (
                r#"scheduler = { policies = ["fifo"], priority = [0, 99] }"#,
                "priority [0, 99] is not within [1, 99]",
            ),
            (
                r#"scheduler = { policies = ["other"], nice = [-40, 0] }"#,
                "nice [-40, 0] is not within [-20, 19]",
            ),
            (
                r#"scheduler = { policies = ["iso"] }"#,
                "unknown variant `iso`",
            ),
            (
                r#"scheduler = { policies = [] }"#,
                "policies lists at least one",
            ),
            (
                r#"scheduler = { policies = ["batch"], nice = [0, 19], bogus = 1 }"#,
                "unknown field `bogus`",
            ),
        ] {
            let err = toml::from_str::<Grants>(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn a_hook_timeout_of_zero_or_less_or_too_long_is_refused_under_any_grant() {
        let hook_with = |timeout: i64| {
            let mut a = ContainerAdjustment::new();
            a.hooks.mut_or_insert_default().poststop.push(api::Hook {
                path: "/usr/local/bin/audit".into(),
                timeout: Some(api::OptionalInt {
                    value: timeout,
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            });
            a
        };
        let path_only = grants(r#"hooks = [{ path = ["/usr/local/bin/*"] }]"#);
        let bounded = grants(r#"hooks = [{ path = ["/usr/local/bin/*"], max-timeout = 10 }]"#);
        for timeout in [0, -1, 3601, i64::MAX / 1_000_000_000 + 1, i64::MIN] {
            for g in [&path_only, &bounded] {
                let refused = check_answer(g, Some(&hook_with(timeout)), &[], &[], &no_updates());
                assert_eq!(
                    messages(refused),
                    ["hooks \"Poststop /usr/local/bin/audit []\" is not granted (hooks grant: a timeout, when given, of 1 to 3600 seconds)"],
                    "timeout {timeout}"
                );
            }
        }
        for (timeout, admitted_by_bounded) in [(1, true), (10, true), (11, false), (3600, false)] {
            let a = hook_with(timeout);
            assert_eq!(
                check_answer(&path_only, Some(&a), &[], &[], &no_updates()),
                []
            );
            let bounded = check_answer(&bounded, Some(&a), &[], &[], &no_updates());
            assert_eq!(bounded.is_empty(), admitted_by_bounded, "timeout {timeout}");
        }
    }

    #[test]
    fn bounds_and_details_are_enforced() {
        let cases: [(&str, ContainerAdjustment, &str, &str); 4] = [
            ("memory below min", resources(|r| r.memory.mut_or_insert_default().limit = Some(api::OptionalInt64 { value: 1, ..Default::default() }).into()), "memory = { limit = [4194304, 68719476736] }", "linux.resources.memory.limit \"1\" is not granted (memory grant: [4194304, 68719476736])"),
            ("rlimit above max", { let mut a = ContainerAdjustment::new(); a.rlimits.push(api::POSIXRlimit { type_: "RLIMIT_NOFILE".into(), soft: 1, hard: 1 << 20, ..Default::default() }); a }, "rlimits = { RLIMIT_NOFILE = 4096 }", "rlimits \"RLIMIT_NOFILE soft 1 hard 1048576\" is not granted (rlimits grant: RLIMIT_NOFILE up to 4096)"),
            ("writable mount of a read-only grant", { let mut a = ContainerAdjustment::new(); a.mounts.push(api::Mount { destination: "/host".into(), source: "/".into(), type_: "bind".into(), options: vec!["rbind".into()], ..Default::default() }); a }, "mounts = [{ destination = [\"/*\"], source = [\"/*\"], types = [\"bind\"] }]", "mounts \"/host from / (bind rbind)\" is not granted (mounts grant: 1 grants; the runtime would make it a bind mount, writable)"),
            ("device mode beyond the grant", adjust_linux(|l| l.devices.push(api::LinuxDevice { path: "/dev/x".into(), type_: "c".into(), file_mode: Some(api::OptionalFileMode { value: 0o666, ..Default::default() }).into(), ..Default::default() })), "devices = [{ path = [\"/dev/x\"], types = [\"c\"], major = [0], minor = [0], max-file-mode = 0o644 }]", "linux.devices \"/dev/x (c 0:0)\" is not granted (devices grant: 1 grants (mode 666, uid 0, gid 0))"),
        ];
        for (name, adjust, grant, refusal) in cases {
            let result = check_answer(&grants(grant), Some(&adjust), &[], &[], &no_updates());
            assert_eq!(messages(result), [refusal], "case {name}");
        }
    }

    #[test]
    fn updates_and_evictions_need_their_grants() {
        let update = |id: &str| api::ContainerUpdate {
            container_id: id.into(),
            ..Default::default()
        };
        // "other" shares the event's pod p1, "far" is in p2; "hidden" is
        // outside the guest's scope, like any id it makes up.
        let pod_of = |id: &str| match id {
            "other" | "c1" => Some("p1".to_string()),
            "far" | "victim" => Some("p2".to_string()),
            _ => None,
        };
        let targets = Targets {
            own: Some("c1"),
            pod_id: Some("p1"),
            visible_pod_of: &pod_of,
            user_namespace: false,
        };
        let own_only = check_answer(&Grants::default(), None, &[update("c1")], &[], &targets);
        assert!(
            own_only.is_empty(),
            "updating the event's own container needs no updates grant"
        );
        let check = |g: &str, id: &str| {
            messages(check_answer(&grants(g), None, &[update(id)], &[], &targets))
        };
        let cases: [(&str, &str, &[&str]); 8] = [
            ("", "other", &["update \"other\" is not granted (updates grant: None)"]),
            ("updates = \"same-pod\"", "other", &[]),
            ("updates = \"same-pod\"", "far", &["update \"far\" is not granted (updates grant: SamePod)"]),
            ("updates = \"any\"", "far", &[]),
            ("updates = \"any\"", "hidden", &["update \"hidden\" is not granted (updates grant: an existing container in the guest's scope)"]),
            ("updates = \"any\"", "made-up", &["update \"made-up\" is not granted (updates grant: an existing container in the guest's scope)"]),
            ("", "hidden", &["update \"hidden\" is not granted (updates grant: an existing container in the guest's scope)"]),
            ("updates = \"same-pod\"", "far", &["update \"far\" is not granted (updates grant: SamePod)"]),
        ];
        for (grant, id, want) in cases {
            assert_eq!(check(grant, id), want, "{grant} updating {id}");
        }
        let synchronize = Targets {
            own: None,
            pod_id: None,
            visible_pod_of: &pod_of,
            user_namespace: false,
        };
        let sync = |g: &str, id: &str| {
            messages(check_answer(
                &grants(g),
                None,
                &[update(id)],
                &[],
                &synchronize,
            ))
        };
        assert_eq!(
            sync("updates = \"same-pod\"", "other"),
            ["update \"other\" is not granted (updates grant: SamePod)"],
            "no event pod: same-pod admits nothing"
        );
        assert!(sync("updates = \"any\"", "c1").is_empty());
        let evict = |g: &str, id: &str| {
            let eviction = api::ContainerEviction {
                container_id: id.into(),
                ..Default::default()
            };
            messages(check_answer(&grants(g), None, &[], &[eviction], &targets))
        };
        assert_eq!(
            evict("", "victim"),
            ["evict \"victim\" is not granted (evictions grant: false)"]
        );
        assert!(evict("evictions = true", "victim").is_empty());
        assert_eq!(
            evict("evictions = true", "made-up"),
            ["evict \"made-up\" is not granted (evictions grant: an existing container in the guest's scope)"]
        );
    }

    /// Patterns that match exactly these keys (removal markers dropped).
    fn exact<I: IntoIterator<Item = String>>(keys: I) -> Patterns {
        let keys: Vec<String> = keys
            .into_iter()
            .map(|k| split_marker(&k).0.to_string())
            .collect();
        Patterns::new(&keys).unwrap()
    }

    fn point<T: Copy>(value: Option<T>) -> Option<Bounds<T>> {
        value.map(|v| Bounds { min: v, max: v })
    }

    fn grant_resources(g: &mut Grants, r: &LinuxResources) {
        if let Some(m) = r.memory.as_ref() {
            let v = |o: &protobuf::MessageField<api::OptionalInt64>| o.as_ref().map(|o| o.value);
            g.memory.limit = point(v(&m.limit));
            g.memory.reservation = point(v(&m.reservation));
            g.memory.swap = point(v(&m.swap));
            let kernel: Vec<i64> = [v(&m.kernel), v(&m.kernel_tcp)]
                .into_iter()
                .flatten()
                .collect();
            g.memory.kernel = kernel.iter().min().map(|&min| Bounds {
                min,
                max: *kernel.iter().max().unwrap(),
            });
            g.memory.swappiness = point(m.swappiness.as_ref().map(|o| o.value));
            g.memory.oom_kill = m.disable_oom_killer.is_some();
            g.memory.use_hierarchy = m.use_hierarchy.is_some();
        }
        if let Some(c) = r.cpu.as_ref() {
            g.cpu.shares = point(c.shares.as_ref().map(|o| o.value));
            g.cpu.quota = point(c.quota.as_ref().map(|o| o.value));
            g.cpu.period = point(c.period.as_ref().map(|o| o.value));
            g.cpu.cpuset = !c.cpus.is_empty() || !c.mems.is_empty();
            g.cpu.realtime = c.realtime_runtime.is_some() || c.realtime_period.is_some();
        }
        g.hugepages = exact(r.hugepage_limits.iter().map(|h| h.page_size.clone()));
        g.blockio_class = exact(r.blockio_class.as_ref().map(|c| c.value.clone()));
        g.rdt_class = exact(r.rdt_class.as_ref().map(|c| c.value.clone()));
        g.unified = exact(r.unified.keys().cloned());
        g.device_rules = r
            .devices
            .iter()
            .map(|d| DeviceRuleGrant {
                types: vec![d.type_.clone()],
                major: vec![d.major.as_ref().map_or(-1, |m| m.value)],
                minor: vec![d.minor.as_ref().map_or(-1, |m| m.value)],
                access: d.access.clone(),
                deny: !d.allow,
            })
            .collect();
        g.pids = point(r.pids.as_ref().map(|p| p.limit));
    }

    /// Grants that allow exactly what `a` asks, and nothing else.
    fn grants_for(a: &ContainerAdjustment) -> Grants {
        let mut g = Grants {
            annotations: exact(a.annotations.keys().cloned()),
            env: exact(a.env.iter().map(|kv| kv.key.clone())),
            cdi_devices: exact(a.CDI_devices.iter().map(|d| d.name.clone())),
            args: !a.args.is_empty(),
            ..Grants::default()
        };
        g.mounts = a
            .mounts
            .iter()
            .map(|m| MountGrant {
                destination: exact([m.destination.clone()]),
                source: Some(exact([m.source.clone()])),
                types: vec!["bind".into()],
                read_write: true,
                options: Patterns::default(),
            })
            .collect();
        if let Some(h) = a.hooks.as_ref() {
            g.hooks = hook_stages(h)
                .into_iter()
                .flat_map(|(stage, hooks)| hooks.iter().map(move |hook| (stage, hook)))
                .map(|(stage, hook)| HookGrant {
                    path: exact([hook.path.clone()]),
                    stages: Some(vec![stage]),
                    args: Some(Patterns::of_values(&hook.args).unwrap()),
                    env: exact(
                        hook.env
                            .iter()
                            .map(|e| e.split('=').next().unwrap().to_string()),
                    ),
                    max_timeout: None,
                })
                .collect();
        }
        for r in &a.rlimits {
            let max = g.rlimits.entry(r.type_.clone()).or_default();
            *max = (*max).max(r.hard);
        }
        if let Some(l) = a.linux.as_ref() {
            g.devices = l
                .devices
                .iter()
                .map(|d| DeviceGrant {
                    path: exact([d.path.clone()]),
                    types: vec![d.type_.clone()],
                    major: vec![d.major],
                    minor: vec![d.minor],
                    max_file_mode: Some(0o777),
                    uid: Some(
                        d.uid
                            .as_ref()
                            .map(|u| u.value)
                            .into_iter()
                            .chain([0])
                            .collect(),
                    ),
                    gid: Some(
                        d.gid
                            .as_ref()
                            .map(|g| g.value)
                            .into_iter()
                            .chain([0])
                            .collect(),
                    ),
                })
                .collect();
            if let Some(r) = l.resources.as_ref() {
                grant_resources(&mut g, r);
            }
            g.cgroups_path = !l.cgroups_path.is_empty();
            g.oom_score_adj = point(l.oom_score_adj.as_ref().map(|o| o.value));
            g.io_priority = l.io_priority.is_some();
            g.seccomp = l.seccomp_policy.is_some();
            g.namespaces = l
                .namespaces
                .iter()
                .map(|n| NamespaceGrant {
                    types: vec![n.type_.clone()],
                    paths: Some(exact([n.path.clone()])),
                    host: false,
                })
                .collect();
            g.sysctl = exact(l.sysctl.keys().cloned());
            g.net_devices = exact(l.net_devices.keys().cloned());
            g.scheduler = l.scheduler.as_ref().map(|s| SchedulerGrant {
                policies: effective::scheduler_policy(s).into_iter().collect(),
                nice: point(Some(s.nice)),
                priority: point(Some(s.priority)),
                flags: effective::scheduler_flags(s).unwrap_or_default(),
                runtime: point(Some(s.runtime)),
                deadline: point(Some(s.deadline)),
                period: point(Some(s.period)),
            });
            g.rdt = l.rdt.is_some();
            g.memory_policy = l.memory_policy.is_some();
        }
        g
    }

    /// Makes a random adjustment one the runtime reads as written: clean
    /// absolute paths, keys of their families' forms, read-write binds,
    /// hooks whose env entries are NAME=value and timeouts runc keeps,
    /// scheduler attributes the kernel takes, devices under /dev with
    /// plain modes, known namespace types, typed device rules.
    fn well_formed(a: &mut ContainerAdjustment, rng: &mut rand::rngs::StdRng) {
        use rand::Rng;
        for r in &mut a.rlimits {
            r.soft = r.soft.min(r.hard);
        }
        for m in &mut a.mounts {
            m.destination = format!("/{}", m.destination);
            m.source = format!("/{}", m.source);
            m.options = vec!["rbind".into()];
        }
        if let Some(h) = a.hooks.as_mut() {
            for hook in [
                &mut h.prestart,
                &mut h.create_runtime,
                &mut h.create_container,
                &mut h.start_container,
                &mut h.poststart,
                &mut h.poststop,
            ]
            .into_iter()
            .flatten()
            {
                hook.path = format!("/{}", hook.path);
                hook.env.iter_mut().for_each(|e| *e = format!("{e}=v"));
                if let Some(t) = hook.timeout.as_mut() {
                    t.value = t.value.rem_euclid(effective::MAX_HOOK_TIMEOUT) + 1;
                }
            }
        }
        let Some(l) = a.linux.as_mut() else {
            return;
        };
        if let Some(s) = l.scheduler.as_mut() {
            *s = api::LinuxScheduler {
                policy: api::LinuxSchedulerPolicy::SCHED_BATCH.into(),
                nice: s.nice.rem_euclid(20),
                flags: vec![api::LinuxSchedulerFlag::SCHED_FLAG_RESET_ON_FORK.into()],
                ..Default::default()
            };
        }
        for d in &mut l.devices {
            d.path = format!("/dev/{}", d.path);
            if let Some(mode) = d.file_mode.as_mut() {
                mode.value &= 0o777;
            }
        }
        // Not "user": in a user namespace no device is admitted.
        let kinds: Vec<&str> = NAMESPACE_TYPES
            .iter()
            .copied()
            .filter(|t| *t != "user")
            .collect();
        for n in &mut l.namespaces {
            n.type_ = kinds[rng.random_range(0..kinds.len())].into();
            n.path = format!("/{}", n.path);
        }
        l.sysctl = l
            .sysctl
            .drain()
            .map(|(k, v)| (format!("net.{k}"), v))
            .collect();
        if let Some(r) = l.resources.as_mut() {
            r.unified = r
                .unified
                .drain()
                .map(|(k, v)| (format!("memory.{k}"), v))
                .collect();
            for rule in &mut r.devices {
                rule.allow = true;
                rule.type_ = "c".into();
                rule.access = "rw".into();
            }
        }
    }

    /// `grants` without the grant of `family`.
    fn without(mut g: Grants, family: Family) -> Grants {
        let none = Grants::default();
        match family {
            Family::Annotations => g.annotations = none.annotations,
            Family::Env => g.env = none.env,
            Family::Mounts => g.mounts = none.mounts,
            Family::Hooks => g.hooks = none.hooks,
            Family::Devices => g.devices = none.devices,
            Family::DeviceRules => g.device_rules = none.device_rules,
            Family::CdiDevices => g.cdi_devices = none.cdi_devices,
            Family::Rlimits => g.rlimits = none.rlimits,
            Family::Cpu => g.cpu = none.cpu,
            Family::Memory => g.memory = none.memory,
            Family::Hugepages => g.hugepages = none.hugepages,
            Family::BlockioClass => g.blockio_class = none.blockio_class,
            Family::RdtClass => g.rdt_class = none.rdt_class,
            Family::Rdt => g.rdt = false,
            Family::Unified => g.unified = none.unified,
            Family::Pids => g.pids = None,
            Family::OomScoreAdj => g.oom_score_adj = None,
            Family::Args => g.args = false,
            Family::Namespaces => g.namespaces = none.namespaces,
            Family::Seccomp => g.seccomp = false,
            Family::Sysctl => g.sysctl = none.sysctl,
            Family::NetDevices => g.net_devices = none.net_devices,
            Family::Scheduler => g.scheduler = None,
            Family::IoPriority => g.io_priority = false,
            Family::CgroupsPath => g.cgroups_path = false,
            Family::MemoryPolicy => g.memory_policy = false,
            Family::Updates => g.updates = UpdateScope::None,
            Family::Evictions => g.evictions = false,
        }
        g
    }

    const ADJUSTMENT_FAMILIES: [Family; 26] = [
        Family::Annotations,
        Family::Env,
        Family::Mounts,
        Family::Hooks,
        Family::Devices,
        Family::DeviceRules,
        Family::CdiDevices,
        Family::Rlimits,
        Family::Cpu,
        Family::Memory,
        Family::Hugepages,
        Family::BlockioClass,
        Family::RdtClass,
        Family::Rdt,
        Family::Unified,
        Family::Pids,
        Family::OomScoreAdj,
        Family::Args,
        Family::Namespaces,
        Family::Seccomp,
        Family::Sysctl,
        Family::NetDevices,
        Family::Scheduler,
        Family::IoPriority,
        Family::CgroupsPath,
        Family::MemoryPolicy,
    ];

    /// For random answers (every field set, random values) and the grants
    /// that allow exactly them: the answer passes whole; without any one
    /// family's grant it is refused, for that family only.
    #[test]
    fn random_answers_pass_exactly_their_grants() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let rng = &mut StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let mut adjust: ContainerAdjustment = crate::test_support::random(rng);
            well_formed(&mut adjust, rng);
            let grants = grants_for(&adjust);
            assert_eq!(
                check_answer(&grants, Some(&adjust), &[], &[], &no_updates()),
                []
            );
            let family = ADJUSTMENT_FAMILIES[rng.random_range(0..ADJUSTMENT_FAMILIES.len())];
            let refused = check_answer(
                &without(grants, family),
                Some(&adjust),
                &[],
                &[],
                &no_updates(),
            );
            assert!(!refused.is_empty(), "{family}: refused nothing");
            assert!(
                refused.iter().all(|r| r.family == family),
                "{family}: {refused:?}"
            );
        }
    }
}
