//! Suggestions against the check: fed back as the configuration, a
//! suggestion lets every observed answer through and refuses an answer
//! that asks one field more; it never holds `*` alone, a hook or device no
//! answer asked for, or a read grant the plugin did not declare.

use nri_proto::api::{
    ContainerAdjustment, ContainerEviction, ContainerUpdate, Hook, KeyValue,
    LinuxContainerAdjustment, LinuxContainerUpdate, LinuxDevice, LinuxDeviceCgroup, LinuxNamespace,
    LinuxResources, Mount, OptionalInt, OptionalInt64, OptionalUInt64, POSIXRlimit,
};
use proptest::prelude::*;
use protobuf::MessageField;

use super::{
    check_answer,
    suggest::{Observed, Suggestion},
    ReadGrants, Targets, UpdateScope,
};
use crate::config::Config;

/// One change an answer may ask for, each of a known, well-formed shape.
#[derive(Clone, Debug)]
enum Change {
    Env(usize),
    Annotation(usize),
    Bind(usize, usize),
    Tmpfs(usize),
    Device(usize),
    Shares(u64),
    MemoryLimit(i64),
    OomScore(i64),
    Rlimit(u64),
    Hook(usize, bool),
    Netns(usize),
    Sysctl(usize),
    Unified(usize),
    UpdateShares(bool, u64),
    Evict,
    RemoveMount(usize),
    RemoveDevice(usize),
    DeviceRule(bool, i64),
    HostNetwork,
}

const ENV: [&str; 4] = ["TEAM", "REGION", "APP_ID", "LOG_LEVEL"];
const ANNOTATIONS: [&str; 10] = [
    "example.com/a",
    "example.com/b",
    "example.com/c",
    "example.com/d",
    "example.com/e",
    "example.com/f",
    "example.com/g",
    "example.com/h",
    "example.com/i",
    "team.io/owner",
];
const BIND_OPTIONS: [&[&str]; 4] = [
    &["rbind", "rro"],
    &["bind", "ro"],
    &["rbind"],
    &["bind", "ro", "nosuid"],
];
const SYSCTL: [&str; 2] = ["net.core.somaxconn", "net.ipv4.tcp_keepalive_time"];
const UNIFIED: [&str; 2] = ["memory.high", "memory.swap.high"];

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..ENV.len()).prop_map(Change::Env),
        (0..ANNOTATIONS.len()).prop_map(Change::Annotation),
        (0..3usize, 0..BIND_OPTIONS.len()).prop_map(|(d, o)| Change::Bind(d, o)),
        (0..2usize).prop_map(Change::Tmpfs),
        (0..3usize).prop_map(Change::Device),
        (2..4096u64).prop_map(Change::Shares),
        (1i64 << 20..1i64 << 34).prop_map(Change::MemoryLimit),
        (-1000..=1000i64).prop_map(Change::OomScore),
        (1024..1_048_576u64).prop_map(Change::Rlimit),
        (0..2usize, any::<bool>()).prop_map(|(p, t)| Change::Hook(p, t)),
        (0..3usize).prop_map(Change::Netns),
        (0..SYSCTL.len()).prop_map(Change::Sysctl),
        (0..UNIFIED.len()).prop_map(Change::Unified),
        (any::<bool>(), 2..1024u64).prop_map(|(same, s)| Change::UpdateShares(same, s)),
        Just(Change::Evict),
        (0..2usize).prop_map(Change::RemoveMount),
        (3..5usize).prop_map(Change::RemoveDevice),
        (any::<bool>(), 200..203i64).prop_map(|(allow, minor)| Change::DeviceRule(allow, minor)),
        Just(Change::HostNetwork),
    ]
}

/// An answer: its adjustment, updates, evictions.
#[derive(Clone, Debug, Default)]
struct Answer {
    adjust: ContainerAdjustment,
    updates: Vec<ContainerUpdate>,
    evictions: Vec<ContainerEviction>,
}

impl Answer {
    fn linux(&mut self) -> &mut LinuxContainerAdjustment {
        self.adjust.linux.mut_or_insert_default()
    }

    fn resources(&mut self) -> &mut LinuxResources {
        self.linux().resources.mut_or_insert_default()
    }

    fn apply(&mut self, change: &Change) {
        match *change {
            Change::Env(i) => self.adjust.env.push(KeyValue {
                key: ENV[i].into(),
                value: "v".into(),
                ..Default::default()
            }),
            Change::Annotation(i) => {
                self.adjust
                    .annotations
                    .insert(ANNOTATIONS[i].into(), "v".into());
            }
            Change::Bind(d, o) => self.adjust.mounts.push(Mount {
                destination: format!("/data/{d}"),
                source: format!("/srv/{d}"),
                type_: "bind".into(),
                options: BIND_OPTIONS[o].iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            Change::Tmpfs(d) => self.adjust.mounts.push(Mount {
                destination: format!("/scratch/{d}"),
                source: "tmpfs".into(),
                type_: "tmpfs".into(),
                options: vec!["nosuid".into(), "size=64m".into()],
                ..Default::default()
            }),
            Change::RemoveMount(d) => self.adjust.mounts.push(Mount {
                destination: format!("-/cache/{d}"),
                ..Default::default()
            }),
            Change::Device(i) => {
                let device = LinuxDevice {
                    path: format!("/dev/nri-{i}"),
                    type_: "c".into(),
                    major: 240,
                    minor: i as i64,
                    ..Default::default()
                };
                self.linux().devices.push(device);
            }
            Change::Shares(s) => {
                self.resources().cpu.mut_or_insert_default().shares = uint(s);
            }
            Change::MemoryLimit(l) => {
                self.resources().memory.mut_or_insert_default().limit = int64(l);
            }
            Change::OomScore(v) => {
                self.linux().oom_score_adj = MessageField::some(OptionalInt {
                    value: v,
                    ..Default::default()
                });
            }
            Change::Rlimit(hard) => self.adjust.rlimits.push(POSIXRlimit {
                type_: "RLIMIT_NOFILE".into(),
                hard,
                soft: hard / 2,
                ..Default::default()
            }),
            Change::Hook(p, timeout) => {
                let path = format!("/usr/local/bin/hook-{p}");
                let hook = Hook {
                    args: vec![path.clone(), "--prepare".into()],
                    env: vec![format!("HOOK_{p}=1")],
                    path,
                    timeout: match timeout {
                        true => MessageField::some(OptionalInt {
                            value: 5,
                            ..Default::default()
                        }),
                        false => MessageField::none(),
                    },
                    ..Default::default()
                };
                self.adjust
                    .hooks
                    .mut_or_insert_default()
                    .create_runtime
                    .push(hook);
            }
            Change::Netns(i) => {
                let path = match i {
                    0 => String::new(),
                    i => format!("/var/run/netns/n{i}"),
                };
                self.linux().namespaces.push(LinuxNamespace {
                    type_: "network".into(),
                    path,
                    ..Default::default()
                });
            }
            Change::Sysctl(i) => {
                self.linux().sysctl.insert(SYSCTL[i].into(), "1".into());
            }
            Change::Unified(i) => {
                self.resources()
                    .unified
                    .insert(UNIFIED[i].into(), "1".into());
            }
            Change::UpdateShares(same, s) => {
                let id = if same { "c-same" } else { "c-other" };
                let mut resources = LinuxResources::default();
                resources.cpu.mut_or_insert_default().shares = uint(s);
                self.updates.push(ContainerUpdate {
                    container_id: id.into(),
                    linux: MessageField::some(LinuxContainerUpdate {
                        resources: MessageField::some(resources),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            Change::RemoveDevice(i) => self.linux().devices.push(LinuxDevice {
                path: format!("-/dev/nri-{i}"),
                ..Default::default()
            }),
            Change::DeviceRule(allow, minor) => self.resources().devices.push(LinuxDeviceCgroup {
                allow,
                type_: "c".into(),
                major: MessageField::some(OptionalInt64 {
                    value: 10,
                    ..Default::default()
                }),
                minor: int64(minor),
                access: "rw".into(),
                ..Default::default()
            }),
            Change::HostNetwork => self.linux().namespaces.push(LinuxNamespace {
                type_: "-network".into(),
                ..Default::default()
            }),
            Change::Evict => self.evictions.push(ContainerEviction {
                container_id: "c-same".into(),
                reason: "rebalance".into(),
                ..Default::default()
            }),
        }
    }

    fn of(changes: &[Change]) -> Self {
        let mut answer = Answer::default();
        for change in changes {
            answer.apply(change);
        }
        answer
    }

    /// Which containers its updates reach, as the dispatcher tells it.
    fn scope(&self) -> UpdateScope {
        self.updates
            .iter()
            .map(|u| match u.container_id.as_str() {
                "c-same" => UpdateScope::SamePod,
                _ => UpdateScope::Any,
            })
            .max()
            .unwrap_or(UpdateScope::None)
    }

    fn observed(&self) -> Observed<'_> {
        Observed {
            adjust: Some(&self.adjust),
            updates: &self.updates,
            evictions: &self.evictions,
            scope: self.scope(),
            unseen: &[],
            validated: false,
            rejection: None,
        }
    }
}

fn uint(value: u64) -> MessageField<OptionalUInt64> {
    MessageField::some(OptionalUInt64 {
        value,
        ..Default::default()
    })
}

fn int64(value: i64) -> MessageField<OptionalInt64> {
    MessageField::some(OptionalInt64 {
        value,
        ..Default::default()
    })
}

fn targets() -> Targets<'static> {
    Targets {
        own: None,
        pod_id: Some("pod"),
        visible_pod_of: &|id| match id {
            "c-same" => Some("pod".into()),
            "c-other" => Some("other".into()),
            _ => None,
        },
        user_namespace: false,
    }
}

/// The suggestion of `answers`, fed back through the configuration file
/// as an operator would paste it.
fn suggested(answers: &[Answer]) -> (Suggestion, super::Grants) {
    let mut suggestion = Suggestion::default();
    for answer in answers {
        suggestion.observe(answer.observed());
    }
    let text = suggestion.render("shadowed", None);
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let grants = config.guest("shadowed").grants;
    assert_eq!(grants, suggestion.grants(), "{text}");
    (suggestion, grants)
}

fn refusals(grants: &super::Grants, answer: &Answer) -> Vec<super::Refusal> {
    check_answer(
        grants,
        Some(&answer.adjust),
        &answer.updates,
        &answer.evictions,
        &targets(),
    )
}

/// Changes outside anything the answers can ask for: a key, path or
/// bound none of them has, or a family they never touch.
fn extras(answers: &[Answer]) -> Vec<(&'static str, Answer)> {
    let shares = |r: &LinuxResources| r.cpu.shares.as_ref().map(|s| s.value);
    let max_shares = answers
        .iter()
        .flat_map(|a| {
            let own = a.adjust.linux.resources.as_ref().and_then(shares);
            let updates = a
                .updates
                .iter()
                .filter_map(|u| u.linux.resources.as_ref().and_then(shares));
            own.into_iter().chain(updates).collect::<Vec<_>>()
        })
        .max()
        .unwrap_or(0);
    let mut list = Vec::new();
    let mut add = |what, f: &dyn Fn(&mut Answer)| {
        let mut answer = Answer::default();
        f(&mut answer);
        list.push((what, answer));
    };
    add("unseen env key", &|a| {
        a.adjust.env.push(KeyValue {
            key: "UNSEEN".into(),
            ..Default::default()
        })
    });
    add("unseen annotation", &|a| {
        a.adjust
            .annotations
            .insert("unseen.example.org/key".into(), "v".into());
    });
    add("unseen mount", &|a| {
        a.adjust.mounts.push(Mount {
            destination: "/unseen".into(),
            source: "/srv/0".into(),
            type_: "bind".into(),
            options: vec!["rbind".into(), "rro".into()],
            ..Default::default()
        })
    });
    add("unseen device", &|a| {
        a.linux().devices.push(LinuxDevice {
            path: "/dev/nri-0".into(),
            type_: "c".into(),
            major: 1,
            minor: 3,
            ..Default::default()
        })
    });
    add("more shares", &|a| a.apply(&Change::Shares(max_shares + 1)));
    add("a swap limit", &|a| {
        a.resources().memory.mut_or_insert_default().swap = int64(1 << 30);
    });
    add("args", &|a| a.adjust.args = vec!["sh".into()]);
    add("seccomp", &|a| {
        a.linux().seccomp_policy.mut_or_insert_default();
    });
    add("unseen hook", &|a| {
        a.adjust.hooks.mut_or_insert_default().prestart.push(Hook {
            path: "/usr/local/bin/hook-0".into(),
            ..Default::default()
        })
    });
    add("a pid namespace", &|a| {
        a.linux().namespaces.push(LinuxNamespace {
            type_: "pid".into(),
            ..Default::default()
        })
    });
    add("an unseen sysctl", &|a| {
        a.linux().sysctl.insert("kernel.msgmax".into(), "1".into());
    });
    add("another annotation under the prefix", &|a| {
        a.adjust
            .annotations
            .insert("example.com/zzz".into(), "v".into());
    });
    add("an unseen device rule", &|a| {
        a.apply(&Change::DeviceRule(true, 250))
    });
    add("a device rule with more access", &|a| {
        a.apply(&Change::DeviceRule(true, 200));
        a.resources().devices[0].access = "rwm".into();
    });
    add("a hook given an unseen env entry", &|a| {
        a.apply(&Change::Hook(0, true));
        let hook = &mut a.adjust.hooks.mut_or_insert_default().create_runtime[0];
        hook.env = vec!["LD_PRELOAD=/tmp/x.so".into()];
    });
    add("a namespace joined at an unseen path", &|a| {
        a.linux().namespaces.push(LinuxNamespace {
            type_: "network".into(),
            path: "/var/run/netns/unseen".into(),
            ..Default::default()
        })
    });
    add("the node's ipc namespace", &|a| {
        a.linux().namespaces.push(LinuxNamespace {
            type_: "-ipc".into(),
            ..Default::default()
        })
    });
    add("a device it only removed", &|a| {
        a.linux().devices.push(LinuxDevice {
            path: "/dev/nri-3".into(),
            type_: "c".into(),
            major: 240,
            minor: 3,
            ..Default::default()
        })
    });
    add("a tmpfs where it only removed a mount", &|a| {
        a.adjust.mounts.push(Mount {
            destination: "/cache/0".into(),
            source: "tmpfs".into(),
            type_: "tmpfs".into(),
            ..Default::default()
        })
    });
    list
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_suggestion_admits_what_it_saw_and_no_field_more(
        answers in prop::collection::vec(prop::collection::vec(change(), 0..6), 1..8)
    ) {
        let answers: Vec<Answer> = answers.iter().map(|c| Answer::of(c)).collect();
        let (suggestion, grants) = suggested(&answers);
        prop_assert_eq!(suggestion.notes().len(), 0);
        for answer in &answers {
            let refused = refusals(&grants, answer);
            prop_assert!(refused.is_empty(), "{:?}\n{}", refused, suggestion.render("x", None));
        }
        let prefixed = grants.annotations.sources().iter().any(|p| p.ends_with('*'));
        for (what, extra) in extras(&answers) {
            if prefixed && what == "another annotation under the prefix" {
                continue;
            }
            prop_assert!(
                !refusals(&grants, &extra).is_empty(),
                "{} was admitted by\n{}", what, suggestion.render("x", None)
            );
        }
        prop_assert!(never_wider(&grants, &answers));
    }
}

/// No `*` alone, no hook or device path that no answer had.
fn never_wider(grants: &super::Grants, answers: &[Answer]) -> bool {
    let patterns = [
        &grants.env,
        &grants.annotations,
        &grants.sysctl,
        &grants.unified,
    ];
    let star = patterns
        .iter()
        .any(|p| p.sources().iter().any(|s| s == "*"));
    let hooks_seen = |path: &str| {
        answers.iter().any(|a| {
            a.adjust
                .hooks
                .as_ref()
                .is_some_and(|h| h.create_runtime.iter().any(|hook| hook.path == path))
        })
    };
    let devices_seen = |path: &str| {
        answers.iter().any(|a| {
            a.adjust.linux.as_ref().is_some_and(|l| {
                l.devices
                    .iter()
                    .any(|d| d.path.trim_start_matches('-') == path)
            })
        })
    };
    !star
        && grants
            .hooks
            .iter()
            .all(|h| h.path.sources().iter().all(|p| hooks_seen(p)))
        && grants
            .devices
            .iter()
            .all(|d| d.path.sources().iter().all(|p| devices_seen(p)))
}

#[test]
fn many_keys_under_one_prefix_become_its_pattern_and_few_stay_exact() {
    let answers: Vec<Answer> = (0..9)
        .map(|i| Answer::of(&[Change::Annotation(i)]))
        .collect();
    let (_, grants) = suggested(&answers);
    assert_eq!(grants.annotations.sources(), ["example.com/*"]);
    let (_, grants) = suggested(&answers[..3]);
    assert_eq!(
        grants.annotations.sources(),
        ["example.com/a", "example.com/b", "example.com/c"]
    );
}

#[test]
fn instruction_keys_are_suggested_by_name_beside_a_prefix() {
    let mut suggestion = Suggestion::default();
    let keys = (0..9)
        .map(|i| format!("example.com/k{i}"))
        .chain((0..9).map(|i| format!("run.oci.k{i}")));
    for key in keys {
        let mut answer = Answer::default();
        answer.adjust.annotations.insert(key, "v".into());
        suggestion.observe(answer.observed());
    }
    let grants = suggestion.grants();
    let sources = grants.annotations.sources();
    assert_eq!(sources.len(), 10, "{sources:?}");
    assert!(sources.contains(&"example.com/*".to_string()));
    assert!(sources.contains(&"run.oci.k8".to_string()));
}

#[test]
fn what_no_grant_admits_exactly_is_noted_not_granted() {
    let mut answer = Answer::default();
    answer.adjust.env.push(KeyValue {
        key: "A*".into(),
        ..Default::default()
    });
    answer.adjust.mounts.push(Mount {
        destination: "/data/../etc".into(),
        source: "/srv".into(),
        type_: "bind".into(),
        options: vec!["rbind".into()],
        ..Default::default()
    });
    let mut suggestion = Suggestion::default();
    suggestion.observe(answer.observed());
    assert_eq!(suggestion.grants(), super::Grants::default());
    assert_eq!(suggestion.notes().len(), 2);
}

#[test]
fn read_grants_come_from_the_declaration_only() {
    let suggestion = Suggestion::default();
    let text = suggestion.render("p", None);
    assert!(!text.contains("read = "), "{text}");
    let declared: ReadGrants = toml::from_str(r#"labels = ["team"]"#).unwrap();
    let text = suggestion.render("p", Some(&declared));
    assert!(text.contains(r#"read = { labels = ["team"] }"#), "{text}");
    let config = Config::parse(&text).unwrap();
    assert_eq!(config.guest("p").read, declared);
}

#[test]
fn a_guest_cannot_write_into_the_section_it_is_suggested() {
    let mut answer = Answer::default();
    answer.adjust.rlimits.push(POSIXRlimit {
        type_: "A = 1 }\nhooks = [{ path = [\"/tmp/x\"] }]\n#".into(),
        hard: 1,
        ..Default::default()
    });
    answer.adjust.env.push(KeyValue {
        key: "QUOTE\"D\nKEY".into(),
        ..Default::default()
    });
    let mut suggestion = Suggestion::default();
    suggestion.observe(answer.observed());
    let text = suggestion.render("p", None);
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let grants = config.guest("p").grants;
    assert!(
        grants.hooks.is_empty() && grants.rlimits.is_empty(),
        "{text}"
    );
    assert_eq!(grants, suggestion.grants(), "{text}");
    assert!(text.lines().all(|l| !l.starts_with("hooks")), "{text}");
}

#[test]
fn numbers_a_configuration_cannot_hold_are_noted_and_the_rest_still_suggested() {
    let mut answer = Answer::of(&[Change::Env(0)]);
    answer.adjust.rlimits.push(POSIXRlimit {
        type_: "RLIMIT_NOFILE".into(),
        hard: u64::MAX,
        soft: u64::MAX,
        ..Default::default()
    });
    answer.apply(&Change::Shares(u64::MAX));
    let (suggestion, grants) = suggested(&[answer]);
    assert_eq!(grants.env.sources(), ["TEAM"]);
    assert!(grants.rlimits.is_empty() && grants.cpu.shares.is_none());
    assert_eq!(suggestion.notes().len(), 2, "{:?}", suggestion.notes());
}

#[test]
fn only_a_validator_seen_rejecting_is_suggested_validate_and_one_that_only_accepted_is_told() {
    let answer = Answer::default();
    let validation = |rejection| Observed {
        validated: true,
        rejection,
        ..answer.observed()
    };
    let mut accepting = Suggestion::default();
    accepting.observe(validation(None));
    assert!(!accepting.grants().validate);
    assert!(
        accepting.notes()[0].contains("rejected none"),
        "{:?}",
        accepting.notes()
    );
    let mut rejecting = Suggestion::default();
    rejecting.observe(validation(None));
    rejecting.observe(validation(Some("no /etc mounts")));
    assert!(rejecting.grants().validate);
    assert!(rejecting.notes().is_empty());
}

#[test]
fn nothing_is_suggested_of_updates_and_evictions_no_grant_admits() {
    // An update of a container the guest may not see, and an eviction of
    // one: noted; neither widens the resource bounds or grants evictions.
    let mut answer = Answer::of(&[Change::UpdateShares(false, 5), Change::Evict]);
    answer.updates[0].container_id = "c-gone".into();
    answer.evictions[0].container_id = "c-gone".into();
    let unseen = ["c-gone".to_string()];
    let observed = Observed {
        scope: UpdateScope::None,
        unseen: &unseen,
        ..answer.observed()
    };
    let mut suggestion = Suggestion::default();
    suggestion.observe(observed);
    assert_eq!(suggestion.grants(), super::Grants::default());
    assert_eq!(suggestion.notes().len(), 1, "{:?}", suggestion.notes());
}
