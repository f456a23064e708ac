//! The runtime's pods and containers.

use std::collections::BTreeMap;

use nri_proto::api::{Container, ContainerState, ContainerUpdate, PodSandbox};

/// Pods and containers by id.
#[derive(Debug, Default)]
pub(crate) struct NodeState {
    pods: BTreeMap<String, PodSandbox>,
    containers: BTreeMap<String, Container>,
}

impl NodeState {
    pub(crate) fn add_pod(&mut self, pod: PodSandbox) {
        self.pods.insert(pod.id.clone(), pod);
    }

    pub(crate) fn add_container(&mut self, container: Container) {
        self.containers.insert(container.id.clone(), container);
    }

    pub(crate) fn pod(&self, id: &str) -> Option<&PodSandbox> {
        self.pods.get(id)
    }

    pub(crate) fn container(&self, id: &str) -> Option<&Container> {
        self.containers.get(id)
    }

    pub(crate) fn pods(&self) -> Vec<PodSandbox> {
        self.pods.values().cloned().collect()
    }

    pub(crate) fn containers(&self) -> Vec<Container> {
        self.containers.values().cloned().collect()
    }

    pub(crate) fn remove_pod(&mut self, id: &str) -> Option<PodSandbox> {
        self.pods.remove(id)
    }

    pub(crate) fn remove_container(&mut self, id: &str) -> Option<Container> {
        self.containers.remove(id)
    }

    pub(crate) fn set_state(&mut self, id: &str, state: ContainerState) {
        if let Some(c) = self.containers.get_mut(id) {
            c.state = state.into();
        }
    }

    /// Applies updates; returns those naming no container.
    pub(crate) fn apply_updates(&mut self, updates: &[ContainerUpdate]) -> Vec<ContainerUpdate> {
        let mut failed = Vec::new();
        for update in updates {
            match self.containers.get_mut(&update.container_id) {
                Some(container) => nri_proto::adjust::apply_update(container, update),
                None => failed.push(update.clone()),
            }
        }
        failed
    }
}
