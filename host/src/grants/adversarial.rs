//! Issue #16: adversarial answers against random grants, judged by a model
//! of what runc and crun do with them, written apart from the checks: paths
//! resolved as the kernel resolves them, mount flags as runc (the last of
//! a pair wins) and crun (a flag once set stays) compute them, env entries
//! split where the process splits them, sysctl keys opened where each
//! runtime opens them. Whatever the checker admits, the model must find
//! within the grant, in every runtime.

use std::path::{Component, Path, PathBuf};

use nri_proto::api::{
    ContainerAdjustment, ContainerUpdate, Hook, Hooks, KeyValue, LinuxContainerAdjustment,
    LinuxContainerUpdate, LinuxDevice, LinuxDeviceCgroup, LinuxNamespace, LinuxResources,
    LinuxScheduler, LinuxSchedulerFlag, LinuxSchedulerPolicy, Mount, OptionalFileMode, OptionalInt,
    OptionalInt64, OptionalUInt32,
};
use proptest::prelude::*;

use super::{check_answer, Grants, Targets};

/// `path` as the kernel resolves it (without symlinks); relative paths are
/// taken from `base`, as runc takes a bind source from the bundle.
fn resolved(base: &str, path: &str) -> String {
    let mut out = PathBuf::from("/");
    for part in Path::new(base).join(path).components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// How a runtime reads a mount's options.
#[derive(Clone, Copy, Debug)]
enum Runtime {
    /// The last of `ro`/`rw` (and `rro`/`rrw`) wins; recursive flags only
    /// on binds.
    Runc,
    /// A flag once set stays; recursive flags on every type.
    Crun,
}

const RUNTIMES: [Runtime; 2] = [Runtime::Runc, Runtime::Crun];

/// What a runtime mounts: the kind, the host paths exposed, and whether
/// anything under the destination is writable.
struct Mounted {
    destination: String,
    kind: String,
    host: Vec<String>,
    writable: bool,
}

fn mounted(runtime: Runtime, m: &Mount) -> Mounted {
    let has = |o: &str| m.options.iter().any(|x| x == o);
    let last = |a: &str, b: &str| m.options.iter().rev().find(|o| *o == a || *o == b).cloned();
    let bind = has("bind") || has("rbind");
    let recursive = has("rbind");
    let (ro, rro) = match runtime {
        Runtime::Runc => (
            last("ro", "rw").as_deref() == Some("ro"),
            bind && last("rro", "rrw").as_deref() == Some("rro"),
        ),
        Runtime::Crun => (has("ro") || has("rro"), has("rro")),
    };
    // Submounts of an rbind keep their own flags unless made read-only
    // recursively.
    let writable = if recursive { !rro } else { !(ro || rro) };
    let mut host = Vec::new();
    if bind {
        host.push(resolved("/bundle", &m.source));
    }
    if !bind && m.type_ == "overlay" {
        for o in &m.options {
            if let Some((key, value)) = o.split_once('=') {
                if ["lowerdir", "upperdir", "workdir"].contains(&key) {
                    host.extend(value.split(':').map(|d| resolved("/bundle", d)));
                }
            }
        }
    }
    Mounted {
        destination: resolved("/", &m.destination),
        kind: if bind { "bind".into() } else { m.type_.clone() },
        host,
        writable,
    }
}

fn mount_within(grants: &Grants, m: &Mount) -> bool {
    if m.destination.starts_with('-') {
        return true;
    }
    RUNTIMES.iter().all(|&runtime| {
        let made = mounted(runtime, m);
        grants.mounts.iter().any(|g| {
            g.destination.matches(&made.destination)
                && g.types.contains(&made.kind)
                && made
                    .host
                    .iter()
                    .all(|h| g.source.as_ref().is_some_and(|s| s.matches(h)))
                && (g.read_write || !made.writable)
        })
    })
}

/// The variable a process gets from an env entry: the text before the
/// first `=` of `key=value`, after crun cuts it at a NUL.
fn env_within(grants: &Grants, kv: &KeyValue) -> bool {
    let (name, removal) = match kv.key.strip_prefix('-') {
        Some(name) => (name.to_string(), true),
        None => (kv.key.clone(), false),
    };
    if removal {
        return variable_granted(grants, &name);
    }
    let entry = format!("{name}={}", kv.value);
    let cut = entry.split('\0').next().unwrap_or_default();
    match cut.split_once('=') {
        Some((variable, _)) => variable_granted(grants, variable) && !variable.is_empty(),
        // crun unsets a variable an entry without '=' names.
        None => variable_granted(grants, cut),
    }
}

/// A variable the dynamic loader or a language runtime acts on is
/// granted only by its name; any other by a pattern.
fn variable_granted(grants: &Grants, variable: &str) -> bool {
    let loaders = [
        "GCONV_PATH",
        "NODE_OPTIONS",
        "PYTHONPATH",
        "JAVA_TOOL_OPTIONS",
        "PATH",
    ];
    if variable.starts_with("LD_") || loaders.contains(&variable) {
        grants.env.sources().iter().any(|s| s == variable)
    } else {
        grants.env.matches(variable)
    }
}

/// Where each runtime writes a sysctl: runc under /proc/sys with every `.`
/// a `/`; crun likewise unless the key starts with `/`, which it opens on
/// the host.
fn sysctl_within(grants: &Grants, key: &str) -> bool {
    let runc = resolved("/proc/sys", &key.replace('.', "/"));
    let crun = if key.starts_with('/') {
        resolved("/", &key.replace('.', "/"))
    } else {
        runc.clone()
    };
    [runc, crun].iter().all(|file| {
        file.strip_prefix("/proc/sys/")
            .is_some_and(|name| grants.sysctl.matches(&name.replace('/', ".")))
    })
}

/// A unified key names a file of the container's cgroup directory.
fn unified_within(grants: &Grants, key: &str) -> bool {
    let file = resolved("/cgroup/container", key);
    // Files a typed field writes are bounded by its grant, never by a
    // unified pattern.
    let typed = [
        "memory.max",
        "memory.swap.max",
        "memory.oom.group",
        "cpu.weight",
        "cpu.max",
        "pids.max",
    ];
    file.strip_prefix("/cgroup/container/").is_some_and(|name| {
        !name.contains('/') && !typed.contains(&name) && grants.unified.matches(name)
    })
}

/// What the container's process is scheduled with, if runc and the
/// kernel take the attributes at all: runc fails the container for a
/// nice value outside -20..19, a priority for a policy that is not real
/// time or 0 for one that is, and deadline parameters for another policy.
fn scheduler_within(grants: &Grants, s: &LinuxScheduler) -> bool {
    use LinuxSchedulerPolicy as P;
    let Ok(policy) = s.policy.enum_value() else {
        return false;
    };
    let real_time = matches!(policy, P::SCHED_FIFO | P::SCHED_RR);
    let taken = (-20..=19).contains(&s.nice)
        && if real_time {
            (1..=99).contains(&s.priority)
        } else {
            s.priority == 0
        }
        && s.runtime == 0
        && matches!(
            policy,
            P::SCHED_OTHER | P::SCHED_BATCH | P::SCHED_IDLE | P::SCHED_FIFO | P::SCHED_RR
        );
    taken
        && grants.scheduler.as_ref().is_some_and(|g| {
            let flags = s.flags.iter().all(|f| {
                listed(
                    &g.flags,
                    &format!("{:?}", f.enum_value_or_default()),
                    "SCHED_FLAG_",
                )
            });
            listed(&g.policies, &format!("{policy:?}"), "SCHED_")
                && g.nice
                    .map_or(s.nice == 0, |b| b.min <= s.nice && s.nice <= b.max)
                && (s.priority == 0
                    || g.priority
                        .is_some_and(|b| b.min <= s.priority && s.priority <= b.max))
                && flags
        })
}

/// Whether a grant's list, as the operator writes it, names the wire
/// name `SCHED_FLAG_RESET_ON_FORK` (as `reset-on-fork`).
fn listed<T: serde::Serialize>(list: &[T], wire: &str, prefix: &str) -> bool {
    let written = wire
        .trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', "-");
    toml::Value::try_from(list)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .any(|p| p.as_str() == Some(&written))
}

/// A hook runc runs: at a path the grant names, with a timeout runc
/// keeps (more than 0, seconds that fit its nanoseconds), within the
/// grant's.
fn hook_within(grants: &Grants, h: &Hook) -> bool {
    let timeout = h.timeout.as_ref().map(|t| t.value);
    let runc_keeps = timeout.is_none_or(|t| t > 0 && t.checked_mul(1_000_000_000).is_some());
    runc_keeps
        && grants.hooks.iter().any(|g| {
            g.path.matches(&resolved("/", &h.path))
                && h.path.starts_with('/')
                && h.args.is_empty()
                && g.max_timeout
                    .is_none_or(|max| timeout.is_some_and(|t| t <= max))
        })
}

/// The node a device entry makes: its numbers, mode (0666 unset) and
/// owner (root unset), at a path in the container's /dev.
fn device_within(grants: &Grants, d: &LinuxDevice) -> bool {
    if d.path.starts_with('-') {
        return true;
    }
    let path = resolved("/", &d.path);
    let mode = d.file_mode.as_ref().map_or(0o666, |m| m.value);
    let uid = d.uid.as_ref().map_or(0, |u| u.value);
    path.starts_with("/dev/")
        && grants.devices.iter().any(|g| {
            g.path.matches(&path)
                && g.types.contains(&d.type_)
                && g.major.contains(&d.major)
                && g.minor.contains(&d.minor)
                && mode & !0o7777 == 0
                && mode & !g.max_file_mode.unwrap_or(0o666) == 0
                && g.uid.as_ref().map_or(uid == 0, |u| u.contains(&uid))
        })
}

/// The devices a cgroup rule opens: without a type, or of type `a`,
/// every device with every access.
fn rule_within(grants: &Grants, r: &LinuxDeviceCgroup) -> bool {
    let all = r.type_.is_empty() || r.type_ == "a";
    let major = r.major.as_ref().map_or(-1, |m| m.value);
    let minor = r.minor.as_ref().map_or(-1, |m| m.value);
    // No access at all is taken at its worst.
    let access = if r.access.is_empty() {
        "rwm"
    } else {
        &r.access
    };
    grants.device_rules.iter().any(|g| {
        if !r.allow && !g.deny {
            false
        } else if all {
            g.types.iter().any(|t| t == "a") && "rwm".chars().all(|c| g.access.contains(c))
        } else {
            g.types.contains(&r.type_)
                && g.major.contains(&major)
                && g.minor.contains(&minor)
                && access.chars().all(|c| g.access.contains(c))
        }
    })
}

/// A namespace entry: a new namespace, one joined at a path, or (removed)
/// the node's own.
fn namespace_within(grants: &Grants, n: &LinuxNamespace) -> bool {
    let (kind, removal) = match n.type_.strip_prefix('-') {
        Some(kind) => (kind, true),
        None => (n.type_.as_str(), false),
    };
    grants.namespaces.iter().any(|g| {
        g.types.iter().any(|t| t == kind)
            && if removal {
                g.host
            } else if n.path.is_empty() {
                true
            } else {
                g.paths
                    .as_ref()
                    .is_some_and(|p| p.matches(&resolved("/", &n.path)))
            }
    })
}

fn resources_within(grants: &Grants, r: &LinuxResources) -> bool {
    r.unified.keys().all(|k| unified_within(grants, k))
        && r.devices.iter().all(|d| rule_within(grants, d))
}

fn adjustment_within(grants: &Grants, a: &ContainerAdjustment) -> bool {
    let linux = a.linux.as_ref();
    a.mounts.iter().all(|m| mount_within(grants, m))
        && a.env.iter().all(|kv| env_within(grants, kv))
        && a.hooks
            .as_ref()
            .is_none_or(|h| h.prestart.iter().all(|h| hook_within(grants, h)))
        && linux.is_none_or(|l| {
            l.scheduler
                .as_ref()
                .is_none_or(|s| scheduler_within(grants, s))
                && l.devices.iter().all(|d| device_within(grants, d))
                && l.namespaces.iter().all(|n| namespace_within(grants, n))
                && l.sysctl.keys().all(|k| sysctl_within(grants, k))
                && l.resources
                    .as_ref()
                    .is_none_or(|r| resources_within(grants, r))
        })
}

// --- generators ---------------------------------------------------------

/// A path: one of `plain`, as an honest guest would write it, or one built
/// of `..`, `.`, empty parts and trailing slashes.
fn path_like(plain: &'static [&'static str]) -> impl Strategy<Value = String> {
    let plain = prop::sample::select(plain).prop_map(str::to_string);
    prop_oneof![2 => plain, 1 => built_path()]
}

fn built_path() -> impl Strategy<Value = String> {
    let part = prop::sample::select(vec!["srv", "data", "etc", "x", "..", ".", "", "proc", "1"]);
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(part, 0..5),
        any::<bool>(),
    )
        .prop_map(|(absolute, parts, trailing)| {
            let mut p = parts.join("/");
            if absolute {
                p.insert(0, '/');
            }
            if trailing {
                p.push('/');
            }
            p
        })
}

/// Mount options: a bind option or none, then read-only and read-write
/// flags in any order, and maybe a restricting one.
fn options() -> impl Strategy<Value = Vec<String>> {
    let bind = prop::sample::select(vec![
        vec![],
        vec!["rbind"],
        vec!["rbind"],
        vec!["bind"],
        vec!["bind", "rbind"],
    ]);
    let flags = prop::sample::subsequence(vec!["ro", "rw", "rro", "rrw"], 0..=2).prop_shuffle();
    let extra = prop::sample::select(vec![vec![], vec!["nosuid"], vec!["rprivate"]]);
    (bind, flags, extra).prop_map(|(bind, flags, extra)| {
        bind.into_iter()
            .chain(flags)
            .chain(extra)
            .map(str::to_string)
            .collect()
    })
}

fn mount() -> impl Strategy<Value = Mount> {
    let kind = prop::sample::select(vec!["bind", "bind", "tmpfs", "overlay", "none", ""]);
    let source = || path_like(&["/srv/data/x", "/srv/data/y", "/srv/x", "/etc"]);
    let overlay = (source(), source())
        .prop_map(|(l, u)| vec![format!("lowerdir={l}"), format!("upperdir={u}")]);
    let destination = path_like(&["/data", "/data/x"]);
    (destination, source(), kind, options(), overlay).prop_map(
        |(destination, source, kind, mut options, overlay)| {
            if kind == "overlay" {
                options.extend(overlay);
            }
            Mount {
                destination,
                source,
                type_: kind.into(),
                options,
                ..Default::default()
            }
        },
    )
}

fn key_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "NO_PROXY",
        "HTTP_PROXY",
        "LD_PRELOAD=/x.so:NO_PROXY",
        "NO_PROXY\0LD_PRELOAD",
        "-NO_PROXY",
        "-LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "GCONV_PATH",
        "CONFIG_PATH",
        "NODE_OPTIONS",
        "",
        "=NO_PROXY",
        "net.ipv4.ip_forward",
        "/net/probe",
        "/net.probe",
        "net/ipv4.ip_forward",
        "net/../kernel/core_pattern",
        "net.ipv4/../../kernel.core_pattern",
        "net..ipv4",
        "memory.high",
        "memory.max",
        "memory.swap.max",
        "cpu.weight",
        "cgroup.procs",
        "../cgroup.procs",
        "memory/../../x",
    ])
    .prop_map(str::to_string)
}

fn value_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["1", "x\0LD_PRELOAD=/x.so", "", "a=b"]).prop_map(str::to_string)
}

fn device() -> impl Strategy<Value = LinuxDevice> {
    let path = prop::sample::select(vec![
        "/dev/nri-null",
        "/dev/x",
        "/dev/../etc/x",
        "/dev/nri-x/../../etc/shadow",
        "/nri-root",
        "dev/x",
        "/dev//x",
        "/dev/x/",
        "-/dev/x",
    ]);
    (
        path,
        prop::sample::select(vec!["c", "b", "u", "p", ""]),
        0i64..3,
        0i64..6,
        prop::option::of(prop::sample::select(vec![
            0o600u32, 0o666, 0o4777, 0o100600,
        ])),
        prop::option::of(prop::sample::select(vec![0u32, 1000])),
    )
        .prop_map(|(path, kind, major, minor, mode, uid)| LinuxDevice {
            path: path.into(),
            type_: kind.into(),
            major,
            minor,
            file_mode: mode
                .map(|value| OptionalFileMode {
                    value,
                    ..Default::default()
                })
                .into(),
            uid: uid
                .map(|value| OptionalUInt32 {
                    value,
                    ..Default::default()
                })
                .into(),
            ..Default::default()
        })
}

fn number(n: Option<i64>) -> protobuf::MessageField<OptionalInt64> {
    n.map(|value| OptionalInt64 {
        value,
        ..Default::default()
    })
    .into()
}

fn rule() -> impl Strategy<Value = LinuxDeviceCgroup> {
    (
        any::<bool>(),
        prop::sample::select(vec!["c", "b", "a", ""]),
        prop::option::of(0i64..3),
        prop::option::of(0i64..6),
        prop::sample::select(vec!["r", "rw", "rwm", ""]),
    )
        .prop_map(|(allow, kind, major, minor, access)| LinuxDeviceCgroup {
            allow,
            type_: kind.into(),
            major: number(major),
            minor: number(minor),
            access: access.into(),
            ..Default::default()
        })
}

fn namespace() -> impl Strategy<Value = LinuxNamespace> {
    let kind = prop::sample::select(vec!["network", "-network", "pid", "-ipc", "bogus"]);
    let at = prop::sample::select(vec![
        "",
        "/var/run/netns/a",
        "/var/run/netns/../../proc/1/ns/net",
        "/proc/1/ns/net",
    ]);
    (kind, at).prop_map(|(kind, path)| LinuxNamespace {
        type_: kind.into(),
        path: path.into(),
        ..Default::default()
    })
}

fn scheduler() -> impl Strategy<Value = LinuxScheduler> {
    use LinuxSchedulerPolicy as P;
    let policy = prop::sample::select(vec![
        P::SCHED_NONE,
        P::SCHED_OTHER,
        P::SCHED_BATCH,
        P::SCHED_IDLE,
        P::SCHED_FIFO,
        P::SCHED_RR,
        P::SCHED_ISO,
        P::SCHED_DEADLINE,
    ]);
    (
        policy,
        prop::sample::select(vec![0, 5, 19, -5, -20, 40]),
        prop::sample::select(vec![0, 0, 0, 1, 10, 99, 100]),
        prop::bool::weighted(0.25),
        prop::sample::select(vec![0u64, 0, 0, 10_000]),
    )
        .prop_map(|(policy, nice, priority, flag, runtime)| LinuxScheduler {
            policy: policy.into(),
            nice,
            priority,
            flags: flag
                .then_some(LinuxSchedulerFlag::SCHED_FLAG_RESET_ON_FORK.into())
                .into_iter()
                .collect(),
            runtime,
            ..Default::default()
        })
}

fn hook() -> impl Strategy<Value = Hook> {
    let path = prop::sample::select(vec![
        "/usr/local/bin/audit",
        "/usr/local/bin/../../../bin/sh",
        "usr/local/bin/audit",
        "/bin/sh",
    ]);
    let timeout = prop::option::of(prop::sample::select(vec![
        -1i64,
        0,
        1,
        10,
        11,
        3601,
        i64::MAX,
    ]));
    (path, timeout).prop_map(|(path, timeout)| Hook {
        path: path.into(),
        timeout: timeout
            .map(|value| OptionalInt {
                value,
                ..Default::default()
            })
            .into(),
        ..Default::default()
    })
}

fn resources() -> impl Strategy<Value = LinuxResources> {
    (
        prop::collection::hash_map(key_text(), value_text(), 0..3),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(|(unified, devices)| LinuxResources {
            unified,
            devices,
            ..Default::default()
        })
}

/// An adjustment of one family at a time, so that a good share of them
/// is admitted and the property has something to judge.
fn adjustment() -> impl Strategy<Value = ContainerAdjustment> {
    let env = (key_text(), value_text()).prop_map(|(key, value)| KeyValue {
        key,
        value,
        ..Default::default()
    });
    let linux = |l: LinuxContainerAdjustment| ContainerAdjustment {
        linux: Some(l).into(),
        ..Default::default()
    };
    prop_oneof![
        prop::collection::vec(mount(), 1..2).prop_map(|mounts| ContainerAdjustment {
            mounts,
            ..Default::default()
        }),
        prop::collection::vec(env, 1..3).prop_map(|env| ContainerAdjustment {
            env,
            ..Default::default()
        }),
        prop::collection::vec(device(), 1..3).prop_map(move |devices| linux(
            LinuxContainerAdjustment {
                devices,
                ..Default::default()
            }
        )),
        prop::collection::vec(namespace(), 1..3).prop_map(move |namespaces| linux(
            LinuxContainerAdjustment {
                namespaces,
                ..Default::default()
            }
        )),
        prop::collection::hash_map(key_text(), value_text(), 1..3).prop_map(move |sysctl| linux(
            LinuxContainerAdjustment {
                sysctl,
                ..Default::default()
            }
        )),
        resources().prop_map(move |r| linux(LinuxContainerAdjustment {
            resources: Some(r).into(),
            ..Default::default()
        })),
        scheduler().prop_map(move |s| linux(LinuxContainerAdjustment {
            scheduler: Some(s).into(),
            ..Default::default()
        })),
        prop::collection::vec(hook(), 1..3).prop_map(|prestart| ContainerAdjustment {
            hooks: Some(Hooks {
                prestart,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        }),
    ]
}

/// Grants an operator might write, narrow and broad.
fn grants() -> impl Strategy<Value = Grants> {
    let mounts = prop::sample::select(vec![
        r#"{ destination = ["/data", "/data/*"], source = ["/srv/data/*", "/srv/data"], types = ["bind"] }"#,
        r#"{ destination = ["/data"], source = ["/srv/*"], types = ["bind", "overlay"], read-write = true }"#,
        r#"{ destination = ["/*"], types = ["tmpfs"] }"#,
        r#"{ destination = ["/*"], source = ["/srv*"], types = ["bind", "tmpfs", "overlay"] }"#,
    ]);
    let env = prop::sample::select(vec![
        r#"["*_PROXY"]"#,
        r#"["NO_PROXY"]"#,
        r#"["*"]"#,
        r#"["*_PATH", "NODE_OPTIONS"]"#,
        r#"["*", "LD_LIBRARY_PATH"]"#,
    ]);
    let sysctl = prop::sample::select(vec![r#"["net.*"]"#, r#"["net.ipv4.*"]"#, r#"["*"]"#]);
    let unified = prop::sample::select(vec![r#"["memory.*"]"#, r#"["*"]"#]);
    let devices = prop::sample::select(vec![
        r#"{ path = ["/dev/*"], types = ["c"], major = [1], minor = [3, 5] }"#,
        r#"{ path = ["/dev/nri-*", "/dev/x*"], types = ["b"], major = [1], minor = [0, 1, 2, 3, 4, 5], max-file-mode = 0o777, uid = [0, 1000] }, { path = ["/dev/x*"], types = ["c"], major = [0, 1, 2], minor = [3] }"#,
    ]);
    let rules = prop::sample::select(vec![
        r#"{ types = ["c"], major = [1], minor = [3], access = "rw" }"#,
        r#"{ types = ["c"], major = [-1], minor = [-1, 0, 1, 2], access = "rwm", deny = true }, { types = ["b"], major = [-1, 0, 1], minor = [-1], access = "rwm" }, { types = ["a"], major = [], minor = [], access = "rwm", deny = true }"#,
    ]);
    let namespaces = prop::sample::select(vec![
        r#"{ types = ["network"] }"#,
        r#"{ types = ["network", "ipc"], paths = ["/var/run/netns/*"] }"#,
        r#"{ types = ["pid"], host = true }"#,
    ]);
    let scheduler = prop::sample::select(vec![
        r#"{ policies = ["other", "batch", "idle"], nice = [0, 19] }"#,
        r#"{ policies = ["fifo", "rr", "other"], priority = [1, 10], flags = ["reset-on-fork"] }"#,
        r#"{ policies = ["deadline", "batch"], nice = [-20, 19], runtime = [0, 100000] }"#,
    ]);
    let hooks = prop::sample::select(vec![
        r#"{ path = ["/usr/local/bin/*"] }"#,
        r#"{ path = ["/usr/local/bin/audit"], max-timeout = 10 }"#,
    ]);
    let families = (mounts, env, sysctl, unified, devices, rules, namespaces);
    (families, scheduler, hooks).prop_map(
        |((mounts, env, sysctl, unified, devices, rules, namespaces), scheduler, hooks)| {
            let text = format!(
                "mounts = [{mounts}]\nenv = {env}\nsysctl = {sysctl}\nunified = {unified}\n\
                 devices = [{devices}]\ndevice-rules = [{rules}]\nnamespaces = [{namespaces}]\n\
                 scheduler = {scheduler}\nhooks = [{hooks}]\n"
            );
            toml::from_str(&text).expect("the grant parses")
        },
    )
}

fn own_container() -> Targets<'static> {
    Targets {
        own: Some("c1"),
        pod_id: Some("p1"),
        visible_pod_of: &|id| (id == "c1").then(|| "p1".to_string()),
        user_namespace: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8192))]

    /// An adjustment of a container being created.
    #[test]
    fn an_admitted_adjustment_is_within_its_grant_in_runc_and_crun(grants in grants(), adjust in adjustment()) {
        let refusals = check_answer(&grants, Some(&adjust), &[], &[], &own_container());
        if refusals.is_empty() {
            prop_assert!(adjustment_within(&grants, &adjust), "admitted beyond the grant: {adjust:?}");
        }
    }

    /// The resources of an update, as UpdateContainer, StopContainer and
    /// Synchronize answers carry them.
    #[test]
    fn admitted_updated_resources_are_within_their_grant(grants in grants(), resources in resources()) {
        let update = ContainerUpdate {
            container_id: "c1".into(),
            linux: Some(LinuxContainerUpdate {
                resources: Some(resources.clone()).into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        let refusals = check_answer(&grants, None, &[update], &[], &own_container());
        if refusals.is_empty() {
            prop_assert!(resources_within(&grants, &resources), "admitted beyond the grant: {resources:?}");
        }
    }
}

/// The property judges something: in every family, some of the
/// adversarial answers are admitted.
#[test]
fn adversarial_answers_of_every_family_are_admitted_too() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let mut runner = TestRunner::deterministic();
    let (grants, adjustment) = (grants(), adjustment());
    let mut admitted = std::collections::BTreeMap::new();
    for _ in 0..4000 {
        let g = grants.new_tree(&mut runner).unwrap().current();
        let a = adjustment.new_tree(&mut runner).unwrap().current();
        if check_answer(&g, Some(&a), &[], &[], &own_container()).is_empty() {
            *admitted.entry(family_of(&a)).or_insert(0) += 1;
        }
    }
    for family in [
        "mounts",
        "env",
        "devices",
        "namespaces",
        "sysctl",
        "resources",
        "scheduler",
        "hooks",
    ] {
        let n = admitted.get(family).copied().unwrap_or(0);
        assert!(n >= 10, "{family}: only {n} admitted ({admitted:?})");
    }
}

/// Which family an adjustment of [`adjustment`] sets.
fn family_of(a: &ContainerAdjustment) -> &'static str {
    let linux = a.linux.as_ref();
    match () {
        _ if !a.mounts.is_empty() => "mounts",
        _ if !a.env.is_empty() => "env",
        _ if a.hooks.is_some() => "hooks",
        _ if linux.is_some_and(|l| l.scheduler.is_some()) => "scheduler",
        _ if linux.is_some_and(|l| !l.devices.is_empty()) => "devices",
        _ if linux.is_some_and(|l| !l.namespaces.is_empty()) => "namespaces",
        _ if linux.is_some_and(|l| !l.sysctl.is_empty()) => "sysctl",
        _ => "resources",
    }
}

#[test]
fn the_model_sees_what_the_runtimes_do() {
    let g: Grants = toml::from_str(
        r#"mounts = [{ destination = ["/data"], source = ["/srv/data/*"], types = ["bind"] }]
        env = ["*_PROXY"]
        sysctl = ["net.*"]"#,
    )
    .unwrap();
    let bind = |source: &str, options: &[&str]| Mount {
        destination: "/data".into(),
        source: source.into(),
        type_: "bind".into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    };
    assert!(mount_within(&g, &bind("/srv/data/x", &["rbind", "rro"])));
    assert!(!mount_within(&g, &bind("/srv/data/x", &["rbind", "ro"])));
    assert!(!mount_within(
        &g,
        &bind("/srv/data/x", &["bind", "ro", "rw"])
    ));
    assert!(!mount_within(
        &g,
        &bind("/srv/data/../../etc", &["bind", "ro"])
    ));
    assert!(mount_within(
        &g,
        &bind("/srv/data/x", &["bind", "rw", "ro"])
    ));
    let env = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    };
    assert!(!env_within(&g, &env("LD_PRELOAD=/x.so:NO_PROXY", "1")));
    let paths: Grants = toml::from_str(
        r#"env = ["*_PATH", "LD_LIBRARY_PATH"]
        unified = ["memory.*"]"#,
    )
    .unwrap();
    assert!(env_within(&paths, &env("CONFIG_PATH", "/x")));
    assert!(env_within(&paths, &env("LD_LIBRARY_PATH", "/x")));
    assert!(!env_within(&paths, &env("GCONV_PATH", "/x")));
    assert!(unified_within(&paths, "memory.high"));
    assert!(!unified_within(&paths, "memory.max"));
    // crun opens a key with a leading '/' on the host; runc turns every
    // '.' into '/', so '..' never climbs out of /proc/sys/net.
    assert!(!sysctl_within(&g, "/net/probe"));
    assert!(sysctl_within(&g, "net/../kernel/core_pattern"));
    assert!(sysctl_within(&g, "net.ipv4.ip_forward"));
}
