//! Panics in CreateContainer (a trap, for the host).
use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

pub struct Guest;

impl Plugin for Guest {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Guest)
    }
}

impl Adjuster for Guest {
    fn create_container(&mut self, _: &PodSandbox, c: &Container) -> Result<Adjustment, String> {
        panic!("refusing to look at container {}", c.name);
    }
}

export!(Guest: adjuster);
