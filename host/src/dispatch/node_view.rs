//! The host's view of the node's pods and containers, kept from
//! Synchronize and every event, so that a guest instance built after a
//! failure can be brought up to date without asking the runtime.

use std::collections::HashMap;

use nri_proto::api::{Container, PodSandbox};

use crate::protocol::Notification;

/// Pods and containers by id, as the runtime last described them.
#[derive(Clone, Debug, Default)]
pub struct NodeView {
    pods: HashMap<String, PodSandbox>,
    containers: HashMap<String, Container>,
}

impl NodeView {
    /// Replaces the whole view with the runtime's.
    pub fn synchronize(&mut self, pods: Vec<PodSandbox>, containers: Vec<Container>) {
        self.pods = pods.into_iter().map(|p| (p.id.clone(), p)).collect();
        self.containers = containers.into_iter().map(|c| (c.id.clone(), c)).collect();
    }

    /// Records a container the runtime is creating.
    pub fn container_created(&mut self, container: &Container) {
        self.containers
            .insert(container.id.clone(), container.clone());
    }

    /// Records what a notification says about its pod and container.
    pub fn apply(&mut self, notification: &Notification) {
        match notification {
            Notification::RemovePodSandbox(r) => {
                if let Some(pod) = r.pod.as_ref() {
                    self.pods.remove(&pod.id);
                    self.containers.retain(|_, c| c.pod_sandbox_id != pod.id);
                }
            }
            Notification::RemoveContainer(r) => {
                if let Some(container) = r.container.as_ref() {
                    self.containers.remove(&container.id);
                }
            }
            other => {
                if let Some(pod) = other.pod() {
                    self.pods.insert(pod.id.clone(), pod.clone());
                }
                if let Some(container) = other.container() {
                    self.containers
                        .insert(container.id.clone(), container.clone());
                }
            }
        }
    }

    /// A container by id.
    pub fn container(&self, id: &str) -> Option<&Container> {
        self.containers.get(id)
    }

    /// The pod of a container, by the container's id.
    pub fn pod_of(&self, container_id: &str) -> Option<&PodSandbox> {
        let container = self.containers.get(container_id)?;
        self.pods.get(&container.pod_sandbox_id)
    }

    /// The pods, in no particular order.
    pub fn pods(&self) -> impl Iterator<Item = &PodSandbox> {
        self.pods.values()
    }

    /// The containers, in no particular order.
    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.containers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nri_proto::api::{RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest};

    fn pod(id: &str) -> PodSandbox {
        PodSandbox {
            id: id.into(),
            ..Default::default()
        }
    }

    fn container(id: &str, pod: &str) -> Container {
        Container {
            id: id.into(),
            pod_sandbox_id: pod.into(),
            ..Default::default()
        }
    }

    #[test]
    fn follows_the_lifecycle() {
        let mut view = NodeView::default();
        view.synchronize(vec![pod("p1")], vec![container("c1", "p1")]);
        view.apply(&Notification::RunPodSandbox(RunPodSandboxRequest {
            pod: Some(pod("p2")).into(),
            ..Default::default()
        }));
        view.container_created(&container("c2", "p2"));
        view.apply(&Notification::StartContainer(StartContainerRequest {
            pod: Some(pod("p2")).into(),
            container: Some(container("c2", "p2")).into(),
            ..Default::default()
        }));
        assert_eq!(view.pods().count(), 2);
        assert_eq!(view.containers().count(), 2);
        view.apply(&Notification::RemovePodSandbox(RemovePodSandboxRequest {
            pod: Some(pod("p1")).into(),
            ..Default::default()
        }));
        let ids: Vec<&str> = view.containers().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c2"]);
        assert_eq!(view.pods().count(), 1);
    }
}
