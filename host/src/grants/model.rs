//! The grants an operator writes for a guest, in two stages: the raw TOML
//! (`[plugins.NAME.grants]`, `.read`, `.scope`; unknown keys are errors)
//! and the validated form the checks use. Nothing is granted unless
//! written: a guest without grants may observe its scope and change
//! nothing.

use std::collections::BTreeMap;

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use wildmatch::WildMatch;

use super::{check::Family, instructions};

/// A list of patterns: `*` matches any run of characters (`/` included),
/// `?` any one character.
#[derive(Clone, Debug, Default)]
pub struct Patterns {
    source: Vec<String>,
    compiled: Vec<WildMatch>,
}

impl PartialEq for Patterns {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Patterns {}

impl Patterns {
    /// Patterns of keys from their text. A key pattern may not start with
    /// `-`, NRI's removal marker.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        Patterns::compile(patterns, true)
    }

    /// Patterns of values (arguments, which may start with `-`).
    pub fn of_values<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        Patterns::compile(patterns, false)
    }

    fn compile<S: AsRef<str>>(patterns: &[S], keys: bool) -> Result<Self, String> {
        let mut source = Vec::new();
        for p in patterns {
            let p = p.as_ref();
            if p.is_empty() {
                return Err("empty pattern".into());
            }
            if keys && p.starts_with('-') {
                return Err(format!(
                    "pattern {p:?} starts with '-', NRI's removal marker; grant the key itself"
                ));
            }
            source.push(p.to_string());
        }
        let compiled = source.iter().map(|p| WildMatch::new(p)).collect();
        Ok(Patterns { source, compiled })
    }

    /// Whether any pattern matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        self.compiled.iter().any(|p| p.matches(text))
    }

    /// Whether `items` match the patterns one by one, as many as there are.
    pub fn matches_each(&self, items: &[String]) -> bool {
        items.len() == self.compiled.len()
            && self.compiled.iter().zip(items).all(|(p, i)| p.matches(i))
    }

    /// Whether there is no pattern.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// The patterns as written.
    pub fn sources(&self) -> &[String] {
        &self.source
    }

    /// The patterns as written, for messages.
    pub fn describe(&self) -> String {
        format!("{:?}", self.source)
    }
}

impl Serialize for Patterns {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(s)
    }
}

impl<T: Serialize> Serialize for Bounds<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [&self.min, &self.max].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        Patterns::new(&list).map_err(D::Error::custom)
    }
}

fn value_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Patterns>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    Patterns::of_values(&list)
        .map(Some)
        .map_err(D::Error::custom)
}

/// An inclusive range of allowed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds<T> {
    /// Smallest allowed.
    pub min: T,
    /// Largest allowed.
    pub max: T,
}

impl<T: PartialOrd + Copy + std::fmt::Display> Bounds<T> {
    /// Whether `value` is inside.
    pub fn contains(&self, value: T) -> bool {
        self.min <= value && value <= self.max
    }

    /// `[min, max]`, for messages.
    pub fn describe(&self) -> String {
        format!("[{}, {}]", self.min, self.max)
    }
}

impl<'de, T: Deserialize<'de> + PartialOrd + std::fmt::Display + Copy> Deserialize<'de>
    for Bounds<T>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let [min, max] = <[T; 2]>::deserialize(d)?;
        if min > max {
            return Err(D::Error::custom(format!(
                "range [{min}, {max}] has its minimum above its maximum"
            )));
        }
        Ok(Bounds { min, max })
    }
}

/// A mount a guest may add (or remove), judged by what the runtime will
/// make of it (see [`effective`](super::effective)).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    try_from = "RawMountGrant"
)]
pub struct MountGrant {
    /// Destination patterns.
    pub destination: Patterns,
    /// Source patterns: for `bind` and `overlay`, the host paths they
    /// expose (required); for other types, the source (any, if absent).
    pub source: Option<Patterns>,
    /// Mount types as the runtime makes them: `bind` for any mount whose
    /// options say `bind` or `rbind`; `tmpfs`, `overlay`, ...
    pub types: Vec<String>,
    /// Whether the mount may be writable; read-only otherwise (`rro` on an
    /// `rbind`, `ro` on others).
    pub read_write: bool,
    /// Options beyond the restricting ones (`nosuid`, `rprivate`, ...) and
    /// `rw`: `suid`, `rshared`, data such as `size=*`.
    pub options: Patterns,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMountGrant {
    destination: Patterns,
    #[serde(default)]
    source: Option<Patterns>,
    types: Vec<String>,
    #[serde(default)]
    read_write: bool,
    #[serde(default)]
    options: Patterns,
}

impl TryFrom<RawMountGrant> for MountGrant {
    type Error = String;

    fn try_from(raw: RawMountGrant) -> Result<Self, String> {
        if raw.types.is_empty() {
            return Err("a mount grant lists its types (bind, tmpfs, ...)".into());
        }
        // A tmpfs is new memory; every other type mounts something of the
        // node (a host path, a device, a kernel file system): its sources
        // must be named.
        let sourced = raw.types.iter().find(|t| *t != "tmpfs");
        if let (Some(kind), None) = (sourced, &raw.source) {
            return Err(format!(
                "a mount grant of type {kind:?} names its sources: {kind} mounts take them from the node"
            ));
        }
        Ok(MountGrant {
            destination: raw.destination,
            source: raw.source,
            types: raw.types,
            read_write: raw.read_write,
            options: raw.options,
        })
    }
}

/// An OCI hook stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub enum HookStage {
    /// `prestart`
    #[serde(rename = "prestart")]
    Prestart,
    /// `createRuntime`
    #[serde(rename = "createRuntime")]
    CreateRuntime,
    /// `createContainer`
    #[serde(rename = "createContainer")]
    CreateContainer,
    /// `startContainer`
    #[serde(rename = "startContainer")]
    StartContainer,
    /// `poststart`
    #[serde(rename = "poststart")]
    Poststart,
    /// `poststop`
    #[serde(rename = "poststop")]
    Poststop,
}

/// An OCI hook a guest may add. A hook runs as root on the node, with the
/// runtime's environment when it gives none of its own.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HookGrant {
    /// Patterns of the executable's absolute path.
    pub path: Patterns,
    /// Stages it may run at (any, if absent).
    #[serde(default)]
    pub stages: Option<Vec<HookStage>>,
    /// Its arguments, one pattern per position; absent: no arguments, or
    /// the path alone.
    #[serde(default, deserialize_with = "value_patterns")]
    pub args: Option<Patterns>,
    /// Names of the environment entries it may be given (none, if absent).
    #[serde(default)]
    pub env: Patterns,
    /// Longest timeout, in seconds; with it, a hook must have a timeout
    /// (any, or none, if absent).
    #[serde(default)]
    pub max_timeout: Option<i64>,
}

/// A device a guest may add (or remove). The node's path is only its
/// name: the type and numbers are what it gives access to, so a grant
/// names them, and at most one of its lists names more than one (the
/// lists multiply: `types = ["c", "b"], major = [1, 7]` is four devices).
///
/// NRI's generator gives the container read and write access (`rwm` for
/// a block device) in the device cgroup to every device it adds, whatever
/// the file mode, and root in the container ignores the mode: a mode bound
/// limits the container's other users, never root, so a bound without
/// write bits is refused rather than read as read-only.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceGrant {
    /// Path patterns, under `/dev/`.
    pub path: Patterns,
    /// Device types (`c`, `b`, `u`, `p`).
    pub types: Vec<String>,
    /// Allowed major numbers.
    pub major: Vec<i64>,
    /// Allowed minor numbers.
    pub minor: Vec<i64>,
    /// Highest file mode allowed, bit by bit; an unset mode is 0o666, as
    /// the runtime makes it (0o666, if absent).
    #[serde(default)]
    pub max_file_mode: Option<u32>,
    /// Owners allowed (unset or 0, if absent).
    #[serde(default)]
    pub uid: Option<Vec<u32>>,
    /// Groups allowed (unset or 0, if absent).
    #[serde(default)]
    pub gid: Option<Vec<u32>>,
}

/// Device grants, each checked: lists that do not multiply, a mode bound
/// that does not pretend to make a device read-only.
fn checked_devices<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceGrant>, D::Error> {
    let grants = Vec::<DeviceGrant>::deserialize(d)?;
    for g in &grants {
        let what = format!("devices grant {}", g.path.describe());
        no_cross_product(&what, &g.types, &g.major, &g.minor).map_err(D::Error::custom)?;
        if let Some(mode) = g.max_file_mode.filter(|m| m & 0o222 == 0) {
            return Err(D::Error::custom(format!(
                "{what}: max-file-mode {mode:#o} does not make a device read-only: NRI gives the \
                 container read and write access to every device it adds, and root in the \
                 container ignores the mode; grant the device only to a plugin that may give \
                 write access"
            )));
        }
    }
    Ok(grants)
}

/// Device rule grants, each with lists that do not multiply.
fn checked_device_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceRuleGrant>, D::Error> {
    let grants = Vec::<DeviceRuleGrant>::deserialize(d)?;
    for g in &grants {
        no_cross_product("device-rules grant", &g.types, &g.major, &g.minor)
            .map_err(D::Error::custom)?;
    }
    Ok(grants)
}

/// Refuses lists of types and numbers of which more than one names more
/// than one entry: they would admit every combination.
fn no_cross_product(
    what: &str,
    types: &[String],
    major: &[i64],
    minor: &[i64],
) -> Result<(), String> {
    let multiple = [types.len(), major.len(), minor.len()]
        .iter()
        .filter(|&&n| n > 1)
        .count();
    if multiple > 1 {
        return Err(format!(
            "{what}: types {types:?}, major {major:?} and minor {minor:?} admit all {} combinations; \
             give each device a grant of its own, with one type and at most one list of \
             several numbers",
            types.len() * major.len() * minor.len()
        ));
    }
    Ok(())
}

/// Device cgroup rules a guest may add to resources. A rule without a
/// type, or of type `a`, is every device; a missing number is any (`-1`
/// here). Deny rules need `deny = true`: after the runtime's own rules,
/// `deny a rwm` cuts a container off from `/dev/null` and every device.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceRuleGrant {
    /// Rule types (`c`, `b`, or `a` for all devices).
    pub types: Vec<String>,
    /// Major numbers; `-1` admits a rule for any.
    pub major: Vec<i64>,
    /// Minor numbers; `-1` admits a rule for any.
    pub minor: Vec<i64>,
    /// Access a rule may give (or, denying, take), a subset of `rwm`.
    pub access: String,
    /// Whether deny rules of these devices are admitted too.
    #[serde(default)]
    pub deny: bool,
}

/// A scheduling policy of the kernel's, as a grant names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerPolicy {
    /// `SCHED_OTHER`
    Other,
    /// `SCHED_BATCH`
    Batch,
    /// `SCHED_IDLE`
    Idle,
    /// `SCHED_FIFO`, real time
    Fifo,
    /// `SCHED_RR`, real time
    Rr,
    /// `SCHED_DEADLINE`, real time
    Deadline,
}

/// A scheduler flag, as a grant names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerFlag {
    /// `SCHED_FLAG_RESET_ON_FORK`
    ResetOnFork,
    /// `SCHED_FLAG_RECLAIM`
    Reclaim,
    /// `SCHED_FLAG_DL_OVERRUN`
    DlOverrun,
    /// `SCHED_FLAG_KEEP_POLICY`
    KeepPolicy,
    /// `SCHED_FLAG_KEEP_PARAMS`
    KeepParams,
    /// `SCHED_FLAG_UTIL_CLAMP_MIN`
    UtilClampMin,
    /// `SCHED_FLAG_UTIL_CLAMP_MAX`
    UtilClampMax,
}

/// The scheduler attributes a guest may give the container's process: a
/// policy it lists, each value within its bounds (absent: 0, the value
/// that changes nothing), only flags it lists. `policies = ["idle",
/// "batch"], nice = [0, 19]` admits no real-time policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SchedulerGrant {
    /// Policies.
    pub policies: Vec<SchedulerPolicy>,
    /// Nice values, within -20 to 19.
    #[serde(default)]
    pub nice: Option<Bounds<i32>>,
    /// Real-time priorities, within 1 to 99.
    #[serde(default)]
    pub priority: Option<Bounds<i32>>,
    /// Flags.
    #[serde(default)]
    pub flags: Vec<SchedulerFlag>,
    /// `SCHED_DEADLINE` runtime, in nanoseconds.
    #[serde(default)]
    pub runtime: Option<Bounds<u64>>,
    /// `SCHED_DEADLINE` deadline, in nanoseconds.
    #[serde(default)]
    pub deadline: Option<Bounds<u64>>,
    /// `SCHED_DEADLINE` period, in nanoseconds.
    #[serde(default)]
    pub period: Option<Bounds<u64>>,
}

/// A scheduler grant as written: a table, or a `true` of old that would
/// admit every policy and priority, refused with what to write instead.
struct SchedulerVisitor;

impl<'de> serde::de::Visitor<'de> for SchedulerVisitor {
    type Value = SchedulerGrant;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table of policies and bounds")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SchedulerGrant, E> {
        Err(E::custom(
            "scheduler is granted by its policies and bounds, not by a switch: \
             scheduler = { policies = [\"batch\", \"idle\"], nice = [0, 19] } \
             (a switch would admit SCHED_FIFO at priority 99)",
        ))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SchedulerGrant, A::Error> {
        SchedulerGrant::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }
}

/// A scheduler grant whose bounds the kernel can meet.
fn checked_scheduler<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SchedulerGrant>, D::Error> {
    let grant = d.deserialize_any(SchedulerVisitor)?;
    let within = |what: &str, b: Option<Bounds<i32>>, min: i32, max: i32| match b {
        Some(b) if b.min < min || b.max > max => Err(D::Error::custom(format!(
            "scheduler grant: {what} {} is not within [{min}, {max}]",
            b.describe()
        ))),
        _ => Ok(()),
    };
    if grant.policies.is_empty() {
        return Err(D::Error::custom(
            "scheduler grant: policies lists at least one",
        ));
    }
    within("nice", grant.nice, -20, 19)?;
    within("priority", grant.priority, 1, 99)?;
    Ok(Some(grant))
}

/// Namespaces a guest may set.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NamespaceGrant {
    /// Types (`network`, `ipc`, `uts`, ...).
    pub types: Vec<String>,
    /// Patterns of namespace files it may join; absent: a new namespace
    /// only.
    #[serde(default)]
    pub paths: Option<Patterns>,
    /// Whether it may remove the type, so that the container shares the
    /// node's namespace of it.
    #[serde(default)]
    pub host: bool,
}

/// CPU knobs a guest may set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CpuGrant {
    /// CPU shares.
    pub shares: Option<Bounds<u64>>,
    /// CFS quota.
    pub quota: Option<Bounds<i64>>,
    /// CFS period.
    pub period: Option<Bounds<u64>>,
    /// `cpus` and `mems` of the cpuset.
    #[serde(default)]
    pub cpuset: bool,
    /// Real-time runtime and period.
    #[serde(default)]
    pub realtime: bool,
}

/// Memory knobs a guest may set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemoryGrant {
    /// Limit, bytes.
    pub limit: Option<Bounds<i64>>,
    /// Reservation, bytes.
    pub reservation: Option<Bounds<i64>>,
    /// Swap limit, bytes.
    pub swap: Option<Bounds<i64>>,
    /// Kernel and kernel TCP limits, bytes.
    pub kernel: Option<Bounds<i64>>,
    /// Swappiness.
    pub swappiness: Option<Bounds<u64>>,
    /// Disabling the OOM killer.
    #[serde(default)]
    pub oom_kill: bool,
    /// `use_hierarchy`.
    #[serde(default)]
    pub use_hierarchy: bool,
}

/// Which existing containers a guest may update, narrowest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateScope {
    /// None.
    #[default]
    None,
    /// Those of the pod of the event's container.
    SamePod,
    /// Any.
    Any,
}

/// What a guest may change. Every field is deny-by-default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grants {
    /// Annotation keys.
    #[serde(default)]
    pub annotations: Patterns,
    /// Environment variable names.
    #[serde(default)]
    pub env: Patterns,
    /// Mounts.
    #[serde(default)]
    pub mounts: Vec<MountGrant>,
    /// OCI hooks. A hook runs as root on the node.
    #[serde(default)]
    pub hooks: Vec<HookGrant>,
    /// Device nodes.
    #[serde(default, deserialize_with = "checked_devices")]
    pub devices: Vec<DeviceGrant>,
    /// Device cgroup rules in resources.
    #[serde(default, deserialize_with = "checked_device_rules")]
    pub device_rules: Vec<DeviceRuleGrant>,
    /// CDI device names.
    #[serde(default)]
    pub cdi_devices: Patterns,
    /// Rlimit types (`RLIMIT_NOFILE`) and the highest hard limit allowed.
    #[serde(default)]
    pub rlimits: BTreeMap<String, u64>,
    /// CPU.
    #[serde(default)]
    pub cpu: CpuGrant,
    /// Memory.
    #[serde(default)]
    pub memory: MemoryGrant,
    /// Hugepage sizes (`2MB`, `1GB`).
    #[serde(default)]
    pub hugepages: Patterns,
    /// Block I/O classes.
    #[serde(default)]
    pub blockio_class: Patterns,
    /// RDT classes (the resources' `rdt_class`).
    #[serde(default)]
    pub rdt_class: Patterns,
    /// RDT settings (CLOS id, schemata, monitoring).
    #[serde(default)]
    pub rdt: bool,
    /// Unified cgroup v2 keys (`memory.high`).
    #[serde(default)]
    pub unified: Patterns,
    /// Pids limit.
    pub pids: Option<Bounds<i64>>,
    /// OOM score adjustment.
    pub oom_score_adj: Option<Bounds<i64>>,
    /// Replacing the container's arguments.
    #[serde(default)]
    pub args: bool,
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Vec<NamespaceGrant>,
    /// Seccomp policy.
    #[serde(default)]
    pub seccomp: bool,
    /// Sysctl keys.
    #[serde(default)]
    pub sysctl: Patterns,
    /// Network device names (host side).
    #[serde(default)]
    pub net_devices: Patterns,
    /// Scheduler attributes: the policies and values admitted.
    #[serde(default, deserialize_with = "checked_scheduler")]
    pub scheduler: Option<SchedulerGrant>,
    /// I/O priority.
    #[serde(default)]
    pub io_priority: bool,
    /// Cgroups path.
    #[serde(default)]
    pub cgroups_path: bool,
    /// Memory policy.
    #[serde(default)]
    pub memory_policy: bool,
    /// Updates to existing containers.
    #[serde(default)]
    pub updates: UpdateScope,
    /// Evictions of containers.
    #[serde(default)]
    pub evictions: bool,
    /// Rejecting containers: a validator is called only with this grant,
    /// since its answer can fail any container it sees.
    #[serde(default)]
    pub validate: bool,
}

/// Mount types that give a container a kernel interface of the node's:
/// mounted afresh, they are not masked or read-only as the runtime makes
/// its own.
const KERNEL_FILE_SYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "configfs",
    "fusectl",
    "devtmpfs",
];

impl Grants {
    /// What a grant allows beyond what it may look like it allows: lines
    /// for the operator.
    pub fn warnings(&self) -> Vec<String> {
        let keys = [
            ("annotations", Family::Annotations, &self.annotations),
            ("env", Family::Env, &self.env),
        ];
        let hooks = self
            .hooks
            .iter()
            .map(|h| ("hook env", Family::Hooks, &h.env));
        let instructions = keys
            .into_iter()
            .chain(hooks)
            .flat_map(|(what, family, names)| {
                instructions::warnings(what, names, instructions::of(family))
            });
        let mounts = self
            .mounts
            .iter()
            .flat_map(|m| m.types.iter())
            .filter(|t| KERNEL_FILE_SYSTEMS.contains(&t.as_str()))
            .map(|t| {
                format!("mounts grant of type {t:?}: a kernel file system of the node, unmasked")
            });
        let namespaces = self
            .namespaces
            .iter()
            .filter(|n| {
                n.paths.as_ref().is_some_and(|p| {
                    n.types
                        .iter()
                        .any(|t| p.matches(&format!("/proc/1/ns/{}", ns_file(t))))
                })
            })
            .map(|n| {
                format!(
                    "namespaces grant of {:?} admits /proc/1/ns/...: the node's own namespaces",
                    n.types
                )
            });
        let switches = [
            (
                self.args,
                "args = true replaces the container's whole command line",
            ),
            (
                self.seccomp,
                "seccomp = true grants the whole seccomp policy: any filter, an unconfined \
                 container, a listener on the node that answers its system calls",
            ),
            (
                self.rdt,
                "rdt = true grants the whole RDT field: any class of service and any cache \
                 and memory bandwidth schemata of the node",
            ),
            (
                self.cgroups_path,
                "cgroups-path = true grants the whole cgroups path: any cgroup of the node, \
                 outside the limits of the container's pod",
            ),
            (
                self.io_priority,
                "io-priority = true grants any I/O class and level, real time included",
            ),
            (
                self.memory_policy,
                "memory-policy = true grants any NUMA memory policy over any nodes",
            ),
        ];
        let switches = switches
            .into_iter()
            .filter(|(granted, _)| *granted)
            .map(|(_, what)| what.to_string());
        instructions
            .chain(mounts)
            .chain(namespaces)
            .chain(switches)
            .collect()
    }
}

/// The file under `/proc/PID/ns/` of a namespace type.
fn ns_file(kind: &str) -> &str {
    match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// What of pods and containers a guest may read; the rest is redacted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReadGrants {
    /// Values of environment variables (names are always visible).
    #[serde(default)]
    pub env: bool,
    /// Container arguments.
    #[serde(default)]
    pub args: bool,
    /// Mounts.
    #[serde(default)]
    pub mounts: bool,
    /// OCI hooks.
    #[serde(default)]
    pub hooks: bool,
    /// Annotation keys whose entries are visible.
    #[serde(default)]
    pub annotations: Patterns,
    /// Label keys whose entries are visible.
    #[serde(default)]
    pub labels: Patterns,
}

/// Which pods and containers a guest is called for; all when empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scope {
    /// Pod namespaces.
    pub namespaces: Option<Patterns>,
    /// Pod labels that must all be there with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Pod annotations that must all be there with these values.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Runtime handlers (`runc`, `kata`, ...).
    pub runtime_handlers: Option<Patterns>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal_of(text: &str) -> String {
        toml::from_str::<Grants>(text)
            .unwrap_err()
            .message()
            .to_string()
    }

    #[test]
    fn device_grant_cross_products_are_refused_at_load() {
        // Meant as c 1:3 and b 7:0; would admit b 7:3 and c 7:0 as well.
        let crossed = r#"devices = [{ path = ["/dev/a", "/dev/b"], types = ["c", "b"], major = [1, 7], minor = [3, 0] }]"#;
        assert_eq!(
            refusal_of(crossed),
            "devices grant [\"/dev/a\", \"/dev/b\"]: types [\"c\", \"b\"], major [1, 7] and minor [3, 0] admit all 8 combinations; give each device a grant of its own, with one type and at most one list of several numbers"
        );
        let rules = r#"device-rules = [{ types = ["c"], major = [1, 10], minor = [3, 200], access = "rw" }]"#;
        assert!(refusal_of(rules).starts_with("device-rules grant: types"));
        let one_each: Grants = toml::from_str(
            r#"devices = [{ path = ["/dev/a"], types = ["c"], major = [1], minor = [3, 5] }, { path = ["/dev/b"], types = ["b"], major = [7], minor = [0] }]"#,
        )
        .unwrap();
        assert_eq!(one_each.devices.len(), 2);
    }

    #[test]
    fn a_mode_bound_without_write_bits_is_refused_as_not_read_only() {
        let read_only = r#"devices = [{ path = ["/dev/sdb"], types = ["b"], major = [8], minor = [16], max-file-mode = 0o444 }]"#;
        let refusal = refusal_of(read_only);
        assert!(
            refusal.contains("max-file-mode 0o444 does not make a device read-only"),
            "{refusal}"
        );
        let owner_writes = read_only.replace("0o444", "0o644");
        assert!(toml::from_str::<Grants>(&owner_writes).is_ok());
    }

    #[test]
    fn grants_wider_than_they_look_are_told() {
        let broad: Grants =
            toml::from_str(r#"annotations = ["run.*", "run.oci.hooks.stdout"]"#).unwrap();
        assert_eq!(
            broad.warnings(),
            [
                "annotations grant names \"run.oci.hooks.stdout\", an instruction: crun reads it \
                 (run.oci.hooks.stdout and .stderr append to any host file, run.oci.seccomp.plugins \
                 loads libraries, run.oci.handler picks the handler)",
                "annotations grant [\"run.*\", \"run.oci.hooks.stdout\"] admits none of \
                 run.oci.hooks.stderr, run.oci.seccomp.receiver, run.oci.handler: programs read \
                 them as instructions; a grant names each it gives",
            ]
        );
        let narrow: Grants = toml::from_str(r#"annotations = ["example.com/*"]"#).unwrap();
        assert!(narrow.warnings().is_empty());
        let kernel: Grants = toml::from_str(
            r#"mounts = [{ destination = ["/host-proc"], source = ["proc"], types = ["proc"] }]
            namespaces = [{ types = ["network"], paths = ["/proc/*"] }]"#,
        )
        .unwrap();
        assert_eq!(
            kernel.warnings(),
            [
                "mounts grant of type \"proc\": a kernel file system of the node, unmasked",
                "namespaces grant of [\"network\"] admits /proc/1/ns/...: the node's own namespaces",
            ]
        );
    }

    #[test]
    fn grants_that_cannot_be_judged_are_refused_at_load() {
        let cases = [
            (
                r#"mounts = [{ destination = ["/data"] }]"#,
                "missing field `types`",
            ),
            (
                r#"mounts = [{ destination = ["/data"], types = [] }]"#,
                "a mount grant lists its types (bind, tmpfs, ...)",
            ),
            (
                r#"mounts = [{ destination = ["/data"], types = ["bind"] }]"#,
                "a mount grant of type \"bind\" names its sources: bind mounts take them from the node",
            ),
            (
                r#"mounts = [{ destination = ["/data"], types = ["tmpfs", "ext4"] }]"#,
                "a mount grant of type \"ext4\" names its sources",
            ),
            (
                r#"devices = [{ path = ["/dev/nri-*"], types = ["c"] }]"#,
                "missing field `major`",
            ),
            (
                r#"hooks = ["/usr/local/bin/hook"]"#,
                "invalid type: string \"/usr/local/bin/hook\", expected struct HookGrant",
            ),
        ];
        for (text, want) in cases {
            let err = toml::from_str::<Grants>(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
