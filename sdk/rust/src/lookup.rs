//! Reading pods and containers: labels, annotations and env by key.

use crate::{Container, PodSandbox};

/// The value of `key` in a list of key-value pairs.
pub fn pairs_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Lookups on a container.
pub trait ContainerExt {
    /// An annotation's value.
    fn annotation(&self, key: &str) -> Option<&str>;
    /// A label's value.
    fn label(&self, key: &str) -> Option<&str>;
    /// An environment variable's value.
    fn env_var(&self, name: &str) -> Option<&str>;
}

impl ContainerExt for Container {
    fn annotation(&self, key: &str) -> Option<&str> {
        pairs_get(&self.annotations, key)
    }

    fn label(&self, key: &str) -> Option<&str> {
        pairs_get(&self.labels, key)
    }

    fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
    }
}

/// Lookups on a pod.
pub trait PodExt {
    /// An annotation's value.
    fn annotation(&self, key: &str) -> Option<&str>;
    /// A label's value.
    fn label(&self, key: &str) -> Option<&str>;
}

impl PodExt for PodSandbox {
    fn annotation(&self, key: &str) -> Option<&str> {
        pairs_get(&self.annotations, key)
    }

    fn label(&self, key: &str) -> Option<&str> {
        pairs_get(&self.labels, key)
    }
}
