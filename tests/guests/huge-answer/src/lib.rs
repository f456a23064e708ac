//! Abuses the answer: CreateContainer sets 40,000 env vars (about 4 MB).
use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

pub struct Guest;

impl Plugin for Guest {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Guest)
    }
}

impl Adjuster for Guest {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        let value = "x".repeat(100);
        Ok((0..40_000).fold(Adjustment::new(), |a, i| {
            a.add_env(&format!("HUGE_{i}"), &value)
        }))
    }
}

export!(Guest: adjuster);
