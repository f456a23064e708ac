//! Total conversions between NRI's protobuf messages and the WIT data
//! model, both ways, every field. Maps become key-sorted lists, so a guest
//! sees the same order every time; NRI's optional wrappers become `option`.

use std::collections::HashMap;

use nri_proto::api;
use protobuf::{EnumOrUnknown, MessageField};

use super::bindings::types as wit;

/// NRI's `Optional*` wrapper messages.
trait Wrapper: Default {
    type Value: Clone;
    fn get(&self) -> Self::Value;
    fn wrap(value: Self::Value) -> Self;
}

macro_rules! wrapper {
    ($($ty:ident: $value:ty),* $(,)?) => {$(
        impl Wrapper for api::$ty {
            type Value = $value;
            fn get(&self) -> $value {
                self.value.clone()
            }
            fn wrap(value: $value) -> Self {
                api::$ty { value, ..Default::default() }
            }
        }
    )*};
}

wrapper!(
    OptionalString: String,
    OptionalRepeatedString: Vec<String>,
    OptionalInt: i64,
    OptionalInt64: i64,
    OptionalUInt32: u32,
    OptionalUInt64: u64,
    OptionalBool: bool,
    OptionalFileMode: u32,
);

fn unwrap<W: Wrapper>(field: &MessageField<W>) -> Option<W::Value> {
    field.as_ref().map(W::get)
}

fn wrap<W: Wrapper>(value: Option<W::Value>) -> MessageField<W> {
    MessageField::from_option(value.map(W::wrap))
}

fn message<P, W: for<'a> From<&'a P>>(field: &MessageField<P>) -> Option<W> {
    field.as_ref().map(W::from)
}

fn proto<W, P: From<W>>(value: Option<W>) -> MessageField<P> {
    MessageField::from_option(value.map(P::from))
}

fn list<P, W: for<'a> From<&'a P>>(items: &[P]) -> Vec<W> {
    items.iter().map(W::from).collect()
}

fn protos<W, P: From<W>>(items: Vec<W>) -> Vec<P> {
    items.into_iter().map(P::from).collect()
}

/// A map as a key-sorted list of pairs.
fn pairs<V: Clone, W>(map: &HashMap<String, V>, f: impl Fn(&V) -> W) -> Vec<(String, W)> {
    pairs_where(map, |_| true, f)
}

/// The entries of `map` whose key passes `keep`, as a key-sorted list.
fn pairs_where<V: Clone, W>(
    map: &HashMap<String, V>,
    keep: impl Fn(&str) -> bool,
    f: impl Fn(&V) -> W,
) -> Vec<(String, W)> {
    let mut pairs: Vec<(String, W)> = map
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.clone(), f(v)))
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    pairs
}

fn map<W, V>(pairs: Vec<(String, W)>, f: impl Fn(W) -> V) -> HashMap<String, V> {
    pairs.into_iter().map(|(k, v)| (k, f(v))).collect()
}

fn string_map(map: &HashMap<String, String>) -> Vec<(String, String)> {
    pairs(map, String::clone)
}

fn string_pairs(list: Vec<(String, String)>) -> HashMap<String, String> {
    map(list, |v| v)
}

/// What of a pod, a container or an adjustment a guest is shown: the
/// conversions that take one leave out the rest as they copy, so a
/// guest's view costs one copy. The read grants are one; [`Everything`]
/// shows all.
pub trait Visible {
    /// Whether the label `key` is shown.
    fn label(&self, key: &str) -> bool;
    /// Whether the annotation `key` is shown.
    fn annotation(&self, key: &str) -> bool;
    /// Whether environment values are shown (names always are).
    fn env_values(&self) -> bool;
    /// Whether arguments are shown.
    fn args(&self) -> bool;
    /// Whether mounts are shown.
    fn mounts(&self) -> bool;
    /// Whether OCI hooks are shown.
    fn hooks(&self) -> bool;
}

/// Shows everything.
pub struct Everything;

impl Visible for Everything {
    fn label(&self, _: &str) -> bool {
        true
    }
    fn annotation(&self, _: &str) -> bool {
        true
    }
    fn env_values(&self) -> bool {
        true
    }
    fn args(&self) -> bool {
        true
    }
    fn mounts(&self) -> bool {
        true
    }
    fn hooks(&self) -> bool {
        true
    }
}

/// What replaces the value of an environment variable a guest is not
/// shown: the name stays, so a guest can tell a variable is set.
pub const HIDDEN_VALUE: &str = "";

fn labels_shown(map: &HashMap<String, String>, shown: &impl Visible) -> Vec<(String, String)> {
    pairs_where(map, |k| shown.label(k), String::clone)
}

/// The annotations whose keys `shown` shows; in an adjustment, a removal
/// (`-key`) is shown where the key is.
fn annotations_shown(map: &HashMap<String, String>, shown: &impl Visible) -> Vec<(String, String)> {
    pairs_where(
        map,
        |k| shown.annotation(nri_proto::adjust::split_marker(k).0),
        String::clone,
    )
}

/// `items` if `shown`, else nothing.
fn list_if<P, W: for<'a> From<&'a P>>(shown: bool, items: &[P]) -> Vec<W> {
    if shown {
        list(items)
    } else {
        Vec::new()
    }
}

macro_rules! enum_map {
    ($proto:ty, $wit:ty, $default:ident, [$($p:ident <=> $w:ident),* $(,)?]) => {
        impl From<EnumOrUnknown<$proto>> for $wit {
            fn from(value: EnumOrUnknown<$proto>) -> Self {
                match value.enum_value() {
                    $(Ok(<$proto>::$p) => <$wit>::$w,)*
                    Err(_) => <$wit>::$default,
                }
            }
        }
        impl From<$wit> for EnumOrUnknown<$proto> {
            fn from(value: $wit) -> Self {
                EnumOrUnknown::new(match value {
                    $(<$wit>::$w => <$proto>::$p,)*
                })
            }
        }
    };
}

enum_map!(api::ContainerState, wit::ContainerState, Unknown, [
    CONTAINER_UNKNOWN <=> Unknown,
    CONTAINER_CREATED <=> Created,
    CONTAINER_PAUSED <=> Paused,
    CONTAINER_RUNNING <=> Running,
    CONTAINER_STOPPED <=> Stopped,
]);

enum_map!(api::security_profile::ProfileType, wit::ProfileType, RuntimeDefault, [
    RUNTIME_DEFAULT <=> RuntimeDefault,
    UNCONFINED <=> Unconfined,
    LOCALHOST <=> Localhost,
]);

enum_map!(api::IOPrioClass, wit::IoPrioClass, None, [
    IOPRIO_CLASS_NONE <=> None,
    IOPRIO_CLASS_RT <=> Rt,
    IOPRIO_CLASS_BE <=> Be,
    IOPRIO_CLASS_IDLE <=> Idle,
]);

enum_map!(api::LinuxSchedulerPolicy, wit::LinuxSchedulerPolicy, None, [
    SCHED_NONE <=> None,
    SCHED_OTHER <=> Other,
    SCHED_FIFO <=> Fifo,
    SCHED_RR <=> Rr,
    SCHED_BATCH <=> Batch,
    SCHED_ISO <=> Iso,
    SCHED_IDLE <=> Idle,
    SCHED_DEADLINE <=> Deadline,
]);

enum_map!(api::MpolMode, wit::MpolMode, Default, [
    MPOL_DEFAULT <=> Default,
    MPOL_PREFERRED <=> Preferred,
    MPOL_BIND <=> Bind,
    MPOL_INTERLEAVE <=> Interleave,
    MPOL_LOCAL <=> Local,
    MPOL_PREFERRED_MANY <=> PreferredMany,
    MPOL_WEIGHTED_INTERLEAVE <=> WeightedInterleave,
]);

enum_map!(api::Field, wit::Field, None, [
    None <=> None,
    Annotations <=> Annotations,
    Mounts <=> Mounts,
    OciHooks <=> OciHooks,
    Devices <=> Devices,
    CdiDevices <=> CdiDevices,
    Env <=> Env,
    Args <=> Args,
    MemLimit <=> MemLimit,
    MemReservation <=> MemReservation,
    MemSwapLimit <=> MemSwapLimit,
    MemKernelLimit <=> MemKernelLimit,
    MemTCPLimit <=> MemTcpLimit,
    MemSwappiness <=> MemSwappiness,
    MemDisableOomKiller <=> MemDisableOomKiller,
    MemUseHierarchy <=> MemUseHierarchy,
    CPUShares <=> CpuShares,
    CPUQuota <=> CpuQuota,
    CPUPeriod <=> CpuPeriod,
    CPURealtimeRuntime <=> CpuRealtimeRuntime,
    CPURealtimePeriod <=> CpuRealtimePeriod,
    CPUSetCPUs <=> CpuSetCpus,
    CPUSetMems <=> CpuSetMems,
    PidsLimit <=> PidsLimit,
    HugepageLimits <=> HugepageLimits,
    BlockioClass <=> BlockioClass,
    RdtClass <=> RdtClass,
    CgroupsUnified <=> CgroupsUnified,
    CgroupsPath <=> CgroupsPath,
    OomScoreAdj <=> OomScoreAdj,
    Rlimits <=> Rlimits,
    IoPriority <=> IoPriority,
    SeccompPolicy <=> SeccompPolicy,
    Namespace <=> Namespace,
    Sysctl <=> Sysctl,
    LinuxNetDevices <=> LinuxNetDevices,
    LinuxSched <=> LinuxSched,
    RdtClosID <=> RdtClosId,
    RdtSchemata <=> RdtSchemata,
    RdtEnableMonitoring <=> RdtEnableMonitoring,
    MemoryPolicy <=> MemoryPolicy,
]);

/// The bit of each scheduler flag, in wire order.
const SCHEDULER_FLAGS: [(api::LinuxSchedulerFlag, wit::LinuxSchedulerFlags); 7] = [
    (
        api::LinuxSchedulerFlag::SCHED_FLAG_RESET_ON_FORK,
        wit::LinuxSchedulerFlags::RESET_ON_FORK,
    ),
    (
        api::LinuxSchedulerFlag::SCHED_FLAG_RECLAIM,
        wit::LinuxSchedulerFlags::RECLAIM,
    ),
    (
        api::LinuxSchedulerFlag::SCHED_FLAG_DL_OVERRUN,
        wit::LinuxSchedulerFlags::DL_OVERRUN,
    ),
    (
        api::LinuxSchedulerFlag::SCHED_FLAG_KEEP_POLICY,
        wit::LinuxSchedulerFlags::KEEP_POLICY,
    ),
    (
        api::LinuxSchedulerFlag::SCHED_FLAG_KEEP_PARAMS,
        wit::LinuxSchedulerFlags::KEEP_PARAMS,
    ),
    (
        api::LinuxSchedulerFlag::SCHED_FLAG_UTIL_CLAMP_MIN,
        wit::LinuxSchedulerFlags::UTIL_CLAMP_MIN,
    ),
    (
        api::LinuxSchedulerFlag::SCHED_FLAG_UTIL_CLAMP_MAX,
        wit::LinuxSchedulerFlags::UTIL_CLAMP_MAX,
    ),
];

const MPOL_FLAGS: [(api::MpolFlag, wit::MpolFlags); 3] = [
    (
        api::MpolFlag::MPOL_F_STATIC_NODES,
        wit::MpolFlags::STATIC_NODES,
    ),
    (
        api::MpolFlag::MPOL_F_RELATIVE_NODES,
        wit::MpolFlags::RELATIVE_NODES,
    ),
    (
        api::MpolFlag::MPOL_F_NUMA_BALANCING,
        wit::MpolFlags::NUMA_BALANCING,
    ),
];

/// A repeated enum as a set of flags; values outside the set are dropped.
fn to_flags<P: protobuf::Enum + PartialEq, F: Copy + std::ops::BitOr<Output = F>>(
    values: &[EnumOrUnknown<P>],
    table: &[(P, F)],
    empty: F,
) -> F {
    table
        .iter()
        .filter(|(p, _)| values.iter().any(|v| v.enum_value().as_ref() == Ok(p)))
        .fold(empty, |acc, &(_, f)| acc | f)
}

fn from_flags<P: protobuf::Enum + Copy, F: Copy + std::ops::BitAnd<Output = F> + PartialEq>(
    flags: F,
    table: &[(P, F)],
    empty: F,
) -> Vec<EnumOrUnknown<P>> {
    table
        .iter()
        .filter(|&&(_, f)| flags & f != empty)
        .map(|&(p, _)| EnumOrUnknown::new(p))
        .collect()
}

// --- pods ---

impl From<&api::PodSandbox> for wit::PodSandbox {
    fn from(p: &api::PodSandbox) -> Self {
        pod_to_wit(p, &Everything)
    }
}

/// The pod with what `shown` shows.
pub fn pod_to_wit(p: &api::PodSandbox, shown: &impl Visible) -> wit::PodSandbox {
    wit::PodSandbox {
        id: p.id.clone(),
        name: p.name.clone(),
        uid: p.uid.clone(),
        namespace: p.namespace.clone(),
        labels: labels_shown(&p.labels, shown),
        annotations: annotations_shown(&p.annotations, shown),
        runtime_handler: p.runtime_handler.clone(),
        linux: message(&p.linux),
        pid: p.pid,
        ips: p.ips.clone(),
    }
}

impl From<wit::PodSandbox> for api::PodSandbox {
    fn from(p: wit::PodSandbox) -> Self {
        api::PodSandbox {
            id: p.id,
            name: p.name,
            uid: p.uid,
            namespace: p.namespace,
            labels: string_pairs(p.labels),
            annotations: string_pairs(p.annotations),
            runtime_handler: p.runtime_handler,
            linux: proto(p.linux),
            pid: p.pid,
            ips: p.ips,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxPodSandbox> for wit::LinuxPodSandbox {
    fn from(l: &api::LinuxPodSandbox) -> Self {
        wit::LinuxPodSandbox {
            pod_overhead: message(&l.pod_overhead),
            pod_resources: message(&l.pod_resources),
            cgroup_parent: l.cgroup_parent.clone(),
            cgroups_path: l.cgroups_path.clone(),
            namespaces: list(&l.namespaces),
            resources: message(&l.resources),
        }
    }
}

impl From<wit::LinuxPodSandbox> for api::LinuxPodSandbox {
    fn from(l: wit::LinuxPodSandbox) -> Self {
        api::LinuxPodSandbox {
            pod_overhead: proto(l.pod_overhead),
            pod_resources: proto(l.pod_resources),
            cgroup_parent: l.cgroup_parent,
            cgroups_path: l.cgroups_path,
            namespaces: protos(l.namespaces),
            resources: proto(l.resources),
            ..Default::default()
        }
    }
}

// --- containers ---

impl From<&api::Container> for wit::Container {
    fn from(c: &api::Container) -> Self {
        container_to_wit(c, &Everything)
    }
}

/// An entry `NAME=value` with the value hidden.
fn env_name_only(entry: &str) -> String {
    let name = entry.split_once('=').map_or(entry, |(name, _)| name);
    format!("{name}={HIDDEN_VALUE}")
}

/// The container with what `shown` shows.
pub fn container_to_wit(c: &api::Container, shown: &impl Visible) -> wit::Container {
    wit::Container {
        id: c.id.clone(),
        pod_sandbox_id: c.pod_sandbox_id.clone(),
        name: c.name.clone(),
        state: c.state.into(),
        labels: labels_shown(&c.labels, shown),
        annotations: annotations_shown(&c.annotations, shown),
        args: if shown.args() {
            c.args.clone()
        } else {
            Vec::new()
        },
        env: if shown.env_values() {
            c.env.clone()
        } else {
            c.env.iter().map(|e| env_name_only(e)).collect()
        },
        mounts: list_if(shown.mounts(), &c.mounts),
        hooks: if shown.hooks() {
            message(&c.hooks)
        } else {
            None
        },
        linux: message(&c.linux),
        pid: c.pid,
        rlimits: list(&c.rlimits),
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        exit_code: c.exit_code,
        status_reason: c.status_reason.clone(),
        status_message: c.status_message.clone(),
        cdi_devices: list(&c.CDI_devices),
        user: message(&c.user),
        image: message(&c.image),
    }
}

impl From<wit::Container> for api::Container {
    fn from(c: wit::Container) -> Self {
        api::Container {
            id: c.id,
            pod_sandbox_id: c.pod_sandbox_id,
            name: c.name,
            state: c.state.into(),
            labels: string_pairs(c.labels),
            annotations: string_pairs(c.annotations),
            args: c.args,
            env: c.env,
            mounts: protos(c.mounts),
            hooks: proto(c.hooks),
            linux: proto(c.linux),
            pid: c.pid,
            rlimits: protos(c.rlimits),
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            status_reason: c.status_reason,
            status_message: c.status_message,
            CDI_devices: protos(c.cdi_devices),
            user: proto(c.user),
            image: proto(c.image),
            ..Default::default()
        }
    }
}

impl From<&api::Image> for wit::Image {
    fn from(i: &api::Image) -> Self {
        wit::Image {
            name: i.name.clone(),
            digest: i.digest.clone(),
            config_digest: i.config_digest.clone(),
        }
    }
}

impl From<wit::Image> for api::Image {
    fn from(i: wit::Image) -> Self {
        api::Image {
            name: i.name,
            digest: i.digest,
            config_digest: i.config_digest,
            ..Default::default()
        }
    }
}

impl From<&api::User> for wit::User {
    fn from(u: &api::User) -> Self {
        wit::User {
            uid: u.uid,
            gid: u.gid,
            additional_gids: u.additional_gids.clone(),
        }
    }
}

impl From<wit::User> for api::User {
    fn from(u: wit::User) -> Self {
        api::User {
            uid: u.uid,
            gid: u.gid,
            additional_gids: u.additional_gids,
            ..Default::default()
        }
    }
}

impl From<&api::Mount> for wit::Mount {
    fn from(m: &api::Mount) -> Self {
        wit::Mount {
            destination: m.destination.clone(),
            type_: m.type_.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        }
    }
}

impl From<wit::Mount> for api::Mount {
    fn from(m: wit::Mount) -> Self {
        api::Mount {
            destination: m.destination,
            type_: m.type_,
            source: m.source,
            options: m.options,
            ..Default::default()
        }
    }
}

impl From<&api::Hooks> for wit::Hooks {
    fn from(h: &api::Hooks) -> Self {
        wit::Hooks {
            prestart: list(&h.prestart),
            create_runtime: list(&h.create_runtime),
            create_container: list(&h.create_container),
            start_container: list(&h.start_container),
            poststart: list(&h.poststart),
            poststop: list(&h.poststop),
        }
    }
}

impl From<wit::Hooks> for api::Hooks {
    fn from(h: wit::Hooks) -> Self {
        api::Hooks {
            prestart: protos(h.prestart),
            create_runtime: protos(h.create_runtime),
            create_container: protos(h.create_container),
            start_container: protos(h.start_container),
            poststart: protos(h.poststart),
            poststop: protos(h.poststop),
            ..Default::default()
        }
    }
}

impl From<&api::Hook> for wit::Hook {
    fn from(h: &api::Hook) -> Self {
        wit::Hook {
            path: h.path.clone(),
            args: h.args.clone(),
            env: h.env.clone(),
            timeout: unwrap(&h.timeout),
        }
    }
}

impl From<wit::Hook> for api::Hook {
    fn from(h: wit::Hook) -> Self {
        api::Hook {
            path: h.path,
            args: h.args,
            env: h.env,
            timeout: wrap(h.timeout),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxContainer> for wit::LinuxContainer {
    fn from(l: &api::LinuxContainer) -> Self {
        wit::LinuxContainer {
            namespaces: list(&l.namespaces),
            devices: list(&l.devices),
            resources: message(&l.resources),
            oom_score_adj: unwrap(&l.oom_score_adj),
            cgroups_path: l.cgroups_path.clone(),
            io_priority: message(&l.io_priority),
            seccomp_profile: message(&l.seccomp_profile),
            seccomp_policy: message(&l.seccomp_policy),
            sysctl: string_map(&l.sysctl),
            net_devices: pairs(&l.net_devices, |d| d.into()),
            scheduler: message(&l.scheduler),
            rdt: message(&l.rdt),
        }
    }
}

impl From<wit::LinuxContainer> for api::LinuxContainer {
    fn from(l: wit::LinuxContainer) -> Self {
        api::LinuxContainer {
            namespaces: protos(l.namespaces),
            devices: protos(l.devices),
            resources: proto(l.resources),
            oom_score_adj: wrap(l.oom_score_adj),
            cgroups_path: l.cgroups_path,
            io_priority: proto(l.io_priority),
            seccomp_profile: proto(l.seccomp_profile),
            seccomp_policy: proto(l.seccomp_policy),
            sysctl: string_pairs(l.sysctl),
            net_devices: map(l.net_devices, api::LinuxNetDevice::from),
            scheduler: proto(l.scheduler),
            rdt: proto(l.rdt),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxNamespace> for wit::LinuxNamespace {
    fn from(n: &api::LinuxNamespace) -> Self {
        wit::LinuxNamespace {
            type_: n.type_.clone(),
            path: n.path.clone(),
        }
    }
}

impl From<wit::LinuxNamespace> for api::LinuxNamespace {
    fn from(n: wit::LinuxNamespace) -> Self {
        api::LinuxNamespace {
            type_: n.type_,
            path: n.path,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxDevice> for wit::LinuxDevice {
    fn from(d: &api::LinuxDevice) -> Self {
        wit::LinuxDevice {
            path: d.path.clone(),
            type_: d.type_.clone(),
            major: d.major,
            minor: d.minor,
            file_mode: unwrap(&d.file_mode),
            uid: unwrap(&d.uid),
            gid: unwrap(&d.gid),
        }
    }
}

impl From<wit::LinuxDevice> for api::LinuxDevice {
    fn from(d: wit::LinuxDevice) -> Self {
        api::LinuxDevice {
            path: d.path,
            type_: d.type_,
            major: d.major,
            minor: d.minor,
            file_mode: wrap(d.file_mode),
            uid: wrap(d.uid),
            gid: wrap(d.gid),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxDeviceCgroup> for wit::LinuxDeviceCgroup {
    fn from(d: &api::LinuxDeviceCgroup) -> Self {
        wit::LinuxDeviceCgroup {
            allow: d.allow,
            type_: d.type_.clone(),
            major: unwrap(&d.major),
            minor: unwrap(&d.minor),
            access: d.access.clone(),
        }
    }
}

impl From<wit::LinuxDeviceCgroup> for api::LinuxDeviceCgroup {
    fn from(d: wit::LinuxDeviceCgroup) -> Self {
        api::LinuxDeviceCgroup {
            allow: d.allow,
            type_: d.type_,
            major: wrap(d.major),
            minor: wrap(d.minor),
            access: d.access,
            ..Default::default()
        }
    }
}

impl From<&api::CDIDevice> for wit::CdiDevice {
    fn from(d: &api::CDIDevice) -> Self {
        wit::CdiDevice {
            name: d.name.clone(),
        }
    }
}

impl From<wit::CdiDevice> for api::CDIDevice {
    fn from(d: wit::CdiDevice) -> Self {
        api::CDIDevice {
            name: d.name,
            ..Default::default()
        }
    }
}

// --- resources ---

impl From<&api::LinuxResources> for wit::LinuxResources {
    fn from(r: &api::LinuxResources) -> Self {
        wit::LinuxResources {
            memory: message(&r.memory),
            cpu: message(&r.cpu),
            hugepage_limits: list(&r.hugepage_limits),
            blockio_class: unwrap(&r.blockio_class),
            rdt_class: unwrap(&r.rdt_class),
            unified: string_map(&r.unified),
            devices: list(&r.devices),
            pids: message(&r.pids),
        }
    }
}

impl From<wit::LinuxResources> for api::LinuxResources {
    fn from(r: wit::LinuxResources) -> Self {
        api::LinuxResources {
            memory: proto(r.memory),
            cpu: proto(r.cpu),
            hugepage_limits: protos(r.hugepage_limits),
            blockio_class: wrap(r.blockio_class),
            rdt_class: wrap(r.rdt_class),
            unified: string_pairs(r.unified),
            devices: protos(r.devices),
            pids: proto(r.pids),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxMemory> for wit::LinuxMemory {
    fn from(m: &api::LinuxMemory) -> Self {
        wit::LinuxMemory {
            limit: unwrap(&m.limit),
            reservation: unwrap(&m.reservation),
            swap: unwrap(&m.swap),
            kernel: unwrap(&m.kernel),
            kernel_tcp: unwrap(&m.kernel_tcp),
            swappiness: unwrap(&m.swappiness),
            disable_oom_killer: unwrap(&m.disable_oom_killer),
            use_hierarchy: unwrap(&m.use_hierarchy),
        }
    }
}

impl From<wit::LinuxMemory> for api::LinuxMemory {
    fn from(m: wit::LinuxMemory) -> Self {
        api::LinuxMemory {
            limit: wrap(m.limit),
            reservation: wrap(m.reservation),
            swap: wrap(m.swap),
            kernel: wrap(m.kernel),
            kernel_tcp: wrap(m.kernel_tcp),
            swappiness: wrap(m.swappiness),
            disable_oom_killer: wrap(m.disable_oom_killer),
            use_hierarchy: wrap(m.use_hierarchy),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxCPU> for wit::LinuxCpu {
    fn from(c: &api::LinuxCPU) -> Self {
        wit::LinuxCpu {
            shares: unwrap(&c.shares),
            quota: unwrap(&c.quota),
            period: unwrap(&c.period),
            realtime_runtime: unwrap(&c.realtime_runtime),
            realtime_period: unwrap(&c.realtime_period),
            cpus: c.cpus.clone(),
            mems: c.mems.clone(),
        }
    }
}

impl From<wit::LinuxCpu> for api::LinuxCPU {
    fn from(c: wit::LinuxCpu) -> Self {
        api::LinuxCPU {
            shares: wrap(c.shares),
            quota: wrap(c.quota),
            period: wrap(c.period),
            realtime_runtime: wrap(c.realtime_runtime),
            realtime_period: wrap(c.realtime_period),
            cpus: c.cpus,
            mems: c.mems,
            ..Default::default()
        }
    }
}

impl From<&api::HugepageLimit> for wit::HugepageLimit {
    fn from(h: &api::HugepageLimit) -> Self {
        wit::HugepageLimit {
            page_size: h.page_size.clone(),
            limit: h.limit,
        }
    }
}

impl From<wit::HugepageLimit> for api::HugepageLimit {
    fn from(h: wit::HugepageLimit) -> Self {
        api::HugepageLimit {
            page_size: h.page_size,
            limit: h.limit,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxPids> for wit::LinuxPids {
    fn from(p: &api::LinuxPids) -> Self {
        wit::LinuxPids { limit: p.limit }
    }
}

impl From<wit::LinuxPids> for api::LinuxPids {
    fn from(p: wit::LinuxPids) -> Self {
        api::LinuxPids {
            limit: p.limit,
            ..Default::default()
        }
    }
}

impl From<&api::SecurityProfile> for wit::SecurityProfile {
    fn from(s: &api::SecurityProfile) -> Self {
        wit::SecurityProfile {
            profile_type: s.profile_type.into(),
            localhost_ref: s.localhost_ref.clone(),
        }
    }
}

impl From<wit::SecurityProfile> for api::SecurityProfile {
    fn from(s: wit::SecurityProfile) -> Self {
        api::SecurityProfile {
            profile_type: s.profile_type.into(),
            localhost_ref: s.localhost_ref,
            ..Default::default()
        }
    }
}

impl From<&api::POSIXRlimit> for wit::PosixRlimit {
    fn from(r: &api::POSIXRlimit) -> Self {
        wit::PosixRlimit {
            type_: r.type_.clone(),
            hard: r.hard,
            soft: r.soft,
        }
    }
}

impl From<wit::PosixRlimit> for api::POSIXRlimit {
    fn from(r: wit::PosixRlimit) -> Self {
        api::POSIXRlimit {
            type_: r.type_,
            hard: r.hard,
            soft: r.soft,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxIOPriority> for wit::LinuxIoPriority {
    fn from(p: &api::LinuxIOPriority) -> Self {
        wit::LinuxIoPriority {
            class: p.class.into(),
            priority: p.priority,
        }
    }
}

impl From<wit::LinuxIoPriority> for api::LinuxIOPriority {
    fn from(p: wit::LinuxIoPriority) -> Self {
        api::LinuxIOPriority {
            class: p.class.into(),
            priority: p.priority,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxNetDevice> for wit::LinuxNetDevice {
    fn from(d: &api::LinuxNetDevice) -> Self {
        wit::LinuxNetDevice {
            name: d.name.clone(),
        }
    }
}

impl From<wit::LinuxNetDevice> for api::LinuxNetDevice {
    fn from(d: wit::LinuxNetDevice) -> Self {
        api::LinuxNetDevice {
            name: d.name,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxScheduler> for wit::LinuxScheduler {
    fn from(s: &api::LinuxScheduler) -> Self {
        wit::LinuxScheduler {
            policy: s.policy.into(),
            nice: s.nice,
            priority: s.priority,
            flags: to_flags(
                &s.flags,
                &SCHEDULER_FLAGS,
                wit::LinuxSchedulerFlags::empty(),
            ),
            runtime: s.runtime,
            deadline: s.deadline,
            period: s.period,
        }
    }
}

impl From<wit::LinuxScheduler> for api::LinuxScheduler {
    fn from(s: wit::LinuxScheduler) -> Self {
        api::LinuxScheduler {
            policy: s.policy.into(),
            nice: s.nice,
            priority: s.priority,
            flags: from_flags(s.flags, &SCHEDULER_FLAGS, wit::LinuxSchedulerFlags::empty()),
            runtime: s.runtime,
            deadline: s.deadline,
            period: s.period,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxSeccomp> for wit::LinuxSeccomp {
    fn from(s: &api::LinuxSeccomp) -> Self {
        wit::LinuxSeccomp {
            default_action: s.default_action.clone(),
            default_errno: unwrap(&s.default_errno),
            architectures: s.architectures.clone(),
            flags: s.flags.clone(),
            listener_path: s.listener_path.clone(),
            listener_metadata: s.listener_metadata.clone(),
            syscalls: list(&s.syscalls),
        }
    }
}

impl From<wit::LinuxSeccomp> for api::LinuxSeccomp {
    fn from(s: wit::LinuxSeccomp) -> Self {
        api::LinuxSeccomp {
            default_action: s.default_action,
            default_errno: wrap(s.default_errno),
            architectures: s.architectures,
            flags: s.flags,
            listener_path: s.listener_path,
            listener_metadata: s.listener_metadata,
            syscalls: protos(s.syscalls),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxSyscall> for wit::LinuxSyscall {
    fn from(s: &api::LinuxSyscall) -> Self {
        wit::LinuxSyscall {
            names: s.names.clone(),
            action: s.action.clone(),
            errno_ret: unwrap(&s.errno_ret),
            args: list(&s.args),
        }
    }
}

impl From<wit::LinuxSyscall> for api::LinuxSyscall {
    fn from(s: wit::LinuxSyscall) -> Self {
        api::LinuxSyscall {
            names: s.names,
            action: s.action,
            errno_ret: wrap(s.errno_ret),
            args: protos(s.args),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxSeccompArg> for wit::LinuxSeccompArg {
    fn from(a: &api::LinuxSeccompArg) -> Self {
        wit::LinuxSeccompArg {
            index: a.index,
            value: a.value,
            value_two: a.value_two,
            op: a.op.clone(),
        }
    }
}

impl From<wit::LinuxSeccompArg> for api::LinuxSeccompArg {
    fn from(a: wit::LinuxSeccompArg) -> Self {
        api::LinuxSeccompArg {
            index: a.index,
            value: a.value,
            value_two: a.value_two,
            op: a.op,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxMemoryPolicy> for wit::LinuxMemoryPolicy {
    fn from(m: &api::LinuxMemoryPolicy) -> Self {
        wit::LinuxMemoryPolicy {
            mode: m.mode.into(),
            nodes: m.nodes.clone(),
            flags: to_flags(&m.flags, &MPOL_FLAGS, wit::MpolFlags::empty()),
        }
    }
}

impl From<wit::LinuxMemoryPolicy> for api::LinuxMemoryPolicy {
    fn from(m: wit::LinuxMemoryPolicy) -> Self {
        api::LinuxMemoryPolicy {
            mode: m.mode.into(),
            nodes: m.nodes,
            flags: from_flags(m.flags, &MPOL_FLAGS, wit::MpolFlags::empty()),
            ..Default::default()
        }
    }
}

impl From<&api::LinuxRdt> for wit::LinuxRdt {
    fn from(r: &api::LinuxRdt) -> Self {
        wit::LinuxRdt {
            clos_id: unwrap(&r.clos_id),
            schemata: unwrap(&r.schemata),
            enable_monitoring: unwrap(&r.enable_monitoring),
            remove: r.remove,
        }
    }
}

impl From<wit::LinuxRdt> for api::LinuxRdt {
    fn from(r: wit::LinuxRdt) -> Self {
        api::LinuxRdt {
            clos_id: wrap(r.clos_id),
            schemata: wrap(r.schemata),
            enable_monitoring: wrap(r.enable_monitoring),
            remove: r.remove,
            ..Default::default()
        }
    }
}

// --- changes ---

impl From<&api::ContainerAdjustment> for wit::ContainerAdjustment {
    fn from(a: &api::ContainerAdjustment) -> Self {
        adjustment_to_wit(a, &Everything)
    }
}

/// An adjustment (as validators see the merged one) with what `shown`
/// shows.
pub fn adjustment_to_wit(
    a: &api::ContainerAdjustment,
    shown: &impl Visible,
) -> wit::ContainerAdjustment {
    let value = |kv: &api::KeyValue| match shown.env_values() {
        true => kv.value.clone(),
        false => HIDDEN_VALUE.to_string(),
    };
    wit::ContainerAdjustment {
        annotations: annotations_shown(&a.annotations, shown),
        mounts: list_if(shown.mounts(), &a.mounts),
        env: a.env.iter().map(|kv| (kv.key.clone(), value(kv))).collect(),
        hooks: if shown.hooks() {
            message(&a.hooks)
        } else {
            None
        },
        linux: message(&a.linux),
        rlimits: list(&a.rlimits),
        cdi_devices: list(&a.CDI_devices),
        args: if shown.args() {
            a.args.clone()
        } else {
            Vec::new()
        },
    }
}

impl From<wit::ContainerAdjustment> for api::ContainerAdjustment {
    fn from(a: wit::ContainerAdjustment) -> Self {
        api::ContainerAdjustment {
            annotations: string_pairs(a.annotations),
            mounts: protos(a.mounts),
            env: a
                .env
                .into_iter()
                .map(|(key, value)| api::KeyValue {
                    key,
                    value,
                    ..Default::default()
                })
                .collect(),
            hooks: proto(a.hooks),
            linux: proto(a.linux),
            rlimits: protos(a.rlimits),
            CDI_devices: protos(a.cdi_devices),
            args: a.args,
            ..Default::default()
        }
    }
}

impl From<&api::LinuxContainerAdjustment> for wit::LinuxContainerAdjustment {
    fn from(l: &api::LinuxContainerAdjustment) -> Self {
        wit::LinuxContainerAdjustment {
            devices: list(&l.devices),
            resources: message(&l.resources),
            cgroups_path: l.cgroups_path.clone(),
            oom_score_adj: unwrap(&l.oom_score_adj),
            io_priority: message(&l.io_priority),
            seccomp_policy: message(&l.seccomp_policy),
            namespaces: list(&l.namespaces),
            sysctl: string_map(&l.sysctl),
            net_devices: pairs(&l.net_devices, |d| d.into()),
            scheduler: message(&l.scheduler),
            rdt: message(&l.rdt),
            memory_policy: message(&l.memory_policy),
        }
    }
}

impl From<wit::LinuxContainerAdjustment> for api::LinuxContainerAdjustment {
    fn from(l: wit::LinuxContainerAdjustment) -> Self {
        api::LinuxContainerAdjustment {
            devices: protos(l.devices),
            resources: proto(l.resources),
            cgroups_path: l.cgroups_path,
            oom_score_adj: wrap(l.oom_score_adj),
            io_priority: proto(l.io_priority),
            seccomp_policy: proto(l.seccomp_policy),
            namespaces: protos(l.namespaces),
            sysctl: string_pairs(l.sysctl),
            net_devices: map(l.net_devices, api::LinuxNetDevice::from),
            scheduler: proto(l.scheduler),
            rdt: proto(l.rdt),
            memory_policy: proto(l.memory_policy),
            ..Default::default()
        }
    }
}

impl From<&api::ContainerUpdate> for wit::ContainerUpdate {
    fn from(u: &api::ContainerUpdate) -> Self {
        wit::ContainerUpdate {
            container_id: u.container_id.clone(),
            resources: u.linux.as_ref().and_then(|l| message(&l.resources)),
            ignore_failure: u.ignore_failure,
        }
    }
}

impl From<wit::ContainerUpdate> for api::ContainerUpdate {
    fn from(u: wit::ContainerUpdate) -> Self {
        api::ContainerUpdate {
            container_id: u.container_id,
            linux: MessageField::from_option(u.resources.map(|r| api::LinuxContainerUpdate {
                resources: MessageField::some(r.into()),
                ..Default::default()
            })),
            ignore_failure: u.ignore_failure,
            ..Default::default()
        }
    }
}

impl From<&api::ContainerEviction> for wit::ContainerEviction {
    fn from(e: &api::ContainerEviction) -> Self {
        wit::ContainerEviction {
            container_id: e.container_id.clone(),
            reason: e.reason.clone(),
        }
    }
}

impl From<wit::ContainerEviction> for api::ContainerEviction {
    fn from(e: wit::ContainerEviction) -> Self {
        api::ContainerEviction {
            container_id: e.container_id,
            reason: e.reason,
            ..Default::default()
        }
    }
}

// --- validation ---

impl From<&api::PluginInstance> for wit::PluginInstance {
    fn from(p: &api::PluginInstance) -> Self {
        wit::PluginInstance {
            name: p.name.clone(),
            index: p.index.clone(),
        }
    }
}

impl From<wit::PluginInstance> for api::PluginInstance {
    fn from(p: wit::PluginInstance) -> Self {
        api::PluginInstance {
            name: p.name,
            index: p.index,
            ..Default::default()
        }
    }
}

fn field(number: i32) -> wit::Field {
    EnumOrUnknown::<api::Field>::from_i32(number).into()
}

fn field_number(field: wit::Field) -> i32 {
    EnumOrUnknown::<api::Field>::from(field).value()
}

/// Owners of the containers `visible` admits, sorted by container id,
/// field and key, without the entries whose keys `shown` hides (annotation
/// keys, mount destinations).
pub fn owners_to_wit(
    owning: &api::OwningPlugins,
    shown: &impl Visible,
    visible: &dyn Fn(&str) -> bool,
) -> Vec<wit::FieldOwners> {
    let key_shown = |f: i32, key: &str| match <api::Field as protobuf::Enum>::from_i32(f) {
        Some(api::Field::Annotations) => shown.annotation(key),
        Some(api::Field::Mounts) => shown.mounts(),
        _ => true,
    };
    let mut out: Vec<wit::FieldOwners> = owning
        .owners
        .iter()
        .filter(|(id, _)| visible(id))
        .map(|(id, owners)| {
            let mut simple: Vec<(i32, &String)> =
                owners.simple.iter().map(|(f, o)| (*f, o)).collect();
            simple.sort();
            let mut compound: Vec<(i32, &String, &String)> = owners
                .compound
                .iter()
                .flat_map(|(f, c)| c.owners.iter().map(move |(k, o)| (*f, k, o)))
                .filter(|(f, k, _)| key_shown(*f, k))
                .collect();
            compound.sort();
            wit::FieldOwners {
                container_id: id.clone(),
                simple: simple
                    .into_iter()
                    .map(|(f, o)| (field(f), o.clone()))
                    .collect(),
                compound: compound
                    .into_iter()
                    .map(|(f, key, owner)| wit::CompoundOwner {
                        field: field(f),
                        key: key.clone(),
                        owner: owner.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
    out
}

/// The inverse of [`owners_to_wit`].
pub fn owners_from_wit(owners: Vec<wit::FieldOwners>) -> api::OwningPlugins {
    let mut owning = api::OwningPlugins::new();
    for container in owners {
        let entry = owning.owners.entry(container.container_id).or_default();
        for (field, owner) in container.simple {
            entry.simple.insert(field_number(field), owner);
        }
        for c in container.compound {
            entry
                .compound
                .entry(field_number(c.field))
                .or_default()
                .owners
                .insert(c.key, c.owner);
        }
    }
    owning
}

impl From<&api::ValidateContainerAdjustmentRequest> for wit::ValidateRequest {
    fn from(r: &api::ValidateContainerAdjustmentRequest) -> Self {
        validate_request_to_wit(r, &Everything, &|_| true)
    }
}

/// A validation request with what `shown` shows of its pod, container,
/// merged adjustment and owners, and of the updates and owners of other
/// containers only those `visible` admits.
pub fn validate_request_to_wit(
    r: &api::ValidateContainerAdjustmentRequest,
    shown: &impl Visible,
    visible: &dyn Fn(&str) -> bool,
) -> wit::ValidateRequest {
    let container = r.container.get_or_default();
    let visible = |id: &str| id == container.id || visible(id);
    let updates: Vec<&api::ContainerUpdate> = r
        .update
        .iter()
        .filter(|u| visible(&u.container_id))
        .collect();
    wit::ValidateRequest {
        pod: pod_to_wit(r.pod.get_or_default(), shown),
        container: container_to_wit(container, shown),
        adjust: r.adjust.as_ref().map(|a| adjustment_to_wit(a, shown)),
        updates: updates.into_iter().map(Into::into).collect(),
        owners: r
            .owners
            .as_ref()
            .map(|o| owners_to_wit(o, shown, &visible))
            .unwrap_or_default(),
        plugins: list(&r.plugins),
    }
}

impl From<wit::ValidateRequest> for api::ValidateContainerAdjustmentRequest {
    fn from(r: wit::ValidateRequest) -> Self {
        api::ValidateContainerAdjustmentRequest {
            pod: MessageField::some(r.pod.into()),
            container: MessageField::some(r.container.into()),
            adjust: proto(r.adjust),
            update: protos(r.updates),
            owners: MessageField::some(owners_from_wit(r.owners)),
            plugins: protos(r.plugins),
            ..Default::default()
        }
    }
}

/// Each WIT event flag and its NRI event.
const EVENT_FLAGS: [(wit::Events, api::Event); 14] = [
    (wit::Events::RUN_POD_SANDBOX, api::Event::RUN_POD_SANDBOX),
    (wit::Events::STOP_POD_SANDBOX, api::Event::STOP_POD_SANDBOX),
    (
        wit::Events::REMOVE_POD_SANDBOX,
        api::Event::REMOVE_POD_SANDBOX,
    ),
    (wit::Events::CREATE_CONTAINER, api::Event::CREATE_CONTAINER),
    (
        wit::Events::POST_CREATE_CONTAINER,
        api::Event::POST_CREATE_CONTAINER,
    ),
    (wit::Events::START_CONTAINER, api::Event::START_CONTAINER),
    (
        wit::Events::POST_START_CONTAINER,
        api::Event::POST_START_CONTAINER,
    ),
    (wit::Events::UPDATE_CONTAINER, api::Event::UPDATE_CONTAINER),
    (
        wit::Events::POST_UPDATE_CONTAINER,
        api::Event::POST_UPDATE_CONTAINER,
    ),
    (wit::Events::STOP_CONTAINER, api::Event::STOP_CONTAINER),
    (wit::Events::REMOVE_CONTAINER, api::Event::REMOVE_CONTAINER),
    (
        wit::Events::UPDATE_POD_SANDBOX,
        api::Event::UPDATE_POD_SANDBOX,
    ),
    (
        wit::Events::POST_UPDATE_POD_SANDBOX,
        api::Event::POST_UPDATE_POD_SANDBOX,
    ),
    (
        wit::Events::VALIDATE_CONTAINER_ADJUSTMENT,
        api::Event::VALIDATE_CONTAINER_ADJUSTMENT,
    ),
];

/// The NRI events of a WIT event set.
pub fn events_from_wit(events: wit::Events) -> nri_proto::events::EventMask {
    EVENT_FLAGS
        .iter()
        .filter(|(flag, _)| events.contains(*flag))
        .map(|&(_, event)| event)
        .collect()
}

/// The WIT event set of NRI events.
pub fn events_to_wit(events: nri_proto::events::EventMask) -> wit::Events {
    EVENT_FLAGS
        .iter()
        .filter(|(_, event)| events.contains(*event))
        .fold(wit::Events::empty(), |acc, &(flag, _)| acc | flag)
}

#[cfg(test)]
mod tests {
    //! Round trips of every field: random messages with every field set
    //! (filled through protobuf reflection, so no field is forgotten) go
    //! to WIT and back unchanged.

    use protobuf::MessageFull;
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;
    use crate::test_support::random;

    /// WIT flags are sets: their proto lists come back sorted, once each.
    fn canonical_flags<E: protobuf::Enum>(flags: &mut Vec<EnumOrUnknown<E>>) {
        flags.sort_by_key(|f| f.value());
        flags.dedup_by_key(|f| f.value());
    }

    fn canonical_scheduler(scheduler: &mut MessageField<api::LinuxScheduler>) {
        if let Some(s) = scheduler.as_mut() {
            canonical_flags(&mut s.flags);
        }
    }

    fn canonical_container(c: &mut api::Container) {
        if let Some(linux) = c.linux.as_mut() {
            canonical_scheduler(&mut linux.scheduler);
        }
    }

    fn canonical_adjustment(a: &mut api::ContainerAdjustment) {
        if let Some(linux) = a.linux.as_mut() {
            canonical_scheduler(&mut linux.scheduler);
            if let Some(m) = linux.memory_policy.as_mut() {
                canonical_flags(&mut m.flags);
            }
        }
    }

    fn round_trip<M, W>(rng: &mut StdRng, canonical: impl Fn(&mut M))
    where
        M: MessageFull + PartialEq + std::fmt::Debug + From<W>,
        W: for<'a> From<&'a M>,
    {
        for _ in 0..200 {
            let mut message: M = random(rng);
            canonical(&mut message);
            let back = M::from(W::from(&message));
            assert_eq!(back, message, "{} changed on its way through WIT", M::NAME);
        }
    }

    #[test]
    fn every_field_survives_the_round_trip() {
        let rng = &mut StdRng::seed_from_u64(7);
        round_trip::<api::PodSandbox, wit::PodSandbox>(rng, |_| {});
        round_trip::<api::Container, wit::Container>(rng, canonical_container);
        round_trip::<api::ContainerAdjustment, wit::ContainerAdjustment>(rng, canonical_adjustment);
        round_trip::<api::ContainerUpdate, wit::ContainerUpdate>(rng, |_| {});
        round_trip::<api::ContainerEviction, wit::ContainerEviction>(rng, |_| {});
        round_trip::<api::ValidateContainerAdjustmentRequest, wit::ValidateRequest>(rng, |r| {
            if let Some(c) = r.container.as_mut() {
                canonical_container(c);
            }
            if let Some(a) = r.adjust.as_mut() {
                canonical_adjustment(a);
            }
        });
    }

    #[test]
    fn event_sets_convert_both_ways() {
        let all: nri_proto::events::EventMask = nri_proto::events::ALL_EVENTS.into_iter().collect();
        assert_eq!(events_from_wit(wit::Events::all()), all);
        assert_eq!(events_to_wit(all), wit::Events::all());
        let some = wit::Events::CREATE_CONTAINER | wit::Events::VALIDATE_CONTAINER_ADJUSTMENT;
        assert_eq!(events_to_wit(events_from_wit(some)), some);
    }
}
