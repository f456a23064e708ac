//! `nri-wasm demo`: starts the embedded runtime simulator, loads the guests
//! of a plugin directory, registers with the simulator over a real unix
//! socket, plays a pod and container lifecycle, and prints what each guest
//! saw, changed and was refused, and what the runtime made of it. Needs no
//! container runtime.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{bail, Context};
use clap::Args;
use nri_proto::api::{Container, PodSandbox};
use nri_sim::{SimConfig, Simulator};
use protobuf::MessageField;
use tokio_util::sync::CancellationToken;

use super::{
    report::{describe_call, memory_size},
    test::{read_scenario, Request},
};
use crate::{
    config::{Config, GuestSettings, Mode},
    dispatch::{CallObserver, CallRecord, Dispatcher},
    grants::{reads, Grants},
    plugins::PluginSet,
    protocol::{self, Backoff, Notification, PluginConfig, PluginIdentity, RuntimeLink},
    runtime::GuestPre,
    shadow::{self, Records},
};

/// Prints every guest call as it ends.
struct PrintCalls;

impl CallObserver for PrintCalls {
    fn call(&self, record: &CallRecord<'_>) {
        for line in describe_call(record) {
            println!("    {line}");
        }
    }
}

/// Run a self-contained demonstration against the embedded runtime
/// simulator, with the guests of a plugin directory (build the examples
/// with scripts/build-guests.sh).
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of `NN-name.wasm` guests.
    #[arg(long, default_value = "target/plugins")]
    plugins: PathBuf,
    /// Configuration file [default: nri-wasm.toml in the plugin directory,
    /// if there is one].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Simulate this runtime: containerd-2.3, containerd-2.0 or cri-o-1.36.
    #[arg(long, default_value = "containerd-2.3")]
    runtime: String,
    /// Directory for compiled guests, so a second demo compiles nothing.
    #[arg(long, default_value = "target/nri-wasm-cache")]
    cache_dir: PathBuf,
    /// Play this scenario instead: a JSON array of the events `nri-wasm
    /// test` takes (RunPodSandbox, CreateContainer, StartContainer, ...),
    /// which the simulated runtime plays in order, with what follows from
    /// each (validation, PostStartContainer, ...).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

const REGISTRATION_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("nri-wasm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run_demo(&args, &dir).await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn run_demo(args: &DemoArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    let socket = nri_sim::socket_in(dir);
    let config = runtime_config(&args.runtime, socket.clone())?;
    let scenario = args.events.as_deref().map(read_scenario).transpose()?;
    let plugins = PluginSet::new(&args.plugins, args.config.as_deref(), Some(&args.cache_dir))?;
    let loaded = plugins.load()?;
    for refusal in &loaded.report.refused {
        println!("refused plugin {refusal}");
    }
    let dispatcher = Arc::new(Dispatcher::with_observers(
        loaded.report.guests,
        &loaded.config,
        vec![Arc::new(PrintCalls)],
    ));
    let ids: Vec<String> = dispatcher
        .guests()
        .iter()
        .map(|g| g.id().to_string())
        .collect();
    println!("guests in {}: {}", args.plugins.display(), ids.join(", "));
    println!(
        "simulated runtime: {} {} on {}",
        config.runtime_name,
        config.runtime_version,
        socket.display()
    );
    let preload = scenario.is_none();
    let served = Served::start(config, dispatcher.clone(), preload).await?;
    let result = match scenario {
        Some(scenario) => play_scenario(&served.sim, scenario).await,
        None => play_lifecycle(&served.sim).await,
    }
    .and_then(|()| summarize(&served.sim, &dispatcher));
    served.stop().await;
    result?;
    if preload {
        adopt(
            args,
            &loaded.config,
            dispatcher.guests().iter().map(|g| g.pre().clone()),
            dir,
        )
        .await?;
    }
    Ok(())
}

/// nri-wasm registered with a simulated runtime, over a real socket.
struct Served {
    sim: Simulator,
    stop: CancellationToken,
    daemon: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Starts the simulator of `config` and registers `dispatcher` with
    /// it; with `preload`, the node has a pod and container already.
    async fn start(
        config: SimConfig,
        dispatcher: Arc<Dispatcher>,
        preload: bool,
    ) -> anyhow::Result<Served> {
        let socket = config.socket.clone();
        let sim = Simulator::start(config)
            .await
            .context("starting the simulator")?;
        if preload {
            sim.preload(
                vec![pod("kube-system", "existing")],
                vec![container("existing", "sleeper")],
            );
        }
        let identity = PluginIdentity::new("nri-wasm", "50")?;
        let stop = CancellationToken::new();
        let daemon = tokio::spawn(protocol::run_plugin(
            PluginConfig {
                socket,
                identity: identity.clone(),
                backoff: Backoff::default(),
            },
            dispatcher,
            RuntimeLink::default(),
            stop.clone(),
        ));
        let served = Served { sim, stop, daemon };
        let registered = served
            .sim
            .wait_for_plugin(&identity.to_string(), REGISTRATION_WAIT)
            .await;
        if !registered {
            served.stop().await;
            bail!("nri-wasm did not register with the simulator within {REGISTRATION_WAIT:?}");
        }
        for plugin in served.sim.plugins().await {
            println!(
                "registered as {}, subscribed to {}",
                plugin.id(),
                plugin.events
            );
        }
        Ok(served)
    }

    async fn stop(self) {
        self.stop.cancel();
        self.daemon.await.ok();
        self.sim.stop().await;
    }
}

/// The plugin the demo adopts as an operator would a third party's.
const ADOPTED: &str = "env-injector";

/// Adopting a plugin without guessing its grants: it runs in shadow mode
/// with none, its answers are recorded, the grants suggested from them
/// are enforced.
async fn adopt(
    args: &DemoArgs,
    config: &Config,
    mut guests: impl Iterator<Item = GuestPre>,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let Some(guest) = guests.find(|g| g.id().name == ADOPTED) else {
        return Ok(());
    };
    println!(
        "\nAdopting {} as a third party's plugin: shadow mode, no grants",
        guest.id()
    );
    let mut config = config.clone();
    let settings = config.guest(ADOPTED);
    let shadow = GuestSettings {
        mode: Mode::Shadow,
        grants: Grants::default(),
        ..settings.clone()
    };
    config.set_guest(ADOPTED, shadow);
    let records = Arc::new(Records::default());
    let observers: Vec<Arc<dyn CallObserver>> = vec![Arc::new(PrintCalls), records.clone()];
    let dispatcher = Arc::new(Dispatcher::with_observers(
        vec![guest.clone()],
        &config,
        observers,
    ));
    let runtime = runtime_config(&args.runtime, nri_sim::socket_in(&dir.join("adopt")))?;
    std::fs::create_dir_all(dir.join("adopt"))?;
    let served = Served::start(runtime, dispatcher.clone(), false).await?;
    let result = adopt_steps(&served.sim, &dispatcher, &records, &guest, config, settings).await;
    served.stop().await;
    result
}

async fn adopt_steps(
    sim: &Simulator,
    dispatcher: &Dispatcher,
    records: &Records,
    guest: &GuestPre,
    mut config: Config,
    settings: GuestSettings,
) -> anyhow::Result<()> {
    println!("\nRunPodSandbox default/shop");
    sim.run_pod_sandbox(pod("default", "shop")).await?;
    create(sim, container("shop", "cart")).await?;
    let records = std::mem::take(&mut *records.0.lock().expect("never poisoned"));
    let (suggestion, _) = shadow::suggest(&records, ADOPTED)?;
    println!("\nnri-wasm grants suggest, from the records of the shadow run:");
    let reads = guest
        .declared_reads()
        .map(reads::parse_declared)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{}: {e}", guest.id()))?;
    for line in suggestion.render(ADOPTED, reads.as_ref()).lines() {
        println!("    {line}");
    }
    // As the operator would: the printed section, pasted.
    let pasted = Config::parse(&suggestion.render(ADOPTED, reads.as_ref()))
        .map_err(|e| anyhow::anyhow!("the suggested section does not parse: {e}"))?;
    let enforced = GuestSettings {
        mode: Mode::Enforce,
        grants: pasted.guest(ADOPTED).grants,
        ..settings
    };
    config.set_guest(ADOPTED, enforced);
    dispatcher.replace_guests(vec![guest.clone()], &config, &[]);
    println!("\nReviewed and enforced:");
    create(sim, container("shop", "checkout")).await
}

/// The simulated runtime of `name`, on `socket`.
fn runtime_config(name: &str, socket: PathBuf) -> anyhow::Result<SimConfig> {
    Ok(match name {
        "containerd-2.3" => SimConfig::containerd_2_3(socket),
        "containerd-2.0" => SimConfig::containerd_2_0(socket),
        "cri-o-1.36" => SimConfig::crio_1_36(socket),
        other => {
            bail!("unknown runtime {other:?}: use containerd-2.3, containerd-2.0 or cri-o-1.36")
        }
    })
}

async fn play_lifecycle(sim: &Simulator) -> anyhow::Result<()> {
    println!("\nRunPodSandbox default/web, annotated for rlimits, a device and hooks");
    sim.run_pod_sandbox(annotated_pod()).await?;
    create_and_run(sim, container("web", "nginx")).await?;
    println!("\nThe sidecar asks for more open files than ulimit-adjuster is granted:");
    create_and_run(sim, container("web", "sidecar")).await?;
    println!("\nStopPodSandbox default/web");
    sim.stop_pod_sandbox("web").await?;
    println!("RemovePodSandbox default/web");
    sim.remove_pod_sandbox("web").await?;
    Ok(())
}

/// Plays the events of a scenario file in order.
async fn play_scenario(sim: &Simulator, scenario: Vec<(String, Request)>) -> anyhow::Result<()> {
    for (number, (event, request)) in scenario.into_iter().enumerate() {
        play(sim, &event, request)
            .await
            .with_context(|| format!("event {} of the scenario, {event}", number + 1))?;
    }
    Ok(())
}

/// Has the simulated runtime do what `request` asks of it: the runtime
/// sends the event, and what follows from it, as it would.
async fn play(sim: &Simulator, event: &str, request: Request) -> anyhow::Result<()> {
    use Notification as N;
    let pod_name = |pod: &MessageField<PodSandbox>| {
        let pod = pod.clone().unwrap_or_default();
        format!("{}/{}", pod.namespace, pod.name)
    };
    let container_id = |container: &MessageField<Container>| {
        container.as_ref().map(|c| c.id.clone()).unwrap_or_default()
    };
    match request {
        Request::Create(r) => {
            create(sim, r.container.unwrap_or_default()).await?;
            return Ok(());
        }
        Request::Notify(N::RunPodSandbox(r)) => {
            println!("\n{event} {}", pod_name(&r.pod));
            sim.run_pod_sandbox(r.pod.unwrap_or_default()).await?
        }
        Request::Notify(N::UpdatePodSandbox(r)) => {
            println!("\n{event} {}", pod_name(&r.pod));
            let pod = r.pod.unwrap_or_default();
            let overhead = r.overhead_linux_resources.unwrap_or_default();
            let resources = r.linux_resources.unwrap_or_default();
            sim.update_pod_sandbox(&pod.id, overhead, resources).await?
        }
        Request::Notify(N::StopPodSandbox(r)) => {
            println!("\n{event} {}", pod_name(&r.pod));
            sim.stop_pod_sandbox(&r.pod.unwrap_or_default().id).await?
        }
        Request::Notify(N::RemovePodSandbox(r)) => {
            println!("\n{event} {}", pod_name(&r.pod));
            sim.remove_pod_sandbox(&r.pod.unwrap_or_default().id)
                .await?
        }
        Request::Update(r) => {
            let id = container_id(&r.container);
            println!("\n{event} {id}");
            let resources = r.linux_resources.unwrap_or_default();
            sim.update_container(&id, resources).await.map(drop)?
        }
        Request::Stop(r) => {
            let id = container_id(&r.container);
            println!("\n{event} {id}");
            sim.stop_container(&id).await?
        }
        Request::Notify(N::PostCreateContainer(r)) => {
            let id = container_id(&r.container);
            println!("\n{event} {id}");
            sim.post_create_container(&id).await?
        }
        Request::Notify(N::StartContainer(r)) => {
            let id = container_id(&r.container);
            println!("\n{event} {id} (and PostStartContainer)");
            sim.start_container(&id).await?
        }
        Request::Notify(N::RemoveContainer(r)) => {
            let id = container_id(&r.container);
            println!("\n{event} {id}");
            sim.remove_container(&id).await?
        }
        Request::Validate(_)
        | Request::Notify(
            N::PostStartContainer(_) | N::PostUpdateContainer(_) | N::PostUpdatePodSandbox(_),
        ) => bail!(
            "the runtime sends {event} itself, after the event it follows \
             (CreateContainer, StartContainer, UpdateContainer, UpdatePodSandbox); \
             play that event instead"
        ),
    }
    Ok(())
}

/// What each guest did, and whether the runtime dropped nri-wasm.
fn summarize(sim: &Simulator, dispatcher: &Dispatcher) -> anyhow::Result<()> {
    println!("\nguests:");
    for guest in dispatcher.guests().iter() {
        let stats = guest.stats();
        let refused: u64 = stats.refusals.values().sum();
        println!(
            "  {:<22} {} calls, {} faults, {} changes refused; handles {}",
            guest.id().to_string(),
            stats.calls,
            stats.faults,
            refused,
            guest.events()
        );
    }
    if let Some(dropped) = sim.dropped().first() {
        bail!("the runtime dropped {}: {}", dropped.plugin, dropped.reason);
    }
    Ok(())
}

/// Creates `requested`, prints what the runtime made of it, and takes it
/// through its lifecycle.
async fn create_and_run(sim: &Simulator, requested: Container) -> anyhow::Result<()> {
    let name = format!("{}/{}", requested.pod_sandbox_id, requested.name);
    let id = requested.id.clone();
    create(sim, requested).await?;
    if sim.container(&id).is_none() {
        return Ok(());
    }
    println!("PostCreateContainer {name}");
    sim.post_create_container(&id).await?;
    println!("StartContainer {name}");
    sim.start_container(&id).await?;
    println!("StopContainer {name}");
    sim.stop_container(&id).await?;
    println!("RemoveContainer {name}");
    sim.remove_container(&id).await?;
    Ok(())
}

/// Creates `requested` and prints what the runtime made of it.
async fn create(sim: &Simulator, requested: Container) -> anyhow::Result<()> {
    let name = format!("{}/{}", requested.pod_sandbox_id, requested.name);
    println!("\nCreateContainer {name}");
    if sim.pod(&requested.pod_sandbox_id).is_none() {
        bail!(
            "container {name}: the runtime has no pod {:?}; run it first (RunPodSandbox)",
            requested.pod_sandbox_id
        );
    }
    match sim.create_container(requested.clone()).await {
        Ok(created) => {
            println!("  the runtime creates it with:");
            let changes = describe_changes(&requested, &created);
            if changes.is_empty() {
                println!("    no change");
            }
            for change in changes {
                println!("    {change}");
            }
        }
        Err(err) => println!("  refused by the runtime: {err}"),
    }
    Ok(())
}

/// What the guests changed, one line per change.
fn describe_changes(before: &Container, after: &Container) -> Vec<String> {
    let mut lines = Vec::new();
    for env in after.env.iter().filter(|e| !before.env.contains(e)) {
        lines.push(format!("+ env {env}"));
    }
    let mut annotations: Vec<_> = after
        .annotations
        .iter()
        .filter(|(k, v)| before.annotations.get(*k) != Some(*v))
        .collect();
    annotations.sort();
    for (key, value) in annotations {
        lines.push(format!("+ annotation {key}={value}"));
    }
    for r in &after.rlimits {
        lines.push(format!(
            "+ rlimit {} soft {} hard {}",
            r.type_, r.soft, r.hard
        ));
    }
    let limit = |c: &Container| {
        c.linux
            .resources
            .memory
            .as_ref()
            .and_then(|m| m.limit.as_ref())
            .map(|l| l.value)
    };
    if let Some(limit) = limit(after).filter(|l| Some(*l) != limit(before)) {
        lines.push(format!("+ memory limit {}", memory_size(limit)));
    }
    for d in after.linux.devices.iter() {
        lines.push(format!(
            "+ device {} ({} {}:{})",
            d.path, d.type_, d.major, d.minor
        ));
    }
    for d in &after.CDI_devices {
        lines.push(format!("+ CDI device {}", d.name));
    }
    if let Some(hooks) = after.hooks.as_ref() {
        for hook in &hooks.create_runtime {
            lines.push(format!(
                "+ createRuntime hook {} {:?}",
                hook.path, hook.args
            ));
        }
    }
    lines
}

fn annotated_pod() -> PodSandbox {
    let mut web = pod("default", "web");
    let annotations = [
        (
            "ulimits.noderesource.dev/container.nginx",
            "- type: RLIMIT_NOFILE\n  soft: 1024\n  hard: 4096\n",
        ),
        (
            "ulimits.noderesource.dev/container.sidecar",
            "- type: RLIMIT_NOFILE\n  soft: 1048576\n  hard: 4194304\n",
        ),
        (
            "devices.noderesource.dev/container.nginx",
            "- path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n",
        ),
        ("hook-injector.nri-wasm.io/inject", "true"),
    ];
    for (key, value) in annotations {
        web.annotations.insert(key.into(), value.into());
    }
    web
}

fn pod(namespace: &str, name: &str) -> PodSandbox {
    PodSandbox {
        id: name.to_string(),
        name: name.to_string(),
        uid: format!("{name}-uid"),
        namespace: namespace.into(),
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
