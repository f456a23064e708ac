//! Abuses the stack: CreateContainer recurses without end.
use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

pub struct Guest;

impl Plugin for Guest {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Guest)
    }
}

#[allow(unconditional_recursion)]
fn descend(depth: u64) -> u64 {
    std::hint::black_box(descend(std::hint::black_box(depth + 1))) + 1
}

impl Adjuster for Guest {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        let depth = descend(0);
        Ok(Adjustment::new().add_env("DEPTH", &depth.to_string()))
    }
}

export!(Guest: adjuster);
