//! Test harness: a temporary directory, the runtime simulator on a real
//! unix socket, and nri-wasm's plugin side registered with it, in process,
//! with a handler that records what it is given and answers like a small
//! but real plugin.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use nri_proto::{
    api::{
        Container, ContainerAdjustment, ContainerUpdate, CreateContainerRequest,
        CreateContainerResponse, KeyValue, LinuxContainerUpdate, LinuxResources, OptionalInt64,
        OptionalUInt64, PodSandbox, StopContainerRequest, StopContainerResponse,
        UpdateContainerRequest, UpdateContainerResponse, ValidateContainerAdjustmentRequest,
        ValidateContainerAdjustmentResponse,
    },
    events::{event_name, EventMask, ALL_EVENTS},
};
use nri_sim::{SimConfig, Simulator};
use nri_wasm::protocol::{
    self, Backoff, HandlerError, Notification, NriHandler, PluginConfig, PluginIdentity,
    RuntimeInfo, RuntimeLink,
};
use nri_wasm::{
    config::Config,
    dispatch::Dispatcher,
    runtime::{
        loader::{load_plugins, open_cache_dir, open_dir},
        CompileCache, WasmEngine,
    },
};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for a registration before failing.
pub const REGISTRATION_WAIT: Duration = Duration::from_secs(3);
/// The identity the host registers under in tests.
pub const HOST_ID: &str = "50-nri-wasm";
/// Label that makes the recorder's validator reject a container.
pub const REJECT_LABEL: &str = "recorder.example.com/reject";
/// Memory limit the recorder clamps container updates to.
pub const MEMORY_CLAMP: i64 = 1 << 30;

/// What the recorder saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The NRI RPC name of the event.
    pub event: String,
    /// Container id, or pod id for pod events.
    pub id: String,
}

/// A handler that records every call and answers: CreateContainer adds an
/// env var and an annotation, UpdateContainer clamps the memory limit,
/// StopContainer raises the CPU shares of the pod's other containers, and
/// validation rejects containers with [`REJECT_LABEL`].
#[derive(Default)]
pub struct Recorder {
    pub seen: Mutex<Vec<Seen>>,
    pub runtimes: Mutex<Vec<RuntimeInfo>>,
    pub syncs: Mutex<Vec<(usize, usize)>>,
    /// Answers CreateContainer only after this long.
    pub create_delay: Mutex<Option<Duration>>,
    pods: Mutex<Vec<Container>>,
}

impl Recorder {
    fn record(&self, event: &str, id: &str) {
        self.seen.lock().unwrap().push(Seen {
            event: event.to_string(),
            id: id.to_string(),
        });
    }

    /// The events seen, by RPC name.
    pub fn events(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.event.clone())
            .collect()
    }
}

#[async_trait]
impl NriHandler for Recorder {
    async fn configure(&self, runtime: &RuntimeInfo) -> Result<EventMask, HandlerError> {
        self.runtimes.lock().unwrap().push(runtime.clone());
        Ok(ALL_EVENTS.into_iter().collect())
    }

    async fn synchronize(
        &self,
        pods: Vec<PodSandbox>,
        containers: Vec<Container>,
    ) -> Result<Vec<ContainerUpdate>, HandlerError> {
        self.syncs
            .lock()
            .unwrap()
            .push((pods.len(), containers.len()));
        *self.pods.lock().unwrap() = containers;
        Ok(Vec::new())
    }

    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, HandlerError> {
        let delay = *self.create_delay.lock().unwrap();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let container = request.container.unwrap_or_default();
        self.record("CreateContainer", &container.id);
        self.pods.lock().unwrap().push(container.clone());
        Ok(CreateContainerResponse {
            adjust: Some(ContainerAdjustment {
                env: vec![KeyValue {
                    key: "SEEN_BY".into(),
                    value: "recorder".into(),
                    ..Default::default()
                }],
                annotations: [("recorder.example.com/seen".to_string(), container.name)].into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
    }

    async fn update_container(
        &self,
        request: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, HandlerError> {
        let container = request.container.unwrap_or_default();
        self.record("UpdateContainer", &container.id);
        let asked = request.linux_resources.memory.limit.value;
        let mut update = Vec::new();
        if asked > MEMORY_CLAMP {
            update.push(resources_update(&container.id, memory(MEMORY_CLAMP)));
        }
        Ok(UpdateContainerResponse {
            update,
            ..Default::default()
        })
    }

    async fn stop_container(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse, HandlerError> {
        let stopping = request.container.unwrap_or_default();
        self.record("StopContainer", &stopping.id);
        let update = self
            .pods
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.pod_sandbox_id == stopping.pod_sandbox_id && c.id != stopping.id)
            .map(|c| resources_update(&c.id, cpu_shares(2048)))
            .collect();
        Ok(StopContainerResponse {
            update,
            ..Default::default()
        })
    }

    async fn validate_container_adjustment(
        &self,
        request: ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse, HandlerError> {
        self.record("ValidateContainerAdjustment", &request.container.id);
        let reject = request.container.labels.contains_key(REJECT_LABEL);
        Ok(ValidateContainerAdjustmentResponse {
            reject,
            reason: if reject {
                "labelled for rejection".into()
            } else {
                String::new()
            },
            ..Default::default()
        })
    }

    async fn notify(&self, notification: Notification) -> Result<(), HandlerError> {
        let id = match notification.container() {
            Some(c) => c.id.clone(),
            None => notification.pod().map(|p| p.id.clone()).unwrap_or_default(),
        };
        self.record(event_name(notification.event()), &id);
        Ok(())
    }
}

/// An update of one container's resources.
pub fn resources_update(id: &str, resources: LinuxResources) -> ContainerUpdate {
    ContainerUpdate {
        container_id: id.into(),
        linux: Some(LinuxContainerUpdate {
            resources: Some(resources).into(),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

/// Resources setting the memory limit.
pub fn memory(limit: i64) -> LinuxResources {
    let mut resources = LinuxResources::default();
    resources.memory.mut_or_insert_default().limit = Some(OptionalInt64 {
        value: limit,
        ..Default::default()
    })
    .into();
    resources
}

/// Resources setting the CPU shares.
pub fn cpu_shares(shares: u64) -> LinuxResources {
    let mut resources = LinuxResources::default();
    resources.cpu.mut_or_insert_default().shares = Some(OptionalUInt64 {
        value: shares,
        ..Default::default()
    })
    .into();
    resources
}

/// The simulator and the in-process host, registered with each other.
pub struct Harness {
    pub sim: Simulator,
    pub recorder: Arc<Recorder>,
    pub link: RuntimeLink,
    stop: CancellationToken,
    host: Option<JoinHandle<()>>,
    _dir: TempDir,
}

impl Harness {
    /// Starts a simulator configured by `runtime` and registers the host.
    pub async fn start(runtime: impl FnOnce(PathBuf) -> SimConfig) -> Harness {
        Harness::start_with(runtime, |_| {}, |_| {}).await
    }

    /// Like [`Harness::start`], with a chance to change the simulator's
    /// config and to preload it before the host connects.
    pub async fn start_with(
        runtime: impl FnOnce(PathBuf) -> SimConfig,
        tune: impl FnOnce(&mut SimConfig),
        preload: impl FnOnce(&Simulator),
    ) -> Harness {
        let recorder = Arc::new(Recorder::default());
        Harness::start_handler(runtime, tune, preload, recorder.clone(), recorder).await
    }

    async fn start_handler(
        runtime: impl FnOnce(PathBuf) -> SimConfig,
        tune: impl FnOnce(&mut SimConfig),
        preload: impl FnOnce(&Simulator),
        handler: Arc<dyn NriHandler>,
        recorder: Arc<Recorder>,
    ) -> Harness {
        let dir = TempDir::new().unwrap();
        let mut config = runtime(nri_sim::socket_in(dir.path()));
        tune(&mut config);
        let sim = Simulator::start(config).await.unwrap();
        preload(&sim);
        let link = RuntimeLink::default();
        let stop = CancellationToken::new();
        let host = tokio::spawn(protocol::run_plugin(
            PluginConfig {
                socket: sim.socket().to_path_buf(),
                identity: PluginIdentity::new("nri-wasm", "50").unwrap(),
                backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
            },
            handler,
            link.clone(),
            stop.clone(),
        ));
        assert!(
            sim.wait_for_plugin(HOST_ID, REGISTRATION_WAIT).await,
            "host did not register; dropped: {:?}",
            sim.dropped()
        );
        Harness {
            sim,
            recorder,
            link,
            stop,
            host: Some(host),
            _dir: dir,
        }
    }

    /// Starts a simulator and a host whose handler is the real dispatcher,
    /// with the guests of `plugins` (configured by its nri-wasm.toml).
    pub async fn with_guests(
        runtime: impl FnOnce(PathBuf) -> SimConfig,
        plugins: &Path,
    ) -> (Harness, Arc<Dispatcher>) {
        let dispatcher = Arc::new(load_dispatcher(plugins));
        let harness = Harness::start_handler(
            runtime,
            |_| {},
            |_| {},
            dispatcher.clone(),
            Arc::new(Recorder::default()),
        )
        .await;
        (harness, dispatcher)
    }

    /// Stops the host and waits for it to disconnect.
    pub async fn stop_host(&mut self) {
        self.stop.cancel();
        if let Some(host) = self.host.take() {
            host.await.unwrap();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn pod(id: &str) -> PodSandbox {
    PodSandbox {
        id: id.into(),
        name: id.into(),
        uid: format!("{id}-uid"),
        namespace: "default".into(),
        ..Default::default()
    }
}

pub fn container(pod: &str, name: &str) -> Container {
    Container {
        id: format!("{pod}-{name}"),
        pod_sandbox_id: pod.into(),
        name: name.into(),
        env: vec!["PATH=/bin".into()],
        ..Default::default()
    }
}

/// A dispatcher with the guests of `plugins`, which must all load.
pub fn load_dispatcher(plugins: &Path) -> Dispatcher {
    let config_file = plugins.join("nri-wasm.toml");
    let config = if config_file.is_file() {
        Config::load(&config_file).unwrap()
    } else {
        Config::default()
    };
    let engine = WasmEngine::new().unwrap();
    let cache_dir = open_cache_dir(&crate::guests::compile_cache()).unwrap();
    let cache = CompileCache::new(engine.engine(), Some(cache_dir));
    let dir = open_dir(plugins).unwrap();
    let report = load_plugins(&engine, &cache, &dir, plugins, |id| {
        config.guest(&id.name).sandbox()
    })
    .unwrap();
    assert!(report.refused.is_empty(), "refused: {:?}", report.refused);
    Dispatcher::new(report.guests, &config)
}
