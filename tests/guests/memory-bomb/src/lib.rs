//! Abuses memory: CreateContainer allocates until it is stopped.
use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

pub struct Guest;

impl Plugin for Guest {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Guest)
    }
}

impl Adjuster for Guest {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
        }
    }
}

export!(Guest: adjuster);
