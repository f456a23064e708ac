//! Read grants: what of a pod or container a guest may see. Container data
//! can hold secrets (env values, arguments, mount sources); a guest gets a
//! copy with everything it is not granted to read taken out. Ids, names,
//! namespaces, state, resources and devices stay visible.

use nri_proto::api::{Container, ContainerAdjustment, PodSandbox};

use super::model::{Patterns, ReadGrants};

/// What replaces the value of an environment variable a guest may not
/// read: the name stays, so a guest can tell a variable is set.
pub const REDACTED: &str = "";

fn keep_matching(map: &mut std::collections::HashMap<String, String>, patterns: &Patterns) {
    map.retain(|key, _| patterns.matches(key));
}

/// The pod as `read` lets a guest see it.
pub fn redact_pod(pod: &PodSandbox, read: &ReadGrants) -> PodSandbox {
    let mut pod = pod.clone();
    keep_matching(&mut pod.labels, &read.labels);
    keep_matching(&mut pod.annotations, &read.annotations);
    pod
}

/// The container as `read` lets a guest see it.
pub fn redact_container(container: &Container, read: &ReadGrants) -> Container {
    let mut c = container.clone();
    keep_matching(&mut c.labels, &read.labels);
    keep_matching(&mut c.annotations, &read.annotations);
    if !read.env {
        for entry in &mut c.env {
            let name_len = entry.find('=').unwrap_or(entry.len());
            entry.truncate(name_len);
            entry.push('=');
            entry.push_str(REDACTED);
        }
    }
    if !read.args {
        c.args.clear();
    }
    if !read.mounts {
        c.mounts.clear();
    }
    if !read.hooks {
        c.hooks.clear();
    }
    c
}

/// A merged adjustment (as validators see it) as `read` lets a guest see it.
pub fn redact_adjustment(adjust: &ContainerAdjustment, read: &ReadGrants) -> ContainerAdjustment {
    let mut a = adjust.clone();
    keep_matching(&mut a.annotations, &read.annotations);
    if !read.env {
        for kv in &mut a.env {
            kv.value = REDACTED.to_string();
        }
    }
    if !read.args {
        a.args.clear();
    }
    if !read.mounts {
        a.mounts.clear();
    }
    if !read.hooks {
        a.hooks.clear();
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        Container {
            id: "c1".into(),
            env: vec!["DB_PASSWORD=hunter2".into(), "PATH=/bin".into()],
            args: vec!["/bin/app".into(), "--token=abc".into()],
            mounts: vec![Default::default()],
            labels: [("app".to_string(), "web".to_string())].into(),
            annotations: [
                ("secret.io/key".to_string(), "x".to_string()),
                (
                    "ulimits.noderesource.dev/container.app".to_string(),
                    "- type: nofile".to_string(),
                ),
            ]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn without_read_grants_secrets_are_gone() {
        let seen = redact_container(&container(), &ReadGrants::default());
        assert_eq!(seen.env, ["DB_PASSWORD=", "PATH="]);
        assert!(seen.args.is_empty() && seen.mounts.is_empty() && seen.hooks.is_none());
        assert!(seen.labels.is_empty() && seen.annotations.is_empty());
        assert_eq!(seen.id, "c1");
    }

    #[test]
    fn read_grants_open_what_they_name() {
        let read = ReadGrants {
            env: true,
            args: true,
            annotations: Patterns::new(&["ulimits.noderesource.dev/*"]).unwrap(),
            labels: Patterns::new(&["*"]).unwrap(),
            ..Default::default()
        };
        let seen = redact_container(&container(), &read);
        assert_eq!(seen.env, container().env);
        assert_eq!(seen.args.len(), 2);
        let keys: Vec<&String> = seen.annotations.keys().collect();
        assert_eq!(keys, ["ulimits.noderesource.dev/container.app"]);
        assert_eq!(seen.labels.len(), 1);
        assert!(seen.mounts.is_empty());
    }
}
