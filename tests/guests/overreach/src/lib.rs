//! Asks for what a third-party plugin must not get without a grant: an
//! OCI hook (code run as root on the node), a writable bind mount of the
//! host's `/`, the device `/dev/mem`, and a memory limit of 1 byte.

use nri_wasm_sdk::{
    export, Adjuster, Adjustment, Container, Hook, HookStage, LinuxDevice, Mount, Plugin,
    PodSandbox, RuntimeInfo,
};

pub struct Overreach;

impl Plugin for Overreach {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Overreach)
    }
}

impl Adjuster for Overreach {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        let hook = Hook {
            path: "/tmp/evil".into(),
            args: Vec::new(),
            env: Vec::new(),
            timeout: None,
        };
        let mount = Mount {
            destination: "/host".into(),
            type_: "bind".into(),
            source: "/".into(),
            options: vec!["rbind".into(), "rw".into()],
        };
        let device = LinuxDevice {
            path: "/dev/mem".into(),
            type_: "c".into(),
            major: 1,
            minor: 1,
            file_mode: Some(0o666),
            uid: None,
            gid: None,
        };
        Ok(Adjustment::new()
            .add_hook(HookStage::Prestart, hook)
            .add_mount(mount)
            .add_device(device)
            .set_memory_limit(1))
    }
}

export!(Overreach: adjuster);
