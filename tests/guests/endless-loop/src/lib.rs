//! Abuses time: CreateContainer never returns.
use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

pub struct Guest;

impl Plugin for Guest {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Guest)
    }
}

impl Adjuster for Guest {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(Guest: adjuster);
