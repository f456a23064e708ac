//! Scope: which pods a guest is called for at all. A guest outside its
//! scope never hears of the pod or its containers.

use nri_proto::api::PodSandbox;

use super::model::Scope;

/// Whether `pod` is in `scope`. A pod the event does not name (none) is in
/// every scope.
pub fn in_scope(scope: &Scope, pod: Option<&PodSandbox>) -> bool {
    let Some(pod) = pod else { return true };
    scope
        .namespaces
        .as_ref()
        .is_none_or(|n| n.matches(&pod.namespace))
        && scope
            .runtime_handlers
            .as_ref()
            .is_none_or(|h| h.matches(&pod.runtime_handler))
        && scope
            .labels
            .iter()
            .all(|(k, v)| pod.labels.get(k) == Some(v))
        && scope
            .annotations
            .iter()
            .all(|(k, v)| pod.annotations.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(text: &str) -> Scope {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn selectors_must_all_match() {
        let pod = PodSandbox {
            namespace: "prod-web".into(),
            runtime_handler: "runc".into(),
            labels: [("tier".to_string(), "web".to_string())].into(),
            ..Default::default()
        };
        let cases = [
            ("", true),
            ("namespaces = [\"prod-*\"]", true),
            ("namespaces = [\"kube-system\"]", false),
            ("runtime-handlers = [\"kata*\"]", false),
            ("labels = { tier = \"web\" }", true),
            ("labels = { tier = \"db\" }", false),
            ("annotations = { \"x.io/y\" = \"1\" }", false),
        ];
        for (text, want) in cases {
            assert_eq!(in_scope(&scope(text), Some(&pod)), want, "{text}");
        }
        assert!(in_scope(&scope("namespaces = [\"none\"]"), None));
    }
}
