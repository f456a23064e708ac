//! What the runtime will do with a value, as opposed to how it is spelled.
//!
//! containerd and CRI-O copy an adjustment into the OCI spec verbatim, and
//! runc and crun interpret it: a bind mount is any mount whose options say
//! `bind` or `rbind`, whatever its type; `ro` on an `rbind` leaves its
//! submounts writable; runc takes the last of `ro` and `rw` and crun the
//! first set; an env key with `=` sets the variable before the `=`; crun
//! cuts strings at NUL; a device rule without a type is every device. The
//! grant checks judge the interpretation, and an answer whose
//! interpretation is not one and the same in both runtimes, or not plain
//! (paths with `..`, `//` or a trailing `/`, relative paths), is refused
//! before any grant is consulted.

use nri_proto::api::{LinuxScheduler, LinuxSchedulerFlag, LinuxSchedulerPolicy, Mount};
use protobuf::{
    reflect::{ReflectValueRef, RuntimeFieldType},
    MessageDyn,
};

use super::model::{SchedulerFlag, SchedulerPolicy};

/// Why a path is not one the runtime reads as written.
pub fn clean_absolute(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("an absolute path");
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err("a path without a trailing '/'");
    }
    for part in path[1..].split('/') {
        match part {
            "" if path != "/" => return Err("a path without '//'"),
            "." | ".." => return Err("a path without '.' or '..'"),
            _ => {}
        }
    }
    Ok(())
}

/// Mount options that only restrict a mount, or pick how it is made:
/// no grant needed. `rw` and `rrw` need a read-write grant; any other
/// option (`suid`, `dev`, `exec`, `shared`, `idmap`, data such as
/// `size=64m`, ...) must be listed in the grant's `options`.
const RESTRICTING_OPTIONS: &[&str] = &[
    "bind",
    "rbind",
    "ro",
    "rro",
    "nosuid",
    "rnosuid",
    "nodev",
    "rnodev",
    "noexec",
    "rnoexec",
    "nosymfollow",
    "rnosymfollow",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "noatime",
    "rnoatime",
    "nodiratime",
    "rnodiratime",
    "relatime",
    "rrelatime",
    "norelatime",
    "rnorelatime",
    "strictatime",
    "rstrictatime",
    "nostrictatime",
    "rnostrictatime",
    "atime",
    "ratime",
    "diratime",
    "rdiratime",
    "lazytime",
    "nolazytime",
    "sync",
    "async",
    "dirsync",
    "silent",
    "loud",
];

/// Options that make a mount writable.
const WRITABLE_OPTIONS: &[&str] = &["rw", "rrw"];

/// Pairs that say opposite things: runc takes the last of a pair and crun
/// the one that sets a flag, so a list with both is refused.
const OPPOSITES: &[(&str, &str)] = &[
    ("ro", "rw"),
    ("rro", "rrw"),
    ("suid", "nosuid"),
    ("rsuid", "rnosuid"),
    ("dev", "nodev"),
    ("rdev", "rnodev"),
    ("exec", "noexec"),
    ("rexec", "rnoexec"),
    ("bind", "rbind"),
];

/// Propagation options; at most one per mount.
const PROPAGATION: &[&str] = &[
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

/// Overlay options naming host directories.
const OVERLAY_DIRS: &[&str] = &["lowerdir", "upperdir", "workdir", "datadir"];

/// A mount as the runtime will make it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveMount<'a> {
    /// `bind` for any mount whose options say `bind` or `rbind`, else the
    /// file system type.
    pub kind: &'a str,
    /// Whether the container can write through it anywhere (for an
    /// `rbind`, in any of its submounts).
    pub writable: bool,
    /// Host paths it exposes: a bind's source, an overlay's directories.
    pub host_paths: Vec<&'a str>,
    /// Options beyond the restricting ones and `rw`, which the grant must
    /// list.
    pub granted_options: Vec<&'a str>,
}

/// How runc and crun will make `mount`, or why they would not agree (or
/// not read it as written).
pub fn effective_mount(mount: &Mount) -> Result<EffectiveMount<'_>, String> {
    clean_absolute(&mount.destination).map_err(|want| format!("a destination that is {want}"))?;
    if mount.destination == "/" {
        return Err("a destination other than /".into());
    }
    let options: Vec<&str> = mount.options.iter().map(String::as_str).collect();
    // The runtime joins the options with ',' into one string the kernel
    // splits again: a ',' inside one would be options of its own.
    if options.iter().any(|o| o.contains(',')) {
        return Err("options without ',' inside one".into());
    }
    let has = |o: &str| options.contains(&o);
    if let Some((a, b)) = OPPOSITES.iter().find(|(a, b)| has(a) && has(b)) {
        return Err(format!(
            "options without both {a:?} and {b:?} (runc and crun read them differently)"
        ));
    }
    if options.iter().filter(|o| PROPAGATION.contains(o)).count() > 1 {
        return Err("options with at most one propagation".into());
    }
    let bind = has("bind") || has("rbind");
    let kind = if bind {
        "bind"
    } else if mount.type_.is_empty() || mount.type_ == "bind" || mount.type_ == "none" {
        return Err("a file system type, or a \"bind\" or \"rbind\" option".into());
    } else {
        mount.type_.as_str()
    };
    let mut host_paths = Vec::new();
    if bind {
        clean_absolute(&mount.source).map_err(|want| format!("a bind source that is {want}"))?;
        host_paths.push(mount.source.as_str());
    }
    if kind == "overlay" {
        host_paths.extend(overlay_dirs(&options)?);
    }
    let read_only = match (bind, has("rbind")) {
        // `ro` on an rbind leaves its submounts writable.
        (true, true) => has("rro"),
        (true, false) => has("ro") || has("rro"),
        // runc makes `rro` recursive on binds only.
        (false, _) => has("ro"),
    };
    let granted_options = options
        .iter()
        .copied()
        .filter(|o| !RESTRICTING_OPTIONS.contains(o) && !WRITABLE_OPTIONS.contains(o))
        .filter(|o| !(kind == "overlay" && is_overlay_dir(o)))
        .collect();
    Ok(EffectiveMount {
        kind,
        writable: !read_only,
        host_paths,
        granted_options,
    })
}

fn is_overlay_dir(option: &str) -> bool {
    option
        .split_once('=')
        .is_some_and(|(key, _)| OVERLAY_DIRS.contains(&key))
}

/// The host directories an overlay's options name; each must be a clean
/// absolute path (no escapes: `\` is refused).
fn overlay_dirs<'a>(options: &[&'a str]) -> Result<Vec<&'a str>, String> {
    let mut dirs = Vec::new();
    let mut keys = Vec::new();
    for option in options.iter().filter(|o| is_overlay_dir(o)) {
        let (key, value) = option.split_once('=').expect("an overlay dir option");
        if keys.contains(&key) {
            return Err(format!("an overlay {key} given once"));
        }
        keys.push(key);
        if value.contains('\\') {
            return Err(format!("an overlay {key} without escapes"));
        }
        for dir in value.split(':') {
            clean_absolute(dir).map_err(|want| format!("an overlay {key} that is {want}"))?;
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

/// Why an environment variable's name is not one the process will see as
/// that name.
pub fn env_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("a non-empty name");
    }
    // Names are never redacted: every guest in scope is handed them.
    if key.len() > MAX_ENV_NAME {
        return Err("a name of at most 256 bytes");
    }
    if key.contains('=') {
        return Err("a name without '=' (the process would see the name before it)");
    }
    Ok(())
}

/// Why an annotation key is not one every runtime keeps as written: runc
/// turns `a=b: c` into `a: b=c` in the state hooks read.
pub fn annotation_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("a non-empty key");
    }
    if key.contains('=') {
        return Err("a key without '='");
    }
    Ok(())
}

/// Why a sysctl key is not in its plain dotted form: runc's writer turns
/// every `.` into `/`, crun opens a key with a leading `/` as an absolute
/// path on the host, and either way `..` and empty parts are not what they
/// seem. Only `word.word...` keys are taken.
pub fn sysctl_key(key: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = key.split('.').collect();
    let word = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if parts.len() < 2 || !parts.iter().all(word) {
        return Err("a dotted key of letters, digits, '_' and '-' (net.ipv4.ip_forward)");
    }
    Ok(())
}

/// Why a unified cgroup key is not a resource file of the container's
/// cgroup: a key names a file there, and the `cgroup.*` files move
/// processes, kill, freeze and delegate rather than limit.
pub fn unified_key(key: &str) -> Result<(), &'static str> {
    let Some((controller, file)) = key.split_once('.') else {
        return Err("a controller file name (memory.high)");
    };
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !word(controller) || !file.split('.').all(word) {
        return Err("a controller file name (memory.high)");
    }
    if controller == "cgroup" {
        return Err("a resource file, not a cgroup.* core file");
    }
    typed_field_of(controller, file).map_or(Ok(()), Err)
}

/// The typed field that governs a cgroup v2 file, as runc writes it from
/// the OCI resources (or kubelet sets it), so that the file is judged by
/// that field's grant and never by a unified pattern: runc writes unified
/// keys last, over what the typed fields set.
fn typed_field_of(controller: &str, file: &str) -> Option<&'static str> {
    let field = match (controller, file) {
        ("memory", "max") => "a file no typed field governs: memory.max is the memory limit",
        ("memory", "low") => "a file no typed field governs: memory.low is the memory reservation",
        ("memory", "swap.max") => "a file no typed field governs: memory.swap.max is the memory swap limit",
        ("memory", "oom.group") => "a file no typed field governs: memory.oom.group is kubelet's kill of the whole container on OOM",
        ("cpu", "weight" | "weight.nice") => "a file no typed field governs: cpu.weight is the CPU shares",
        ("cpu", "max") => "a file no typed field governs: cpu.max is the CPU quota and period",
        ("cpuset", "cpus" | "mems") => "a file no typed field governs: cpuset.cpus and cpuset.mems are the cpuset",
        ("pids", "max") => "a file no typed field governs: pids.max is the pids limit",
        ("hugetlb", file) if file.ends_with(".max") => "a file no typed field governs: hugetlb.*.max are the hugepage limits",
        _ => return None,
    };
    Some(field)
}

/// Why a network device name is not an interface name.
pub fn net_device(name: &str) -> Result<(), &'static str> {
    let ok = (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok && name != "." && name != ".." {
        Ok(())
    } else {
        Err("an interface name (at most 15 letters, digits, '_', '.', ':' and '-')")
    }
}

/// The policy of scheduler attributes, if the kernel has it (NRI's
/// `SCHED_NONE` and `SCHED_ISO` it has not: runc fails the container).
pub fn scheduler_policy(s: &LinuxScheduler) -> Option<SchedulerPolicy> {
    use LinuxSchedulerPolicy as P;
    Some(match s.policy.enum_value().ok()? {
        P::SCHED_OTHER => SchedulerPolicy::Other,
        P::SCHED_BATCH => SchedulerPolicy::Batch,
        P::SCHED_IDLE => SchedulerPolicy::Idle,
        P::SCHED_FIFO => SchedulerPolicy::Fifo,
        P::SCHED_RR => SchedulerPolicy::Rr,
        P::SCHED_DEADLINE => SchedulerPolicy::Deadline,
        P::SCHED_NONE | P::SCHED_ISO => return None,
    })
}

/// The flags of scheduler attributes, or none if one is not the kernel's.
pub fn scheduler_flags(s: &LinuxScheduler) -> Option<Vec<SchedulerFlag>> {
    use LinuxSchedulerFlag as F;
    s.flags
        .iter()
        .map(|f| {
            Some(match f.enum_value().ok()? {
                F::SCHED_FLAG_RESET_ON_FORK => SchedulerFlag::ResetOnFork,
                F::SCHED_FLAG_RECLAIM => SchedulerFlag::Reclaim,
                F::SCHED_FLAG_DL_OVERRUN => SchedulerFlag::DlOverrun,
                F::SCHED_FLAG_KEEP_POLICY => SchedulerFlag::KeepPolicy,
                F::SCHED_FLAG_KEEP_PARAMS => SchedulerFlag::KeepParams,
                F::SCHED_FLAG_UTIL_CLAMP_MIN => SchedulerFlag::UtilClampMin,
                F::SCHED_FLAG_UTIL_CLAMP_MAX => SchedulerFlag::UtilClampMax,
            })
        })
        .collect()
}

/// Why runc or the kernel would refuse scheduler attributes, which fails
/// the creation of the container. runc's validation: nice within -20 to
/// 19, a priority only for `SCHED_FIFO` and `SCHED_RR`, runtime, deadline
/// and period only for `SCHED_DEADLINE`. The kernel's `sched_setattr`: a
/// real-time priority of 1 to 99; a deadline task's runtime at least
/// 1024 ns and not past its deadline, which is not past a nonzero period.
pub fn scheduler_attributes(
    policy: SchedulerPolicy,
    s: &LinuxScheduler,
) -> Result<(), &'static str> {
    let real_time = matches!(policy, SchedulerPolicy::Fifo | SchedulerPolicy::Rr);
    if !(-20..=19).contains(&s.nice) {
        return Err("a nice value of -20 to 19");
    }
    if real_time && !(1..=99).contains(&s.priority) {
        return Err("a priority of 1 to 99 for fifo and rr");
    }
    if !real_time && s.priority != 0 {
        return Err("no priority but for fifo and rr");
    }
    if policy != SchedulerPolicy::Deadline {
        return match s.runtime == 0 && s.deadline == 0 && s.period == 0 {
            true => Ok(()),
            false => Err("no runtime, deadline or period but for deadline"),
        };
    }
    let fits = s.runtime >= 1024
        && s.runtime <= s.deadline
        && (s.period == 0 || s.deadline <= s.period)
        && s.deadline.max(s.period) < 1 << 63;
    match fits {
        true => Ok(()),
        false => Err("a runtime of at least 1024 ns, within its deadline, within its period"),
    }
}

/// Most entries of one list or map in an answer: more than a plugin needs
/// (runc takes seconds for a thousand hooks), and the host's work on an
/// answer grows with them.
pub const MAX_ENTRIES: usize = 256;
/// Most containers one answer may update or evict: every container of a
/// large node (kubelet runs at most 110 pods by default, some with many
/// containers), as a policy plugin answers Synchronize; the answer cap
/// bounds the bytes.
pub const MAX_CONTAINERS_NAMED: usize = 4096;
/// Longest env name in an answer.
pub const MAX_ENV_NAME: usize = 256;
/// Longest hook timeout, in seconds, whatever a grant says. runc fails
/// the container when a hook outlives its timeout, so 0 or less fails
/// every container (and a poststop hook silently never runs); runc turns
/// seconds into an int64 of nanoseconds, which past about 292 years wraps
/// negative. An hour is past any runtime's own deadline for a creation.
pub const MAX_HOOK_TIMEOUT: i64 = 3600;
/// Longest string in an answer: the kernel refuses an env entry or argument
/// over 128 KiB, failing the container.
pub const MAX_STRING: usize = 32 << 10;

/// What is wrong with a part of an answer, wherever it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// The field, as a dotted path (`linux.sysctl`).
    pub field: String,
    /// What the answer has there.
    pub found: String,
    /// What it must be.
    pub want: &'static str,
}

/// The first part of `message` that no answer may have: a string with a
/// NUL byte (crun cuts strings there, so `B\0x=1` unsets `B`; runc refuses
/// them), a string over [`MAX_STRING`], a list or map of more than
/// [`MAX_ENTRIES`].
pub fn malformed_in(message: &dyn MessageDyn) -> Option<Malformed> {
    let descriptor = message.descriptor_dyn();
    for field in descriptor.fields() {
        let name = field.name();
        let too_many = |n: usize| {
            (n > MAX_ENTRIES).then(|| Malformed {
                field: name.to_string(),
                found: format!("{n} entries"),
                want: "at most 256 entries",
            })
        };
        let found = match field.runtime_field_type() {
            RuntimeFieldType::Singular(_) => field
                .get_singular(message)
                .and_then(|v| malformed_value(v, name)),
            RuntimeFieldType::Repeated(_) => {
                let list = field.get_repeated(message);
                too_many(list.len())
                    .or_else(|| (0..list.len()).find_map(|i| malformed_value(list.get(i), name)))
            }
            RuntimeFieldType::Map(..) => {
                let map = field.get_map(message);
                too_many(map.len()).or_else(|| {
                    (&map).into_iter().find_map(|(key, value)| {
                        malformed_value(key, name).or_else(|| malformed_value(value, name))
                    })
                })
            }
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn malformed_value(value: ReflectValueRef<'_>, name: &str) -> Option<Malformed> {
    let at = |found: String, want| {
        Some(Malformed {
            field: name.to_string(),
            found,
            want,
        })
    };
    match value {
        ReflectValueRef::String(s) if s.contains('\0') => {
            at("a NUL byte".into(), "text without NUL bytes")
        }
        ReflectValueRef::String(s) if s.len() > MAX_STRING => {
            at(format!("{} bytes", s.len()), "text of at most 32 KiB")
        }
        ReflectValueRef::Message(m) => malformed_in(&*m).map(|inner| Malformed {
            field: format!("{name}.{}", inner.field),
            ..inner
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(type_: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            destination: "/data".into(),
            type_: type_.into(),
            source: source.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn paths_are_taken_only_as_written() {
        let cases = [
            ("/", Ok(())),
            ("/srv/data", Ok(())),
            ("srv/data", Err("an absolute path")),
            ("", Err("an absolute path")),
            ("/srv/data/", Err("a path without a trailing '/'")),
            ("/srv//data", Err("a path without '//'")),
            ("/srv/data/../../", Err("a path without a trailing '/'")),
            ("/srv/data/../..", Err("a path without '.' or '..'")),
            ("/data/./x", Err("a path without '.' or '..'")),
            ("/data/..x", Ok(())),
        ];
        for (path, want) in cases {
            assert_eq!(clean_absolute(path), want, "{path:?}");
        }
    }

    #[test]
    fn a_mount_is_what_runc_and_crun_make_of_it() {
        // (case, mount, how it is made: kind, writable, options to grant)
        type Made = Result<(&'static str, bool, &'static [&'static str]), &'static str>;
        let cases: &[(&str, Mount, Made)] = &[
            (
                "plain bind ro",
                mount("bind", "/srv", &["rbind", "rro"]),
                Ok(("bind", false, &[])),
            ),
            (
                "rbind ro leaves submounts writable",
                mount("bind", "/srv", &["rbind", "ro"]),
                Ok(("bind", true, &[])),
            ),
            (
                "bind ro",
                mount("bind", "/srv", &["bind", "ro"]),
                Ok(("bind", false, &[])),
            ),
            (
                "tmpfs saying rbind is a bind",
                mount("tmpfs", "/etc", &["rbind", "rro"]),
                Ok(("bind", false, &[])),
            ),
            (
                "tmpfs with rro stays writable in runc",
                mount("tmpfs", "tmpfs", &["rro"]),
                Ok(("tmpfs", true, &[])),
            ),
            (
                "tmpfs ro",
                mount("tmpfs", "tmpfs", &["ro", "size=64m"]),
                Ok(("tmpfs", false, &["size=64m"])),
            ),
            (
                "suid needs listing",
                mount("bind", "/srv", &["rbind", "rro", "suid", "rshared"]),
                Ok(("bind", false, &["suid", "rshared"])),
            ),
            (
                "ro then rw",
                mount("bind", "/srv", &["rbind", "ro", "rw"]),
                Err("options without both \"ro\" and \"rw\" (runc and crun read them differently)"),
            ),
            (
                "two propagations",
                mount("bind", "/srv", &["rbind", "rprivate", "rshared"]),
                Err("options with at most one propagation"),
            ),
            (
                "type bind without a bind option",
                mount("bind", "/srv", &["ro"]),
                Err("a file system type, or a \"bind\" or \"rbind\" option"),
            ),
            (
                "relative source",
                mount("bind", "srv", &["rbind"]),
                Err("a bind source that is an absolute path"),
            ),
            (
                "dotted source",
                mount("bind", "/srv/data/../../", &["rbind"]),
                Err("a bind source that is a path without a trailing '/'"),
            ),
        ];
        for (name, m, want) in cases {
            let got = effective_mount(m).map(|e| (e.kind, e.writable, e.granted_options));
            let want = (*want)
                .map(|(k, w, o)| (k, w, o.to_vec()))
                .map_err(str::to_string);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn an_overlay_exposes_the_host_directories_of_its_options() {
        let m = mount(
            "overlay",
            "overlay",
            &["lowerdir=/a:/b", "upperdir=/u", "workdir=/w"],
        );
        let e = effective_mount(&m).unwrap();
        assert_eq!(e.host_paths, ["/a", "/b", "/u", "/w"]);
        assert!(e.writable && e.granted_options.is_empty());
        let escaped = mount("overlay", "overlay", &["lowerdir=/a\\:b"]);
        assert_eq!(
            effective_mount(&escaped).unwrap_err(),
            "an overlay lowerdir without escapes"
        );
        let injected = mount("overlay", "overlay", &["lowerdir=/a,upperdir=/etc"]);
        assert_eq!(
            effective_mount(&injected).unwrap_err(),
            "options without ',' inside one"
        );
        let twice = mount("overlay", "overlay", &["lowerdir=/a", "lowerdir=/etc"]);
        assert_eq!(
            effective_mount(&twice).unwrap_err(),
            "an overlay lowerdir given once"
        );
        let dotted = mount("overlay", "overlay", &["upperdir=/srv/../etc"]);
        assert_eq!(
            effective_mount(&dotted).unwrap_err(),
            "an overlay upperdir that is a path without '.' or '..'"
        );
    }

    #[test]
    fn keys_are_what_the_runtime_will_use() {
        assert_eq!(
            env_key("LD_PRELOAD=/x.so:NO_PROXY"),
            Err("a name without '=' (the process would see the name before it)")
        );
        assert_eq!(env_key(""), Err("a non-empty name"));
        assert_eq!(env_key("HTTP_PROXY"), Ok(()));
        assert_eq!(env_key(&"N".repeat(256)), Ok(()));
        assert_eq!(
            env_key(&"N".repeat(257)),
            Err("a name of at most 256 bytes")
        );
        assert_eq!(annotation_key("a=b"), Err("a key without '='"));
        for bad in [
            "/net/probe",
            "net/ipv4/ip_forward",
            "net..x",
            "net",
            "net.ipv4.",
            "net.a b",
        ] {
            assert!(sysctl_key(bad).is_err(), "{bad}");
        }
        assert_eq!(sysctl_key("net.ipv4.conf.eth0-100.rp_filter"), Ok(()));
        for bad in [
            "cgroup.procs",
            "cgroup.kill",
            "../cgroup.procs",
            "memory",
            "memory./x",
            "memory..max",
        ] {
            assert!(unified_key(bad).is_err(), "{bad}");
        }
        assert_eq!(unified_key("memory.high"), Ok(()));
        for typed in [
            "memory.max",
            "memory.swap.max",
            "memory.oom.group",
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "cpuset.cpus",
            "pids.max",
            "hugetlb.2MB.max",
            "hugetlb.1GB.rsvd.max",
        ] {
            let refused = unified_key(typed).unwrap_err();
            assert!(
                refused.starts_with("a file no typed field governs"),
                "{typed}"
            );
        }
        assert_eq!(unified_key("memory.swap.high"), Ok(()));
        assert_eq!(unified_key("hugetlb.2MB.events"), Ok(()));
        assert_eq!(unified_key("io.bfq.weight"), Ok(()));
        assert!(net_device("eth0").is_ok());
        assert!(net_device("../etc").is_err() && net_device("a-very-long-device").is_err());
    }

    #[test]
    fn no_answer_has_nuls_huge_strings_or_endless_lists() {
        use nri_proto::api::ContainerAdjustment;
        let mut adjust = ContainerAdjustment::new();
        assert_eq!(malformed_in(&adjust), None);
        adjust
            .linux
            .mut_or_insert_default()
            .sysctl
            .insert("k".into(), "v\0x".into());
        let found = malformed_in(&adjust).unwrap();
        assert_eq!(
            (found.field.as_str(), found.want),
            ("linux.sysctl", "text without NUL bytes")
        );
        let mut adjust = ContainerAdjustment::new();
        adjust.args = vec!["x".repeat(MAX_STRING + 1)];
        assert_eq!(
            malformed_in(&adjust).unwrap().want,
            "text of at most 32 KiB"
        );
        let mut adjust = ContainerAdjustment::new();
        adjust.args = vec![String::new(); MAX_ENTRIES + 1];
        let found = malformed_in(&adjust).unwrap();
        assert_eq!(
            (found.field.as_str(), found.found.as_str()),
            ("args", "257 entries")
        );
    }
}
