//! The example plugins, built from source, loaded together with their
//! example configuration, and seen at work on the simulator's containers.

use nri_proto::api::{Container, PodSandbox};
use nri_sim::{SimConfig, SimError};

use crate::{
    guests::{plugin_dir, EXAMPLES},
    harness::{container, pod, Harness},
};

fn example_config() -> String {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/nri-wasm.toml");
    std::fs::read_to_string(file).unwrap()
}

/// A pod asking for rlimits, a device, a CDI device and hooks for its
/// container `app`.
fn annotated_pod() -> PodSandbox {
    let mut pod = pod("p1");
    let annotations = [
        (
            "ulimits.noderesource.dev/container.app",
            "- type: RLIMIT_NOFILE\n  soft: 1000\n  hard: 2000\n- type: nproc\n  soft: 500\n  hard: 600\n",
        ),
        (
            "devices.noderesource.dev/container.app",
            "- path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n",
        ),
        ("cdi-devices.noderesource.dev/container.app", "- vendor.com/device=gpu0\n"),
        ("hook-injector.nri-wasm.io/inject", "true"),
    ];
    for (key, value) in annotations {
        pod.annotations.insert(key.into(), value.into());
    }
    pod
}

fn has_env(c: &Container, entry: &str) -> bool {
    c.env.iter().any(|e| e == entry)
}

#[tokio::test]
async fn every_example_shows_its_effect_on_the_container() {
    let config = example_config();
    let plugins = plugin_dir(&EXAMPLES, Some(&config));
    let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(annotated_pod()).await.unwrap();
    let app = h
        .sim
        .create_container(container("p1", "app"))
        .await
        .unwrap();

    // env-injector
    assert!(has_env(&app, "NRI_WASM=1"), "{:?}", app.env);
    assert_eq!(app.annotations["example.com/injected-by"], "env-injector");
    // ulimit-adjuster, as NRI's sample answered in the captured trace
    let rlimits: Vec<(&str, u64, u64)> = app
        .rlimits
        .iter()
        .map(|r| (r.type_.as_str(), r.soft, r.hard))
        .collect();
    assert_eq!(
        rlimits,
        [("RLIMIT_NOFILE", 1000, 2000), ("RLIMIT_NPROC", 500, 600)]
    );
    // device-injector
    let device = &app.linux.devices[0];
    assert_eq!(
        (
            device.path.as_str(),
            device.type_.as_str(),
            device.major,
            device.minor
        ),
        ("/dev/nri-null", "c", 1, 3)
    );
    assert_eq!(app.CDI_devices[0].name, "vendor.com/device=gpu0");
    // hook-injector
    let hook = &app.hooks.create_runtime[0];
    assert_eq!(
        (hook.path.as_str(), hook.args.as_slice()),
        (
            "/usr/local/bin/audit-hook",
            &["audit-hook".to_string(), "--record".to_string()][..]
        )
    );

    // The logger saw the events and the validator validated.
    h.sim.start_container("p1-app").await.unwrap();
    for guest in dispatcher.guests().iter() {
        assert!(guest.stats().calls > 0, "{} was never called", guest.id());
        assert_eq!(
            guest.stats().faults,
            0,
            "{} faulted: {:?}",
            guest.id(),
            guest.stats()
        );
    }

    // A container of a pod without annotations gets only the injected env.
    h.sim.run_pod_sandbox(pod("p2")).await.unwrap();
    let plain = h
        .sim
        .create_container(container("p2", "app"))
        .await
        .unwrap();
    assert!(has_env(&plain, "NRI_WASM=1"));
    assert!(plain.rlimits.is_empty() && plain.hooks.is_none());
}

#[tokio::test]
async fn the_validator_example_rejects_hook_injection_when_told_to() {
    let config = example_config().replace(
        r#"config = '{"reject-sysctl": true, "reject-namespaces": true}'"#,
        r#"config = '{"reject-oci-hooks": true}'"#,
    );
    let plugins = plugin_dir(
        &["60-hook-injector.wasm", "90-validator.wasm"],
        Some(&config),
    );
    let (h, _dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
    h.sim.run_pod_sandbox(annotated_pod()).await.unwrap();
    let err = h
        .sim
        .create_container(container("p1", "app"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SimError::Rejected {
            plugin: "50-nri-wasm".into(),
            reason: "90-validator: OCI hook injection by 50-nri-wasm is not allowed".into(),
        }
    );
    assert!(h.sim.container("p1-app").is_none());
}

/// A conflict is the later guest's failure, under its own policy: one
/// guest's answer never fails an event its policy does not let it fail.
#[tokio::test]
async fn a_guest_setting_what_an_earlier_one_set_fails_under_its_own_policy() {
    for (policy, fails) in [("fail-open", false), ("fail-closed", true)] {
        let config = format!(
            "[plugins.env-injector]\nconfig = \"env MODE=a\"\ngrants = {{ env = [\"MODE\"] }}\n\
             [plugins.env-again]\nconfig = \"env MODE=b\"\ngrants = {{ env = [\"MODE\"] }}\n\
             failure-policy = \"{policy}\"\n"
        );
        let plugins = plugin_dir(&["20-env-injector.wasm"], Some(&config));
        std::fs::copy(
            plugins.path().join("20-env-injector.wasm"),
            plugins.path().join("25-env-again.wasm"),
        )
        .unwrap();
        let (h, dispatcher) = Harness::with_guests(SimConfig::containerd_2_3, plugins.path()).await;
        h.sim.run_pod_sandbox(pod("p1")).await.unwrap();
        let created = h.sim.create_container(container("p1", "app")).await;
        if fails {
            assert_eq!(
                created.unwrap_err(),
                SimError::Plugin {
                    plugin: "50-nri-wasm".into(),
                    event: "CreateContainer".into(),
                    message: "guest 25-env-again conflicts with an earlier guest: plugins \
                              \"25-env-again\" and \"20-env-injector\" both tried to set Env MODE \
                              (CreateContainer of p1-app)"
                        .into(),
                }
            );
        } else {
            let created = created.unwrap();
            assert!(has_env(&created, "MODE=a"), "{policy}: {:?}", created.env);
            assert!(!has_env(&created, "MODE=b"), "{policy}: {:?}", created.env);
        }
        let again = &dispatcher.guests()[1];
        assert_eq!(again.id().to_string(), "25-env-again");
        assert_eq!(again.stats().faults, 0, "a conflict is not a fault");
    }
}
