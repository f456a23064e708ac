//! logger: writes one line to the host's log for every event it sees, the
//! way NRI's sample logger does. It changes nothing and accepts every
//! adjustment it is asked to validate.
//!
//! Configuration: the events to log, as a comma-separated list of NRI event
//! names (`CreateContainer,RemoveContainer`); empty means all.

use nri_wasm_sdk::{
    export, log, Container, ContainerEvents, ContainerExt, Events, Level, LinuxResources, Plugin,
    PodEvents, PodSandbox, RuntimeInfo, ValidateRequest, Validator,
};

/// The logger and the events it was asked to log.
pub struct Logger {
    events: Events,
}

/// The event set a configuration names.
pub fn parse_events(config: &str) -> Result<Events, String> {
    let mut events = Events::empty();
    for name in config.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        events |= match name {
            "RunPodSandbox" => Events::RUN_POD_SANDBOX,
            "UpdatePodSandbox" => Events::UPDATE_POD_SANDBOX,
            "PostUpdatePodSandbox" => Events::POST_UPDATE_POD_SANDBOX,
            "StopPodSandbox" => Events::STOP_POD_SANDBOX,
            "RemovePodSandbox" => Events::REMOVE_POD_SANDBOX,
            "PostCreateContainer" => Events::POST_CREATE_CONTAINER,
            "StartContainer" => Events::START_CONTAINER,
            "PostStartContainer" => Events::POST_START_CONTAINER,
            "PostUpdateContainer" => Events::POST_UPDATE_CONTAINER,
            "RemoveContainer" => Events::REMOVE_CONTAINER,
            "ValidateContainerAdjustment" => Events::VALIDATE_CONTAINER_ADJUSTMENT,
            other => return Err(format!("unknown event {other:?} in logger configuration")),
        };
    }
    Ok(if events.is_empty() {
        Events::all()
    } else {
        events
    })
}

/// One log line about a container.
pub fn describe(event: &str, pod: &PodSandbox, container: &Container) -> String {
    format!(
        "{event}: {}/{} container {} ({}), image {}",
        pod.namespace,
        pod.name,
        container.name,
        container.id,
        image(container)
    )
}

/// The container's image: NRI's own field (v0.12 and later), else the
/// image annotation CRI sets, else why there is none.
fn image(container: &Container) -> &str {
    let named = container.image.as_ref().map(|i| i.name.as_str());
    named
        .filter(|name| !name.is_empty())
        .or_else(|| container.annotation("io.kubernetes.cri.image-name"))
        .unwrap_or("unknown (the runtime sends none; read grant for io.kubernetes.cri.image-name?)")
}

fn pod_line(event: &str, pod: &PodSandbox) -> Result<(), String> {
    log(
        Level::Info,
        &format!("{event}: pod {}/{} ({})", pod.namespace, pod.name, pod.id),
    );
    Ok(())
}

fn container_line(event: &str, pod: &PodSandbox, container: &Container) -> Result<(), String> {
    log(Level::Info, &describe(event, pod, container));
    Ok(())
}

impl Plugin for Logger {
    fn configure(config: &str, runtime: &RuntimeInfo) -> Result<Self, String> {
        let events = parse_events(config)?;
        log(
            Level::Info,
            &format!(
                "logging for {} {} (NRI {})",
                runtime.name, runtime.version, runtime.nri_version
            ),
        );
        Ok(Logger { events })
    }

    fn events(&self) -> Events {
        self.events
    }

    fn synchronize(
        &mut self,
        pods: &[PodSandbox],
        containers: &[Container],
    ) -> Result<Vec<nri_wasm_sdk::ContainerUpdate>, String> {
        log(
            Level::Info,
            &format!(
                "Synchronize: {} pods, {} containers",
                pods.len(),
                containers.len()
            ),
        );
        Ok(Vec::new())
    }
}

impl PodEvents for Logger {
    fn run_pod_sandbox(&mut self, pod: &PodSandbox) -> Result<(), String> {
        pod_line("RunPodSandbox", pod)
    }
    fn update_pod_sandbox(
        &mut self,
        pod: &PodSandbox,
        _: Option<&LinuxResources>,
        _: Option<&LinuxResources>,
    ) -> Result<(), String> {
        pod_line("UpdatePodSandbox", pod)
    }
    fn post_update_pod_sandbox(&mut self, pod: &PodSandbox) -> Result<(), String> {
        pod_line("PostUpdatePodSandbox", pod)
    }
    fn stop_pod_sandbox(&mut self, pod: &PodSandbox) -> Result<(), String> {
        pod_line("StopPodSandbox", pod)
    }
    fn remove_pod_sandbox(&mut self, pod: &PodSandbox) -> Result<(), String> {
        pod_line("RemovePodSandbox", pod)
    }
}

impl ContainerEvents for Logger {
    fn post_create_container(&mut self, pod: &PodSandbox, c: &Container) -> Result<(), String> {
        container_line("PostCreateContainer", pod, c)
    }
    fn start_container(&mut self, pod: &PodSandbox, c: &Container) -> Result<(), String> {
        container_line("StartContainer", pod, c)
    }
    fn post_start_container(&mut self, pod: &PodSandbox, c: &Container) -> Result<(), String> {
        container_line("PostStartContainer", pod, c)
    }
    fn post_update_container(&mut self, pod: &PodSandbox, c: &Container) -> Result<(), String> {
        container_line("PostUpdateContainer", pod, c)
    }
    fn remove_container(&mut self, pod: &PodSandbox, c: &Container) -> Result<(), String> {
        container_line("RemoveContainer", pod, c)
    }
}

impl Validator for Logger {
    fn validate(&mut self, request: &ValidateRequest) -> Result<(), String> {
        let plugins: Vec<String> = request
            .plugins
            .iter()
            .map(|p| format!("{}-{}", p.index, p.name))
            .collect();
        container_line(
            "ValidateContainerAdjustment",
            &request.pod,
            &request.container,
        )?;
        log(
            Level::Info,
            &format!("  adjusted by: {}", plugins.join(", ")),
        );
        Ok(())
    }
}

export!(Logger: pod_events, container_events, validator);

#[cfg(test)]
mod tests {
    use super::*;
    use nri_wasm_sdk::{ContainerState, Image};

    fn container(image: Option<&str>, annotation: Option<&str>) -> Container {
        Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            name: "app".into(),
            state: ContainerState::Created,
            labels: Vec::new(),
            annotations: annotation
                .map(|a| vec![("io.kubernetes.cri.image-name".to_string(), a.to_string())])
                .unwrap_or_default(),
            args: Vec::new(),
            env: Vec::new(),
            mounts: Vec::new(),
            hooks: None,
            linux: None,
            pid: 0,
            rlimits: Vec::new(),
            created_at: 0,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            status_reason: String::new(),
            status_message: String::new(),
            cdi_devices: Vec::new(),
            user: None,
            image: image.map(|name| Image {
                name: name.into(),
                digest: String::new(),
                config_digest: String::new(),
            }),
        }
    }

    #[test]
    fn the_image_is_named_from_the_event_or_its_annotation() {
        assert_eq!(image(&container(Some("nginx:1"), Some("other"))), "nginx:1");
        assert_eq!(image(&container(None, Some("redis:7"))), "redis:7");
        assert!(image(&container(Some(""), None)).starts_with("unknown"));
    }

    #[test]
    fn configuration_names_events() {
        assert_eq!(parse_events("").unwrap(), Events::all());
        assert_eq!(
            parse_events("RunPodSandbox, RemoveContainer").unwrap(),
            Events::RUN_POD_SANDBOX | Events::REMOVE_CONTAINER
        );
        assert_eq!(
            parse_events("CreateContainr").unwrap_err(),
            "unknown event \"CreateContainr\" in logger configuration"
        );
    }
}
