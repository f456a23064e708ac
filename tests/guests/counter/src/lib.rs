//! Keeps state across events: the number of containers it knows of,
//! learnt from Synchronize and counted up on each CreateContainer, which it
//! sets as env COUNT. A container named `crash` makes it panic, so tests
//! can see the host rebuild and resynchronize it.

use nri_wasm_sdk::{
    export, Adjuster, Adjustment, Container, ContainerUpdate, Plugin, PodSandbox, RuntimeInfo,
};

pub struct Counter {
    known: usize,
}

impl Plugin for Counter {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Counter { known: 0 })
    }

    fn synchronize(
        &mut self,
        _: &[PodSandbox],
        containers: &[Container],
    ) -> Result<Vec<ContainerUpdate>, String> {
        self.known = containers.len();
        Ok(Vec::new())
    }
}

impl Adjuster for Counter {
    fn create_container(&mut self, _: &PodSandbox, c: &Container) -> Result<Adjustment, String> {
        if c.name == "crash" {
            panic!("asked to crash");
        }
        self.known += 1;
        Ok(Adjustment::new().add_env("COUNT", &self.known.to_string()))
    }
}

export!(Counter: adjuster);
