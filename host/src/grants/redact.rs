//! Read grants: what of a pod or container a guest may see. Container data
//! can hold secrets (env values, arguments, mount sources); a guest's copy
//! is made without everything it is not granted to read. Ids, names,
//! namespaces, state, resources and devices stay visible.

use crate::runtime::convert::Visible;

use super::model::ReadGrants;

impl Visible for ReadGrants {
    fn label(&self, key: &str) -> bool {
        self.labels.matches(key)
    }
    fn annotation(&self, key: &str) -> bool {
        self.annotations.matches(key)
    }
    fn env_values(&self) -> bool {
        self.env
    }
    fn args(&self) -> bool {
        self.args
    }
    fn mounts(&self) -> bool {
        self.mounts
    }
    fn hooks(&self) -> bool {
        self.hooks
    }
}

#[cfg(test)]
mod tests {
    use nri_proto::api::{Container, ContainerAdjustment, KeyValue};

    use super::*;
    use crate::{
        grants::model::Patterns,
        runtime::convert::{adjustment_to_wit, container_to_wit},
    };

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
        let seen = container_to_wit(&container(), &ReadGrants::default());
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
        let seen = container_to_wit(&container(), &read);
        assert_eq!(seen.env, container().env);
        assert_eq!(seen.args.len(), 2);
        let keys: Vec<&String> = seen.annotations.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["ulimits.noderesource.dev/container.app"]);
        assert_eq!(seen.labels.len(), 1);
        assert!(seen.mounts.is_empty());
    }

    #[test]
    fn a_merged_adjustment_is_shown_as_the_container_is() {
        let adjust = ContainerAdjustment {
            env: vec![KeyValue {
                key: "TOKEN".into(),
                value: "abc".into(),
                ..Default::default()
            }],
            args: vec!["/bin/app".into()],
            annotations: [("secret.io/key".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        let seen = adjustment_to_wit(&adjust, &ReadGrants::default());
        assert_eq!(seen.env, [("TOKEN".to_string(), String::new())]);
        assert!(seen.args.is_empty() && seen.annotations.is_empty());
    }
}
