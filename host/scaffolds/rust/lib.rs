//! {{name}}: sets TEAM in the environment of every new container from its
//! pod's `team` label. Containers of pods without the label are left alone.

wit_bindgen::generate!({ path: "wit", world: "adjusting" });

use exports::nri::plugin::{adjuster, lifecycle};
use nri::plugin::{
    log::{log, Level},
    types::{
        Container, ContainerAdjustment, ContainerUpdate, CreateReply, Events, LinuxResources,
        PodSandbox, RuntimeInfo, UpdateReply,
    },
};

const LABEL: &str = "team";
const ENV: &str = "TEAM";

struct Plugin;

impl lifecycle::Guest for Plugin {
    fn configure(_config: String, _runtime: RuntimeInfo) -> Result<Events, String> {
        log(Level::Info, &format!("setting {ENV} from the pod label {LABEL}"));
        Ok(Events::CREATE_CONTAINER)
    }

    fn synchronize(
        _pods: Vec<PodSandbox>,
        _containers: Vec<Container>,
    ) -> Result<Vec<ContainerUpdate>, String> {
        Ok(Vec::new())
    }
}

impl adjuster::Guest for Plugin {
    fn create_container(pod: PodSandbox, _container: Container) -> Result<CreateReply, String> {
        let team = pod.labels.iter().find(|(key, _)| key == LABEL);
        Ok(CreateReply {
            adjust: team.map(|(_, team)| set_env(ENV, team)),
            updates: Vec::new(),
            evictions: Vec::new(),
        })
    }

    fn update_container(
        _pod: PodSandbox,
        _container: Container,
        _resources: Option<LinuxResources>,
    ) -> Result<UpdateReply, String> {
        Ok(no_updates())
    }

    fn stop_container(_pod: PodSandbox, _container: Container) -> Result<UpdateReply, String> {
        Ok(no_updates())
    }
}

fn set_env(name: &str, value: &str) -> ContainerAdjustment {
    ContainerAdjustment {
        annotations: Vec::new(),
        mounts: Vec::new(),
        env: vec![(name.to_string(), value.to_string())],
        hooks: None,
        linux: None,
        rlimits: Vec::new(),
        cdi_devices: Vec::new(),
        args: Vec::new(),
    }
}

fn no_updates() -> UpdateReply {
    UpdateReply {
        updates: Vec::new(),
        evictions: Vec::new(),
    }
}

export!(Plugin);
