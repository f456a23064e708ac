//! The examples written in languages other than Rust, built from source
//! by the one guest build, each loaded with the example configuration and
//! seen at work on the simulator's containers.

use nri_proto::api::Container;
use nri_sim::SimConfig;

use crate::{
    guests::plugin_dir,
    harness::{container, cpu_shares, memory, pod, Harness},
};

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

fn example_config() -> &'static str {
    include_str!("../../guest-examples/nri-wasm.toml")
}

fn memory_limit(c: &Container) -> Option<i64> {
    c.linux
        .resources
        .memory
        .as_ref()
        .and_then(|m| m.limit.as_ref())
        .map(|l| l.value)
}

fn with_memory_limit(mut c: Container, limit: i64) -> Container {
    c.linux.mut_or_insert_default().resources = Some(memory(limit)).into();
    c
}

#[tokio::test]
async fn c_memory_clamp_sets_a_default_and_clamps_creations_and_updates() {
    let plugins = plugin_dir(&["35-memory-clamp.wasm"], Some(example_config()));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();

    let unlimited = h
        .sim
        .create_container(container("p1", "free"))
        .await
        .unwrap();
    assert_eq!(memory_limit(&unlimited), Some(256 * MIB));

    let greedy = with_memory_limit(container("p1", "greedy"), 4 * GIB);
    let greedy = h.sim.create_container(greedy).await.unwrap();
    assert_eq!(memory_limit(&greedy), Some(GIB));

    let modest = with_memory_limit(container("p1", "modest"), 512 * MIB);
    let modest = h.sim.create_container(modest).await.unwrap();
    assert_eq!(
        memory_limit(&modest),
        Some(512 * MIB),
        "within bounds: untouched"
    );

    let updated = h
        .sim
        .update_container(&modest.id, memory(8 * GIB))
        .await
        .unwrap();
    assert_eq!(
        memory_limit(&updated),
        Some(GIB),
        "an update above the maximum is clamped"
    );
}

#[tokio::test]
async fn zig_annotation_env_sets_granted_variables_from_pod_annotations() {
    let plugins = plugin_dir(&["25-annotation-env.wasm"], Some(example_config()));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    let mut web = pod("web");
    for (key, value) in [
        ("env.nri-wasm.io/LOG_LEVEL", "debug"),
        ("env.nri-wasm.io/container.app.APP_MODE", "blue"),
        ("env.nri-wasm.io/container.other.APP_OTHER", "1"),
        ("env.nri-wasm.io/9BAD", "x"),
        ("unrelated.example.com/APP_X", "1"),
    ] {
        web.annotations.insert(key.into(), value.into());
    }
    h.sim.run_pod_sandbox(web).await.unwrap();
    let app = h
        .sim
        .create_container(container("web", "app"))
        .await
        .unwrap();
    let mut set: Vec<&str> = app
        .env
        .iter()
        .map(String::as_str)
        .filter(|e| e.starts_with("APP_") || e.starts_with("LOG_") || e.starts_with("9"))
        .collect();
    set.sort();
    assert_eq!(set, ["APP_MODE=blue", "LOG_LEVEL=debug"]);

    // A pod asking for a variable beyond the grants gets none of them.
    let mut greedy = pod("greedy");
    greedy
        .annotations
        .insert("env.nri-wasm.io/LOG_LEVEL".into(), "debug".into());
    greedy
        .annotations
        .insert("env.nri-wasm.io/LD_PRELOAD".into(), "/evil.so".into());
    h.sim.run_pod_sandbox(greedy).await.unwrap();
    let app = h
        .sim
        .create_container(container("greedy", "app"))
        .await
        .unwrap();
    assert!(
        !app.env
            .iter()
            .any(|e| e.starts_with("LD_PRELOAD") || e.starts_with("LOG_LEVEL")),
        "{:?}",
        app.env
    );
}

#[tokio::test]
async fn python_resource_policy_rejects_what_breaks_it_in_covered_namespaces_only() {
    let plugins = plugin_dir(
        &["35-memory-clamp.wasm", "95-resource-policy.wasm"],
        Some(&example_config().replace("max=1Gi default=256Mi", "max=1Gi")),
    );
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    let mut prod = pod("shop");
    prod.namespace = "prod-shop".into();
    h.sim.run_pod_sandbox(prod).await.unwrap();
    h.sim.run_pod_sandbox(pod("dev")).await.unwrap();

    let rejected = |name: &str| format!("95-resource-policy: container prod-shop/shop/{name} ");
    let unlimited = h.sim.create_container(container("shop", "web")).await;
    let reason = unlimited.unwrap_err().to_string();
    assert!(
        reason.contains(&format!("{}has no memory limit", rejected("web"))),
        "{reason}"
    );
    assert!(h.sim.container("shop-web").is_none());

    // The limit memory-clamp (C) lowers to 1 GiB counts; the shares do not pass.
    let mut batch = with_memory_limit(container("shop", "batch"), 4 * GIB);
    batch
        .linux
        .mut_or_insert_default()
        .resources
        .mut_or_insert_default()
        .cpu = cpu_shares(8192).cpu;
    let reason = h.sim.create_container(batch).await.unwrap_err().to_string();
    assert!(
        reason.contains(&format!(
            "{}asks for 8192 CPU shares, above 4096",
            rejected("batch")
        )),
        "{reason}"
    );

    let fine = with_memory_limit(container("shop", "api"), 4 * GIB);
    let fine = h.sim.create_container(fine).await.unwrap();
    assert_eq!(memory_limit(&fine), Some(GIB));

    // Outside prod-*, nothing is required.
    h.sim
        .create_container(container("dev", "web"))
        .await
        .unwrap();
}

#[tokio::test]
async fn javascript_oom_score_sets_the_score_of_the_pods_class() {
    let plugins = plugin_dir(&["45-oom-score.wasm"], Some(example_config()));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    for (name, class) in [
        ("db", Some("critical")),
        ("etl", Some("batch")),
        ("web", None),
        ("odd", Some("unknown")),
    ] {
        let mut p = pod(name);
        if let Some(class) = class {
            p.annotations
                .insert("oom.nri-wasm.io/class".into(), class.into());
        }
        h.sim.run_pod_sandbox(p).await.unwrap();
    }
    let score = |c: &Container| c.linux.oom_score_adj.as_ref().map(|s| s.value);
    let created = h
        .sim
        .create_container(container("db", "postgres"))
        .await
        .unwrap();
    assert_eq!(score(&created), Some(-900));
    let created = h
        .sim
        .create_container(container("etl", "job"))
        .await
        .unwrap();
    assert_eq!(score(&created), Some(800));
    let created = h
        .sim
        .create_container(container("web", "nginx"))
        .await
        .unwrap();
    assert_eq!(score(&created), None);
    let created = h.sim.create_container(container("odd", "x")).await.unwrap();
    assert_eq!(score(&created), None);
}

fn with_mount(mut c: Container, source: &str, options: &[&str]) -> Container {
    c.mounts.push(nri_proto::api::Mount {
        destination: "/host".into(),
        type_: "bind".into(),
        source: source.into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    });
    c
}

#[tokio::test]
async fn cpp_mount_guard_rejects_denied_and_writable_sensitive_host_paths() {
    let plugins = plugin_dir(&["92-mount-guard.wasm"], Some(example_config()));
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
    let create = |name: &str, source: &str, options: &[&str]| {
        h.sim
            .create_container(with_mount(container("p1", name), source, options))
    };
    let reason = create("docker", "/var/run/docker.sock", &["rbind"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        reason.contains("92-mount-guard: container default/p1/docker mounts host path /var/run/docker.sock (denied: /var/run/docker.sock)"),
        "{reason}"
    );
    let reason = create("certs", "/etc/ssl", &["rbind", "rw"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        reason.contains("mounts host path /etc/ssl read-write (/etc is read-only)"),
        "{reason}"
    );
    create("certs-ro", "/etc/ssl", &["rbind", "ro"])
        .await
        .unwrap();
    create("data", "/srv/data", &["rbind", "rw"]).await.unwrap();
    create("etcetera", "/etcetera", &["rbind", "rw"])
        .await
        .unwrap();
}

#[tokio::test]
async fn go_pod_metadata_gives_every_container_its_pods_identity() {
    let plugins = plugin_dir(&["15-pod-metadata.wasm"], Some(example_config()));
    let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    let mut shop = pod("shop");
    shop.namespace = "prod-shop".into();
    h.sim.run_pod_sandbox(shop).await.unwrap();
    // Enough calls for Go's garbage collector to run between them.
    for n in 0..300 {
        let name = format!("c{n}");
        let created = h
            .sim
            .create_container(container("shop", &name))
            .await
            .unwrap();
        let env: Vec<&str> = created.env.iter().map(String::as_str).collect();
        for expected in [
            "POD_NAME=shop",
            "POD_NAMESPACE=prod-shop",
            "POD_UID=shop-uid",
            &format!("CONTAINER_NAME={name}"),
        ] {
            assert!(env.contains(&expected), "container {n}: {env:?}");
        }
        h.sim
            .remove_container(&format!("shop-{name}"))
            .await
            .unwrap();
    }
    assert_eq!(dispatcher.guests()[0].stats().faults, 0);
}
