//! Uses WASI: at configure it reads `/data/env.txt` (`KEY=value` lines)
//! from a directory the operator preopened, and sets those entries on
//! every container. It also tries to write there, and reports whether it
//! could, so tests can see that preopens are read-only.

use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

pub struct DataReader {
    env: Vec<(String, String)>,
    wrote: bool,
}

impl Plugin for DataReader {
    fn configure(_: &str, _: &RuntimeInfo) -> Result<Self, String> {
        let text = std::fs::read_to_string("/data/env.txt")
            .map_err(|e| format!("reading /data/env.txt: {e}"))?;
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let wrote = std::fs::write("/data/written.txt", b"x").is_ok();
        Ok(DataReader { env, wrote })
    }
}

impl Adjuster for DataReader {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        let adjustment = self
            .env
            .iter()
            .fold(Adjustment::new(), |a, (k, v)| a.add_env(k, v));
        Ok(adjustment.add_env("DATA_READER_WROTE", if self.wrote { "yes" } else { "no" }))
    }
}

export!(DataReader: adjuster);
