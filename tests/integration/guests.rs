//! Guests built from source for the tests: the example plugins and the
//! test guests, compiled once per test run into `target/test-plugins/`,
//! and copied by name into a plugin directory of a test's own.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use nri_wasm_guest_build::{build_examples, build_workspace, ensure_target};
use tempfile::TempDir;

/// The example plugins, as built.
pub const EXAMPLES: [&str; 12] = [
    "10-logger.wasm",
    "15-pod-metadata.wasm",
    "20-env-injector.wasm",
    "25-annotation-env.wasm",
    "30-ulimit-adjuster.wasm",
    "35-memory-clamp.wasm",
    "40-device-injector.wasm",
    "45-oom-score.wasm",
    "60-hook-injector.wasm",
    "90-validator.wasm",
    "92-mount-guard.wasm",
    "95-resource-policy.wasm",
];

/// Where the built components are.
pub struct Built {
    pub examples: PathBuf,
    pub test_guests: PathBuf,
}

/// Builds every guest once per test run.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = root.join("target/test-plugins");
        let target_dir = root.join("target/guests");
        ensure_target().expect("the wasm32 target is available");
        let built = Built {
            examples: out.join("examples"),
            test_guests: out.join("test-guests"),
        };
        build_examples(
            &root.join("guest-examples"),
            &root.join("wit"),
            &target_dir,
            &built.examples,
        )
        .expect("example plugins build");
        build_workspace(
            &root.join("tests/guests/Cargo.toml"),
            &target_dir,
            &built.test_guests,
        )
        .expect("test guests build");
        built
    })
}

/// The compile cache the tests share: every guest is compiled once per
/// build of the host, not once per test.
pub fn compile_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/compile-cache")
}

/// A plugin directory with the named guests (`NN-name.wasm`, looked up
/// among the examples, then the test guests) and an optional config.
pub fn plugin_dir(files: &[&str], config: Option<&str>) -> TempDir {
    let built = built();
    let dir = TempDir::new().unwrap();
    for file in files {
        let source = [&built.examples, &built.test_guests]
            .iter()
            .map(|d| d.join(file))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no guest {file} was built"));
        std::fs::copy(source, dir.path().join(file)).unwrap();
    }
    if let Some(config) = config {
        std::fs::write(dir.path().join("nri-wasm.toml"), config).unwrap();
    }
    dir
}
