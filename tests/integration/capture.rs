//! Frames captured on the NRI socket of real runtimes, from
//! `../shared/nri-traces/` (or `$NRI_TRACES_DIR`): one JSON object per
//! frame with who sent it, its mux connection and its payload in hex.

use std::path::{Path, PathBuf};

/// One captured frame.
pub struct Captured {
    /// Whether the runtime (rather than the plugin) wrote it.
    pub from_runtime: bool,
    /// Its mux connection id.
    pub conn: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

pub fn traces_dir() -> PathBuf {
    let dir = std::env::var_os("NRI_TRACES_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/nri-traces"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "no NRI traces at {} (set NRI_TRACES_DIR)",
        dir.display()
    );
    dir
}

/// The names of every captured trace.
pub fn trace_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(traces_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    names.sort();
    names
}

pub fn read_trace(name: &str) -> Vec<Captured> {
    let text = std::fs::read_to_string(traces_dir().join(name)).expect("trace readable");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let hex = v["hex"].as_str().expect("hex field");
            let payload: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            assert_eq!(payload.len() as u64, v["len"].as_u64().unwrap());
            Captured {
                from_runtime: v["from"] == "runtime",
                conn: v["conn"].as_u64().unwrap() as u32,
                payload,
            }
        })
        .collect()
}
