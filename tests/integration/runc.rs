//! Issue #16: the test of a grant is what runc receives. Here the
//! adjustment nri-wasm sends for a granted answer goes into an OCI spec as
//! containerd's generator writes it (`nri_sim::oci`), runc 1.x runs a
//! busybox container from it, and a probe inside reports what the
//! container really got. For each grant, the answer the checker refuses
//! is run too, straight into runc, to show what the grant keeps out.
//!
//! Needs root, runc and a static busybox (`scripts/test.sh` installs
//! them).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
};

use nri_proto::api::{
    ContainerAdjustment, CreateContainerRequest, KeyValue, LinuxContainerAdjustment, LinuxDevice,
    LinuxNamespace, Mount, OptionalFileMode,
};
use nri_wasm::protocol::NriHandler;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    guests::plugin_dir,
    harness::{container, load_dispatcher, pod},
};

/// A bundle with a busybox root file system and runc's default spec.
struct Bundle {
    dir: TempDir,
    spec: Value,
}

fn tool(name: &str) -> PathBuf {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: these tests run real containers (scripts/test.sh installs runc and busybox-static)")
    })
}

impl Bundle {
    fn new() -> Bundle {
        let dir = TempDir::new().unwrap();
        let bin = dir.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for sub in ["proc", "dev", "sys", "data", "tmp"] {
            std::fs::create_dir_all(dir.path().join("rootfs").join(sub)).unwrap();
        }
        let busybox = tool("busybox");
        std::fs::copy(&busybox, bin.join("busybox")).unwrap();
        for applet in [
            "sh", "ls", "touch", "env", "readlink", "cat", "echo", "grep", "stat",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let status = Command::new(tool("runc"))
            .arg("spec")
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "runc spec");
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let mut spec: Value = serde_json::from_str(&text).unwrap();
        spec["process"]["terminal"] = json!(false);
        Bundle { dir, spec }
    }

    /// Runs `script` in a container made from the spec with `adjust`
    /// applied; its output.
    fn run(&self, adjust: &ContainerAdjustment, script: &str) -> String {
        let mut spec = self.spec.clone();
        spec["process"]["args"] = json!(["/bin/sh", "-c", script]);
        nri_sim::oci::adjust_spec(&mut spec, adjust);
        std::fs::write(self.dir.path().join("config.json"), spec.to_string()).unwrap();
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let id = format!("nri-wasm-test-{}-{run}", std::process::id());
        let output = Command::new("timeout")
            .arg("20")
            .arg(tool("runc"))
            .args(["run", "--bundle"])
            .arg(self.dir.path())
            .arg(&id)
            .output()
            .unwrap();
        Command::new(tool("runc"))
            .args(["delete", "-f", &id])
            .output()
            .ok();
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "runc run: {text}");
        text
    }
}

/// What nri-wasm sends the runtime for the attacker answering `answer`
/// with `grants`, on a container's creation.
async fn admitted(grants: &str, answer: Value) -> ContainerAdjustment {
    let config = format!("[plugins.attacker]\nconfig = '''{answer}'''\ngrants = {{ {grants} }}\n");
    let plugins = plugin_dir(&["70-attacker.wasm"], Some(&config));
    let dispatcher = load_dispatcher(plugins.path());
    let request = CreateContainerRequest {
        pod: Some(pod("p1")).into(),
        container: Some(container("p1", "app")).into(),
        ..Default::default()
    };
    let reply = dispatcher.create_container(request).await.unwrap();
    reply.adjust.into_option().unwrap_or_default()
}

/// A host directory with a tmpfs mounted inside it, unmounted on drop.
struct HostDir {
    dir: TempDir,
}

impl HostDir {
    fn with_submount() -> HostDir {
        let dir = TempDir::new().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "nri-wasm-test"])
            .arg(&sub)
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs on {}", sub.display());
        HostDir { dir }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        Command::new("umount")
            .arg(self.dir.path().join("sub"))
            .status()
            .ok();
    }
}

const WRITES: &str = "touch /data/top 2>/dev/null && echo top-writable; \
                      touch /data/sub/below 2>/dev/null && echo sub-writable; echo done";

#[tokio::test]
async fn a_read_only_bind_grant_is_read_only_in_runc_down_to_its_submounts() {
    let host = HostDir::with_submount();
    let grants = format!(
        "mounts = [{{ destination = [\"/data\"], source = [\"{}\"], types = [\"bind\"] }}]",
        host.path()
    );
    let mount = |options: &[&str]| json!({"create": {"mounts": [{"destination": "/data", "source": host.path(), "type": "bind", "options": options}]}});
    let bundle = Bundle::new();

    let granted = admitted(&grants, mount(&["rbind", "rro"])).await;
    assert_eq!(
        granted.mounts.len(),
        1,
        "rbind with rro is read-only: admitted"
    );
    assert_eq!(bundle.run(&granted, WRITES).trim(), "done");

    let refused = admitted(&grants, mount(&["rbind", "ro"])).await;
    assert!(refused.mounts.is_empty(), "ro on an rbind: refused");
    let direct = ContainerAdjustment {
        mounts: vec![Mount {
            destination: "/data".into(),
            type_: "bind".into(),
            source: host.path().into(),
            options: vec!["rbind".into(), "ro".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        bundle.run(&direct, WRITES).trim(),
        "sub-writable\ndone",
        "what runc makes of ro on an rbind: its submount is writable"
    );
}

#[tokio::test]
async fn an_env_grant_gives_the_process_only_the_names_it_names() {
    let grants = r#"env = ["*_PROXY"]"#;
    let bundle = Bundle::new();
    let granted = admitted(grants, json!({"create": {"env": [["NO_PROXY", "1"]]}})).await;
    let env = bundle.run(&granted, "env");
    assert!(env.lines().any(|l| l == "NO_PROXY=1"), "{env}");

    let key = "LD_PRELOAD=/tmp/x.so:NO_PROXY";
    let refused = admitted(grants, json!({"create": {"env": [[key, "1"]]}})).await;
    assert!(refused.env.is_empty(), "a key with '=': refused");
    let direct = ContainerAdjustment {
        env: vec![KeyValue {
            key: key.into(),
            value: "1".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let env = bundle.run(&direct, "env");
    assert!(
        env.lines().any(|l| l.starts_with("LD_PRELOAD=")),
        "what the process makes of such a key: LD_PRELOAD is set\n{env}"
    );
}

fn device_listing(bundle: &Bundle, adjust: &ContainerAdjustment, path: &str) -> String {
    bundle.run(adjust, &format!("stat -c '%F %t:%T %a %u' {path}"))
}

#[tokio::test]
async fn a_device_grant_gives_the_device_it_names_whatever_its_path() {
    let grants = r#"devices = [{ path = ["/dev/nri-*"], types = ["c"], major = [1], minor = [3], max-file-mode = 0o600 }]"#;
    let bundle = Bundle::new();
    let device = |path: &str, minor: i64| json!({"create": {"devices": [{"path": path, "type": "c", "major": 1, "minor": minor, "file_mode": 0o600}]}});
    let granted = admitted(grants, device("/dev/nri-null", 3)).await;
    assert_eq!(
        device_listing(&bundle, &granted, "/dev/nri-null").trim(),
        "character special file 1:3 600 0"
    );

    let refused = admitted(grants, device("/dev/nri-mem", 1)).await;
    assert!(
        refused.linux.is_none(),
        "c 1:1 under a harmless name: refused"
    );
    let direct = ContainerAdjustment {
        linux: Some(LinuxContainerAdjustment {
            devices: vec![LinuxDevice {
                path: "/dev/nri-mem".into(),
                type_: "c".into(),
                major: 1,
                minor: 1,
                file_mode: Some(OptionalFileMode {
                    value: 0o600,
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    assert_eq!(
        device_listing(&bundle, &direct, "/dev/nri-mem").trim(),
        "character special file 1:1 600 0",
        "what runc makes of it: /dev/mem's numbers"
    );
}

#[tokio::test]
async fn a_namespace_grant_without_paths_gives_a_new_namespace_only() {
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host_net = host_net.to_str().unwrap();
    let grants = r#"namespaces = [{ types = ["network"] }]"#;
    let bundle = Bundle::new();
    let granted = admitted(grants, json!({"create": {"namespaces": [["network", ""]]}})).await;
    let net = bundle.run(&granted, "readlink /proc/self/ns/net");
    assert_ne!(net.trim(), host_net, "a new network namespace");

    let host_path = format!("/proc/{}/ns/net", std::process::id());
    let refused = admitted(
        grants,
        json!({"create": {"namespaces": [["network", host_path]]}}),
    )
    .await;
    assert!(refused.linux.is_none(), "a namespace path: refused");
    let direct = ContainerAdjustment {
        linux: Some(LinuxContainerAdjustment {
            namespaces: vec![LinuxNamespace {
                type_: "network".into(),
                path: host_path,
                ..Default::default()
            }],
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    let net = bundle.run(&direct, "readlink /proc/self/ns/net");
    assert_eq!(
        net.trim(),
        host_net,
        "what runc makes of a path: the host's network"
    );
}
