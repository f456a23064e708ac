//! Issue #16, "Grants must mean what the runtime will do": a hostile guest
//! (`tests/guests/attacker`, whose every answer is its configuration) tries
//! each way found around the grants. Every attack runs through
//! `nri-wasm test`, and all of them at once through the real daemon
//! against the simulator, each attacker scoped to a pod of its own beside
//! a benign guest that changes every container: none may change what the
//! runtime does, each is refused or fails as the guest's own failure, the
//! benign guest's changes always apply, and the host stays registered.

use std::{process::Command, time::Duration};

use nri_proto::api::{Container, PodSandbox};
use nri_sim::{SimConfig, SimError, Simulator};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    daemon::Daemon,
    guests::{compile_cache, plugin_dir},
    harness::{container, memory, HOST_ID},
    status::get,
};

/// The event an attack answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Create,
    Update,
    Stop,
    Synchronize,
    Validate,
}

/// What must become of the attack: refused for a grant family, a failure
/// of the guest of some kind (a metric's `kind`), or, for a validator
/// without the `validate` grant, not being asked at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Refused(&'static str),
    Failed(&'static str),
    NotAsked,
}

struct Attack {
    /// What the attack tries, as a test name.
    name: &'static str,
    at: At,
    /// The attacker's grants (inside `grants = { ... }`).
    grants: &'static str,
    /// The attacker's configuration: its answer.
    answer: Value,
    expect: Expect,
    /// Its deadline.
    deadline: &'static str,
    /// Its failure policy.
    policy: &'static str,
}

/// The container every attack at Synchronize, UpdateContainer and
/// StopContainer tries to reach beyond its scope.
const VICTIM: &str = "victims-app";

fn attack(
    name: &'static str,
    at: At,
    grants: &'static str,
    answer: Value,
    expect: Expect,
) -> Attack {
    Attack {
        name,
        at,
        grants,
        answer,
        expect,
        deadline: "50ms",
        policy: "fail-open",
    }
}

fn bind(destination: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": destination, "source": source, "type": "bind", "options": options})
}

const DATA_MOUNTS: &str = r#"mounts = [{ destination = ["/data", "/data/*"], source = ["/srv/data/*"], types = ["bind"] }]"#;
const AUDIT_HOOK: &str = r#"hooks = [{ path = ["/usr/local/bin/*"], stages = ["createRuntime"], args = ["audit-hook", "--record"] }]"#;
/// A memory-QoS plugin's grants: bounded limits, `memory.high`-like keys.
const MEMORY_QOS: &str = r#"memory = { limit = [67108864, 1073741824] }, unified = ["memory.*"]"#;
const NULL_DEVICE: &str = r#"devices = [{ path = ["/dev/nri-*"], types = ["c"], major = [1], minor = [3], max-file-mode = 0o600 }], device-rules = [{ types = ["c"], major = [1], minor = [3], access = "rw" }]"#;

/// Every attack of issue #16, item by item.
fn attacks() -> Vec<Attack> {
    use At::*;
    use Expect::*;
    let huge = |text: &str, times: usize| json!({"repeat": text, "times": times});
    vec![
        // 1. Synchronize answers are admitted like any other.
        attack(
            "synchronize_updates_a_container_without_grants",
            Synchronize,
            "",
            json!({"sync": [{"container_id": "SELF", "memory_limit": 1, "pids": 1, "unified": [["memory.max", "1"]], "all_devices": true}]}),
            Refused("updates"),
        ),
        attack(
            "synchronize_updates_a_container_outside_its_scope",
            Synchronize,
            r#"updates = "any", memory = { limit = [1, 1073741824] }"#,
            json!({"sync": [{"container_id": VICTIM, "memory_limit": 1}]}),
            Refused("updates"),
        ),
        attack(
            "synchronize_updates_a_container_it_makes_up",
            Synchronize,
            r#"updates = "any", memory = { limit = [1, 1073741824] }"#,
            json!({"sync": [{"container_id": "made-up", "memory_limit": 1}]}),
            Refused("updates"),
        ),
        Attack {
            deadline: "500ms",
            ..attack(
                "synchronize_answer_beyond_the_answer_cap",
                Synchronize,
                r#"updates = "any", pids = [1, 100]"#,
                json!({"sync": [{"container_id": "SELF", "pids": 1, "copies": 70_000}]}),
                Failed("answer_too_large"),
            )
        },
        // A guest failing at Synchronize, under fail-closed, keeps no one
        // from registering: it starts afresh at its next event.
        Attack {
            policy: "fail-closed",
            ..attack(
                "a_fail_closed_guest_failing_synchronize_keeps_the_host_registered",
                Synchronize,
                "",
                json!({"at": ["synchronize"], "error": "no"}),
                Failed("guest_error"),
            )
        },
        // 2. One guest's bad answer is that guest's failure.
        attack(
            "an_update_of_the_container_being_created_fails_only_its_guest",
            Create,
            r#"memory = { limit = [1, 1073741824] }"#,
            json!({"updates": [{"container_id": "NEW", "memory_limit": 1}]}),
            Refused("updates"),
        ),
        // 3. Every call ends at its deadline, whatever it imports.
        attack(
            "a_wasi_timer_of_3_s_is_cut_at_the_deadline",
            Create,
            "",
            json!({"sleep_ms": 3000, "at": ["create"]}),
            Failed("timeout"),
        ),
        attack(
            "a_wasi_timer_without_end_is_cut_at_the_deadline",
            Create,
            "",
            json!({"sleep_ms": 1_000_000_000_000u64, "at": ["create", "synchronize"]}),
            Failed("timeout"),
        ),
        // 4. Mounts are what runc will mount.
        attack(
            "a_mount_source_with_dotdot_binds_the_host_root",
            Create,
            DATA_MOUNTS,
            json!({"create": {"mounts": [bind("/data", "/srv/data/../../", &["rbind", "rro"])]}}),
            Refused("mounts"),
        ),
        attack(
            "a_mount_destination_with_dotdot_lands_elsewhere",
            Create,
            DATA_MOUNTS,
            json!({"create": {"mounts": [bind("/data/../etc", "/srv/data/x", &["rbind", "rro"])]}}),
            Refused("mounts"),
        ),
        attack(
            "a_mount_with_ro_then_rw_is_writable",
            Create,
            DATA_MOUNTS,
            json!({"create": {"mounts": [bind("/data", "/srv/data/x", &["rbind", "rro", "ro", "rw"])]}}),
            Refused("mounts"),
        ),
        attack(
            "ro_on_an_rbind_leaves_its_submounts_writable",
            Create,
            DATA_MOUNTS,
            json!({"create": {"mounts": [bind("/data", "/srv/data/x", &["rbind", "ro"])]}}),
            Refused("mounts"),
        ),
        attack(
            "a_tmpfs_whose_options_say_rbind_binds_its_source",
            Create,
            r#"mounts = [{ destination = ["/data"], types = ["tmpfs"], read-write = true }]"#,
            json!({"create": {"mounts": [{"destination": "/data", "source": "/etc", "type": "tmpfs", "options": ["rbind"]}]}}),
            Refused("mounts"),
        ),
        attack(
            "overlay_options_name_host_directories",
            Create,
            r#"mounts = [{ destination = ["/data"], source = ["/srv/data/*"], types = ["overlay"], read-write = true }]"#,
            json!({"create": {"mounts": [{"destination": "/data", "source": "overlay", "type": "overlay",
                "options": ["lowerdir=/etc", "upperdir=/srv/data/u", "workdir=/srv/data/w"]}]}}),
            Refused("mounts"),
        ),
        attack(
            "a_comma_inside_an_overlay_option_injects_options",
            Create,
            r#"mounts = [{ destination = ["/data"], source = ["/srv/data/*"], types = ["overlay"], read-write = true }]"#,
            json!({"create": {"mounts": [{"destination": "/data", "source": "overlay", "type": "overlay",
                "options": ["lowerdir=/srv/data/l,upperdir=/etc,workdir=/srv/data/w"]}]}}),
            Refused("mounts"),
        ),
        // 5. Hooks: paths, stages, arguments, environment.
        attack(
            "a_hook_path_with_dotdot_escapes_its_directory",
            Create,
            AUDIT_HOOK,
            json!({"create": {"hooks": [{"stage": "createRuntime", "path": "/usr/local/bin/../../../bin/sh", "args": ["audit-hook", "--record"]}]}}),
            Refused("hooks"),
        ),
        attack(
            "a_hook_with_arguments_beyond_its_grant",
            Create,
            AUDIT_HOOK,
            json!({"create": {"hooks": [{"stage": "createRuntime", "path": "/usr/local/bin/audit-hook", "args": ["sh", "-c", "id"]}]}}),
            Refused("hooks"),
        ),
        attack(
            "a_hook_with_an_environment_beyond_its_grant",
            Create,
            AUDIT_HOOK,
            json!({"create": {"hooks": [{"stage": "createRuntime", "path": "/usr/local/bin/audit-hook", "args": ["audit-hook", "--record"], "env": ["LD_PRELOAD=/tmp/x.so"]}]}}),
            Refused("hooks"),
        ),
        attack(
            "a_hook_at_a_stage_beyond_its_grant",
            Create,
            AUDIT_HOOK,
            json!({"create": {"hooks": [{"stage": "prestart", "path": "/usr/local/bin/audit-hook", "args": ["audit-hook", "--record"]}]}}),
            Refused("hooks"),
        ),
        // Unified keys that typed fields govern: runc writes them last.
        attack(
            "a_unified_memory_max_undoes_the_memory_limit_bounds",
            Create,
            MEMORY_QOS,
            json!({"create": {"unified": [["memory.max", "max"]]}}),
            Refused("unified"),
        ),
        attack(
            "a_unified_swap_max_gives_swap_no_grant_gave",
            Create,
            MEMORY_QOS,
            json!({"create": {"unified": [["memory.swap.max", "max"]]}}),
            Refused("unified"),
        ),
        attack(
            "a_unified_oom_group_undoes_kubelets_group_kill",
            Create,
            MEMORY_QOS,
            json!({"create": {"unified": [["memory.oom.group", "0"]]}}),
            Refused("unified"),
        ),
        // Patterns admit no name a program reads as an instruction.
        attack(
            "an_env_pattern_for_paths_admits_the_loaders_library_path",
            Create,
            r#"env = ["*_PATH"]"#,
            json!({"create": {"env": [["LD_LIBRARY_PATH", "/tmp/lib"]]}}),
            Refused("env"),
        ),
        attack(
            "an_env_pattern_for_paths_admits_glibcs_converter_path",
            Create,
            r#"env = ["*_PATH"]"#,
            json!({"create": {"env": [["GCONV_PATH", "/tmp/gconv"]]}}),
            Refused("env"),
        ),
        attack(
            "an_env_pattern_for_options_admits_node_options",
            Create,
            r#"env = ["*_OPTIONS"]"#,
            json!({"create": {"env": [["NODE_OPTIONS", "--require /tmp/x.js"]]}}),
            Refused("env"),
        ),
        attack(
            "an_annotation_pattern_admits_cruns_hook_stderr_file",
            Create,
            r#"annotations = ["run.*"]"#,
            json!({"create": {"annotations": [["run.oci.hooks.stderr", "/etc/passwd"]]}}),
            Refused("annotations"),
        ),
        attack(
            "an_annotation_pattern_admits_cruns_seccomp_receiver",
            Create,
            r#"annotations = ["run.oci.seccomp.*"]"#,
            json!({"create": {"annotations": [["run.oci.seccomp.receiver", "/run/x.sock"]]}}),
            Refused("annotations"),
        ),
        // A scheduler grant bounds its policies and values.
        attack(
            "a_nice_level_scheduler_grant_admits_sched_fifo_at_99",
            Create,
            r#"scheduler = { policies = ["other", "batch", "idle"], nice = [0, 19] }"#,
            json!({"create": {"scheduler": ["fifo", 0, 99]}}),
            Refused("scheduler"),
        ),
        attack(
            "a_scheduler_priority_runc_refuses_fails_every_container",
            Create,
            r#"scheduler = { policies = ["other", "fifo"], priority = [1, 99] }"#,
            json!({"create": {"scheduler": ["other", 0, 50]}}),
            Refused("scheduler"),
        ),
        // Hook timeouts: runc fails the creation at 0 or less.
        attack(
            "a_hook_timeout_of_zero_under_a_path_only_grant",
            Create,
            AUDIT_HOOK,
            json!({"create": {"hooks": [{"stage": "createRuntime", "path": "/usr/local/bin/audit-hook", "args": ["audit-hook", "--record"], "timeout": 0}]}}),
            Refused("hooks"),
        ),
        attack(
            "a_negative_hook_timeout_under_a_path_only_grant",
            Create,
            AUDIT_HOOK,
            json!({"create": {"hooks": [{"stage": "createRuntime", "path": "/usr/local/bin/audit-hook", "args": ["audit-hook", "--record"], "timeout": -1}]}}),
            Refused("hooks"),
        ),
        // 6. Devices are their type and numbers.
        attack(
            "a_harmless_device_name_opens_dev_mem",
            Create,
            NULL_DEVICE,
            json!({"create": {"devices": [{"path": "/dev/nri-mem", "type": "c", "major": 1, "minor": 1, "file_mode": 0o600}]}}),
            Refused("devices"),
        ),
        attack(
            "a_device_without_a_mode_is_0666",
            Create,
            NULL_DEVICE,
            json!({"create": {"devices": [{"path": "/dev/nri-null", "type": "c", "major": 1, "minor": 3}]}}),
            Refused("devices"),
        ),
        attack(
            "a_device_owned_by_another_user",
            Create,
            NULL_DEVICE,
            json!({"create": {"devices": [{"path": "/dev/nri-null", "type": "c", "major": 1, "minor": 3, "file_mode": 0o600, "uid": 1000}]}}),
            Refused("devices"),
        ),
        attack(
            "a_device_outside_dev",
            Create,
            NULL_DEVICE,
            json!({"create": {"devices": [{"path": "/dev/nri-x/../../etc/shadow", "type": "c", "major": 1, "minor": 3, "file_mode": 0o600}]}}),
            Refused("devices"),
        ),
        attack(
            "a_device_in_a_user_namespace_binds_a_node_file",
            Create,
            r#"devices = [{ path = ["/dev/*"], types = ["c"], major = [1], minor = [3], max-file-mode = 0o600 }], namespaces = [{ types = ["user"] }]"#,
            json!({"create": {"namespaces": [["user", ""]], "devices": [{"path": "/dev/shm/x", "type": "c", "major": 1, "minor": 3, "file_mode": 0o600}]}}),
            Refused("devices"),
        ),
        attack(
            "a_deny_all_device_rule_under_a_grant_for_one_allow_rule",
            Create,
            NULL_DEVICE,
            json!({"create": {"deny_all_devices": true}}),
            Refused("device-rules"),
        ),
        attack(
            "a_device_rule_without_a_type_is_every_device",
            Create,
            NULL_DEVICE,
            json!({"create": {"all_devices": true}}),
            Refused("device-rules"),
        ),
        // 7. Keys are what the runtime will use.
        attack(
            "an_env_key_with_equals_sets_ld_preload",
            Create,
            r#"env = ["*_PROXY"]"#,
            json!({"create": {"env": [["LD_PRELOAD=/tmp/x.so:NO_PROXY", "1"]]}}),
            Refused("env"),
        ),
        attack(
            "an_env_value_with_nul_unsets_a_variable",
            Create,
            r#"env = ["*_PROXY"]"#,
            json!({"create": {"env": [["NO_PROXY", "x\u{0}PATH"]]}}),
            Refused("env"),
        ),
        attack(
            "an_annotation_key_with_equals",
            Create,
            r#"annotations = ["example.com/*"]"#,
            json!({"create": {"annotations": [["example.com/a=run.oci.hooks.stdout", "/etc/passwd"]]}}),
            Refused("annotations"),
        ),
        attack(
            "a_sysctl_key_with_a_leading_slash_writes_a_host_file",
            Create,
            r#"sysctl = ["*"]"#,
            json!({"create": {"sysctl": [["/net/../etc/passwd", "x"]]}}),
            Refused("sysctl"),
        ),
        attack(
            "a_unified_key_that_moves_processes",
            Create,
            r#"unified = ["*"]"#,
            json!({"create": {"unified": [["cgroup.procs", "1"]]}}),
            Refused("unified"),
        ),
        // The host's work on an answer stays small: lists are bounded.
        // Building thirty thousand entries takes the guest tens of
        // milliseconds on a loaded machine: what is tested is the refusal,
        // not its speed.
        Attack {
            deadline: "2s",
            ..attack(
                "thirty_thousand_granted_env_entries",
                Create,
                r#"env = ["APP_*"]"#,
                json!({"create": {"env_many": 30_000}}),
                Refused("env"),
            )
        },
        // 8. Namespaces are new ones unless a path is granted.
        attack(
            "a_namespace_path_joins_the_host_network",
            Create,
            r#"namespaces = [{ types = ["network"] }]"#,
            json!({"create": {"namespaces": [["network", "/proc/1/ns/net"]]}}),
            Refused("namespaces"),
        ),
        attack(
            "a_removed_namespace_shares_the_nodes",
            Create,
            r#"namespaces = [{ types = ["network"] }]"#,
            json!({"create": {"namespaces": [["-network", ""]]}}),
            Refused("namespaces"),
        ),
        // 9. Guest text is capped and escaped wherever it goes.
        attack(
            "an_error_of_4_mib_with_forged_lines",
            Create,
            "",
            json!({"at": ["create"], "error": huge("x\n2026-01-01T00:00:00Z ERROR forged\n", 120_000),
                   "log": "line\nWARN forged log line"}),
            Failed("guest_error"),
        ),
        Attack {
            policy: "fail-closed",
            ..attack(
                "a_fail_closed_error_of_4_mib_reaches_the_runtime_short",
                Create,
                "",
                json!({"at": ["create"], "error": huge("x\nforged\n", 500_000)}),
                Failed("guest_error"),
            )
        },
        attack(
            "guest_text_with_forged_fields",
            Create,
            "",
            json!({"at": ["create"], "error": "x\" guest=10-trusted grant=\"true",
                   "log": "y\" guest=10-trusted \""}),
            Failed("guest_error"),
        ),
        attack(
            "thousands_of_refused_evictions_are_a_few_log_lines",
            Update,
            "",
            json!({"evictions": [VICTIM], "eviction_copies": 17_500}),
            Refused("evictions"),
        ),
        // 9 and 10, for validators granted `validate`, which reject: in
        // a_validators_reason_reaches_the_runtime_short_and_without_hidden_keys.
        // 11. Rejecting is a grant.
        attack(
            "a_validator_without_the_validate_grant_rejects",
            Validate,
            "",
            json!({"reject": "rejected by a guest without the grant"}),
            NotAsked,
        ),
        // Evictions and updates name only containers the guest may see.
        attack(
            "an_eviction_outside_its_scope",
            Update,
            "evictions = true",
            json!({"evictions": [VICTIM]}),
            Refused("evictions"),
        ),
        attack(
            "an_update_outside_its_scope_when_a_container_stops",
            Stop,
            r#"updates = "any", memory = { limit = [1, 1073741824] }"#,
            json!({"updates": [{"container_id": VICTIM, "memory_limit": 1}]}),
            Refused("updates"),
        ),
        attack(
            "an_update_with_every_device_for_its_own_container",
            Update,
            "",
            json!({"updates": [{"container_id": "SELF", "all_devices": true}]}),
            Refused("device-rules"),
        ),
    ]
}

/// The attack's pod: `aNN` in namespace `attack-NN`, with a container
/// `aNN-app` there before nri-wasm registers.
fn pod_of(n: usize) -> PodSandbox {
    PodSandbox {
        id: format!("a{n:02}"),
        name: format!("a{n:02}"),
        uid: format!("a{n:02}-uid"),
        namespace: format!("attack-{n:02}"),
        ..Default::default()
    }
}

/// The attacker's answer for attack `n`, with its own container's ids.
fn answer_of(n: usize, answer: &Value) -> String {
    answer
        .to_string()
        .replace("\"SELF\"", &format!("\"a{n:02}-app\""))
        .replace("\"NEW\"", &format!("\"a{n:02}-new\""))
}

/// The `[plugins.aNN]` section of attack `n`.
fn section(n: usize, attack: &Attack) -> String {
    format!(
        "[plugins.a{n:02}]\nconfig = '''{}'''\ngrants = {{ {} }}\nscope = {{ namespaces = [\"attack-{n:02}\"] }}\ndeadline = \"{}\"\nfailure-policy = \"{}\"\n",
        answer_of(n, &attack.answer),
        attack.grants,
        attack.deadline,
        attack.policy
    )
}

/// A benign guest that changes every container: its changes must apply
/// whatever the attackers do.
const BENIGN: &str = "[plugins.env-injector]\nconfig = \"env NRI_WASM=1\\nannotation example.com/injected-by=env-injector\"\n\
    grants = { env = [\"NRI_WASM\"], annotations = [\"example.com/injected-by\"] }\n";

/// A container as the runtime created it with only the benign guest's
/// changes.
fn assert_only_benign_changes(name: &str, created: &Container) {
    assert_eq!(created.env, ["PATH=/bin", "NRI_WASM=1"], "{name}: env");
    let annotations: Vec<&String> = created.annotations.keys().collect();
    assert_eq!(
        annotations,
        ["example.com/injected-by"],
        "{name}: annotations"
    );
    assert!(
        created.mounts.is_empty(),
        "{name}: mounts {:?}",
        created.mounts
    );
    assert!(
        created.hooks.as_ref().is_none_or(|h| h.prestart.is_empty()
            && h.create_runtime.is_empty()
            && h.create_container.is_empty()
            && h.start_container.is_empty()
            && h.poststart.is_empty()
            && h.poststop.is_empty()),
        "{name}: hooks {:?}",
        created.hooks
    );
    assert!(
        created.linux.as_ref().is_none_or(|l| l.devices.is_empty()
            && l.namespaces.is_empty()
            && l.resources.is_none()),
        "{name}: linux {:?}",
        created.linux
    );
}

fn untouched_resources(name: &str, container: &Container) {
    let resources = container.linux.as_ref().and_then(|l| l.resources.as_ref());
    assert!(
        resources.is_none(),
        "{name}: {} got {resources:?}",
        container.id
    );
}

/// The series of `metric` for `guest` whose labels include `label`, if it
/// counted anything.
fn counted(metrics: &str, metric: &str, guest: &str, label: &str) -> bool {
    metrics.lines().any(|line| {
        line.starts_with(metric)
            && line.contains(&format!("guest=\"{guest}\""))
            && line.contains(label)
            && !line.ends_with(" 0")
    })
}

#[tokio::test]
async fn every_attack_through_the_daemon_changes_nothing_the_runtime_does() {
    let attacks = attacks();
    let plugins = plugin_dir(&["20-env-injector.wasm"], None);
    let attacker = plugins.path().join("attacker.wasm");
    std::fs::copy(
        crate::guests::built().test_guests.join("70-attacker.wasm"),
        &attacker,
    )
    .unwrap();
    let mut config = BENIGN.to_string();
    for (n, attack) in attacks.iter().enumerate() {
        std::fs::copy(
            &attacker,
            plugins.path().join(format!("{}-a{n:02}.wasm", 30 + n)),
        )
        .unwrap();
        config.push_str(&section(n, attack));
    }
    std::fs::remove_file(&attacker).unwrap();
    std::fs::write(plugins.path().join("nri-wasm.toml"), config).unwrap();

    let dir = TempDir::new().unwrap();
    let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
        .await
        .unwrap();
    let victims = PodSandbox {
        id: "victims".into(),
        namespace: "victims".into(),
        ..Default::default()
    };
    let mut pods = vec![victims];
    let mut containers = vec![container("victims", "app")];
    for n in 0..attacks.len() {
        pods.push(pod_of(n));
        containers.push(container(&pod_of(n).id, "app"));
    }
    sim.preload(pods, containers);
    let daemon = Daemon::start(sim.socket(), plugins.path());
    let address = daemon.status_address().await;
    assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(30)).await);

    for (n, attack) in attacks.iter().enumerate() {
        let pod = pod_of(n).id;
        let name = attack.name;
        match attack.at {
            At::Synchronize => {}
            At::Create if attack.policy == "fail-closed" => {
                let failed = sim.create_container(container(&pod, "new")).await;
                let Err(SimError::Plugin { message, .. }) = failed else {
                    panic!("{name}: a fail-closed guest's failure let the creation through");
                };
                assert!(
                    message.len() < 2048 && !message.contains('\n'),
                    "{name}: {message}"
                );
            }
            At::Create | At::Validate => {
                let created = sim.create_container(container(&pod, "new")).await;
                let created = created.unwrap_or_else(|e| panic!("{name}: creation failed: {e}"));
                assert_only_benign_changes(name, &created);
            }
            At::Update => {
                let id = format!("{pod}-app");
                let updated = sim.update_container(&id, memory(1 << 30)).await;
                let updated = updated.unwrap_or_else(|e| panic!("{name}: update failed: {e}"));
                assert_eq!(
                    updated.linux.resources.memory.limit.value,
                    1 << 30,
                    "{name}: the update asked for"
                );
                assert!(
                    updated.linux.resources.devices.is_empty(),
                    "{name}: devices"
                );
            }
            At::Stop => sim.stop_container(&format!("{pod}-app")).await.unwrap(),
        }
    }
    // Nothing reached the containers the attacks aimed at beyond their
    // creation: no Synchronize update, no update from another event.
    for (n, attack) in attacks.iter().enumerate() {
        let id = format!("{}-app", pod_of(n).id);
        if attack.at != At::Update {
            untouched_resources(attack.name, &sim.container(&id).unwrap());
        }
    }
    untouched_resources("victims", &sim.container(VICTIM).unwrap());
    assert!(sim.container("made-up").is_none());
    assert!(
        sim.dropped().is_empty(),
        "the runtime dropped the host: {:?}",
        sim.dropped()
    );

    let (_, metrics) = get(address, "/metrics").await;
    for (n, attack) in attacks.iter().enumerate() {
        let guest = format!("{}-a{n:02}", 30 + n);
        let seen = match attack.expect {
            Expect::Refused(family) => counted(
                &metrics,
                "nri_wasm_guest_refusals_total",
                &guest,
                &format!("family=\"{family}\""),
            ),
            Expect::Failed(kind) => counted(
                &metrics,
                "nri_wasm_guest_errors_total",
                &guest,
                &format!("kind=\"{kind}\""),
            ),
            Expect::NotAsked => !counted(
                &metrics,
                "nri_wasm_guest_calls_total",
                &guest,
                "event=\"ValidateContainerAdjustment\"",
            ),
        };
        assert!(
            seen,
            "{}: not {:?} in /metrics:\n{metrics}",
            attack.name, attack.expect
        );
    }
    // Guest text went to the log escaped and cut: no forged line.
    let log = daemon.log();
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("WARN forged")),
        "a forged line"
    );
    assert!(
        log.lines().all(|l| l.len() < 16 << 10),
        "a line of guest text uncut"
    );
}

/// What `nri-wasm test` makes of attack `n`, as its JSON report.
fn nri_wasm_test(dir: &TempDir, n: usize, attack: &Attack) -> (i32, Value) {
    let pod = pod_of(n);
    let own = container(&pod.id, "app");
    let mut new = container(&pod.id, "new");
    new.annotations
        .insert("secret.example.com/token".into(), "hunter2".into());
    let pod_json =
        json!({"id": pod.id, "name": pod.name, "uid": pod.uid, "namespace": pod.namespace});
    let container_json = |c: &Container| json!({"id": c.id, "podSandboxId": c.pod_sandbox_id, "name": c.name, "env": c.env});
    let event = match attack.at {
        At::Create | At::Synchronize => {
            json!({"event": "CreateContainer", "request": {"pod": pod_json, "container": container_json(&new)}})
        }
        At::Update => {
            json!({"event": "UpdateContainer", "request": {"pod": pod_json, "container": container_json(&own),
            "linuxResources": {"memory": {"limit": {"value": "1073741824"}}}}})
        }
        At::Stop => {
            json!({"event": "StopContainer", "request": {"pod": pod_json, "container": container_json(&own)}})
        }
        At::Validate => json!({"event": "ValidateContainerAdjustment", "request": {"pod": pod_json,
            "container": {"id": new.id, "podSandboxId": pod.id, "name": "new", "annotations": {"secret.example.com/token": "hunter2"}},
            "adjust": {"annotations": {"secret.example.com/injected": "1"}, "mounts": [{"destination": "/secret", "source": "/srv/secret", "type": "bind", "options": ["rbind"]}]},
            "owners": {"owners": {(new.id.clone()): {"compound": {
                "1": {"owners": {"secret.example.com/injected": "10-other"}},
                "2": {"owners": {"/secret": "10-other"}}}}}},
            "plugins": [{"name": "other", "index": "10"}]}}),
    };
    let event_file = dir.path().join(format!("event-{n}.json"));
    std::fs::write(&event_file, event.to_string()).unwrap();
    let config_file = dir.path().join(format!("config-{n}.toml"));
    std::fs::write(
        &config_file,
        section(n, attack).replace(&format!("a{n:02}]"), "attacker]"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
        .arg("test")
        .arg(crate::guests::built().test_guests.join("70-attacker.wasm"))
        .arg("--event")
        .arg(&event_file)
        .arg("--config")
        .arg(&config_file)
        .arg("--cache-dir")
        .arg(compile_cache())
        .arg("--json")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON report ({e}): {}{}",
            attack.name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

/// Whether the report's calls of `event` show `expect`.
fn reported(report: &Value, event: &str, expect: Expect) -> bool {
    let calls = report["calls"].as_array().cloned().unwrap_or_default();
    let of_event = || calls.iter().filter(|c| c["event"] == event);
    match expect {
        // The refused answer is shown whole beside its refusals.
        Expect::Refused(family) => of_event().any(|c| {
            c["answer"].is_object()
                && c["refusals"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["family"] == family))
        }),
        Expect::Failed(kind) => of_event().any(|c| c["error"]["kind"] == kind),
        Expect::NotAsked => of_event().next().is_none(),
    }
}

#[test]
fn every_attack_through_nri_wasm_test_is_refused_or_fails_as_its_guests_own() {
    let dir = TempDir::new().unwrap();
    for (n, attack) in attacks().iter().enumerate() {
        let (status, report) = nri_wasm_test(&dir, n, attack);
        let event = match attack.at {
            At::Create => "CreateContainer",
            At::Synchronize => "Synchronize",
            At::Update => "UpdateContainer",
            At::Stop => "StopContainer",
            At::Validate => "ValidateContainerAdjustment",
        };
        assert!(
            reported(&report, event, attack.expect),
            "{}: {:?} not reported: {report:#}",
            attack.name,
            attack.expect
        );
        let expected_status = if attack.expect == Expect::NotAsked {
            0
        } else {
            2
        };
        assert_eq!(status, expected_status, "{}: {report:#}", attack.name);
        // None of the answer is in the reply to the runtime.
        let reply = report["reply"].to_string();
        for sign in [
            "LD_PRELOAD",
            "/etc",
            "/proc/1",
            "cgroup.procs",
            "devices\":",
            "mounts",
            "hooks",
            "made-up",
            VICTIM,
            "rejected by",
        ] {
            assert!(
                !reply.contains(sign),
                "{}: {sign} in the reply {reply}",
                attack.name
            );
        }
        assert!(
            reply.len() < 4096,
            "{}: a reply of {} bytes",
            attack.name,
            reply.len()
        );
        // What the guest was shown and answered (the report's list of what
        // its grants hid names keys, for the author, not for the guest).
        let shown = format!("{}{}", report["calls"], report["reply"]);
        assert!(
            !shown.contains("hunter2") && !shown.contains("secret.example.com"),
            "{}: a hidden value shown: {shown}",
            attack.name
        );
    }
}

/// A validator granted `validate` that rejects with 8 MiB, or with what it
/// saw: the runtime gets a short reason without anything its read grants
/// hide.
#[tokio::test]
async fn a_validators_reason_reaches_the_runtime_short_and_without_hidden_keys() {
    for (answer, want) in [
        (
            json!({"reject": {"repeat": "no\n", "times": 3 << 20}}),
            "no\\u{a}no",
        ),
        (json!({"reveal": true}), "seen: "),
    ] {
        let attack = attack(
            "validator",
            At::Validate,
            "validate = true",
            answer,
            Expect::NotAsked,
        );
        let plugins = plugin_dir(&["20-env-injector.wasm"], None);
        std::fs::copy(
            crate::guests::built().test_guests.join("70-attacker.wasm"),
            plugins.path().join("70-a00.wasm"),
        )
        .unwrap();
        let config = format!(
            "{BENIGN}{}",
            section(0, &attack).replace("scope = { namespaces = [\"attack-00\"] }\n", "")
        );
        std::fs::write(plugins.path().join("nri-wasm.toml"), config).unwrap();
        let dir = TempDir::new().unwrap();
        let sim = Simulator::start(SimConfig::containerd_2_3(nri_sim::socket_in(dir.path())))
            .await
            .unwrap();
        let _daemon = Daemon::start(sim.socket(), plugins.path());
        assert!(sim.wait_for_plugin(HOST_ID, Duration::from_secs(20)).await);
        sim.run_pod_sandbox(pod_of(0)).await.unwrap();
        let err = sim
            .create_container(container("a00", "new"))
            .await
            .unwrap_err();
        let SimError::Rejected { reason, .. } = err else {
            panic!("not rejected: {err}");
        };
        assert!(reason.contains(want), "{reason}");
        assert!(reason.len() < 2048, "a reason of {} bytes", reason.len());
        assert!(!reason.contains('\n'), "{reason}");
        assert!(
            !reason.contains("example.com/injected-by"),
            "a hidden key: {reason}"
        );

        let files = TempDir::new().unwrap();
        let (status, report) = nri_wasm_test(&files, 0, &attack);
        assert_eq!(status, 0, "{report:#}");
        let reason = report["reply"]["reason"].as_str().unwrap_or_default();
        assert!(report["reply"]["reject"] == true, "{report:#}");
        assert!(
            reason.contains(want) && reason.len() < 2048 && !reason.contains('\n'),
            "{reason}"
        );
        let shown = format!("{}{}", report["calls"], report["reply"]);
        assert!(
            !shown.contains("secret.example.com") && !shown.contains("/secret"),
            "a hidden key: {shown}"
        );
    }
}
