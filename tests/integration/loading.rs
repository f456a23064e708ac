//! Loading the plugin directory: files that cannot be guests are refused
//! with their name and the reason, and the others load.

use nri_wasm::runtime::{
    loader::{load_plugins, open_dir, LoadReport},
    CompileCache, GuestId, SandboxSpec, WasmEngine,
};

use crate::guests::plugin_dir;

/// Loads the plugin directory `plugins` with a fresh engine and no cache.
fn load(plugins: &std::path::Path, sandbox: impl Fn(&GuestId) -> SandboxSpec) -> LoadReport {
    let engine = WasmEngine::new().unwrap();
    let cache = CompileCache::new(engine.engine(), None);
    let dir = open_dir(plugins).unwrap();
    load_plugins(&engine, &cache, &dir, plugins, sandbox).unwrap()
}

#[test]
fn bad_plugin_files_are_refused_with_file_and_reason_and_the_rest_load() {
    let plugins = plugin_dir(&["10-logger.wasm"], None);
    let write =
        |name: &str, bytes: &[u8]| std::fs::write(plugins.path().join(name), bytes).unwrap();
    write("20-garbage.wasm", b"this is not wasm");
    write("30-core.wasm", b"\0asm\x01\0\0\0");
    write("noindex.wasm", b"\0asm\x01\0\0\0");
    write("README.md", b"ignored: not a .wasm file");
    std::fs::copy(
        plugins.path().join("10-logger.wasm"),
        plugins.path().join("40-logger.wasm"),
    )
    .unwrap();

    let report = load(plugins.path(), |_| SandboxSpec::default());

    let loaded: Vec<String> = report.guests.iter().map(|g| g.id().to_string()).collect();
    assert_eq!(loaded, ["10-logger"]);
    let refused: Vec<(String, String)> = report
        .refused
        .iter()
        .map(|r| {
            (
                r.file.file_name().unwrap().to_string_lossy().into_owned(),
                r.reason.clone(),
            )
        })
        .collect();
    let reason = |file: &str| {
        refused
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, r)| r.as_str())
            .unwrap_or("")
    };
    assert!(
        reason("20-garbage.wasm").starts_with("is not a valid Wasm component:"),
        "{refused:?}"
    );
    assert!(
        reason("30-core.wasm").starts_with("is a core Wasm module, not a component"),
        "{refused:?}"
    );
    assert_eq!(
        reason("noindex.wasm"),
        "not named NN-name.wasm (NN: two-digit index)"
    );
    assert_eq!(
        reason("40-logger.wasm"),
        "name \"logger\" is already taken by 10-logger"
    );
    assert_eq!(refused.len(), 4);
}

#[test]
fn a_component_of_another_world_is_refused_naming_what_it_misses() {
    // A guest importing anything but nri:plugin/log and WASI 0.2.
    let wat = r#"(component
        (import "example:net/socket@0.1.0" (instance (export "connect" (func (param "host" string)))))
    )"#;
    let plugins = plugin_dir(&[], None);
    let component = wat::parse_str(wat).unwrap();
    std::fs::write(plugins.path().join("10-wasi.wasm"), component).unwrap();
    std::fs::write(
        plugins.path().join("20-empty.wasm"),
        wat::parse_str("(component)").unwrap(),
    )
    .unwrap();

    let report = load(plugins.path(), |_| SandboxSpec::default());
    assert!(report.guests.is_empty());
    let reasons: Vec<&str> = report.refused.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons[0].starts_with("does not fit the nri:plugin world:")
            && reasons[0].contains("example:net/socket@0.1.0"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "does not fit the nri:plugin world: exports none of the nri:plugin@0.1.0 interfaces (lifecycle, pod-events, container-events, adjuster, validator)");
}

#[test]
fn plugin_files_and_directories_others_can_write_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let plugins = plugin_dir(&["10-logger.wasm", "20-env-injector.wasm"], None);
    let chmod = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    chmod(&plugins.path().join("20-env-injector.wasm"), 0o666);
    let engine = WasmEngine::new().unwrap();
    let cache = CompileCache::new(engine.engine(), None);
    let load = || {
        let dir = open_dir(plugins.path()).unwrap();
        load_plugins(&engine, &cache, &dir, plugins.path(), |_| {
            SandboxSpec::default()
        })
    };

    let report = load().unwrap();
    let loaded: Vec<String> = report.guests.iter().map(|g| g.id().to_string()).collect();
    assert_eq!(loaded, ["10-logger"]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(
        report.refused[0].reason,
        "is writable by its group and everyone (mode 0666); only its owner may write it"
    );

    chmod(plugins.path(), 0o777);
    let err = load()
        .err()
        .expect("a directory anyone can write loads nothing");
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(
        err.to_string().ends_with(
            "is writable by its group and everyone (mode 0777); only its owner may write it"
        ),
        "{err}"
    );
    chmod(plugins.path(), 0o700);
}

#[test]
fn a_pinned_digest_loads_only_that_content() {
    use sha2::Digest;
    let plugins = plugin_dir(&["10-logger.wasm", "20-env-injector.wasm"], None);
    let logger = std::fs::read(plugins.path().join("10-logger.wasm")).unwrap();
    let logger_digest = format!("sha256:{:x}", sha2::Sha256::digest(&logger));
    let other = "sha256:".to_string() + &"ab".repeat(32);
    let config = nri_wasm::config::Config::parse(&format!(
        "[plugins.logger]\ndigest = \"{logger_digest}\"\n[plugins.env-injector]\ndigest = \"{other}\"\n"
    ))
    .unwrap();

    let report = load(plugins.path(), |id| config.guest(&id.name).sandbox());

    let loaded: Vec<String> = report.guests.iter().map(|g| g.id().to_string()).collect();
    assert_eq!(loaded, ["10-logger"]);
    let env_digest = format!(
        "sha256:{:x}",
        sha2::Sha256::digest(std::fs::read(plugins.path().join("20-env-injector.wasm")).unwrap())
    );
    assert_eq!(report.refused.len(), 1);
    assert_eq!(
        report.refused[0].reason,
        format!("has content {env_digest}, not the {other} its configuration pins")
    );

    let bad =
        nri_wasm::config::Config::parse("[plugins.logger]\ndigest = \"md5:00\"\n").unwrap_err();
    assert!(
        bad.contains("invalid digest \"md5:00\": write \"sha256:\" and 64 hex digits"),
        "{bad}"
    );
}

#[test]
fn a_plugin_file_over_the_size_limit_is_refused_unread() {
    use nri_wasm::runtime::loader::MAX_PLUGIN_FILE;
    let plugins = plugin_dir(&["10-logger.wasm"], None);
    let big = std::fs::File::create(plugins.path().join("20-big.wasm")).unwrap();
    // Sparse: the limit is checked before anything is read.
    big.set_len(MAX_PLUGIN_FILE + 1).unwrap();

    let report = load(plugins.path(), |_| SandboxSpec::default());
    let loaded: Vec<String> = report.guests.iter().map(|g| g.id().to_string()).collect();
    assert_eq!(loaded, ["10-logger"]);
    assert_eq!(
        report.refused[0].reason,
        format!(
            "cannot read: {} bytes, more than the {MAX_PLUGIN_FILE} accepted",
            MAX_PLUGIN_FILE + 1
        )
    );
}
