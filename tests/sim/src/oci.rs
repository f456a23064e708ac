//! What containerd makes of a plugin's adjustment: the container's OCI
//! runtime spec (`config.json`), as containerd's NRI generator writes it
//! (containerd/nri `pkg/runtime-tools/generate`, containerd 2.x), for
//! an OCI runtime such as runc to run. The spec is kept as JSON, since a
//! runtime reads it so; fields are copied verbatim, as containerd does,
//! so that whatever the runtime makes of them is what a test observes.

use nri_proto::{
    adjust::split_marker,
    api::{ContainerAdjustment, Hook, LinuxDevice, LinuxResources},
};
use serde_json::{json, Map, Value};

/// Applies `adjust` to `spec` in the generator's order: annotations, env,
/// args, hooks, devices (each with the cgroup rule NRI adds for it),
/// cgroups path, OOM score, namespaces, sysctl, resources, mounts,
/// rlimits.
pub fn adjust_spec(spec: &mut Value, adjust: &ContainerAdjustment) {
    annotations(spec, adjust);
    env(spec, adjust);
    if !adjust.args.is_empty() {
        spec["process"]["args"] = json!(adjust.args);
    }
    if let Some(hooks) = adjust.hooks.as_ref() {
        let stages: [(&str, &Vec<Hook>); 6] = [
            ("prestart", &hooks.prestart),
            ("createRuntime", &hooks.create_runtime),
            ("createContainer", &hooks.create_container),
            ("startContainer", &hooks.start_container),
            ("poststart", &hooks.poststart),
            ("poststop", &hooks.poststop),
        ];
        for (stage, list) in stages {
            for hook in list {
                push(&mut spec["hooks"][stage], hook_json(hook));
            }
        }
    }
    if let Some(linux) = adjust.linux.as_ref() {
        for device in &linux.devices {
            device_json(spec, device);
        }
        if !linux.cgroups_path.is_empty() {
            spec["linux"]["cgroupsPath"] = json!(linux.cgroups_path);
        }
        if let Some(score) = linux.oom_score_adj.as_ref() {
            spec["process"]["oomScoreAdj"] = json!(score.value);
        }
        for namespace in &linux.namespaces {
            let (kind, removal) = split_marker(&namespace.type_);
            let list = list_mut(&mut spec["linux"]["namespaces"]);
            list.retain(|n| n["type"] != kind);
            if !removal {
                let mut entry = json!({"type": kind});
                if !namespace.path.is_empty() {
                    entry["path"] = json!(namespace.path);
                }
                list.push(entry);
            }
        }
        for (key, value) in &linux.sysctl {
            let (name, removal) = split_marker(key);
            let sysctl = object_mut(&mut spec["linux"]["sysctl"]);
            if removal {
                sysctl.remove(name);
            } else {
                sysctl.insert(name.to_string(), json!(value));
            }
        }
        if let Some(resources) = linux.resources.as_ref() {
            resources_json(spec, resources);
        }
    }
    mounts(spec, adjust);
    for rlimit in &adjust.rlimits {
        push(
            &mut spec["process"]["rlimits"],
            json!({"type": rlimit.type_, "soft": rlimit.soft, "hard": rlimit.hard}),
        );
    }
}

fn list_mut(value: &mut Value) -> &mut Vec<Value> {
    if !value.is_array() {
        *value = json!([]);
    }
    value.as_array_mut().expect("an array")
}

fn object_mut(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("an object")
}

fn push(list: &mut Value, item: Value) {
    list_mut(list).push(item);
}

fn annotations(spec: &mut Value, adjust: &ContainerAdjustment) {
    for (key, value) in &adjust.annotations {
        let (name, removal) = split_marker(key);
        let annotations = object_mut(&mut spec["annotations"]);
        if removal {
            annotations.remove(name);
        } else {
            annotations.insert(name.to_string(), json!(value));
        }
    }
}

/// The generator keeps each `KEY=value` of the spec by the text before its
/// first `=`, replaces or removes those the adjustment names exactly, and
/// appends the rest as `key=value`.
fn env(spec: &mut Value, adjust: &ContainerAdjustment) {
    if adjust.env.is_empty() {
        return;
    }
    let env = list_mut(&mut spec["process"]["env"]);
    for kv in &adjust.env {
        let (name, removal) = split_marker(&kv.key);
        let at = env.iter().position(|e| {
            e.as_str()
                .and_then(|e| e.split_once('='))
                .is_some_and(|(k, _)| k == name)
        });
        match (at, removal) {
            (Some(at), true) => {
                env.remove(at);
            }
            (Some(at), false) => env[at] = json!(format!("{name}={}", kv.value)),
            (None, false) => env.push(json!(format!("{name}={}", kv.value))),
            (None, true) => {}
        }
    }
}

fn hook_json(hook: &Hook) -> Value {
    let mut entry = json!({"path": hook.path});
    if !hook.args.is_empty() {
        entry["args"] = json!(hook.args);
    }
    if !hook.env.is_empty() {
        entry["env"] = json!(hook.env);
    }
    if let Some(timeout) = hook.timeout.as_ref() {
        entry["timeout"] = json!(timeout.value);
    }
    entry
}

/// A device node, and the cgroup rule NRI adds with it: `rw`, and `rwm`
/// for block devices, whatever its mode.
fn device_json(spec: &mut Value, device: &LinuxDevice) {
    let (path, removal) = split_marker(&device.path);
    list_mut(&mut spec["linux"]["devices"]).retain(|d| d["path"] != path);
    if removal {
        return;
    }
    let mut entry = json!({
        "path": path, "type": device.type_, "major": device.major, "minor": device.minor,
    });
    if let Some(mode) = device.file_mode.as_ref() {
        entry["fileMode"] = json!(mode.value);
    }
    if let Some(uid) = device.uid.as_ref() {
        entry["uid"] = json!(uid.value);
    }
    if let Some(gid) = device.gid.as_ref() {
        entry["gid"] = json!(gid.value);
    }
    push(&mut spec["linux"]["devices"], entry);
    let access = if device.type_ == "b" { "rwm" } else { "rw" };
    push(
        &mut spec["linux"]["resources"]["devices"],
        json!({"allow": true, "type": device.type_, "major": device.major, "minor": device.minor, "access": access}),
    );
}

fn resources_json(spec: &mut Value, resources: &LinuxResources) {
    let target = &mut spec["linux"]["resources"];
    if let Some(memory) = resources.memory.as_ref() {
        if let Some(limit) = memory.limit.as_ref().filter(|l| l.value != 0) {
            // The generator sets swap to the limit too.
            target["memory"]["limit"] = json!(limit.value);
            target["memory"]["swap"] = json!(limit.value);
        }
    }
    if let Some(cpu) = resources.cpu.as_ref() {
        if let Some(shares) = cpu.shares.as_ref() {
            target["cpu"]["shares"] = json!(shares.value);
        }
        if let Some(quota) = cpu.quota.as_ref() {
            target["cpu"]["quota"] = json!(quota.value);
        }
        if let Some(period) = cpu.period.as_ref() {
            target["cpu"]["period"] = json!(period.value);
        }
        if !cpu.cpus.is_empty() {
            target["cpu"]["cpus"] = json!(cpu.cpus);
        }
        if !cpu.mems.is_empty() {
            target["cpu"]["mems"] = json!(cpu.mems);
        }
    }
    if let Some(pids) = resources.pids.as_ref().filter(|p| p.limit > -1) {
        target["pids"]["limit"] = json!(pids.limit);
    }
    for (key, value) in &resources.unified {
        object_mut(&mut target["unified"]).insert(key.clone(), json!(value));
    }
    for rule in &resources.devices {
        let mut entry = json!({"allow": rule.allow, "access": rule.access});
        if !rule.type_.is_empty() {
            entry["type"] = json!(rule.type_);
        }
        if let Some(major) = rule.major.as_ref() {
            entry["major"] = json!(major.value);
        }
        if let Some(minor) = rule.minor.as_ref() {
            entry["minor"] = json!(minor.value);
        }
        push(&mut target["devices"], entry);
    }
}

/// Mounts: one of the same destination (by its exact text) goes first,
/// then every mount of the spec is sorted by the depth of its cleaned
/// destination, as the generator does.
fn mounts(spec: &mut Value, adjust: &ContainerAdjustment) {
    if adjust.mounts.is_empty() {
        return;
    }
    let list = list_mut(&mut spec["mounts"]);
    for mount in &adjust.mounts {
        let (destination, removal) = split_marker(&mount.destination);
        if let Some(at) = list.iter().position(|m| m["destination"] == destination) {
            list.remove(at);
        }
        if !removal {
            list.push(json!({
                "destination": destination, "type": mount.type_,
                "source": mount.source, "options": mount.options,
            }));
        }
    }
    let depth = |m: &Value| {
        let destination = m["destination"].as_str().unwrap_or_default();
        std::path::Path::new(destination).components().count()
    };
    list.sort_by_key(|m| depth(m));
}

#[cfg(test)]
mod tests {
    use nri_proto::api::{KeyValue, LinuxContainerAdjustment, LinuxNamespace, Mount};

    use super::*;

    #[test]
    fn an_adjustment_lands_in_the_spec_as_the_generator_writes_it() {
        let mut spec = json!({
            "process": {"env": ["PATH=/bin", "HOME=/root"], "args": ["sh"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "network"}, {"type": "pid"}]},
        });
        let adjust = ContainerAdjustment {
            env: vec![
                KeyValue {
                    key: "HOME".into(),
                    value: "/home".into(),
                    ..Default::default()
                },
                KeyValue {
                    key: "-PATH".into(),
                    ..Default::default()
                },
                KeyValue {
                    key: "A=B".into(),
                    value: "1".into(),
                    ..Default::default()
                },
            ],
            mounts: vec![Mount {
                destination: "/data".into(),
                type_: "bind".into(),
                source: "/srv".into(),
                options: vec!["rbind".into()],
                ..Default::default()
            }],
            linux: Some(LinuxContainerAdjustment {
                namespaces: vec![LinuxNamespace {
                    type_: "network".into(),
                    path: "/proc/1/ns/net".into(),
                    ..Default::default()
                }],
                devices: vec![LinuxDevice {
                    path: "/dev/x".into(),
                    type_: "c".into(),
                    major: 1,
                    minor: 3,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        adjust_spec(&mut spec, &adjust);
        assert_eq!(spec["process"]["env"], json!(["HOME=/home", "A=B=1"]));
        assert_eq!(spec["mounts"][1]["destination"], "/data");
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}])
        );
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
        );
    }
}
