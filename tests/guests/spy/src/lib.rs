//! Reports what it was shown of the container being created, as the
//! annotations `spy.nri-wasm.io/env` (the env entries, joined by `;`) and
//! `spy.nri-wasm.io/args`, so tests can see what the host redacted.

use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

pub struct Spy;

impl Plugin for Spy {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        Ok(Spy)
    }
}

impl Adjuster for Spy {
    fn create_container(&mut self, _: &PodSandbox, c: &Container) -> Result<Adjustment, String> {
        Ok(Adjustment::new()
            .add_annotation("spy.nri-wasm.io/env", &c.env.join(";"))
            .add_annotation("spy.nri-wasm.io/args", &c.args.join(" ")))
    }
}

export!(Spy: adjuster);
