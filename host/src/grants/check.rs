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

use super::model::{Bounds, Grants, Patterns, UpdateScope};
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
#[error("{field} {value:?} is not granted ({family} grant: {grant})")]
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

/// A key (possibly a removal) against key patterns.
fn key_allowed(family: Family, field: &str, patterns: &Patterns, key: &str) -> Result<(), Refusal> {
    let (name, _) = split_marker(key);
    if patterns.matches(name) {
        Ok(())
    } else {
        Err(refuse(family, field, key, patterns.describe()))
    }
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

/// Every field of `ContainerAdjustment`, with its check. The path names
/// the protobuf field.
pub const ADJUSTMENT_FIELDS: &[(&str, Check<ContainerAdjustment>)] = &[
    ("annotations", |g, a| {
        a.annotations
            .keys()
            .try_for_each(|k| key_allowed(Family::Annotations, "annotations", &g.annotations, k))
    }),
    ("mounts", |g, a| {
        a.mounts.iter().try_for_each(|m| check_mount(g, m))
    }),
    ("env", |g, a| {
        a.env
            .iter()
            .try_for_each(|kv| key_allowed(Family::Env, "env", &g.env, &kv.key))
    }),
    ("hooks", |g, a| {
        let Some(h) = a.hooks.as_ref() else {
            return Ok(());
        };
        [
            &h.prestart,
            &h.create_runtime,
            &h.create_container,
            &h.start_container,
            &h.poststart,
            &h.poststop,
        ]
        .into_iter()
        .flatten()
        .try_for_each(|hook| key_allowed(Family::Hooks, "hooks", &g.hooks, &hook.path))
    }),
    ("rlimits", |g, a| {
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
    ("CDI_devices", |g, a| {
        a.CDI_devices.iter().try_for_each(|d| {
            key_allowed(Family::CdiDevices, "CDI_devices", &g.cdi_devices, &d.name)
        })
    }),
    ("args", |g, a| {
        switch(
            Family::Args,
            "args",
            g.args,
            !a.args.is_empty(),
            a.args.join(" "),
        )
    }),
    ("linux.devices", |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        l.devices.iter().try_for_each(|d| check_device(g, d))
    }),
    // Each field of the resources is checked by RESOURCE_FIELDS.
    ("linux.resources", |g, a| {
        let Some(r) = a.linux.as_ref().and_then(|l| l.resources.as_ref()) else {
            return Ok(());
        };
        check_resources(g, r)
    }),
    ("linux.cgroups_path", |g, a| {
        let path = a.linux.as_ref().map_or("", |l| l.cgroups_path.as_str());
        switch(
            Family::CgroupsPath,
            "linux.cgroups_path",
            g.cgroups_path,
            !path.is_empty(),
            path,
        )
    }),
    ("linux.oom_score_adj", |g, a| {
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
    ("linux.io_priority", |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.io_priority.is_some());
        switch(
            Family::IoPriority,
            "linux.io_priority",
            g.io_priority,
            set,
            "set",
        )
    }),
    ("linux.seccomp_policy", |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.seccomp_policy.is_some());
        switch(
            Family::Seccomp,
            "linux.seccomp_policy",
            g.seccomp,
            set,
            "set",
        )
    }),
    ("linux.namespaces", |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        l.namespaces.iter().try_for_each(|n| {
            key_allowed(
                Family::Namespaces,
                "linux.namespaces",
                &g.namespaces,
                &n.type_,
            )
        })
    }),
    ("linux.sysctl", |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        l.sysctl
            .keys()
            .try_for_each(|k| key_allowed(Family::Sysctl, "linux.sysctl", &g.sysctl, k))
    }),
    ("linux.net_devices", |g, a| {
        let Some(l) = a.linux.as_ref() else {
            return Ok(());
        };
        l.net_devices.keys().try_for_each(|k| {
            key_allowed(Family::NetDevices, "linux.net_devices", &g.net_devices, k)
        })
    }),
    ("linux.scheduler", |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.scheduler.is_some());
        switch(
            Family::Scheduler,
            "linux.scheduler",
            g.scheduler,
            set,
            "set",
        )
    }),
    ("linux.rdt", |g, a| {
        let set = a.linux.as_ref().is_some_and(|l| l.rdt.is_some());
        switch(Family::Rdt, "linux.rdt", g.rdt, set, "set")
    }),
    ("linux.memory_policy", |g, a| {
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

/// Every field of `LinuxResources`, in adjustments and updates alike.
pub const RESOURCE_FIELDS: &[(&str, Check<LinuxResources>)] = &[
    ("memory", |g, r| {
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
    ("cpu", |g, r| {
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
        let cpuset = format!("cpus {:?} mems {:?}", c.cpus, c.mems);
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
    ("hugepage_limits", |g, r| {
        r.hugepage_limits.iter().try_for_each(|h| {
            key_allowed(
                Family::Hugepages,
                "linux.resources.hugepage_limits",
                &g.hugepages,
                &h.page_size,
            )
        })
    }),
    ("blockio_class", |g, r| match r.blockio_class.as_ref() {
        Some(c) => key_allowed(
            Family::BlockioClass,
            "linux.resources.blockio_class",
            &g.blockio_class,
            &c.value,
        ),
        None => Ok(()),
    }),
    ("rdt_class", |g, r| match r.rdt_class.as_ref() {
        Some(c) => key_allowed(
            Family::RdtClass,
            "linux.resources.rdt_class",
            &g.rdt_class,
            &c.value,
        ),
        None => Ok(()),
    }),
    ("unified", |g, r| {
        r.unified.keys().try_for_each(|k| {
            key_allowed(Family::Unified, "linux.resources.unified", &g.unified, k)
        })
    }),
    ("devices", |g, r| {
        switch(
            Family::DeviceRules,
            "linux.resources.devices",
            g.device_rules,
            !r.devices.is_empty(),
            format!("{} rules", r.devices.len()),
        )
    }),
    ("pids", |g, r| {
        bounded(
            Family::Pids,
            "linux.resources.pids",
            &g.pids,
            r.pids.as_ref().map(|p| p.limit),
        )
    }),
];

fn check_resources(grants: &Grants, resources: &LinuxResources) -> Result<(), Refusal> {
    RESOURCE_FIELDS
        .iter()
        .try_for_each(|(_, check)| check(grants, resources))
}

fn check_mount(grants: &Grants, mount: &nri_proto::api::Mount) -> Result<(), Refusal> {
    let (destination, removal) = split_marker(&mount.destination);
    let writable = !mount.options.iter().any(|o| o == "ro");
    let fits = |m: &super::model::MountGrant| {
        m.destination.matches(destination)
            && (removal
                || (m.source.as_ref().is_none_or(|s| s.matches(&mount.source))
                    && m.types.as_ref().is_none_or(|t| t.contains(&mount.type_))
                    && (m.read_write || !writable)))
    };
    if grants.mounts.iter().any(fits) {
        return Ok(());
    }
    let value = format!(
        "{} from {} ({}, {})",
        mount.destination,
        mount.source,
        mount.type_,
        if writable { "rw" } else { "ro" }
    );
    Err(refuse(
        Family::Mounts,
        "mounts",
        value,
        format!("{} grants", grants.mounts.len()),
    ))
}

fn check_device(grants: &Grants, device: &nri_proto::api::LinuxDevice) -> Result<(), Refusal> {
    let (path, removal) = split_marker(&device.path);
    let mode = device.file_mode.as_ref().map(|m| m.value);
    let fits = |d: &super::model::DeviceGrant| {
        d.path.matches(path)
            && (removal
                || (d.types.as_ref().is_none_or(|t| t.contains(&device.type_))
                    && d.major.as_ref().is_none_or(|m| m.contains(&device.major))
                    && d.minor.as_ref().is_none_or(|m| m.contains(&device.minor))
                    && match (d.max_file_mode, mode) {
                        (Some(max), Some(mode)) => mode & !max == 0,
                        _ => true,
                    }))
    };
    if grants.devices.iter().any(fits) {
        return Ok(());
    }
    let value = format!(
        "{} ({} {}:{})",
        device.path, device.type_, device.major, device.minor
    );
    Err(refuse(
        Family::Devices,
        "linux.devices",
        value,
        format!("{} grants", grants.devices.len()),
    ))
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
    let mut refusals = Vec::new();
    if let Some(adjust) = adjust {
        refusals.extend(
            ADJUSTMENT_FIELDS
                .iter()
                .filter_map(|(_, check)| check(grants, adjust).err()),
        );
    }
    for update in updates {
        refusals.extend(check_update_target(grants, &update.container_id, targets).err());
        if let Some(resources) = update.linux.as_ref().and_then(|l| l.resources.as_ref()) {
            refusals.extend(check_resources(grants, resources).err());
        }
    }
    for eviction in evictions {
        let id = &eviction.container_id;
        let check = switch(Family::Evictions, "evict", grants.evictions, true, id)
            .and_then(|()| visible_target(Family::Evictions, "evict", id, targets).map(drop));
        refusals.extend(check.err());
    }
    refusals
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
            .map(|(p, _)| p.to_string())
            .collect();
        let fields = field_paths(&api::ContainerAdjustment::descriptor(), "", &["linux"]);
        let missing: Vec<&String> = fields.difference(&covered).collect();
        assert!(
            missing.is_empty(),
            "ContainerAdjustment fields without a grant family: {missing:?}"
        );

        let covered: BTreeSet<String> =
            RESOURCE_FIELDS.iter().map(|(p, _)| p.to_string()).collect();
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
            ("mounts", mounts, "mounts = [{ destination = [\"/data\"], read-write = true }]", "mounts \"/data from /srv/data (bind, rw)\" is not granted (mounts grant: 0 grants)"),
            ("hooks", hooks, "hooks = [\"/bin/hook\"]", "hooks \"/bin/hook\" is not granted (hooks grant: [])"),
            ("rlimits", rlimits, "rlimits = { RLIMIT_NOFILE = 4096 }", "rlimits \"RLIMIT_NOFILE\" is not granted (rlimits grant: [])"),
            ("cdi", cdi, "cdi-devices = [\"vendor.com/*\"]", "CDI_devices \"vendor.com/gpu=0\" is not granted (cdi-devices grant: [])"),
            ("args", args, "args = true", "args \"/bin/sh\" is not granted (args grant: false)"),
            ("devices", adjust_linux(|l| l.devices.push(api::LinuxDevice { path: "/dev/null".into(), type_: "c".into(), major: 1, minor: 3, ..Default::default() })), "devices = [{ path = [\"/dev/null\"], types = [\"c\"] }]", "linux.devices \"/dev/null (c 1:3)\" is not granted (devices grant: 0 grants)"),
            ("memory limit", resources(|r| r.memory.mut_or_insert_default().limit = Some(api::OptionalInt64 { value: 1 << 30, ..Default::default() }).into()), "memory = { limit = [4194304, 68719476736] }", "linux.resources.memory.limit \"1073741824\" is not granted (memory grant: none)"),
            ("oom kill", resources(|r| r.memory.mut_or_insert_default().disable_oom_killer = Some(api::OptionalBool { value: true, ..Default::default() }).into()), "memory = { oom-kill = true }", "linux.resources.memory.disable_oom_killer \"Some(true)\" is not granted (memory grant: false)"),
            ("cpu shares", resources(|r| r.cpu.mut_or_insert_default().shares = Some(api::OptionalUInt64 { value: 512, ..Default::default() }).into()), "cpu = { shares = [2, 1024] }", "linux.resources.cpu.shares \"512\" is not granted (cpu grant: none)"),
            ("cpuset", resources(|r| r.cpu.mut_or_insert_default().cpus = "0-1".into()), "cpu = { cpuset = true }", "linux.resources.cpu.cpuset \"cpus \\\"0-1\\\" mems \\\"\\\"\" is not granted (cpu grant: false)"),
            ("hugepages", resources(|r| r.hugepage_limits.push(api::HugepageLimit { page_size: "2MB".into(), limit: 1, ..Default::default() })), "hugepages = [\"2MB\"]", "linux.resources.hugepage_limits \"2MB\" is not granted (hugepages grant: [])"),
            ("blockio", resources(|r| r.blockio_class = Some(api::OptionalString { value: "slow".into(), ..Default::default() }).into()), "blockio-class = [\"slow\"]", "linux.resources.blockio_class \"slow\" is not granted (blockio-class grant: [])"),
            ("rdt class", resources(|r| r.rdt_class = Some(api::OptionalString { value: "gold".into(), ..Default::default() }).into()), "rdt-class = [\"gold\"]", "linux.resources.rdt_class \"gold\" is not granted (rdt-class grant: [])"),
            ("unified", resources(|r| { r.unified.insert("memory.high".into(), "1G".into()); }), "unified = [\"memory.*\"]", "linux.resources.unified \"memory.high\" is not granted (unified grant: [])"),
            ("device rules", resources(|r| r.devices.push(api::LinuxDeviceCgroup::new())), "device-rules = true", "linux.resources.devices \"1 rules\" is not granted (device-rules grant: false)"),
            ("pids", resources(|r| r.pids = Some(api::LinuxPids { limit: 100, ..Default::default() }).into()), "pids = [1, 1000]", "linux.resources.pids \"100\" is not granted (pids grant: none)"),
            ("cgroups path", adjust_linux(|l| l.cgroups_path = "/x".into()), "cgroups-path = true", "linux.cgroups_path \"/x\" is not granted (cgroups-path grant: false)"),
            ("oom score", adjust_linux(|l| l.oom_score_adj = Some(api::OptionalInt { value: -999, ..Default::default() }).into()), "oom-score-adj = [-1000, 1000]", "linux.oom_score_adj \"-999\" is not granted (oom-score-adj grant: none)"),
            ("io priority", adjust_linux(|l| l.io_priority = Some(api::LinuxIOPriority::new()).into()), "io-priority = true", "linux.io_priority \"set\" is not granted (io-priority grant: false)"),
            ("seccomp", adjust_linux(|l| l.seccomp_policy = Some(api::LinuxSeccomp::new()).into()), "seccomp = true", "linux.seccomp_policy \"set\" is not granted (seccomp grant: false)"),
            ("namespaces", adjust_linux(|l| l.namespaces.push(api::LinuxNamespace { type_: "network".into(), ..Default::default() })), "namespaces = [\"network\"]", "linux.namespaces \"network\" is not granted (namespaces grant: [])"),
            ("sysctl", adjust_linux(|l| { l.sysctl.insert("net.ipv4.ip_forward".into(), "1".into()); }), "sysctl = [\"net.ipv4.*\"]", "linux.sysctl \"net.ipv4.ip_forward\" is not granted (sysctl grant: [])"),
            ("net devices", adjust_linux(|l| { l.net_devices.insert("eth1".into(), api::LinuxNetDevice::new()); }), "net-devices = [\"eth*\"]", "linux.net_devices \"eth1\" is not granted (net-devices grant: [])"),
            ("scheduler", adjust_linux(|l| l.scheduler = Some(api::LinuxScheduler::new()).into()), "scheduler = true", "linux.scheduler \"set\" is not granted (scheduler grant: false)"),
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
    fn bounds_and_details_are_enforced() {
        let cases: [(&str, ContainerAdjustment, &str, &str); 4] = [
            ("memory below min", resources(|r| r.memory.mut_or_insert_default().limit = Some(api::OptionalInt64 { value: 1, ..Default::default() }).into()), "memory = { limit = [4194304, 68719476736] }", "linux.resources.memory.limit \"1\" is not granted (memory grant: [4194304, 68719476736])"),
            ("rlimit above max", { let mut a = ContainerAdjustment::new(); a.rlimits.push(api::POSIXRlimit { type_: "RLIMIT_NOFILE".into(), soft: 1, hard: 1 << 20, ..Default::default() }); a }, "rlimits = { RLIMIT_NOFILE = 4096 }", "rlimits \"RLIMIT_NOFILE soft 1 hard 1048576\" is not granted (rlimits grant: RLIMIT_NOFILE up to 4096)"),
            ("writable mount of a read-only grant", { let mut a = ContainerAdjustment::new(); a.mounts.push(api::Mount { destination: "/".into(), source: "/".into(), type_: "bind".into(), ..Default::default() }); a }, "mounts = [{ destination = [\"/*\"], source = [\"/*\"] }]", "mounts \"/ from / (bind, rw)\" is not granted (mounts grant: 1 grants)"),
            ("device mode beyond the grant", adjust_linux(|l| l.devices.push(api::LinuxDevice { path: "/dev/x".into(), type_: "c".into(), file_mode: Some(api::OptionalFileMode { value: 0o666, ..Default::default() }).into(), ..Default::default() })), "devices = [{ path = [\"/dev/x\"], max-file-mode = 0o644 }]", "linux.devices \"/dev/x (c 0:0)\" is not granted (devices grant: 1 grants)"),
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
        g.device_rules = !r.devices.is_empty();
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
            .map(|m| super::super::model::MountGrant {
                destination: exact([m.destination.clone()]),
                source: Some(exact([m.source.clone()])),
                types: Some(vec![m.type_.clone()]),
                read_write: true,
            })
            .collect();
        if let Some(h) = a.hooks.as_ref() {
            let all = [
                &h.prestart,
                &h.create_runtime,
                &h.create_container,
                &h.start_container,
                &h.poststart,
                &h.poststop,
            ];
            g.hooks = exact(all.into_iter().flatten().map(|hook| hook.path.clone()));
        }
        for r in &a.rlimits {
            let max = g.rlimits.entry(r.type_.clone()).or_default();
            *max = (*max).max(r.hard);
        }
        if let Some(l) = a.linux.as_ref() {
            g.devices = l
                .devices
                .iter()
                .map(|d| super::super::model::DeviceGrant {
                    path: exact([d.path.clone()]),
                    types: Some(vec![d.type_.clone()]),
                    major: Some(vec![d.major]),
                    minor: Some(vec![d.minor]),
                    max_file_mode: None,
                })
                .collect();
            if let Some(r) = l.resources.as_ref() {
                grant_resources(&mut g, r);
            }
            g.cgroups_path = !l.cgroups_path.is_empty();
            g.oom_score_adj = point(l.oom_score_adj.as_ref().map(|o| o.value));
            g.io_priority = l.io_priority.is_some();
            g.seccomp = l.seccomp_policy.is_some();
            g.namespaces = exact(l.namespaces.iter().map(|n| n.type_.clone()));
            g.sysctl = exact(l.sysctl.keys().cloned());
            g.net_devices = exact(l.net_devices.keys().cloned());
            g.scheduler = l.scheduler.is_some();
            g.rdt = l.rdt.is_some();
            g.memory_policy = l.memory_policy.is_some();
        }
        g
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
            Family::DeviceRules => g.device_rules = false,
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
            Family::Scheduler => g.scheduler = false,
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
            for r in &mut adjust.rlimits {
                r.soft = r.soft.min(r.hard);
            }
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
