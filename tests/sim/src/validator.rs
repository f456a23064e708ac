//! NRI's built-in default validator, its required-plugins check: a
//! container is refused unless every required plugin took part in its
//! creation (containerd/nri `plugins/default-validator`,
//! `validateRequiredPlugins`). This is how a runtime closes the window in
//! which a plugin such as nri-wasm is away: containers wait for it rather
//! than being created without it.

use nri_proto::api::{PluginInstance, PodSandbox};

/// The annotation naming further plugins a pod or container requires
/// (`pkg/plugin/annotations.go: RequiredPluginsAnnotation`).
pub const REQUIRED_PLUGINS_ANNOTATION: &str = "required-plugins.noderesource.dev";

/// The identity the validator is registered under, as NRI registers it.
pub const DEFAULT_VALIDATOR: &str = "00-default-validator";

/// The default validator's required-plugins settings, as containerd's
/// `[plugins."io.containerd.nri.v1.nri".default_validator]` gives them.
#[derive(Clone, Debug, Default)]
pub struct DefaultValidator {
    /// `required_plugins`: names (`nri-wasm`) or identities
    /// (`50-nri-wasm`) every container needs.
    pub required_plugins: Vec<String>,
    /// `tolerate_missing_plugins_annotation`: a pod or container annotated
    /// with this key set to true skips the check.
    pub tolerate_missing_annotation: Option<String>,
}

impl DefaultValidator {
    /// Checks a container of `pod` named `container`, created with
    /// `plugins` in the runtime's plugin list; the rejection reason if the
    /// validator refuses it.
    pub fn check(
        &self,
        pod: &PodSandbox,
        container: &str,
        plugins: &[PluginInstance],
    ) -> Result<(), String> {
        if let Some(key) = &self.tolerate_missing_annotation {
            if let Some(value) = effective_annotation(pod, key, container) {
                if parse_go_bool(value)
                    .ok_or_else(|| format!("invalid {key} annotation {value:?}"))?
                {
                    return Ok(());
                }
            }
        }
        let mut required = self.required_plugins.clone();
        if let Some(value) = effective_annotation(pod, REQUIRED_PLUGINS_ANNOTATION, container) {
            let annotated: Vec<String> = serde_json::from_str(value).map_err(|e| {
                format!("invalid {REQUIRED_PLUGINS_ANNOTATION} annotation {value:?}: {e}")
            })?;
            required.extend(annotated);
        }
        // Plugins are known by name and by index-name.
        let present = |name: &str| {
            plugins
                .iter()
                .any(|p| p.name == name || format!("{}-{}", p.index, p.name) == name)
        };
        let missing: Vec<String> = required.into_iter().filter(|r| !present(r)).collect();
        match missing.as_slice() {
            [] => Ok(()),
            [one] => Err(format!(
                "validation error: required plugin {one:?} not present"
            )),
            many => Err(format!(
                "validation error: required plugins {:?} not present",
                many.join(",")
            )),
        }
    }
}

/// A pod annotation as it applies to one container: the container-scoped
/// key first, then the pod-scoped ones (`pkg/plugin/annotations.go:
/// GetEffectiveAnnotation`).
fn effective_annotation<'a>(pod: &'a PodSandbox, key: &str, container: &str) -> Option<&'a str> {
    [
        format!("{key}/container.{container}"),
        format!("{key}/pod"),
        key.to_string(),
    ]
    .iter()
    .find_map(|k| pod.annotations.get(k))
    .map(String::as_str)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> DefaultValidator {
        DefaultValidator {
            required_plugins: vec!["nri-wasm".into()],
            tolerate_missing_annotation: Some(
                "tolerate-missing-nri-plugins.noderesource.dev".into(),
            ),
        }
    }

    fn pod(annotations: &[(&str, &str)]) -> PodSandbox {
        PodSandbox {
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn plugin(index: &str, name: &str) -> PluginInstance {
        PluginInstance {
            name: name.into(),
            index: index.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_required_plugin_is_needed_by_name_or_identity() {
        let v = validator();
        assert_eq!(
            v.check(&pod(&[]), "app", &[plugin("10", "other")]),
            Err("validation error: required plugin \"nri-wasm\" not present".into())
        );
        assert_eq!(
            v.check(&pod(&[]), "app", &[plugin("50", "nri-wasm")]),
            Ok(())
        );
        let by_id = DefaultValidator {
            required_plugins: vec!["50-nri-wasm".into()],
            ..validator()
        };
        assert_eq!(
            by_id.check(&pod(&[]), "app", &[plugin("50", "nri-wasm")]),
            Ok(())
        );
        assert!(by_id
            .check(&pod(&[]), "app", &[plugin("60", "nri-wasm")])
            .is_err());
    }

    #[test]
    fn the_tolerate_annotation_skips_the_check_for_its_scope() {
        let v = validator();
        let key = "tolerate-missing-nri-plugins.noderesource.dev";
        assert_eq!(v.check(&pod(&[(key, "true")]), "app", &[]), Ok(()));
        let scoped = format!("{key}/container.nri-wasm");
        let own = pod(&[(&scoped, "1")]);
        assert_eq!(v.check(&own, "nri-wasm", &[]), Ok(()));
        assert!(v.check(&own, "sidecar", &[]).is_err());
        assert!(v.check(&pod(&[(key, "false")]), "app", &[]).is_err());
        assert_eq!(
            v.check(&pod(&[(key, "yes")]), "app", &[]),
            Err(format!("invalid {key} annotation \"yes\""))
        );
        let untolerated = DefaultValidator {
            tolerate_missing_annotation: None,
            ..validator()
        };
        assert!(untolerated
            .check(&pod(&[(key, "true")]), "app", &[])
            .is_err());
    }

    #[test]
    fn pods_may_require_more_plugins() {
        let v = DefaultValidator::default();
        let p = pod(&[(REQUIRED_PLUGINS_ANNOTATION, r#"["a", "b"]"#)]);
        assert_eq!(
            v.check(&p, "app", &[plugin("10", "a")]),
            Err("validation error: required plugin \"b\" not present".into())
        );
        assert_eq!(
            v.check(&p, "app", &[]),
            Err("validation error: required plugins \"a,b\" not present".into())
        );
    }
}
