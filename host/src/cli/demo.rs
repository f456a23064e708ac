//! `nri-wasm demo`: starts the embedded runtime simulator, registers the
//! daemon with it over a real unix socket, plays a pod and container
//! lifecycle, and prints what happened. Needs no container runtime.

use std::{sync::Arc, time::Duration};

use anyhow::{bail, Context};
use clap::Args;
use nri_proto::api::{Container, PodSandbox};
use nri_sim::{SimConfig, Simulator};
use tokio_util::sync::CancellationToken;

use crate::{
    dispatch::Dispatcher,
    protocol::{self, Backoff, PluginConfig, PluginIdentity, RuntimeLink},
};

/// Run a self-contained demonstration against the embedded runtime
/// simulator.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulate this runtime: containerd-2.3, containerd-2.0 or cri-o-1.36.
    #[arg(long, default_value = "containerd-2.3")]
    runtime: String,
}

const REGISTRATION_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("nri-wasm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let socket = nri_sim::socket_in(&dir);
    let config = match args.runtime.as_str() {
        "containerd-2.3" => SimConfig::containerd_2_3(socket.clone()),
        "containerd-2.0" => SimConfig::containerd_2_0(socket.clone()),
        "cri-o-1.36" => SimConfig::crio_1_36(socket.clone()),
        other => {
            bail!("unknown runtime {other:?}: use containerd-2.3, containerd-2.0 or cri-o-1.36")
        }
    };
    println!(
        "simulated runtime: {} {} on {}",
        config.runtime_name,
        config.runtime_version,
        socket.display()
    );
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    sim.preload(
        vec![pod("existing")],
        vec![container("existing", "sleeper")],
    );

    let identity = PluginIdentity::new("nri-wasm", "50")?;
    let dispatcher = Arc::new(Dispatcher::default());
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(protocol::run_plugin(
        PluginConfig {
            socket,
            identity: identity.clone(),
            backoff: Backoff::default(),
        },
        dispatcher.clone(),
        RuntimeLink::default(),
        stop.clone(),
    ));
    if !sim
        .wait_for_plugin(&identity.to_string(), REGISTRATION_WAIT)
        .await
    {
        bail!("nri-wasm did not register with the simulator within {REGISTRATION_WAIT:?}");
    }
    for plugin in sim.plugins().await {
        println!(
            "registered: {} subscribed to {}",
            plugin.id(),
            plugin.events
        );
    }
    let result = play_lifecycle(&sim, &dispatcher).await;
    stop.cancel();
    daemon.await.ok();
    sim.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn play_lifecycle(sim: &Simulator, dispatcher: &Dispatcher) -> anyhow::Result<()> {
    sim.run_pod_sandbox(pod("web")).await?;
    println!("RunPodSandbox web");
    let created = sim.create_container(container("web", "nginx")).await?;
    println!(
        "CreateContainer web/nginx: env {:?}, annotations {}",
        created.env,
        created.annotations.len()
    );
    let id = created.id.clone();
    sim.post_create_container(&id).await?;
    sim.start_container(&id).await?;
    println!("StartContainer web/nginx");
    let view = dispatcher.view();
    println!(
        "nri-wasm sees {} pods and {} containers",
        view.pods().count(),
        view.containers().count()
    );
    sim.stop_container(&id).await?;
    sim.remove_container(&id).await?;
    sim.stop_pod_sandbox("web").await?;
    sim.remove_pod_sandbox("web").await?;
    println!("stopped and removed web");
    if let Some(dropped) = sim.dropped().first() {
        bail!("the runtime dropped {}: {}", dropped.plugin, dropped.reason);
    }
    Ok(())
}

fn pod(name: &str) -> PodSandbox {
    PodSandbox {
        id: name.to_string(),
        name: name.to_string(),
        uid: format!("{name}-uid"),
        namespace: "default".into(),
        labels: [("app".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

fn container(pod: &str, name: &str) -> Container {
    Container {
        id: format!("{pod}-{name}"),
        pod_sandbox_id: pod.to_string(),
        name: name.to_string(),
        args: vec![format!("/bin/{name}")],
        env: vec!["PATH=/usr/bin:/bin".into()],
        ..Default::default()
    }
}
