//! Plugins from a real OCI registry: Distribution (Debian's
//! `docker-registry`) on a free port of loopback with storage of its own,
//! pushed to with `nri-wasm push` (and with skopeo, in another tool's
//! layout), pulled by the demo's daemon and run against the simulator.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nri_wasm::oci::{
    artifact::{descriptor, CNCF_CONFIG_MEDIA_TYPE, CNCF_LAYER_MEDIA_TYPE},
    registry::{Access, Registry},
    OciReference,
};
use oci_client::manifest::{OciImageManifest, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use tempfile::TempDir;

use crate::guests::built;

/// A Distribution registry serving plain HTTP on 127.0.0.1.
struct LocalRegistry {
    child: Child,
    port: u16,
    storage: TempDir,
    _config: TempDir,
}

impl LocalRegistry {
    fn start() -> LocalRegistry {
        let storage = TempDir::new().unwrap();
        let config = TempDir::new().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = config.path().join("config.yml");
        std::fs::write(
            &file,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry) runs; the test command installs it");
        let registry = LocalRegistry {
            child,
            port,
            storage,
            _config: config,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.0 200")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the registry on port {} never answered /v2/", self.port);
    }

    fn reference(&self, repository_and_tag: &str) -> String {
        format!("oci://127.0.0.1:{}/{repository_and_tag}", self.port)
    }

    /// The file Distribution keeps blob `digest` (hex) in.
    fn blob_file(&self, hex: &str) -> PathBuf {
        self.storage.path().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `nri-wasm ARGS`, logging warnings: success, stdout, stderr.
fn nri_wasm(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_nri-wasm"))
        .args(args)
        .env("NRI_WASM_LOG", "warn")
        .env("DOCKER_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn guest(file: &str) -> PathBuf {
    let built = built();
    [&built.examples, &built.test_guests]
        .iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no guest {file} was built"))
}

/// Pushes `file` to `reference`; returns the pinned reference it printed.
fn push(file: &str, reference: &str, extra: &[&str]) -> String {
    let path = guest(file);
    let mut args = vec!["push", path.to_str().unwrap(), reference];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = nri_wasm(&args);
    assert!(ok, "push failed: {stdout}\n{stderr}");
    let pinned = stdout
        .lines()
        .find_map(|l| l.strip_prefix("pushed "))
        .unwrap_or_else(|| panic!("push printed no reference: {stdout}"));
    pinned.to_string()
}

/// The index line a section without a pin or a signature needs.
const INDEX: &str = "index = \"20\"";

/// The env-injector's section, its plugin from `source`, plus `extra`.
fn env_injector(source: &str, extra: &str) -> String {
    format!(
        "[plugins.env-injector]\nsource = \"{source}\"\nconfig = \"env INJECTED=1\"\ngrants = {{ env = [\"INJECTED\"] }}\n{extra}\n"
    )
}

/// A node: a plugin directory with `files` and `config`, and a cache
/// (compiled code and the store of pulled plugins) that outlives runs.
struct Node {
    plugins: TempDir,
    cache: TempDir,
}

impl Node {
    fn new(files: &[&str]) -> Node {
        let plugins = TempDir::new().unwrap();
        for file in files {
            std::fs::copy(guest(file), plugins.path().join(file)).unwrap();
        }
        Node {
            plugins,
            cache: TempDir::new().unwrap(),
        }
    }

    /// Runs the demo with `config`: success, stdout, stderr.
    fn demo(&self, config: &str) -> (bool, String, String) {
        std::fs::write(self.plugins.path().join("nri-wasm.toml"), config).unwrap();
        nri_wasm(&[
            "demo",
            "--plugins",
            self.plugins.path().to_str().unwrap(),
            "--cache-dir",
            self.cache.path().to_str().unwrap(),
        ])
    }

    /// Runs the demo and returns its output, asserting the env-injector
    /// pulled from the registry ran (or was refused, saying `refused`).
    fn injects(&self, config: &str) -> (String, String) {
        let (ok, stdout, stderr) = self.demo(config);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains("20-env-injector"), "{stdout}\n{stderr}");
        assert!(stdout.contains("+ env INJECTED=1"), "{stdout}\n{stderr}");
        (stdout, stderr)
    }

    fn refuses(&self, config: &str, reason: &str) -> String {
        let (ok, stdout, stderr) = self.demo(config);
        assert!(ok, "{stdout}\n{stderr}");
        let refused = stdout
            .lines()
            .find(|l| l.starts_with("refused plugin oci://"))
            .unwrap_or_else(|| panic!("nothing refused: {stdout}\n{stderr}"));
        assert!(
            refused.contains(reason),
            "refused for another reason: {refused}"
        );
        assert!(!stdout.contains("+ env INJECTED=1"), "{stdout}");
        refused.to_string()
    }
}

fn digest_of(pinned: &str) -> &str {
    &pinned[pinned.rfind("@sha256:").unwrap() + 8..]
}

/// A P-256 key pair made by openssl: (private, public).
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    for args in [
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            private.to_str().unwrap(),
        ],
        vec![
            "ec",
            "-in",
            private.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ],
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (private, public)
}

#[test]
fn a_pushed_plugin_is_pulled_by_tag_and_by_digest_and_runs() {
    let registry = LocalRegistry::start();
    let tag = registry.reference("plugins/env-injector:v1");
    let pinned = push("20-env-injector.wasm", &tag, &[]);
    assert!(pinned.starts_with(&format!("{tag}@sha256:")), "{pinned}");
    let file = guest("20-env-injector.wasm");
    let untagged = registry.reference("plugins/env-injector");
    let (ok, _, stderr) = nri_wasm(&["push", file.to_str().unwrap(), &untagged]);
    assert!(!ok && stderr.contains("push to a tag"), "{stderr}");

    // An unpinned, unsigned artifact does not choose its call order.
    Node::new(&[]).refuses(&env_injector(&tag, ""), "give the section an `index");
    let (_, stderr) = Node::new(&[]).injects(&env_injector(&tag, INDEX));
    assert!(
        stderr.contains("pinned by no digest"),
        "an unpinned tag is warned of: {stderr}"
    );
    // A file of the same name in the plugin directory does not stand in
    // for what the section takes from the registry.
    let (stdout, stderr) = Node::new(&["20-env-injector.wasm"]).injects(&env_injector(&pinned, ""));
    assert!(!stderr.contains("pinned by no digest"), "{stderr}");
    assert!(
        stdout.contains(
            "20-env-injector.wasm: its section [plugins.env-injector] takes the plugin from oci://"
        ),
        "{stdout}"
    );

    // check works on a reference as on a file, naming what was pushed.
    let cache = TempDir::new().unwrap();
    let (ok, stdout, stderr) = nri_wasm(&[
        "check",
        &pinned,
        "--cache-dir",
        cache.path().to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("guest:      20-env-injector"), "{stdout}");
    assert!(stdout.contains("CreateContainer"), "{stdout}");
    assert!(
        stderr.contains(&format!("manifest sha256:{}", digest_of(&pinned))),
        "{stderr}"
    );
}

#[test]
fn signatures_are_verified_and_unsigned_or_foreign_ones_refused() {
    let registry = LocalRegistry::start();
    let keys = TempDir::new().unwrap();
    let (team, team_pub) = key_pair(keys.path(), "team");
    let (_, other_pub) = key_pair(keys.path(), "other");
    let signed = push(
        "20-env-injector.wasm",
        &registry.reference("plugins/env-injector:signed"),
        &["--sign-key", team.to_str().unwrap()],
    );
    let unsigned = push(
        "20-env-injector.wasm",
        &registry.reference("plugins/unsigned:v1"),
        &[],
    );
    let verify = |key: &Path| format!("verify = {{ key = \"{}\" }}", key.display());
    let require = "[defaults]\nrequire-signature = true\n";

    let node = Node::new(&[]);
    node.injects(&env_injector(&signed, &verify(&team_pub)));
    node.injects(&format!(
        "{require}{}",
        env_injector(&signed, &verify(&team_pub))
    ));
    let refused = Node::new(&[]).refuses(
        &env_injector(&signed, &verify(&other_pub)),
        "not signed by the configured key",
    );
    assert!(
        refused.contains(&format!("manifest sha256:{}", digest_of(&signed))),
        "{refused}"
    );
    assert!(
        refused.contains(&signed),
        "the refusal names the reference: {refused}"
    );
    // The warm store of the node that verified it does not help another key.
    node.refuses(
        &env_injector(&signed, &verify(&other_pub)),
        "not signed by the configured key",
    );
    Node::new(&[]).refuses(
        &env_injector(&unsigned, &verify(&team_pub)),
        "it has no signature",
    );
    // The same artifact in another repository, with the first one's
    // signature copied beside it: a signature names its repository.
    let copied = push(
        "20-env-injector.wasm",
        &registry.reference("plugins/copy:v1"),
        &[],
    );
    assert_eq!(digest_of(&copied), digest_of(&signed));
    let sig_tag = format!("sha256-{}.sig", digest_of(&signed));
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--preserve-digests"])
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!(
            "docker://127.0.0.1:{}/plugins/env-injector:{sig_tag}",
            registry.port
        ))
        .arg(format!(
            "docker://127.0.0.1:{}/plugins/copy:{sig_tag}",
            registry.port
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Node::new(&[]).refuses(
        &env_injector(&copied, &verify(&team_pub)),
        "it signs an artifact of",
    );
    Node::new(&[]).refuses(
        &format!("{require}{}", env_injector(&signed, "")),
        "require-signature = true",
    );

    // Under require-signature, a plugin file (which carries no signature)
    // is refused while the signed registry plugin runs.
    let node = Node::new(&["10-logger.wasm"]);
    let (ok, stdout, stderr) = node.demo(&format!(
        "{require}{}",
        env_injector(&signed, &verify(&team_pub))
    ));
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "10-logger.wasm: is a file of the plugin directory, which carries no signature"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("+ env INJECTED=1"), "{stdout}");
}

#[test]
fn a_tampered_layer_and_a_wrong_digest_are_refused() {
    let registry = LocalRegistry::start();
    let pinned = push(
        "20-env-injector.wasm",
        &registry.reference("plugins/env-injector:v1"),
        &[],
    );
    let wrong = format!(
        "{}@sha256:{}",
        &pinned[..pinned.rfind('@').unwrap()],
        "0".repeat(64)
    );
    let refused = Node::new(&[]).refuses(&env_injector(&wrong, ""), "cannot pull its manifest");
    assert!(
        refused.contains(&format!("manifest sha256:{}", "0".repeat(64))),
        "{refused}"
    );

    // Same tag, other bytes: the registry's stored layer is altered.
    let component = std::fs::read(guest("20-env-injector.wasm")).unwrap();
    let layer = nri_wasm::runtime::ContentDigest::of(&component).to_string();
    let file = registry.blob_file(&layer);
    let mut altered = std::fs::read(&file).unwrap();
    *altered.last_mut().unwrap() ^= 1;
    std::fs::write(&file, altered).unwrap();
    Node::new(&[]).refuses(&env_injector(&pinned, ""), &format!("blob sha256:{layer}"));
}

#[tokio::test]
async fn oversized_layers_are_refused_before_and_while_downloading() {
    let registry = LocalRegistry::start();
    let component = std::fs::read(guest("20-env-injector.wasm")).unwrap();
    let declared = |size: i64| {
        let mut layer = descriptor(CNCF_LAYER_MEDIA_TYPE, &component);
        layer.size = size;
        layer
    };
    let huge = publish_by_hand(
        &registry,
        "plugins/huge:v1",
        CNCF_CONFIG_MEDIA_TYPE,
        &component,
        declared(65 << 20),
    )
    .await;
    Node::new(&[]).refuses(
        &format!("{}index = \"20\"\n", env_injector(&huge, "")),
        "declares 68157440 bytes, more than the 67108864 accepted",
    );
    let lying = publish_by_hand(
        &registry,
        "plugins/lying:v1",
        CNCF_CONFIG_MEDIA_TYPE,
        &component,
        declared(1000),
    )
    .await;
    Node::new(&[]).refuses(
        &format!("{}index = \"20\"\n", env_injector(&lying, "")),
        "sends more than the 1000 bytes its manifest declares",
    );
}

/// Pushes `component` under a manifest of config type `config_type` and
/// the given layer descriptor, as another tool would; returns the pinned
/// reference.
async fn publish_by_hand(
    registry: &LocalRegistry,
    repository_and_tag: &str,
    config_type: &str,
    component: &[u8],
    layer: oci_client::manifest::OciDescriptor,
) -> String {
    let reference: OciReference = registry.reference(repository_and_tag).parse().unwrap();
    let client = Registry::connect(&reference, &Access::default()).unwrap();
    let at = reference.client_reference();
    let config = b"{}";
    client.push_blob(&at, config).await.unwrap();
    client.push_blob(&at, component).await.unwrap();
    let manifest = serde_json::to_vec(&OciImageManifest {
        media_type: Some(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.into()),
        config: descriptor(config_type, config),
        layers: vec![layer],
        ..OciImageManifest::default()
    })
    .unwrap();
    client.push_manifest(&at, &manifest).await.unwrap();
    reference.pinned(nri_wasm::runtime::ContentDigest::of(&manifest))
}

#[test]
fn a_node_restarts_while_its_registry_is_down() {
    let mut registry = LocalRegistry::start();
    let tag = registry.reference("plugins/env-injector:v1");
    let pinned = push("20-env-injector.wasm", &tag, &[]);
    let keys = TempDir::new().unwrap();
    let (team, team_pub) = key_pair(keys.path(), "team");
    let signed = push(
        "20-env-injector.wasm",
        &registry.reference("plugins/signed:v1"),
        &["--sign-key", team.to_str().unwrap()],
    );
    let verified = format!("verify = {{ key = \"{}\" }}", team_pub.display());
    let warm = Node::new(&["10-logger.wasm"]);
    warm.injects(&env_injector(&tag, INDEX));
    warm.injects(&env_injector(&pinned, ""));
    warm.injects(&env_injector(&signed, &verified));
    registry.stop();

    // Pinned: the store answers without asking the registry, signature
    // and all.
    let (_, stderr) = warm.injects(&env_injector(&pinned, ""));
    assert!(!stderr.contains("cannot be reached"), "{stderr}");
    let (_, stderr) = warm.injects(&env_injector(&signed, &verified));
    assert!(!stderr.contains("cannot be reached"), "{stderr}");
    // A tag: what it named when last resolved, said so.
    let (_, stderr) = warm.injects(&env_injector(&tag, INDEX));
    assert!(
        stderr.contains("the registry cannot be reached; running what it gave before"),
        "{stderr}"
    );
    // A cold node refuses the plugin, naming why, and runs the rest.
    let cold = Node::new(&["10-logger.wasm"]);
    cold.refuses(&env_injector(&pinned, ""), "cannot pull its manifest");
    let (_, stdout, _) = cold.demo(&env_injector(&pinned, ""));
    assert!(
        stdout.contains("guests in") && stdout.contains("10-logger"),
        "{stdout}"
    );
}

#[test]
fn an_artifact_in_the_kwctl_layout_copied_by_skopeo_runs() {
    let registry = LocalRegistry::start();
    let layout = TempDir::new().unwrap();
    let component = std::fs::read(guest("20-env-injector.wasm")).unwrap();
    let config = b"{}";
    let manifest = serde_json::to_vec(&OciImageManifest {
        media_type: Some(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.into()),
        config: descriptor(WASM_CONFIG_MEDIA_TYPE, config),
        layers: vec![descriptor(WASM_LAYER_MEDIA_TYPE, &component)],
        ..OciImageManifest::default()
    })
    .unwrap();
    let blobs = layout.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for blob in [&config[..], &component, &manifest] {
        let hex = nri_wasm::runtime::ContentDigest::of(blob).to_string();
        std::fs::write(blobs.join(hex), blob).unwrap();
    }
    let manifest_descriptor = serde_json::json!({
        "mediaType": oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
        "digest": format!("sha256:{}", nri_wasm::runtime::ContentDigest::of(&manifest)),
        "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    });
    std::fs::write(
        layout.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.path().join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [manifest_descriptor]}).to_string(),
    )
    .unwrap();
    let destination = format!(
        "docker://127.0.0.1:{}/plugins/kwctl-style:v1",
        registry.port
    );
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:v1", layout.path().display()))
        .arg(&destination)
        .output()
        .expect("skopeo (Debian package skopeo) runs; the test command installs it");
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pinned = format!(
        "{}@sha256:{}",
        registry.reference("plugins/kwctl-style:v1"),
        nri_wasm::runtime::ContentDigest::of(&manifest)
    );
    // The layout carries no plugin index: the section gives it.
    Node::new(&[]).refuses(&env_injector(&pinned, ""), "carries no plugin index");
    Node::new(&[]).injects(&env_injector(&pinned, "index = \"20\""));
}

/// Writes the configuration as a ConfigMap update does: beside, then
/// renamed.
fn write_config(dir: &Path, text: &str) {
    let temp = dir.join(".nri-wasm.toml.new");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(temp, dir.join("nri-wasm.toml")).unwrap();
}

/// A configuration, `before` its env-injector section taking the plugin
/// from `source`, granted what the env-injector and the counter set.
fn swappable(source: &str, before: &str) -> String {
    format!(
        "{before}[plugins.env-injector]\nsource = \"{source}\"\n{INDEX}\nconfig = \"env INJECTED=1\"\ngrants = {{ env = [\"INJECTED\", \"COUNT\"] }}\n"
    )
}

/// The simulated runtime and the real daemon with the plugins of
/// `plugins`, registered; and the runtime's socket directory.
async fn start_node(plugins: &Path) -> (nri_sim::Simulator, crate::daemon::Daemon, TempDir) {
    let dir = TempDir::new().unwrap();
    let config = nri_sim::SimConfig::containerd_2_3(nri_sim::socket_in(dir.path()));
    let sim = nri_sim::Simulator::start(config).await.unwrap();
    let daemon = crate::daemon::Daemon::start(sim.socket(), plugins);
    let registered = sim
        .wait_for_plugin(crate::harness::HOST_ID, Duration::from_secs(20))
        .await;
    assert!(registered, "the daemon never registered:\n{}", daemon.log());
    (sim, daemon, dir)
}

/// Creates a container and returns its environment.
async fn created_env(sim: &nri_sim::Simulator, n: usize) -> Vec<String> {
    sim.create_container(crate::harness::container("p1", &format!("c{n}")))
        .await
        .unwrap()
        .env
}

#[tokio::test]
async fn a_changed_reference_is_pulled_and_swapped_and_a_failed_pull_keeps_the_running_guest() {
    let mut registry = LocalRegistry::start();
    let v1 = push(
        "20-env-injector.wasm",
        &registry.reference("plugins/env:v1"),
        &[],
    );
    let v2 = push(
        "50-counter.wasm",
        &registry.reference("plugins/env:v2"),
        &[],
    );
    let v3 = push("10-logger.wasm", &registry.reference("plugins/env:v3"), &[]);
    let section = |source: &str| swappable(source, "");
    let plugins = TempDir::new().unwrap();
    write_config(plugins.path(), &section(&v1));
    let (sim, daemon, _runtime_dir) = start_node(plugins.path()).await;
    let status = daemon.status_address().await;
    let runs = |pinned: &str| {
        format!(
            "nri_wasm_registry_guest_manifest{{guest=\"20-env-injector\",manifest=\"sha256:{}\"}} 1",
            digest_of(pinned)
        )
    };
    let (_, metrics) = crate::status::get(status, "/metrics").await;
    assert!(metrics.contains(&runs(&v1)), "{metrics}");
    sim.run_pod_sandbox(crate::harness::pod("p1"))
        .await
        .unwrap();
    let env = created_env(&sim, 1).await;
    assert!(env.contains(&"INJECTED=1".to_string()), "{env:?}");

    write_config(plugins.path(), &section(&v2));
    daemon.wait_for_log("replaced=[\"20-env-injector\"]").await;
    let env = created_env(&sim, 2).await;
    assert!(
        env.iter().any(|e| e.starts_with("COUNT=")),
        "the new guest serves: {env:?}"
    );
    let (_, metrics) = crate::status::get(status, "/metrics").await;
    assert!(
        metrics.contains(&runs(&v2)) && !metrics.contains(&runs(&v1)),
        "{metrics}"
    );

    // The registry goes away and the section names a version never
    // pulled: the pull fails, the running version stays (loaded again,
    // with the section as it is now), and the pull is retried.
    registry.stop();
    write_config(plugins.path(), &section(&v3));
    daemon
        .wait_for_log(&format!(
            "running sha256:{} until sha256:{} can be pulled",
            digest_of(&v2),
            digest_of(&v3)
        ))
        .await;
    daemon
        .wait_for_log("pulling the registry plugins that failed again")
        .await;
    let env = created_env(&sim, 3).await;
    assert!(
        env.iter().any(|e| e.starts_with("COUNT=")),
        "the running guest stays: {env:?}"
    );
    let (_, metrics) = crate::status::get(status, "/metrics").await;
    assert!(metrics.contains(&runs(&v2)), "{metrics}");
    assert!(metrics.contains("nri_wasm_plugins_refused 0"), "{metrics}");

    // The section now asks for a signature the running version lacks: it
    // stops, though the registry is down.
    let keys = TempDir::new().unwrap();
    let (_, team_pub) = key_pair(keys.path(), "team");
    write_config(
        plugins.path(),
        &format!(
            "{}verify = {{ key = \"{}\" }}\n",
            section(&v2),
            team_pub.display()
        ),
    );
    daemon.wait_for_log("removed=[\"20-env-injector\"]").await;
    let env = created_env(&sim, 4).await;
    assert!(
        !env.iter().any(|e| e.starts_with("COUNT=")),
        "an unverified version does not run: {env:?}"
    );
    drop(daemon);
    sim.stop().await;
}

#[tokio::test]
async fn a_moved_tag_is_resolved_again_on_the_interval() {
    let registry = LocalRegistry::start();
    let tag = registry.reference("plugins/env:moving");
    push("20-env-injector.wasm", &tag, &[]);
    let plugins = TempDir::new().unwrap();
    write_config(
        plugins.path(),
        &swappable(&tag, "[daemon]\nresolve-interval = \"10s\"\n\n"),
    );
    let (sim, daemon, _runtime_dir) = start_node(plugins.path()).await;
    sim.run_pod_sandbox(crate::harness::pod("p1"))
        .await
        .unwrap();
    assert!(created_env(&sim, 1)
        .await
        .contains(&"INJECTED=1".to_string()));

    // The tag moves to other content; no file changes on the node.
    push("50-counter.wasm", &tag, &[]);
    tokio::time::timeout(Duration::from_secs(30), async {
        while !daemon.log().contains("replaced=[\"20-env-injector\"]") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the moved tag was never resolved again:\n{}", daemon.log()));
    let env = created_env(&sim, 2).await;
    assert!(env.iter().any(|e| e.starts_with("COUNT=")), "{env:?}");
    drop(daemon);
    sim.stop().await;
}
